"""Command line: `python -m app.analysis RESPONSES.csv [--json] [--plots DIR] [--exports DIR]
[--pair FIRST SECOND] [--taxonomy BUNDLE] [--levels N] [--report OUT.html [--design DESIGN.json]]
[--power [--effect E ...] [--alpha A]]`.

`--power` prints instead the power and sample size of a next study planned from this one's
variance components (`power.py`), as text or, with `--json`, as `{"power": {endpoint: ...}}`.

The study's classes and confidence scale come from its bundle's manifest (`--taxonomy`);
without it, HAM10000's classes and the confidence levels present (1 to the highest given),
or `--levels N`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.analysis import (
    AnalysisResult,
    Scale,
    Taxonomy,
    analyse,
    files,
    read_responses,
    render_text,
    thesis_keyed,
    with_pair,
)
from app.analysis.plots import write_confusion_plots, write_forest_plots
from app.analysis.power import ALPHA, PowerInputError, plan_power
from app.analysis.report import render_power_text
from app.analysis.responses import Responses, ResponsesError, analysed
from studybundle.limits import MAX_LIKERT, MIN_LIKERT
from studybundle.read import classes as bundle_classes
from studybundle.read import likert as bundle_likert

if TYPE_CHECKING:  # the report's module (and Jinja) loads only when a report is asked for
    from app.analysis.html_report import Registration


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
        help="the study's classes, their malignant flags and its confidence scale from its "
        "bundle's manifest.json (or the bundle folder); default: HAM10000's seven classes",
    )
    parser.add_argument(
        "--levels",
        type=int,
        metavar="N",
        help=f"the study's confidence scale has N levels ({MIN_LIKERT} to {MAX_LIKERT}): "
        "confidences above N are errors and every level gets a row; default: the manifest's "
        "scale with --taxonomy, else the levels present (1 to the highest confidence given)",
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
        "--pair",
        nargs=2,
        metavar=("FIRST", "SECOND"),
        help="the two conditions (keys, as in the file's condition column) that the "
        "per-reader table, the confusion matrices, the answer changes and the pooled and "
        "secondary statistics compare as Task 1 and Task 2 (default: the first two, unaided "
        "first); the primary analysis covers every condition either way",
    )
    parser.add_argument(
        "--report",
        metavar="OUT.html",
        help="write the study report, one self-contained HTML page that prints to PDF: flow "
        "of readers and cases, methods, results, reliance, time per case, the design's "
        "fingerprint",
    )
    parser.add_argument(
        "--design",
        metavar="DESIGN.json",
        help="with --report: the study's design.json (its dashboard's download) for the "
        "methods, the case pool and the fingerprint",
    )
    parser.add_argument(
        "--exports",
        metavar="DIR",
        help="write DIR/mrmcaov.csv, DIR/mrmcaov.R (R's MRMCaov) and DIR/study.imrmc (iMRMC)",
    )
    parser.add_argument(
        "--power",
        action="store_true",
        help="print only the power and sample size of the next study, from this study's "
        "variance components: power over readers x cases x effects, and the cases needed per "
        "reader count for 80 %% and 90 %% power (readers and cases random, Hillis's df)",
    )
    parser.add_argument(
        "--effect",
        type=float,
        nargs="+",
        action="extend",
        default=[],
        metavar="E",
        help="with --power: effects (differences of proportions or AUCs, e.g. 0.05) to plan "
        "for besides the observed one",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=ALPHA,
        metavar="A",
        help=f"with --power: the two-sided significance level (default {ALPHA:g})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the analysis; exit code 2 for an unreadable or invalid responses file."""
    args = build_parser().parse_args(argv)
    inputs = read_inputs(args)
    if inputs is None:
        return 2
    if args.power:
        return print_power(inputs.responses, args, inputs.pair, inputs.scale)
    if args.effect or args.alpha != ALPHA:
        print("error: --effect and --alpha go with --power", file=sys.stderr)
        return 2
    result = analyse(
        inputs.responses,
        bootstrap=args.bootstrap,
        seed=args.seed,
        pairs=[inputs.pair] if inputs.pair else [],
        scale=inputs.scale,
    )
    result = with_pair(result, "~".join(inputs.pair) if inputs.pair else None)
    write_result(result, inputs.responses, args)
    if args.report and inputs.registration is not None:
        return write_report(result, inputs.registration, args.responses, args.report)
    return 0


@dataclass(frozen=True)
class Inputs:
    """What the options and the responses file give the analysis."""

    responses: Responses
    scale: Scale | None
    pair: tuple[str, str] | None  # `--pair` (None: the analysis's own)
    registration: Registration | None  # the design, with `--report`


def read_inputs(args: argparse.Namespace) -> Inputs | None:
    """The analysis's inputs; None when an option or the responses file is wrong, which is
    said on stderr."""
    if args.design and not args.report:
        print("error: --design goes with --report", file=sys.stderr)
        return None
    try:
        registration = registration_of(args.design) if args.report else None
        manifest = manifest_of(args)
        taxonomy = taxonomy_of(args, manifest)
        scale = scale_of_args(args, manifest)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    responses = load_responses(args, taxonomy, scale)
    if responses is None:
        return None
    try:
        pair = pair_of(args.pair, responses.conditions)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return Inputs(responses, scale, pair, registration)


def load_responses(
    args: argparse.Namespace, taxonomy: Taxonomy | None, scale: Scale | None
) -> Responses | None:
    """The responses file the options name; None when it cannot be read or is invalid, which
    is said on stderr (with a hint when its classes are a study's own)."""
    try:
        return read_responses(
            args.responses,
            with_probes=args.with_probes,
            taxonomy=taxonomy,
            levels=scale.levels if scale else None,
        )
    except ResponsesError as error:
        print(f"error: {args.responses}: {error}", file=sys.stderr)
        if taxonomy is None and "unknown class" in error.message:
            print(
                "a study with its own classes: give --taxonomy MANIFEST or --classes CODES",
                file=sys.stderr,
            )
        return None
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {args.responses}: {error}", file=sys.stderr)
        return None


