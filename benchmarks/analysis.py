"""Benchmark the results analysis on synthetic responses: seconds per stage.

`python benchmarks/analysis.py [--readers 100] [--cases 1000] [--bootstrap 2000] [--repeat 3]`

The machine is shared and noisy, so the same stages also run on a baseline of a tenth of the
readers in the same process, and the ratio large/baseline is printed beside the seconds
(linear scaling would give about 10). Each stage reports its best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.analysis import analyse, read_responses  # noqa: E402
from app.analysis.endpoints import complete_blocks  # noqa: E402
from app.analysis.mrmc import or_hillis_all  # noqa: E402
from app.analysis.responses import CLASSES, COLUMNS  # noqa: E402
from app.analysis.stats import bootstrap_accuracy, mcnemar_tests, wilcoxon_confidence  # noqa: E402
from app.analysis.tables import (  # noqa: E402
    accuracy_by_confidence,
    answer_changes,
    confusion_tables,
    paired_cases,
    reader_table,
)


def write_synthetic(path: Path, readers: int, cases: int, seed: int = 0) -> int:
    """Write responses of `readers` x `cases` x 2 tasks; readers share images from one pool."""
    rng = np.random.default_rng(seed)
    pool = max(5 * cases, 1000)
    pool_truth = rng.choice(len(CLASSES), size=pool, p=[0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02])
    pool_vote = np.where(rng.random(pool) < 0.9, pool_truth, rng.integers(0, 7, pool))
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS, "answered_at"])
        for j in range(readers):
            images = rng.choice(pool, size=cases, replace=False)
            truth = pool_truth[images]
            skill = rng.uniform(0.4, 0.85)
            for task, p in ((1, skill), (2, min(skill + 0.2, 0.97))):
                right = rng.random(cases) < p
                diagnosis = np.where(right, truth, rng.integers(0, 7, cases))
                confidence = np.clip(rng.integers(1, 6, cases) + right * (task == 2), 1, 5)
                for k in range(cases):
                    writer.writerow(
                        [
                            f"reader{j:03d}",
                            f"ISIC_{images[k]:07d}",
                            CLASSES[truth[k]],
                            task,
                            CLASSES[diagnosis[k]],
                            confidence[k],
                            CLASSES[pool_vote[images[k]]],
                            "2024-01-01T00:00:00Z",
                        ]
                    )
                rows += cases
    return rows


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Smallest wall time of `repeat` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def stage_times(path: Path, bootstrap: int, repeat: int) -> dict[str, float]:
    """Seconds per stage of the analysis of one responses file."""
    times: dict[str, float] = {}
    times["reading"], responses = best_of(repeat, lambda: read_responses(path))

    def tables() -> Any:
        paired = paired_cases(responses)
        reader_table(responses, paired)
        confusion_tables(responses)
        answer_changes(paired, responses.readers)
        accuracy_by_confidence(responses)
        return paired

    times["tables"], paired = best_of(repeat, tables)
    times["tests (McNemar, Wilcoxon)"], _ = best_of(
        repeat, lambda: (mcnemar_tests(paired, responses.readers), wilcoxon_confidence(paired))
    )
    times[f"bootstrap ({bootstrap})"], _ = best_of(
        repeat, lambda: bootstrap_accuracy(paired, len(responses.readers), bootstrap, seed=0)
    )
    times["Obuchowski-Rockette, all endpoints"], _ = best_of(
        repeat, lambda: or_hillis_all(complete_blocks(responses))
    )
    times["analyse() without reading"], _ = best_of(
        repeat, lambda: analyse(responses, bootstrap=bootstrap, seed=0)
    )
    times["total (reading + analyse)"] = times["reading"] + times["analyse() without reading"]
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table of seconds per stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    baseline_readers = max(args.readers // 10, 2)
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "large.csv", Path(tmp) / "baseline.csv"
        n_big = write_synthetic(big, args.readers, args.cases, seed=1)
        n_small = write_synthetic(small, baseline_readers, args.cases, seed=2)
        small_times = stage_times(small, args.bootstrap, args.repeat)
        big_times = stage_times(big, args.bootstrap, args.repeat)
    print(f"large:    {args.readers} readers x {args.cases} cases x 2 tasks = {n_big} answers")
    print(
        f"baseline: {baseline_readers} readers x {args.cases} cases x 2 tasks = {n_small} answers"
    )
    print(f"best of {args.repeat} runs per stage\n")
    print(f"{'stage':<28}{'large s':>10}{'baseline s':>12}{'ratio':>8}")
    for stage, seconds in big_times.items():
        base = small_times[stage]
        ratio = f"{seconds / base:.1f}" if base > 0 else "-"
        print(f"{stage:<28}{seconds:>10.3f}{base:>12.3f}{ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
