"""The MRMC endpoints: which answers each figure of merit scores, and how, per reader.

Every endpoint here is a *stratified proportion*: each reader's figure of merit in a
condition is the mean over strata (groups of that reader's cases) of the share of the
stratum's cases scored 1. One stratum gives a plain proportion (proportion correct, the
sensitivity or specificity of one class); the truth classes as strata give balanced
accuracy (the mean of the per-class sensitivities over the classes the reader saw).

The analysis uses *complete blocks*: for each reader the cases that reader answered in every
condition compared (in the thesis design, the cases read in both tasks). A reader's figure
in each condition is computed on the same cases, which is what makes the comparison paired.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from app.analysis.responses import Array, Responses
from app.analysis.taxonomy import HAM10000_TAXONOMY, Taxonomy

__all__ = ["Blocks", "Endpoint", "Figures", "Taxonomy", "complete_blocks", "endpoints", "figures"]


@dataclass(frozen=True, eq=False)
class Blocks:
    """Each reader's cases answered in every compared condition, one element per case.

    `diagnosis` and `confidence` are (conditions, cases): row i is condition `conditions[i]`.
    `reader` indexes `readers`, `case` the responses' image ids.
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

    def __len__(self) -> int:
        """Number of reader-case blocks."""
        return int(self.reader.shape[0])


def complete_blocks(responses: Responses, conditions: Sequence[int] | None = None) -> Blocks:
    """Join each reader's answers across `conditions` (indexes; default: all) on the case."""
    chosen = list(range(len(responses.conditions))) if conditions is None else list(conditions)
    key = responses.reader * max(len(responses.image_ids), 1) + responses.image
    rows: list[Array] = []
    for c in chosen:
        selected = np.flatnonzero(responses.condition_index == c)
        rows.append(selected[np.argsort(key[selected], kind="stable")])
    shared = _common_keys([key[r] for r in rows])
    picked = [r[np.searchsorted(key[r], shared)] for r in rows]
    first = picked[0] if picked else np.zeros(0, dtype=np.int64)
    return Blocks(
        conditions=tuple(responses.conditions[c] for c in chosen),
        readers=responses.readers,
        reader=responses.reader[first],
        case=responses.image[first],
        truth=responses.truth[first].astype(np.int64),
        majority_vote=responses.majority_vote[first].astype(np.int64),
        diagnosis=np.stack([responses.diagnosis[p].astype(np.int64) for p in picked])
        if picked
        else np.zeros((0, 0), dtype=np.int64),
        confidence=np.stack([responses.confidence[p].astype(np.float64) for p in picked])
        if picked
        else np.zeros((0, 0)),
        seconds=np.stack([responses.answer_seconds[p] for p in picked])
        if picked
        else np.zeros((0, 0)),
        taxonomy=responses.taxonomy,
    )


def _common_keys(keys: Iterable[Array]) -> Array:
    """Sorted keys present in every array (each array's keys are unique)."""
    shared: Array | None = None
    for k in keys:
        shared = np.unique(k) if shared is None else np.intersect1d(shared, k, assume_unique=True)
    return np.zeros(0, dtype=np.int64) if shared is None else shared


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One figure of merit: `stratum` per case (-1: not scored), `score` per condition and case."""

    name: str
    label: str
    description: str
    stratum: Array
    score: Array


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
    mel = taxonomy.melanoma
    if mel is not None:
        out += _binary(
            "melanoma",
            "melanoma",
            truth == mel,
            diagnosis == mel,
        )
    if taxonomy.splits_malignancy:
        out += _binary(
            "malignant",
            "malignant vs benign",
            np.isin(truth, taxonomy.malignant_indexes),
            np.isin(diagnosis, taxonomy.malignant_indexes),
        )
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
    return [
        Endpoint(
            f"{prefix}_sensitivity",
            f"{words} sensitivity",
            f"the share of {words.split(' vs ')[0]} lesions called {words.split(' vs ')[0]}",
            np.where(positive, 0, -1),
            called.astype(np.float64),
        ),
        Endpoint(
            f"{prefix}_specificity",
            f"{words} specificity",
            f"the share of other lesions not called {words.split(' vs ')[0]}",
            np.where(positive, -1, 0),
            (~called).astype(np.float64),
        ),
    ]


@dataclass(frozen=True, eq=False)
class Figures:
    """Figures of merit per (condition, reader) and scaled jackknife deviations per case.

    `theta` is (conditions, readers); `u` is (conditions, cases): each case's leave-one-out
    deviation times sqrt((c_j - 1) / c_j), c_j = the reader's number of cases, so that
    jackknife covariances are sums of products of `u` over shared cases. `eligible` marks
    readers whose figure and its jackknife exist (e.g. at least 2 melanomas for the
    melanoma sensitivity).
    """

    theta: Array
    u: Array
    eligible: Array
    cases: Array
    scored: Array


def figures(reader: Array, stratum: Array, score: Array, readers: int) -> Figures:
    """Each reader's stratified proportion per condition, with its jackknife deviations.

    Deleting case n (stratum g of a reader with m_g cases in g and S strata) changes the
    figure to theta + (p_g - x_n) / ((m_g - 1) S) when m_g >= 2, to (S theta - x_n) / (S - 1)
    when the case was its stratum's only one (the stratum drops out), and leaves it as it is
    for a case outside every stratum.
    """
    t = score.shape[0]
    n_strata = int(stratum.max()) + 1 if stratum.size and stratum.max() >= 0 else 0
    scored = stratum >= 0
    cases = np.bincount(reader, minlength=readers).astype(np.float64)
    if n_strata == 0:
        empty = np.zeros((t, readers))
        return Figures(empty, np.zeros_like(score), np.zeros(readers, bool), cases, cases * 0)
    cell = np.where(scored, reader * n_strata + stratum, 0)
    m = np.bincount(cell[scored], minlength=readers * n_strata).astype(np.float64)
    strata = (m.reshape(readers, n_strata) > 0).sum(axis=1).astype(np.float64)
    theta = np.zeros((t, readers))
    u = np.zeros_like(score, dtype=np.float64)
    safe_m = np.maximum(m, 1)
    safe_s = np.maximum(strata, 1)
    m_n = m[cell]
    s_n = strata[reader]
    singleton_alone = scored & (m_n == 1) & (s_n == 1)
    bad_reader = np.bincount(reader[singleton_alone], minlength=readers) > 0
    eligible = (strata >= 1) & (cases >= 2) & ~bad_reader
    for i in range(t):
        sums = np.bincount(cell[scored], weights=score[i][scored], minlength=readers * n_strata)
        share = sums / safe_m
        theta[i] = share.reshape(readers, n_strata).sum(axis=1) / safe_s
        th = theta[i][reader]
        x = score[i]
        loo = th.copy()
        many = scored & (m_n >= 2)
        loo[many] = th[many] + (share[cell[many]] - x[many]) / ((m_n[many] - 1) * s_n[many])
        single = scored & (m_n == 1) & (s_n > 1)
        loo[single] = (s_n[single] * th[single] - x[single]) / (s_n[single] - 1)
        mean = np.bincount(reader, weights=loo, minlength=readers) / np.maximum(cases, 1)
        scale = np.sqrt(np.maximum(cases - 1, 0) / np.maximum(cases, 1))
        u[i] = (loo - mean[reader]) * scale[reader]
    scored_cases = np.bincount(reader[scored], minlength=readers)
    return Figures(theta, u, eligible, cases, scored_cases.astype(np.float64))
