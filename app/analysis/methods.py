"""The methods section of a study report, written from the study's design and its analysis.

What a journal's reviewer asks of a reader study (CONSORT's and STARD's items on design,
participants, randomisation and analysis), said in sentences that follow the study as it was
set up: the design and its conditions, the cases and how they were drawn, the wash-out, the
randomisation, the faulty-aid probes, who the readers were, and how the answers were
analysed, with what software, citing the methods. Pure: a design (the JSON of
`app.organiser.design_freeze`, or a `design.json` given to the command line) and an analysis
result in,
paragraphs and references out. Without a design (a responses file alone) the paragraphs say
what the file cannot tell rather than guess it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.analysis.wording import heading


@dataclass(frozen=True)
class Reference:
    """A work the methods cite: its number in the text is its place in `REFERENCES` + 1."""

    text: str
    url: str


OBUCHOWSKI_ROCKETTE = Reference(
    "Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy for multiple "
    "readers and multiple tests: an ANOVA approach with dependent observations. Commun Stat "
    "Simul Comput. 1995;24(2):285-308.",
    "https://doi.org/10.1080/03610919508813243",
)
HILLIS_2007 = Reference(
    "Hillis SL. A comparison of denominator degrees of freedom methods for multiple observer "
    "ROC analysis. Stat Med. 2007;26(3):596-619.",
    "https://doi.org/10.1002/sim.2532",
)
MRMCAOV = Reference(
    "Smith BJ, Hillis SL, Pesce LL. MRMCaov: Multi-Reader Multi-Case Analysis of Variance. "
    "R package version 0.3.0.",
    "https://cran.r-project.org/package=MRMCaov",
)
SMITH_HILLIS_2020 = Reference(
    "Smith BJ, Hillis SL. Multi-reader multi-case analysis of variance software for diagnostic "
    "performance comparison of imaging modalities. Proc SPIE 11316, Medical Imaging 2020: "
    "Image Perception, Observer Performance, and Technology Assessment. 2020;113160K.",
    "https://doi.org/10.1117/12.2549075",
)
HILLIS_2011 = Reference(
    "Hillis SL, Obuchowski NA, Berbaum KS. Power estimation for multireader ROC methods: an "
    "updated and unified approach. Acad Radiol. 2011;18(2):129-142.",
    "https://doi.org/10.1016/j.acra.2010.09.007",
)
REFERENCES = (OBUCHOWSKI_ROCKETTE, HILLIS_2007, MRMCAOV, SMITH_HILLIS_2020, HILLIS_2011)

SAMPLING_WORDS = {
    "random": "a simple random sample of the pool",
    "stratified": "a sample stratified by class, in proportion to the pool's class shares",
}
NO_DESIGN = (
    "The study's design was not given (the report was made from a responses file alone; "
    "the option --design with the study's design.json adds it), so the design, the case "
    "pool, the wash-out and the randomisation are not described here."
)


@dataclass(frozen=True)
class Methods:
    """The methods section: titled paragraphs, and the works they cite by number."""

    paragraphs: list[tuple[str, str]]
    references: Sequence[Reference] = REFERENCES


def cite(*works: Reference) -> str:
    """The citation marks of `works`, "[1, 2]"."""
    return "[" + ", ".join(str(REFERENCES.index(w) + 1) for w in works) + "]"


def listing(items: Sequence[str]) -> str:
    """Items in a sentence: "a", "a and b", "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def count(n: int, noun: str) -> str:
    """ "1 reader", "3 readers"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def hours(value: float) -> str:
    """A wash-out in words: hours below two days, else days."""
    if value >= 48:
        return f"{value / 24:g} days"
    return f"{value:g} hours" if value != 1 else "1 hour"


def design_paragraph(design: Mapping[str, Any], result: Mapping[str, Any]) -> str:
    """The design, its conditions and sessions, the cases and how each reader's were drawn."""
    listed = [c["label"] for c in design["conditions"]]
    cases = design["cases"]
    sessions = design["sessions"]
    parts = [
        f"{design['design_name']} reader study of {count(len(listed), 'condition')}: "
        f"{listing(listed)}.",
        f"Each reader read {cases['per_reader']} cases drawn for them as "
        f"{SAMPLING_WORDS.get(cases['sampling'], cases['sampling'])} of a pool of "
        f"{cases['pool']} cases (bundle {cases['bundle_digest'][:12]}).",
    ]
    kind = design["design"]
    if kind in ("sequential", "crossover"):
        parts.append(
            f"Readers read all their cases in each of {count(sessions, 'session')}, one "
            "condition per session"
            + (
                ", in the listed order."
                if kind == "sequential"
                else ", the order of conditions counterbalanced over readers (a Williams "
                "design, balanced for first-order carry-over)."
            )
        )
    elif kind == "per_case":
        parts.append(
            "Readers read their cases in one session, each case under one condition, the "
            "conditions balanced within each reader and rotated across readers."
        )
    else:
        parts.append(
            "Readers read their cases in one session: each case was first diagnosed without "
            "help, then the aid was shown and the reader confirmed or revised the answer."
        )
    if sessions > 1:
        washout = design["washout_hours"]
        parts.append(
            (
                f"A later session opened no sooner than {hours(washout)} after the reader "
                "finished the one before (wash-out)"
                if washout
                else "A later session could start as soon as the one before was finished "
                "(no wash-out)"
            )
            + (
                "; later sessions showed each lesion turned by 180 degrees"
                if design["rotate_later_sessions"]
                else ""
            )
            + (
                " and in a new random order."
                if design["reshuffle_later_sessions"]
                else ", in the same order as the first."
            )
        )
    levels = len(design["confidence_scale"])
    classes = [c["code"] for c in design["classes"]]
    if classes:
        parts.append(
            f"Readers chose one of {len(classes)} classes ({', '.join(classes)}) and rated "
            f"their confidence on a {levels}-level scale"
            + (
                f" from “{design['confidence_scale'][0]}” to “{design['confidence_scale'][-1]}”."
                if levels
                else "."
            )
        )
    return " ".join(parts)


