"""Command line: `python -m training {synth,split,evaluate-retrieval,run,smoke,positive-control}`.

Each sub-command lives in the module of its stage; this file only parses arguments.
TensorFlow is imported lazily, so `split` and `evaluate-retrieval` start in a blink.
"""

import argparse
import sys
from pathlib import Path

from training.config import PRESETS
from training.errors import PipelineError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a synthetic dataset in HAM10000's format")
    synth.add_argument("--out", type=Path, required=True, help="folder to write")
    synth.add_argument("--images", type=int, default=1500, help="number of images")
    synth.add_argument("--size", type=int, default=128, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0)

    split = commands.add_parser("split", help="split images into train/val/test")
    split.add_argument("--metadata", type=Path, required=True, help="HAM10000_metadata.csv")
    split.add_argument("--out", type=Path, required=True, help="SPLIT.csv to write")
    split.add_argument("--by", choices=("lesion", "image"), default="lesion")
    split.add_argument("--seed", type=int, default=71)

    evaluate = commands.add_parser(
        "evaluate-retrieval", help="precision at k per class and macro AP@k of a neighbours file"
    )
    evaluate.add_argument("--metadata", type=Path, required=True, help="HAM10000_metadata.csv")
    evaluate.add_argument("--neighbours", type=Path, required=True, help="neighbours JSON")
    evaluate.add_argument("--k", type=int, nargs="+", default=[1, 3, 6, 9])
    evaluate.add_argument(
        "--exclude-same-lesion",
        action="store_true",
        help="skip neighbours of the query's own lesion before cutting at k",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")

    run = commands.add_parser("run", help="run every pipeline step, skipping those already done")
    run.add_argument("--preset", choices=tuple(PRESETS), required=True)
    run.add_argument("--data", type=Path, required=True, help="folder with the metadata CSV")
    run.add_argument("--out", type=Path, required=True, help="run folder, e.g. models/NAME")
    run.add_argument(
        "--imagenet-weights",
        type=Path,
        help="local EfficientNet 'notop' ImageNet weights file (offline use)",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one configuration field, e.g. --set epochs=3 (repeatable)",
    )

    smoke = commands.add_parser(
        "smoke",
        help="every stage of a preset at its real size on a few synthetic images, one step each",
    )
    smoke.add_argument("--preset", choices=tuple(PRESETS), required=True)
    smoke.add_argument("--images", type=int, default=21, help="synthetic images (at least 21)")
    smoke.add_argument(
        "--mixed-precision",
        action="store_true",
        help="compute in mixed float16 even without a GPU (the GPU's code path)",
    )
    smoke.add_argument("--out", type=Path, help="keep the data and run here (default: removed)")

    positive = commands.add_parser(
        "positive-control",
        help="the claim test on decoy pairs, where the index lesion's mask is known to help",
    )
    positive.add_argument("--out", type=Path, default=Path("models/positive-control"))
    positive.add_argument(
        "--images", type=int, help="decoy-pair images (default: positive_control.DEFAULT_IMAGES)"
    )
    positive.add_argument("--seeds", type=int, default=1, help="paired training seeds per arm")
    positive.add_argument(
        "--dose", type=float, default=1.0, help="fraction of the images given the mask"
    )
    positive.add_argument(
        "--arms",
        nargs="+",
        default=["mask", "shuffled_mask", "saliency"],
        choices=("mask", "shuffled_mask", "saliency"),
    )
    positive.add_argument("--preset", choices=tuple(PRESETS), default="demo")
    positive.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one configuration field of the preset (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the sub-command, turn user errors into one line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "synth":
            from training import synth

            return synth.main(args)
        if args.command == "split":
            from training import split

            return split.main(args)
        if args.command == "evaluate-retrieval":
            from training import metrics

            return metrics.main_evaluate_retrieval(args)
        if args.command == "smoke":
            from training import smoke

            return smoke.main(args)
        if args.command == "positive-control":
            from training import positive_control

            return positive_control.main(args)
        from training import pipeline

        return pipeline.main(args)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
