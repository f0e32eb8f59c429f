"""The typed shape of the analysis result: what the dashboard, the exports and the CLI read.

TypedDicts (not dataclasses) because the result is plain JSON: `json.dumps(result)` works
as it is and templates read keys. mypy checks every producer and reader in `app/analysis`
against these shapes (`make lint`), so a renamed key fails there, not as a blank cell.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# The names the pair's tables hold beside the figures they key by condition (`pooled`, a row
# of `readers`, `confusion` and its `readers` rows, `bootstrap`, `accuracy_by_confidence`):
# a condition of one of these names would overwrite them, so responses may not use them.
TABLE_FIELDS = frozenset(
    {
        "cases",
        "classes",
        "conditions",
        "description",
        "difference",
        "images",
        "labels",
        "level",
        "levels",
        "majority_vote_accuracy",
        "mean",
        "method",
        "paired_cases",
        "reader",
        "readers",
        "resamples",
        "row_share",
        "sd",
        "seed",
    }
)


class Equality(TypedDict):
    """The overall F test that every condition has the same mean figure (df2 None = infinite)."""

    F: float
    df1: int
    df2: float | None
    p: float


class Difference(TypedDict):
    """One pairwise difference `a - b` with its standard error, df, CI and p."""

    comparison: str
    minuend: str
    subtrahend: str
    estimate: float
    se: float
    df: float | None
    ci_low: float
    ci_high: float
    p: float


class FixedEquality(TypedDict):
    """The test of equal means with readers fixed: chi-square on df1 degrees of freedom."""

    chi2: float
    df: int
    p: float


class FixedReaders(TypedDict):
    """Readers fixed, cases random: conclusions about these readers only."""

    equality: FixedEquality
    differences: list[Difference]


class Covariances(TypedDict):
    """The OR variance components and mean squares behind the test."""

    var: float
    cov1: float
    cov2: float
    cov3: float
    ms_t: float
    ms_tr: float


class ReaderFigure(TypedDict):
    """One reader's figure of merit per condition (None: not defined for this reader)."""

    reader: str
    cases: int
    scored: int
    values: dict[str, float | None]


class LeftOut(TypedDict):
    """A reader left out of an endpoint or of the whole analysis, and why."""

    reader: str
    reason: str


class ORHillis(TypedDict):
    """Obuchowski-Rockette with Hillis's ddf for one endpoint (the reference files' shape).

    `kind` is "proportion" (figures are shares 0-1) or "auc" (empirical ROC areas); `cases`
    the n cases of the jackknife (those the endpoint counts, in any condition).
    """

    endpoint: str
    label: str
    description: str
    kind: str
    available: bool
    reason: str | None
    level: float
    readers: int
    readers_left_out: int
    left_out: list[LeftOut]
    cases: int
    means: dict[str, float]
    equality: Equality | None
    differences: list[Difference]
    fixed_readers: FixedReaders | None
    covariances: Covariances | None
    per_reader: list[ReaderFigure]


class PairedTest(TypedDict):
    """A paired t test and a sign test over readers of one per-reader difference."""

    comparison: str
    what: str
    readers: int
    mean_difference: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    t: float | None
    df: int | None
    p: float | None
    improved: int
    worsened: int
    tied: int
    sign_p: float | None


class ReaderLevel(TypedDict):
    """Reader-level inference (each reader counts once): accuracy and confidence."""

    description: str
    level: float
    accuracy: list[PairedTest]
    confidence: list[PairedTest]


class Headline(TypedDict):
    """The primary paired result of one endpoint in plain words."""

    endpoint: str
    label: str
    comparison: str
    sentence: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None


class ConfidenceScale(TypedDict):
    """The confidence scale the answers used: levels 1 to `levels`, their labels level 1
    first (empty when not known, as for a responses file read alone)."""

    levels: int
    labels: list[str]


class ConfidenceLevel(TypedDict):
    """One row of accuracy by confidence: the answers given at one level, the right ones."""

    confidence: int
    answers: int
    correct: int
    accuracy: float | None