def randomisation_paragraph(design: Mapping[str, Any]) -> str:
    """How readers were put to condition orders and how their cases were drawn and ordered."""
    random = design["randomisation"]
    text = (
        f"Allocation of readers to condition orders: {random['readers_to_orders']}. "
        f"Each reader's seed was {random['reader_seeds']}."
    )
    if random.get("study_seed_sha256"):
        text += (
            " The study's seed is committed in the frozen design as a salted SHA-256 "
            f"({random['study_seed_sha256'][:16]}…); the study's design.json opens it (the "
            "seed and its salt) once the study has closed."
        )
    return text


def probes_paragraph(design: Mapping[str, Any] | None, result: Mapping[str, Any]) -> str:
    """The faulty-aid probes: how many, what readers were told, how they were analysed."""
    left_out = result.get("probes_left_out", 0)
    share = None if design is None else design["probes"]["share"]
    if share == 0 and not left_out:
        return "No faulty-aid probes were shown."
    if not share and not left_out:
        return "The responses hold no faulty-aid probe readings."
    planned = (
        f"{100 * share:g}% of the aided readings that could mislead (similar images or "
        "probabilities) were faulty-aid probes: the aid was made to point at a wrong class on "
        "purpose, and readers were told beforehand that some of the help would. "
        if share
        else ""
    )
    return (
        planned + f"The {count(left_out, 'probe reading')} were left out of the primary "
        "analysis and are reported on their own (how often readers were still right, and how "
        "often they gave the class the faulty aid pushed)."
    )


def readers_paragraph(result: Mapping[str, Any]) -> str:
    """Who the readers were: their number, roles and years of practice, where known."""
    readers = result["pooled"]["readers"]
    groups: Mapping[str, Mapping[str, str]] = result.get("reader_groups", {})
    text = f"{count(readers, 'reader')} were analysed."
    for grouping, words in (("role", "By role"), ("experience", "By years of dermoscopy")):
        labels = groups.get(grouping)
        if not labels:
            continue
        tally = Counter(label.replace("_", " ") for label in labels.values())
        text += f" {words}: " + ", ".join(f"{n} {label}" for label, n in sorted(tally.items()))
        text += "."
    if not groups:
        text += " The readers' profiles (role, years of practice) are not in the data."
    return text


def analysis_paragraph(result: Mapping[str, Any]) -> str:
    """The primary and secondary analyses and the software, with citations."""
    blocks: Mapping[str, Any] = result["statistics"]["or_hillis"]
    labels = [block["label"] for block in blocks.values()]
    left = result["left_out"]["readers"]
    text = (
        f"Endpoints: {listing(labels)}. Each reader's figure of merit in a condition was "
        "computed on the cases that reader read in it. Conditions were compared per endpoint "
        f"with the Obuchowski-Rockette model {cite(OBUCHOWSKI_ROCKETTE)} with Hillis's "
        f"denominator degrees of freedom {cite(HILLIS_2007)}, readers and cases both random "
        "(covariances by the jackknife), giving each difference with its 95% confidence "
        "interval and two-sided p; with readers fixed for conclusions about these readers only."
    )
    if left:
        text += f" {count(len(left), 'reader')} without answers in every condition were left out."
    text += (
        " Secondary: per-reader paired t and sign tests, and a bootstrap over readers then "
        "cases; McNemar's and Wilcoxon's tests on pooled answers are descriptive only. The "
        "analysis ran in this platform's own code (Python, NumPy, SciPy), which matches R's "
        f"MRMCaov {cite(MRMCAOV, SMITH_HILLIS_2020)} to four significant digits on reference "
        "data sets; the study's exports rerun its primary analysis in MRMCaov."
    )
    return text


def methods(result: Mapping[str, Any], design: Mapping[str, Any] | None) -> Methods:
    """The methods section of the study behind `result` under `design` (None: not known)."""
    paragraphs: list[tuple[str, str]] = []
    if design is None:
        conditions = [result["names"].get(key, key) for key in result["conditions"]]
        paragraphs.append(("Design", f"{NO_DESIGN} The responses hold {listing(conditions)}."))
    else:
        paragraphs.append(("Design", design_paragraph(design, result)))
        paragraphs.append(("Randomisation", randomisation_paragraph(design)))
    paragraphs.append(("Faulty-aid probes", probes_paragraph(design, result)))
    paragraphs.append(("Readers", readers_paragraph(result)))
    paragraphs.append(("Analysis", analysis_paragraph(result)))
    return Methods([(heading(title), text) for title, text in paragraphs])
