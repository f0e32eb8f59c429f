"""The MRMC endpoints: which answers each figure of merit scores, and how, per reader.

Two kinds of figure of merit:

- a *stratified proportion*: each reader's figure in a condition is the mean over strata
  (groups of the cases the reader read in that condition) of the share of the stratum's
  cases scored 1. One stratum gives a plain proportion (proportion correct, the sensitivity
  or specificity of one class); the truth classes as strata give balanced accuracy (the mean
  of the per-class sensitivities over the classes the reader saw).
- an *empirical AUC* (`kind="auc"`): the area under the reader's empirical ROC curve, the
  chance that a positive case is rated above a negative one (ties count half), from a rating
  that rises with the reader's belief that the case is positive (`roc_rating`).

The analysis reads every answer (`reading_blocks`): a reader's figure in each condition is
computed on the cases that reader read in that condition, whatever the design. Where the same
reader read a case in several conditions the comparison is paired on it (fully crossed and
crossover designs); where not (per-case randomised designs), it is not, and the covariances
say so (`mrmc.py`). `complete_blocks` keeps only the cases a reader read in every condition
compared: the paired, per-case tables (answer changes, reliance) use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.analysis.responses import Array, Responses
from app.analysis.taxonomy import HAM10000_TAXONOMY, Taxonomy

__all__ = [
    "Blocks",
    "Endpoint",
    "Figures",
    "Taxonomy",
    "complete_blocks",
    "endpoints",
    "figures",
    "reading_blocks",
    "roc_rating",
]


@dataclass(frozen=True, eq=False)
class Blocks:
    """Each reader's cases, one element per (reader, case) pair, in every compared condition.

    The 2-D arrays are (conditions, pairs): row i is condition `conditions[i]`. `present[i, k]`
    says whether the reader answered the case in condition i; where not, `diagnosis` and
    `majority_vote` are -1 and `confidence` and `seconds` NaN. `majority_vote` is the vote of
    the aid each reading showed (each aid has its own). `reader` indexes `readers`, `case` the
    responses' image ids; pairs are sorted by (reader, case).
    """

    conditions: tuple[str, ...]
    readers: tuple[str, ...]
    reader: Array
    case: Array
    truth: Array
    majority_vote: Array
    diagnosis: Array
    confidence: Array
    seconds: Array
    taxonomy: Taxonomy = HAM10000_TAXONOMY
    present: Array = field(default_factory=lambda: np.ones((0, 0), dtype=bool))

    def __post_init__(self) -> None:
        """Every pair read in every condition unless told otherwise (complete blocks)."""
        if self.present.shape != self.diagnosis.shape:
            object.__setattr__(self, "present", np.ones(self.diagnosis.shape, dtype=bool))

    def __len__(self) -> int:
        """Number of reader-case pairs."""
        return int(self.reader.shape[0])


def reading_blocks(responses: Responses, conditions: Sequence[int] | None = None) -> Blocks:
    """Every answer in `conditions` (indexes; default: all), joined per reader and case."""
    return _blocks(responses, conditions, complete=False)


def complete_blocks(responses: Responses, conditions: Sequence[int] | None = None) -> Blocks:
    """The cases each reader answered in every one of `conditions` (default: all)."""
    return _blocks(responses, conditions, complete=True)


def _blocks(responses: Responses, conditions: Sequence[int] | None, complete: bool) -> Blocks:
    """Answers laid out per (reader, case) pair and condition (see `Blocks`)."""
    chosen = list(range(len(responses.conditions))) if conditions is None else list(conditions)
    width = max(len(responses.image_ids), 1)
    key = responses.reader.astype(np.int64) * width + responses.image
    selected = [np.flatnonzero(responses.condition == c) for c in chosen]
    keys, place = _dense_keys([key[s] for s in selected], len(responses.readers) * width)
    t, p = len(chosen), keys.size
    present: Array = np.zeros((t, p), dtype=bool)
    diagnosis: Array = np.full((t, p), -1, dtype=np.int64)
    vote: Array = np.full((t, p), -1, dtype=np.int64)
    confidence: Array = np.full((t, p), np.nan)
    seconds: Array = np.full((t, p), np.nan)
    truth: Array = np.zeros(p, dtype=np.int64)
    for i, rows in enumerate(selected):
        at = place(key[rows])
        present[i, at] = True
        diagnosis[i, at] = responses.diagnosis[rows]
        vote[i, at] = responses.majority_vote[rows]
        confidence[i, at] = responses.confidence[rows]
        seconds[i, at] = responses.answer_seconds[rows]
        truth[at] = responses.truth[rows]
    if complete:
        keep = present.all(axis=0) if t else np.zeros(p, dtype=bool)
        keys, truth, present = keys[keep], truth[keep], present[:, keep]
        diagnosis, vote = diagnosis[:, keep], vote[:, keep]
        confidence, seconds = confidence[:, keep], seconds[:, keep]
    return Blocks(
        conditions=tuple(responses.conditions[c] for c in chosen),
        readers=responses.readers,
        reader=keys // width,
        case=keys % width,
        truth=truth,
        majority_vote=vote,
        diagnosis=diagnosis,
        confidence=confidence,
        seconds=seconds,
        taxonomy=responses.taxonomy,
        present=present,
    )


def _dense_keys(keys: list[Array], size: int) -> tuple[Array, Callable[[Array], Array]]:
    """The sorted distinct values of `keys` (non-negative ints below `size`) and a function
    giving each value's position among them: by a table of every possible value when that is
    small next to the keys (a study's readers x images), else by sorting."""
    every = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    if size <= 8 * every.size + 1_000_000:
        seen = np.zeros(size, dtype=bool)
        seen[every] = True
        rank = np.cumsum(seen) - 1
        return np.flatnonzero(seen), rank.__getitem__
    distinct = np.unique(every)
    return distinct, lambda values: np.searchsorted(distinct, values)


def roc_rating(called: Array, confidence: Array, top: float) -> Array:
    """A rating that rises with the reader's belief that the case is positive, for ROC.

    A reader who calls the case positive with confidence c (1..top) rates it top + c; one who
    calls it anything else rates it top + 1 - c. So "positive, very sure" is the highest
    rating, "something else, very sure" the lowest, and an unsure call of either kind sits in
    the middle. With the thesis's 1-5 scale: positive 6-10, other 1-5. Only the order of the
    ratings matters to an empirical AUC, so any `top` at or above the scale's top gives the
    same figures; the analysis and the exports both take the highest confidence given.
    """
    return np.where(called, top + confidence, top + 1 - confidence)


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One figure of merit.

    `stratum` per pair: the case's stratum, or -1 for a case outside the endpoint (a
    sensitivity is about the class's own lesions only; the jackknife runs over those alone, as
    MRMCaov's does). For a proportion, `score` (conditions, pairs) is 1 for a case scored
    right; for an AUC (`kind="auc"`), `score` is the reading's rating (`roc_rating`) and
    `positive` marks the positive cases.
    """

    name: str
    label: str
    description: str
    stratum: Array
    score: Array
    kind: str = "proportion"
    positive: Array | None = None


def endpoints(blocks: Blocks, taxonomy: Taxonomy | None = None) -> list[Endpoint]:
    """Every endpoint of the study's taxonomy (default: the blocks'), headline ones first."""
    taxonomy = taxonomy or blocks.taxonomy
    truth, diagnosis = blocks.truth, blocks.diagnosis
    correct = (diagnosis == truth[None, :]).astype(np.float64)
    everything = np.zeros(truth.shape, dtype=np.int64)
    out = [
        Endpoint(
            "proportion_correct",
            "proportion correct",
            "the share of lesions diagnosed as their true class (all classes)",
            everything,
            correct,
        ),
        Endpoint(
            "balanced_accuracy",
            "balanced accuracy",
            "the mean over the classes of each class's sensitivity, so that rare classes "
            "weigh as much as common ones",
            truth.copy(),
            correct,
        ),
    ]
    confident = blocks.confidence[blocks.present]
    top = float(np.nanmax(confident)) if confident.size else 5.0
    decisions = []
    if taxonomy.melanoma is not None:
        mel = taxonomy.melanoma
        decisions.append(("melanoma", "melanoma", truth == mel, diagnosis == mel))
    if taxonomy.splits_malignancy:
        malignant = taxonomy.malignant_indexes
        decisions.append(
            (
                "malignant",
                "malignant vs benign",
                np.isin(truth, malignant),
                np.isin(diagnosis, malignant),
            )
        )
    for prefix, words, positive, called in decisions:
        out += _binary(prefix, words, positive, called)
    for prefix, words, positive, called in decisions:
        out.append(_auc(prefix, words, positive, called, blocks, top))
    for k, code in enumerate(taxonomy.classes):
        lesions = truth == k
        out.append(
            Endpoint(
                f"sensitivity_{code}",
                f"sensitivity for {code}",
                f"the share of {code} lesions diagnosed as {code}",
                np.where(lesions, 0, -1),
                (diagnosis == k).astype(np.float64),
            )
        )
    return out


def _binary(prefix: str, words: str, positive: Array, called: Array) -> list[Endpoint]:
    """Sensitivity and specificity of one positive-vs-rest decision."""
    what = words.split(" vs ")[0]
    return [
        Endpoint(
            f"{prefix}_sensitivity",
            f"{words} sensitivity",
            f"the share of {what} lesions called {what}",
            np.where(positive, 0, -1),
            called.astype(np.float64),
        ),
        Endpoint(
            f"{prefix}_specificity",
            f"{words} specificity",
            f"the share of other lesions not called {what}",
            np.where(positive, -1, 0),
            (~called).astype(np.float64),
        ),
    ]


def _auc(
    prefix: str, words: str, positive: Array, called: Array, blocks: Blocks, top: float
) -> Endpoint:
    """The empirical ROC AUC of one positive-vs-rest decision, rated by `roc_rating`."""
    what = words.split(" vs ")[0]
    return Endpoint(
        f"{prefix}_auc",
        f"{words} ROC AUC",
        f"the area under each reader's empirical ROC curve for {what}: the chance that a "
        f"{what} lesion is rated above another lesion, from the diagnosis and its confidence "
        f"({what} called with confidence c rates {top:g} + c, anything else {top:g} + 1 - c)",
        np.zeros(positive.shape, dtype=np.int64),
        np.nan_to_num(roc_rating(called, blocks.confidence, top), nan=0.0),
        kind="auc",
        positive=positive,
    )


@dataclass(frozen=True, eq=False)
class Figures:
    """Figures of merit per (condition, reader) and their leave-one-case-out deviations.

    `theta` is (conditions, readers). `dev` is (conditions, pairs): the figure without the
    pair's case less the figure with it, for the cases inside the endpoint that the reader
    read in that condition, 0 elsewhere (deleting a case a reader did not read leaves the
    reader's figure as it is). `eligible` (conditions, readers) marks the figures whose
    jackknife exists: at least 2 cases inside the endpoint (for an AUC, 2 positive and 2
    negative), and no case whose deletion would empty the figure. `cases` counts each
    reader's cases, `scored` those inside the endpoint, per condition.
    """

    theta: Array
    dev: Array
    eligible: Array
    cases: Array
    scored: Array


def figures(
    reader: Array,
    stratum: Array,
    score: Array,
    readers: int,
    present: Array | None = None,
    positive: Array | None = None,
) -> Figures:
    """Each reader's figure per condition with its leave-one-out deviations (see `Figures`):
    a stratified proportion, or an empirical AUC when `positive` is given."""
    t = score.shape[0]
    if present is None:
        present = np.ones(score.shape, dtype=bool)
    inside = present & (stratum >= 0)[None, :]
    cases = np.zeros((t, readers))
    scored = np.zeros((t, readers))
    for i in range(t):
        cases[i] = np.bincount(reader[present[i]], minlength=readers)
        scored[i] = np.bincount(reader[inside[i]], minlength=readers)
    theta = np.zeros((t, readers))
    dev = np.zeros(score.shape, dtype=np.float64)
    eligible = np.zeros((t, readers), dtype=bool)
    for i in range(t):
        rows = np.flatnonzero(inside[i])
        if positive is None:
            theta[i], dev[i, rows], eligible[i] = _proportion(
                reader[rows], stratum[rows], score[i, rows], readers
            )
        else:
            theta[i], dev[i, rows], eligible[i] = _empirical_auc(
                reader[rows], positive[rows], score[i, rows], readers
            )
    return Figures(theta, dev, eligible, cases, scored)


def _proportion(
    reader: Array, stratum: Array, x: Array, readers: int
) -> tuple[Array, Array, Array]:
    """Stratified proportions per reader, each case's leave-one-out deviation, eligibility.

    Deleting case n (stratum g of a reader with m_g cases in g and S strata) changes the
    figure by (p_g - x_n) / ((m_g - 1) S) when m_g >= 2, and by (theta - x_n) / (S - 1) when
    the case was its stratum's only one (the stratum drops out).
    """
    n_strata = int(stratum.max()) + 1 if stratum.size else 1
    cell = reader * n_strata + stratum
    m = np.bincount(cell, minlength=readers * n_strata).astype(np.float64)
    strata = (m.reshape(readers, n_strata) > 0).sum(axis=1).astype(np.float64)
    share = np.bincount(cell, weights=x, minlength=readers * n_strata) / np.maximum(m, 1)
    theta = share.reshape(readers, n_strata).sum(axis=1) / np.maximum(strata, 1)
    m_n, s_n, th = m[cell], strata[reader], theta[reader]
    dev = np.zeros(x.shape)
    many = m_n >= 2
    dev[many] = (share[cell[many]] - x[many]) / ((m_n[many] - 1) * s_n[many])
    single = (m_n == 1) & (s_n > 1)
    dev[single] = (th[single] - x[single]) / (s_n[single] - 1)
    count = np.bincount(reader, minlength=readers)
    return theta, dev, count >= 2


def _empirical_auc(
    reader: Array, positive: Array, rating: Array, readers: int
) -> tuple[Array, Array, Array]:
    """Empirical (trapezoidal) AUC per reader, each case's leave-one-out deviation, eligibility.

    With S the sum over (positive, negative) pairs of psi (1 when the positive is rated
    higher, 1/2 on a tie), p positives and q negatives, AUC = S / (p q). A case's own share
    w of S (for a positive: the negatives below it plus half those tied; for a negative: the
    positives above it plus half those tied) gives the AUC without it: (S - w) / ((p - 1) q)
    for a positive, (S - w) / (p (q - 1)) for a negative. Counted per rating level, so that
    every reader's cases are done at once.
    """
    # Ratings are whole numbers (`roc_rating`): their offsets from the lowest are the levels.
    low = int(rating.min()) if rating.size else 0
    code = np.rint(rating).astype(np.int64) - low
    v = int(code.max()) + 1 if code.size else 1
    slot = reader * v + code
    hist_pos = np.bincount(slot[positive], minlength=readers * v).reshape(readers, v)
    hist_neg = np.bincount(slot[~positive], minlength=readers * v).reshape(readers, v)
    p = hist_pos.sum(axis=1).astype(np.float64)
    q = hist_neg.sum(axis=1).astype(np.float64)
    neg_below = np.cumsum(hist_neg, axis=1) - hist_neg
    pos_above = p[:, None] - np.cumsum(hist_pos, axis=1)
    w = np.where(
        positive,
        neg_below[reader, code] + 0.5 * hist_neg[reader, code],
        pos_above[reader, code] + 0.5 * hist_pos[reader, code],
    )
    total = np.bincount(reader[positive], weights=w[positive], minlength=readers)
    eligible = (p >= 2) & (q >= 2)
    theta = total / np.maximum(p * q, 1)
    pn, qn = p[reader], q[reader]
    denominator = np.where(positive, (pn - 1) * qn, pn * (qn - 1))
    loo = (total[reader] - w) / np.maximum(denominator, 1)
    dev = np.where(eligible[reader], loo - theta[reader], 0.0)
    return theta, dev, eligible
