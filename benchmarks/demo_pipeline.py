"""Time the `demo` preset end to end on synthetic data, as `make demo` runs it.

    .venv/bin/python benchmarks/demo_pipeline.py [--images 1500] [--size 128] [--set KEY=VALUE]

Writes the synthetic dataset and the run into a temporary folder (or --keep DIR), prints each
stage's wall time, the total, and the figures that say whether the demo learned anything:
the classifiers' accuracy and macro sensitivity, macro AP@k of CBIR, SE-CBIR and the
no-saliency control, SE-CBIR's differences from both with 95 % bootstrap intervals, and the
majority vote. Target: under 5 minutes on a 2-core CPU.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 300


def run_command(arguments: list[str]) -> float:
    """Run `python -m training ...` from the repository root; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "training", *arguments], cwd=ROOT, check=True)
    return time.perf_counter() - start


def report(out: Path, synth_seconds: float, run_seconds: float) -> None:
    """Print stage times and the learning figures of a finished run."""
    stages = json.loads((out / "timings.json").read_text())["stages"]
    print("\nstage times (s)")
    print(f"  {'synth':<12} {synth_seconds:7.1f}")
    for name, seconds in stages.items():
        shown = "skipped" if seconds is None else f"{seconds:7.1f}"
        print(f"  {name:<12} {shown}")
    total = synth_seconds + run_seconds
    verdict = "within" if total < TARGET_SECONDS else "OVER"
    print(f"  {'total':<12} {total:7.1f}  ({verdict} the {TARGET_SECONDS} s target)")

    result = json.loads((out / "metrics.json").read_text())
    print("\nclassifiers on the test split")
    for name, scores in result["classifiers"].items():
        print(
            f"  {name:<5} accuracy {scores['accuracy']:.3f}  "
            f"macro sensitivity {scores['macro_sensitivity']:.3f}"
        )
    print(f"\nretrieval ({result['queries']} queries, bank {result['bank']}): macro AP@k")
    for name in result["retrieval"]:
        row = "  ".join(
            f"@{k} {scores['macro']:.3f}" for k, scores in result["retrieval"][name].items()
        )
        print(f"  {name:<8} {row}")
    for name, by_k in result.get("comparisons", {}).items():
        row = "  ".join(
            f"@{k} {v['estimate']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]"
            for k, v in by_k.items()
        )
        print(f"  {name:<17} {row}")
    print(f"majority vote accuracy at 6 (SE-CBIR): {result['majority_vote_accuracy_at_6']:.3f}")
    manifest = json.loads((out / "study" / "manifest.json").read_text())
    counts = manifest["counts"]
    print(
        f"query pool: {counts['queries_before']} -> {counts['queries_after']} "
        f"(dropped {counts['dropped']}); bundle {out / 'study'}"
    )


def main() -> int:
    """Synthesise the data, run the demo preset, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--keep", type=Path, help="work in this folder instead of a temporary one")
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="demo-pipeline-") as scratch:
        work = args.keep or Path(scratch)
        data, out = work / "data", work / "models" / "demo"
        synth_seconds = 0.0
        if not (data / "HAM10000_metadata.csv").exists():
            synth_seconds = run_command(
                [
                    *("synth", "--out", str(data), "--images", str(args.images)),
                    *("--size", str(args.size), "--seed", str(args.seed)),
                ]
            )
        overrides = [item for pair in args.overrides for item in ("--set", pair)]
        run_seconds = run_command(
            ["run", "--preset", args.preset, "--data", str(data), "--out", str(out), *overrides]
        )
        report(out, synth_seconds, run_seconds)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"CPU time of the commands: {used.ru_utime + used.ru_stime:.1f} s "
        f"(on a shared machine, beside the wall time); load average after: {os.getloadavg()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