class AccuracyByConfidence(TypedDict):
    """Accuracy at every level of the scale (1 to N) under each condition of the pair:
    `levels` = condition key -> one row per level (`tables.sides` gives the pair's keys)."""

    description: str
    levels: dict[str, list[ConfidenceLevel]]


class Statistics(TypedDict):
    """Every statistic; `or_hillis` is primary, the others are labelled in their description."""

    or_hillis: dict[str, ORHillis]
    reader_level: ReaderLevel
    mcnemar: dict[str, Any]
    wilcoxon_confidence: dict[str, Any]
    bootstrap: dict[str, Any]
    accuracy_by_confidence: AccuracyByConfidence


class ComparedPair(TypedDict):
    """The two conditions that the thesis-layout tables (`readers`, `pooled`, `confusion`,
    `changes`) and the pooled and secondary statistics (McNemar, Wilcoxon, the bootstrap,
    accuracy by confidence) compare, first then second (the thesis's Task 1 and Task 2): their
    keys, which those tables key their figures by, and readable names (None where the
    responses have fewer than two conditions: that side's empty tables are under
    `tables.NO_CONDITION`)."""

    first: str | None
    second: str | None
    names: list[str | None]


class PairTables(TypedDict):
    """The thesis-layout tables and the pooled and secondary statistics of one pair of
    conditions (`ComparedPair`): what `AnalysisResult` holds at its top level for its first
    pair, and under `pairs` for every pair the analysis was asked for."""

    pair: ComparedPair
    readers: list[dict[str, Any]]
    pooled: dict[str, Any]
    confusion: dict[str, Any]
    changes: dict[str, Any]
    mcnemar: dict[str, Any]
    wilcoxon_confidence: dict[str, Any]
    bootstrap: dict[str, Any]
    accuracy_by_confidence: AccuracyByConfidence


class AnalysisResult(TypedDict):
    """What `analyse(...)` returns."""

    classes: list[str]
    conditions: list[str]
    scale: ConfidenceScale
    # Condition key -> the name pages show ("SE-CBIR 6"; the key itself where none was given),
    # and "aid_alone" -> "the aid alone" (the aid scored as its own reader under reliance).
    names: dict[str, str]
    pair: ComparedPair
    probes_left_out: int
    left_out: dict[str, Any]
    headline: list[Headline]
    readers: list[dict[str, Any]]
    pooled: dict[str, Any]
    confusion: dict[str, Any]
    changes: dict[str, Any]
    statistics: Statistics
    reader_groups: dict[str, dict[str, str]]
    reliance: dict[str, Any]
    timing: dict[str, Any]
    # "first~second" -> that pair's tables, for every pair the analysis was asked for (the
    # top level's first); `tables.with_pair` gives the result as one pair's, without these.
    pairs: NotRequired[dict[str, PairTables]]


class PowerComponents(TypedDict):
    """The pilot's OR variance components as the power formula takes them (RJafroc's names:
    VarTR, Var, Cov1, Cov2, Cov3), with the pilot's readers J* and cases per reader K*."""

    var_tr: float
    var: float
    cov1: float
    cov2: float
    cov3: float
    readers: int
    cases: float


class PowerRow(TypedDict):
    """The power of a two-condition study of `readers` readers, each reading `cases` cases in
    both conditions, to find a true difference `effect` (readers and cases random)."""

    effect: float
    readers: int
    cases: int
    power: float


class PowerNeeded(TypedDict):
    """The fewest cases per reader that give `readers` readers more than `target` power for
    `effect`, and the power they give (both None: not within the search's case limit)."""

    effect: float
    target: float
    readers: int
    cases: int | None
    power: float | None


class EndpointPower(TypedDict):
    """Power and sample size of one endpoint, from its OR-Hillis variance components.

    `comparison` is the difference whose size is the observed effect ("a - b"; None when
    there is none); `effects` every effect the table covers, the observed one first.
    """

    endpoint: str
    label: str
    kind: str
    available: bool
    reason: str | None
    alpha: float
    comparison: str | None
    observed_effect: float | None
    effects: list[float]
    components: PowerComponents | None
    table: list[PowerRow]
    needed: list[PowerNeeded]
