"""Benchmark power and sample size (`app/analysis/power.py`): seconds for the plan of every
endpoint, one endpoint's plan (what the dashboard computes per view) and its plot.

`python benchmarks/power.py [CSV] [--effects 0.05 0.1] [--repeat 5]`

Default data: the thesis study, `../shared/reference/mrmc/thesis_study.csv` (9 readers x 100
cases, 15 endpoints). The analysis itself runs once, outside the timings. Each stage prints
its best of `--repeat` runs and how many noncentral-F evaluations it made, so that the
seconds can be compared across machines (scipy's `ncfdtr` costs some 30 us).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.analysis import analyse, responses_from_rows  # noqa: E402
from app.analysis import plots as plots_module  # noqa: E402
from app.analysis import power as power_module  # noqa: E402
from app.analysis.plots import power_svg  # noqa: E402
from app.analysis.power import plan_endpoint, plan_power  # noqa: E402
from tests.analysis.helpers import reference_rows  # noqa: E402

THESIS = ROOT.parent / "shared" / "reference" / "mrmc" / "thesis_study.csv"


def best(stage: Callable[[], Any], repeat: int) -> tuple[float, int]:
    """The best wall time of `repeat` runs of `stage`, and the power evaluations in one run."""
    counted = [0]
    original = power_module.power

    def counting(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        counted[0] += getattr(out, "size", 1)
        return out

    times = []
    for _ in range(repeat):
        counted[0] = 0
        power_module.power = plots_module.power = counting
        try:
            start = time.perf_counter()
            stage()
            times.append(time.perf_counter() - start)
        finally:
            power_module.power = plots_module.power = original
    return min(times), counted[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", default=str(THESIS), help="reference-format CSV")
    parser.add_argument("--effects", type=float, nargs="*", default=[0.05, 0.1])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = Path(args.csv)
    if not path.exists():
        print(f"error: {path} not found", file=sys.stderr)
        return 2
    result = analyse(responses_from_rows(reference_rows(path)), bootstrap=0)
    endpoints = len(result["statistics"]["or_hillis"])
    plan = plan_power(result, effects=args.effects)
    rows = sum(len(b["table"]) + len(b["needed"]) for b in plan.values())
    print(
        f"{path.name}: {endpoints} endpoints, {rows} table and needed rows, effects: observed"
        f" + {args.effects}"
    )
    stages: dict[str, Callable[[], Any]] = {
        "plan_power, every endpoint": lambda: plan_power(result, effects=args.effects),
        "plan_endpoint, the page's one": lambda: plan_endpoint(result),
        "power_svg of it": lambda: power_svg(plan_endpoint(result)),  # type: ignore[arg-type]
    }
    for name, stage in stages.items():
        seconds, evaluations = best(stage, args.repeat)
        print(f"  {name:32s} {seconds * 1000:8.1f} ms  {evaluations:7d} power evaluations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