def pair_of(asked: Sequence[str] | None, conditions: tuple[str, ...]) -> tuple[str, str] | None:
    """The two conditions `--pair` asks to compare (None without it); ValueError saying what
    is wrong with them."""
    if not asked:
        return None
    problem = pair_problem(tuple(asked), conditions)
    if problem:
        raise ValueError(f"--pair: {problem}")
    return asked[0], asked[1]


def write_result(result: AnalysisResult, responses: Responses, args: argparse.Namespace) -> None:
    """The result on stdout (JSON or text), and the plots and exports the options ask for."""
    if responses.probes_left_out:
        # Also on stderr, so that it is seen with --json too (where the result carries it).
        print(
            f"left out {responses.probes_left_out} faulty-aid probe rows "
            "(--with-probes keeps them)",
            file=sys.stderr,
        )
    if args.json:
        # The pair's tables under `task1`/`task2`, as this output has always had them.
        print(json.dumps(thesis_keyed(result), indent=2, allow_nan=False))
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


def registration_of(path: str | None) -> Registration:
    """The design `--design` names, with its fingerprint; ValueError when unreadable."""
    from app.analysis.html_report import Registration

    if path is None:
        return Registration(
            None,
            None,
            "No design was given (--design with the study's design.json adds it), so the "
            "report has no fingerprint to show.",
        )
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the design from {path}: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: no design in it (expected a JSON object)")
    try:
        return Registration.of_document(document, f"The design read from {Path(path).name}")
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def write_report(result: AnalysisResult, registration: Registration, source: str, out: str) -> int:
    """Write the study report of `result` to `out`; exit code 2 when it cannot be written."""
    from app.analysis.html_report import Flow, render_report

    flow = Flow.of_result(result, registration.design)
    title = f"Reader study from {Path(source).name}"
    report = render_report(result, registration, flow, title, date.today().isoformat())
    try:
        Path(out).write_text(report.html, encoding="utf-8")
    except OSError as error:
        print(f"error: cannot write {out}: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}", file=sys.stderr)
    return 0


def print_power(
    responses: Responses, args: argparse.Namespace, pair: tuple[str, str] | None, scale: Any
) -> int:
    """`--power`: the power plan of every endpoint as JSON or text; exit code 2 for an effect
    or alpha it has no meaning for, or a study too small to have variance components."""
    result = analyse(responses, bootstrap=0, pairs=[pair] if pair else [], scale=scale)
    result = with_pair(result, "~".join(pair) if pair else None)
    try:
        plan = plan_power(result, effects=args.effect, alpha=args.alpha)
    except PowerInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"power": plan}, indent=2, allow_nan=False))
    else:
        sys.stdout.write(render_power_text(plan))
    if not any(block["available"] for block in plan.values()):
        reasons = {block["reason"] for block in plan.values()}
        print(
            f"error: no endpoint has power: {'; '.join(sorted(map(str, reasons)))}", file=sys.stderr
        )
        return 2
    return 0


def pair_problem(pair: tuple[str, ...], conditions: tuple[str, ...]) -> str:
    """What is wrong with the `--pair` asked for ('' when nothing): the analysis itself takes
    a key it has no answers for as an empty condition, which from a person is a typo."""
    unknown = [key for key in pair if key not in conditions]
    if unknown:
        return f"no condition {unknown[0]!r} in the responses (they have {', '.join(conditions)})"
    if pair[0] == pair[1]:
        return f"two different conditions, not {pair[0]!r} twice"
    return ""


def manifest_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """The bundle manifest `--taxonomy` names (None without it); ValueError when unreadable."""
    if not args.taxonomy:
        return None
    path = Path(args.taxonomy)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the taxonomy from {path}: {error}") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} has no list of classes with codes")
    return manifest


def taxonomy_of(args: argparse.Namespace, manifest: dict[str, Any] | None) -> Taxonomy | None:
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
    if manifest is None:
        return None
    try:
        return Taxonomy.from_classes(bundle_classes(manifest))
    except (KeyError, TypeError, AttributeError):
        raise ValueError(f"{args.taxonomy} has no list of classes with codes") from None


def scale_of_args(args: argparse.Namespace, manifest: dict[str, Any] | None) -> Scale | None:
    """The confidence scale the options name: the manifest's labels, or `--levels` levels;
    None when neither is given (the analysis takes the levels present)."""
    scale = None
    if manifest is not None and "likert" in manifest:
        try:
            scale = Scale.of_labels(bundle_likert(manifest))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{args.taxonomy}: likert: {error}") from None
    if args.levels is None:
        return scale
    if scale is not None and scale.levels != args.levels:
        raise ValueError(
            f"--levels {args.levels}, but the manifest's scale has {scale.levels} levels"
        )
    try:
        return scale or Scale(args.levels)
    except ValueError as error:
        raise ValueError(f"--levels: {error}") from None


def write_exports(responses: Responses, out_dir: str, source: str) -> list[Path]:
    """The MRMCaov CSV and R script and the iMRMC file of `responses` in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept, left_out = analysed(responses)
    title = f"Reader study from {source}"
    written = {
        "mrmcaov.csv": files.mrmcaov_csv(kept),
        "mrmcaov.R": files.mrmcaov_script(title, taxonomy=responses.taxonomy, left_out=left_out),
        "study.imrmc": files.imrmc_text(title, kept),
    }
    paths = []
    for name, text in written.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    sys.exit(main())
