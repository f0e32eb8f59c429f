"""Command line: `python -m app.analysis RESPONSES.csv [--json] [--plots DIR]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from app.analysis import analyse, read_responses, render_text
from app.analysis.plots import write_confusion_plots
from app.analysis.responses import ResponsesError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the analysis command."""
    parser = argparse.ArgumentParser(
        prog="python -m app.analysis",
        description="Analyse reader-study responses (one row per answer): accuracy, "
        "confidence, confusion matrices, answer changes and statistics.",
    )
    parser.add_argument(
        "responses",
        help="responses CSV (reader, image_id, truth, task, diagnosis, confidence, majority_vote)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--plots", metavar="DIR", help="write the confusion matrices as PNG and SVG into DIR"
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap resamples (default 2000; 0 skips the bootstrap)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the analysis; exit code 2 for an unreadable or invalid responses file."""
    args = build_parser().parse_args(argv)
    try:
        responses = read_responses(args.responses)
    except ResponsesError as error:
        print(f"error: {args.responses}: {error}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.responses}: {error}", file=sys.stderr)
        return 2
    result = analyse(responses, bootstrap=args.bootstrap, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        sys.stdout.write(render_text(result))
    if args.plots:
        for path in write_confusion_plots(result, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
