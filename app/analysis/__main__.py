"""Command line: `python -m app.analysis RESPONSES.csv [--json] [--plots DIR] [--exports DIR]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from app.analysis import Taxonomy, analyse, files, read_responses, render_text
from app.analysis.plots import write_confusion_plots, write_forest_plots
from app.analysis.responses import Responses, ResponsesError
from studybundle.read import classes as bundle_classes


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the analysis command."""
    parser = argparse.ArgumentParser(
        prog="python -m app.analysis",
        description="Analyse reader-study responses (one row per answer): accuracy, "
        "confidence, confusion matrices, answer changes and statistics.",
    )
    parser.add_argument(
        "responses",
        help="responses CSV (reader, image_id, truth, condition or task, diagnosis, confidence, "
        "majority_vote; optional seconds, hidden_seconds, reader_role, reader_years)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--plots",
        metavar="DIR",
        help="write the confusion matrices and the forest plot of every endpoint's differences "
        "as PNG and SVG into DIR",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap resamples (default 2000; 0 skips the bootstrap)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--taxonomy",
        metavar="MANIFEST",
        help="the study's classes and their malignant flags from its bundle's manifest.json "
        "(or the bundle folder); default: HAM10000's seven classes",
    )
    parser.add_argument(
        "--classes",
        metavar="CODES",
        help="the study's class codes, comma-separated, instead of --taxonomy",
    )
    parser.add_argument(
        "--malignant",
        metavar="CODES",
        default="",
        help="with --classes: the malignant ones, comma-separated (for malignant vs benign)",
    )
    parser.add_argument(
        "--with-probes",
        action="store_true",
        help="keep the faulty-aid probe readings (rows with probe 1), which the primary "
        "analysis leaves out by default",
    )
    parser.add_argument(
        "--exports",
        metavar="DIR",
        help="write DIR/mrmcaov.csv, DIR/mrmcaov.R (R's MRMCaov) and DIR/study.imrmc (iMRMC)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the analysis; exit code 2 for an unreadable or invalid responses file."""
    args = build_parser().parse_args(argv)
    try:
        taxonomy = taxonomy_of(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        responses = read_responses(args.responses, with_probes=args.with_probes, taxonomy=taxonomy)
    except ResponsesError as error:
        print(f"error: {args.responses}: {error}", file=sys.stderr)
        if taxonomy is None and "unknown class" in error.message:
            print(
                "a study with its own classes: give --taxonomy MANIFEST or --classes CODES",
                file=sys.stderr,
            )
        return 2
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.responses}: {error}", file=sys.stderr)
        return 2
    result = analyse(responses, bootstrap=args.bootstrap, seed=args.seed)
    if responses.probes_left_out:
        # Also on stderr, so that it is seen with --json too (where the result carries it).
        print(
            f"left out {responses.probes_left_out} faulty-aid probe rows "
            "(--with-probes keeps them)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        sys.stdout.write(render_text(result))
    if args.plots:
        for path in write_confusion_plots(result, args.plots) + write_forest_plots(
            result, args.plots
        ):
            print(f"wrote {path}", file=sys.stderr)
    if args.exports:
        for path in write_exports(responses, args.exports, Path(args.responses).name):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def taxonomy_of(args: argparse.Namespace) -> Taxonomy | None:
    """The taxonomy the options name (None: HAM10000's); ValueError saying what is wrong."""
    if args.taxonomy and args.classes:
        raise ValueError("give --taxonomy or --classes, not both")
    if args.classes:
        codes = [c.strip() for c in args.classes.split(",") if c.strip()]
        malignant = {c.strip().lower() for c in args.malignant.split(",") if c.strip()}
        unknown = malignant - {c.lower() for c in codes}
        if unknown:
            raise ValueError(f"--malignant names codes not in --classes: {sorted(unknown)}")
        entries = [{"code": c, "malignant": c.lower() in malignant} for c in codes]
        return Taxonomy.from_classes(entries)
    if args.malignant:
        raise ValueError("--malignant goes with --classes")
    if not args.taxonomy:
        return None
    path = Path(args.taxonomy)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return Taxonomy.from_classes(bundle_classes(manifest))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the taxonomy from {path}: {error}") from None
    except (KeyError, TypeError, AttributeError):
        raise ValueError(f"{path} has no list of classes with codes") from None


def write_exports(responses: Responses, out_dir: str, source: str) -> list[Path]:
    """The MRMCaov CSV and R script and the iMRMC file of `responses` in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(responses.rows())
    title = f"Reader study from {source}"
    written = {
        "mrmcaov.csv": files.mrmcaov_csv(rows),
        "mrmcaov.R": files.mrmcaov_script(title, taxonomy=responses.taxonomy),
        "study.imrmc": files.imrmc_text(title, rows),
    }
    paths = []
    for name, text in written.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    sys.exit(main())
