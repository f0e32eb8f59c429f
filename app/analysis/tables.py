"""Descriptive tables: per-reader accuracy and confidence, confusion matrices, answer changes.

These reproduce the thesis's Table 4.II and Figure 4.1, which compare two conditions, Task 1
and Task 2. In a study of more conditions they compare one pair (`Compared`: the first two
conditions unless another pair is chosen), the pair's first condition in the thesis's Task 1
place. Every table is keyed by condition: a side's figures are under its condition's key
(`pooled["se_cbir"]`), so that a table says which condition it holds whatever the pair; the
summary JSON and `--json` still write them under the thesis's `task1`/`task2` (`thesis_keyed`).
Each side is scored on the answers given under its condition (readers still in progress
count with what they answered); figures that compare the two use the paired cases, those a
reader answered under both conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.analysis.responses import Array, Responses
from app.analysis.results import (
    AccuracyByConfidence,
    AnalysisResult,
    ComparedPair,
    ConfidenceLevel,
)
from app.analysis.scale import Scale, scale_of

# What the descriptions call the pair when no readable names are given (the thesis's words).
TASK_NAMES = ("Task 1", "Task 2")
# The key of a side of the pair that the responses have no condition for (fewer than two
# conditions): no condition's key is empty, and that side's tables are all empty (with no
# condition at all, both sides' empty tables are this one).
NO_CONDITION = ""
# The thesis's names for the pair's two sides, which the summary JSON and `--json` keep
# (`thesis_keyed`), and for the answer changes counted against the first side's answer.
THESIS_KEYS = ("task1", "task2")
THESIS_CHANGES = {
    "correct_to_wrong_majority_agreed_with_first": "correct_to_wrong_majority_agreed_with_task1",
    "second_follows_majority": "task2_follows_majority",
}


@dataclass(frozen=True)
class Compared:
    """The two conditions the tables compare, first then second: their positions in
    `Responses.conditions` (-1 stands for a condition without answers: it matches no answer)
    and the keys their tables are under (`sides`)."""

    first: int
    second: int
    keys: tuple[str, str]


def compared(conditions: tuple[str, ...], pair: tuple[str, str] | None) -> Compared:
    """The positions and keys of `pair` (two condition keys) in `conditions`, or of the first two.

    A key the responses do not hold counts as a condition nobody has read under yet (-1,
    empty tables) rather than an error: the dashboard asks for a pair of the study's design
    before every condition has answers. Callers that take keys from a person (the CLI)
    check them against `conditions` first.
    """
    if pair is None:
        first = 0 if conditions else -1
        second = 1 if len(conditions) > 1 else -1
        keys = tuple(conditions[i] if i >= 0 else NO_CONDITION for i in (first, second))
        return Compared(first, second, (keys[0], keys[1]))
    if pair[0] == pair[1]:
        raise ValueError(f"a pair of two different conditions, not {pair[0]!r} twice")

    def position(key: str) -> int:
        return conditions.index(key) if key in conditions else -1

    return Compared(position(pair[0]), position(pair[1]), pair)


def sides(pair: ComparedPair) -> tuple[str, str]:
    """The keys a result's pair has its tables under: its first and its second condition's,
    `NO_CONDITION` for a side the responses do not have (as `compared` keys them)."""
    return pair["first"] or NO_CONDITION, pair["second"] or NO_CONDITION


def pair_names(
    conditions: tuple[str, ...], pair: tuple[str, str] | None, names: Mapping[str, str]
) -> ComparedPair:
    """The result's `pair`: the keys `compared` chose and their readable `names` (the key
    where none is given); None for a condition the responses do not have (fewer than two)."""
    chosen = compared(conditions, pair)
    keys = pair or tuple(conditions[i] if i >= 0 else None for i in (chosen.first, chosen.second))
    return {
        "first": keys[0],
        "second": keys[1],
        "names": [None if key is None else names.get(key, key) for key in keys],
    }


def pair_key(pair: ComparedPair) -> str:
    """The name of a pair among the result's `pairs`: "first~second" (the dashboard's `pair`
    argument); an empty side where the responses have fewer than two conditions."""
    return f"{pair['first'] or ''}~{pair['second'] or ''}"


def with_pair(result: AnalysisResult, key: str | None = None) -> AnalysisResult:
    """The result as if analysed for the pair `key` ("first~second", one of its `pairs`; None:
    the first two conditions): its top-level thesis-layout tables and pooled and secondary
    statistics that pair's, every other figure as it is, and `pairs` left out (what a page or
    a download of one pair holds)."""
    tables = result.get("pairs", {})[key or pair_key(result["pair"])]
    view: AnalysisResult = {
        **result,
        "pair": tables["pair"],
        "readers": tables["readers"],
        "pooled": tables["pooled"],
        "confusion": tables["confusion"],
        "changes": tables["changes"],
        "statistics": {
            **result["statistics"],
            "mcnemar": tables["mcnemar"],
            "wilcoxon_confidence": tables["wilcoxon_confidence"],
            "bootstrap": tables["bootstrap"],
            "accuracy_by_confidence": tables["accuracy_by_confidence"],
        },
    }
    del view["pairs"]
    return view


def thesis_keyed(result: AnalysisResult) -> dict[str, Any]:
    """The result as the summary JSON and `python -m app.analysis --json` write it: the pair's
    tables with its first and second condition under the thesis's `task1` and `task2`, and
    the answer changes named after them (`THESIS_CHANGES`), as those files have always had
    them (the pair's `pair` says which conditions they are); every other figure as it is."""
    keys = sides(result["pair"])
    out: dict[str, Any] = {**result, **_thesis_tables(result, keys)}
    out["statistics"] = {**result["statistics"], **_thesis_tables(result["statistics"], keys)}
    if "pairs" in result:
        out["pairs"] = {
            name: {**tables, **_thesis_tables(tables, sides(tables["pair"]))}
            for name, tables in result["pairs"].items()
        }
    return out


def _thesis_tables(tables: Mapping[str, Any], keys: tuple[str, str]) -> dict[str, Any]:
    """Those of the pair's tables that `tables` holds (a result, its statistics or one of its
    `pairs`), thesis-keyed (`thesis_keyed`)."""
    out: dict[str, Any] = {}
    if "readers" in tables and "pooled" in tables:
        out["readers"] = [_as_tasks(row, keys) for row in tables["readers"]]
        pooled = tables["pooled"]
        out["pooled"] = {
            **_as_tasks(pooled, keys),
            "mean": _as_tasks(pooled["mean"], keys),
            "sd": _as_tasks(pooled["sd"], keys),
        }
    if "confusion" in tables:
        confusion = tables["confusion"]
        out["confusion"] = {
            **_as_tasks(confusion, keys),
            "row_share": _as_tasks(confusion["row_share"], keys),
            "classes": _as_tasks(confusion["classes"], keys),
            "readers": [_as_tasks(row, keys) for row in confusion["readers"]],
        }
    if "changes" in tables:
        changes = tables["changes"]
        out["changes"] = {
            **_as_tasks(changes, keys),
            "readers": [_as_tasks(row, keys) for row in changes["readers"]],
        }
    if "bootstrap" in tables:
        out["bootstrap"] = _as_tasks(tables["bootstrap"], keys)
    if "accuracy_by_confidence" in tables:
        by_confidence = tables["accuracy_by_confidence"]
        out["accuracy_by_confidence"] = {
            "description": by_confidence["description"],
            **_as_tasks(by_confidence["levels"], keys),
        }
    return out


def _as_tasks(block: Mapping[str, Any], keys: tuple[str, str]) -> dict[str, Any]:
    """`block` with the figures under the pair's two keys under `task1` and `task2` instead,
    where the first of them stood, and the answer changes under their thesis names."""
    out: dict[str, Any] = {}
    for name, value in block.items():
        if name not in keys:
            out[THESIS_CHANGES.get(name, name)] = value
        elif THESIS_KEYS[0] not in out:
            out.update(zip(THESIS_KEYS, (block[keys[0]], block[keys[1]]), strict=True))
    return out


def pair_words(pair: ComparedPair) -> tuple[str, str]:
    """Task 1 and Task 2 in words: the pair's readable names, the thesis's words for a
    condition the responses do not have."""
    first, second = pair["names"]
    return first or TASK_NAMES[0], second or TASK_NAMES[1]


def side_masks(responses: Responses, pair: Compared) -> tuple[Array, Array]:
    """The two sides of the tables, first then second: which answers were given under the
    pair's first and under its second condition (the one place that decides what a side
    holds; the thesis's Task 1 and Task 2)."""
    condition = responses.condition
    return condition == pair.first, condition == pair.second


def by_side(responses: Responses, pair: Compared) -> dict[str, Array]:
    """`side_masks` under the sides' keys (two sides without a condition, both matching no
    answer, share `NO_CONDITION`)."""
    return dict(zip(pair.keys, side_masks(responses, pair), strict=True))


@dataclass(frozen=True, eq=False)
class Paired:
    """The cases a reader answered under both conditions of the pair, as parallel arrays (one
    element per case), and the keys of those conditions (`Compared.keys`), first then second."""

    keys: tuple[str, str]
    reader: Array
    image: Array
    truth: Array
    majority_vote: Array
    diagnosis1: Array
    diagnosis2: Array
    confidence1: Array
    confidence2: Array

    def __len__(self) -> int:
        """Number of paired cases."""
        return int(self.reader.shape[0])

    @property
    def correct1(self) -> Array:
        """Whether the Task 1 answer was right."""
        right: Array = self.diagnosis1 == self.truth
        return right

    @property
    def correct2(self) -> Array:
        """Whether the Task 2 answer was right."""
        right: Array = self.diagnosis2 == self.truth
        return right


def paired_cases(responses: Responses, pair: Compared | None = None) -> Paired:
    """Join each reader's answers under the pair's first and second condition (None: the
    first two conditions) on the image."""
    pair = pair or compared(responses.conditions, None)
    key = responses.reader * max(len(responses.image_ids), 1) + responses.image
    first_mask, second_mask = side_masks(responses, pair)
    first = np.flatnonzero(first_mask)
    second = np.flatnonzero(second_mask)
    # Keys are unique within a task (duplicates are rejected on reading).
    _, i1, i2 = np.intersect1d(key[first], key[second], assume_unique=True, return_indices=True)
    a, b = first[i1], second[i2]
    return Paired(
        keys=pair.keys,
        reader=responses.reader[a],
        image=responses.image[a],
        truth=responses.truth[a],
        # The vote shown beside the Task 2 answer: the aid whose influence the changes count
        # (Task 1's row holds its own condition's vote, e.g. SE-CBIR's beside an unaided one).
        majority_vote=responses.majority_vote[b],
        diagnosis1=responses.diagnosis[a],
        diagnosis2=responses.diagnosis[b],
        confidence1=responses.confidence[a].astype(np.int64),
        confidence2=responses.confidence[b].astype(np.int64),
    )


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator as a float, or None when there is nothing to divide."""
    return float(numerator) / float(denominator) if denominator else None


def _task_block(
    correct: Array, confidence: Array, group: Array, groups: int
) -> list[dict[str, Any]]:
    """Per-group answers, accuracy and mean confidence (all, correct, wrong) for one task."""
    n = np.bincount(group, minlength=groups)
    n_right = np.bincount(group, weights=correct, minlength=groups)
    conf = confidence.astype(np.float64)
    conf_all = np.bincount(group, weights=conf, minlength=groups)
    conf_right = np.bincount(group, weights=conf * correct, minlength=groups)
    blocks = []
    for j in range(groups):
        wrong = n[j] - n_right[j]
        blocks.append(
            {
                "answers": int(n[j]),
                "correct": int(n_right[j]),
                "accuracy": ratio(n_right[j], n[j]),
                "confidence": ratio(conf_all[j], n[j]),
                "confidence_correct": ratio(conf_right[j], n_right[j]),
                "confidence_wrong": ratio(conf_all[j] - conf_right[j], wrong),
            }
        )
    return blocks


def _mean_sd(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the values that exist."""
    present = np.asarray([v for v in values if v is not None], dtype=np.float64)
    mean = float(present.mean()) if present.size else None
    sd = float(present.std(ddof=1)) if present.size > 1 else None
    return mean, sd


def reader_table(
    responses: Responses, paired: Paired, pair: Compared | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Thesis Table 4.II for the pair (None: the first two conditions): per-reader rows and
    the pooled row (with the readers' mean and SD), beside each reader's and the pooled
    figures under every condition.

    The pair's two conditions are under their keys, and `cases` and the majority vote's accuracy
    count the cases a reader read under either of them: the row is the pair's, as the page
    and the summary CSV show it. `conditions` (condition key -> the same six figures) holds
    every condition whatever the pair, so that one file answers "how did this reader do under
    CBIR" without another download.
    """
    pair = pair or compared(responses.conditions, None)
    r = len(responses.readers)
    n_img = max(len(responses.image_ids), 1)
    first_mask, second_mask = side_masks(responses, pair)
    # A reader's cases are the distinct images answered under either condition of the pair.
    # A case's majority vote is the one shown with its second answer (the aid read with), that
    # of its first answer where it has none: the second's rows first, np.unique keeps the first.
    in_pair = np.concatenate([np.flatnonzero(second_mask), np.flatnonzero(first_mask)])
    case_keys, first_row = np.unique(
        responses.reader[in_pair] * n_img + responses.image[in_pair], return_index=True
    )
    case_reader = case_keys // n_img
    mv_right = (responses.majority_vote == responses.truth)[in_pair[first_row]]
    cases = np.bincount(case_reader, minlength=r)
    mv_cases = np.bincount(case_reader, weights=mv_right, minlength=r)
    paired_n = np.bincount(paired.reader, minlength=r)

    correct = responses.diagnosis == responses.truth

    def blocks(sel: Array) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Per-reader and pooled figures of the answers `sel` picks."""
        per_reader = _task_block(correct[sel], responses.confidence[sel], responses.reader[sel], r)
        pooled = _task_block(
            correct[sel], responses.confidence[sel], np.zeros(int(sel.sum()), dtype=np.int64), 1
        )[0]
        return per_reader, pooled

    per_side = {key: blocks(sel) for key, sel in by_side(responses, pair).items()}
    per_condition = {
        key: blocks(responses.condition == index) for index, key in enumerate(responses.conditions)
    }
    readers: list[dict[str, Any]] = [
        {
            "reader": name,
            "cases": int(cases[j]),
            "paired_cases": int(paired_n[j]),
            "majority_vote_accuracy": ratio(mv_cases[j], cases[j]),
            **{key: figures[0][j] for key, figures in per_side.items()},
            "conditions": {key: figures[0][j] for key, figures in per_condition.items()},
        }
        for j, name in enumerate(responses.readers)
    ]
    mean: dict[str, float | None] = {}
    sd: dict[str, float | None] = {}
    mean["majority_vote_accuracy"], sd["majority_vote_accuracy"] = _mean_sd(
        [row["majority_vote_accuracy"] for row in readers]
    )
    for key in per_side:
        mean[key], sd[key] = _mean_sd([row[key]["accuracy"] for row in readers])
    pooled = {
        "description": (
            "All answers taken together. 'mean' and 'sd' are the average and the sample "
            "standard deviation of the readers' own accuracies (each reader counts once). "
            "The two conditions compared are the ones 'pair' names; 'conditions' has every "
            "condition."
        ),
        "readers": r,
        "images": len(responses.image_ids),
        "cases": int(cases.sum()),
        "paired_cases": len(paired),
        "majority_vote_accuracy": ratio(mv_cases.sum(), cases.sum()),
        **{key: figures[1] for key, figures in per_side.items()},
        "mean": mean,
        "sd": sd,
        "conditions": {key: figures[1] for key, figures in per_condition.items()},
    }
    return readers, pooled


def confusion_counts(
    truth: Array,
    diagnosis: Array,
    classes: int,
    group: Array | None = None,
    groups: int = 1,
) -> Array:
    """Count matrices (groups, classes, classes), rows = truth, columns = diagnosis."""
    k = classes
    g = np.zeros(truth.shape[0], dtype=np.int64) if group is None else group.astype(np.int64)
    flat = (g * k + truth.astype(np.int64)) * k + diagnosis.astype(np.int64)
    return np.bincount(flat, minlength=groups * k * k).reshape(groups, k, k)


def row_shares(matrix: Array) -> Array:
    """Each row divided by its total (rows without lesions stay 0)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=-1, keepdims=True)
    shares: Array = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    return shares


def class_metrics(matrix: Array, classes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per class: lesions, diagnoses, true and false positives, sensitivity and PPV."""
    matrix = np.asarray(matrix)
    rows = []
    for k, code in enumerate(classes):
        lesions = int(matrix[k].sum())
        diagnosed = int(matrix[:, k].sum())
        hits = int(matrix[k, k])
        rows.append(
            {
                "label": code,
                "lesions": lesions,
                "diagnosed": diagnosed,
                "true_positives": hits,
                "false_positives": diagnosed - hits,
                "false_negatives": lesions - hits,
                "sensitivity": ratio(hits, lesions),
                "ppv": ratio(hits, diagnosed),
            }
        )
    return rows


def confusion_tables(responses: Responses, pair: Compared | None = None) -> dict[str, Any]:
    """Figure 4.1: confusion matrices of the pair's two conditions (None: the first two; under
    their keys), pooled and per reader, with per-class metrics."""
    r = len(responses.readers)
    out: dict[str, Any] = {
        "description": (
            "Rows are the true class, columns the diagnosis given. 'row_share' divides each "
            "row by the number of lesions of that class. A class's false positives are the "
            "lesions of other classes diagnosed as it; sensitivity is the share of its lesions "
            "diagnosed correctly; PPV (positive predictive value) is the share of its diagnoses "
            "that were right."
        ),
        "labels": list(responses.classes),
    }
    k = len(responses.classes)
    pooled: dict[str, Array] = {}
    per_reader: dict[str, Array] = {}
    for key, sel in by_side(responses, pair or compared(responses.conditions, None)).items():
        pooled[key] = confusion_counts(responses.truth[sel], responses.diagnosis[sel], k)[0]
        per_reader[key] = confusion_counts(
            responses.truth[sel], responses.diagnosis[sel], k, responses.reader[sel], r
        )
    out.update({key: matrix.tolist() for key, matrix in pooled.items()})
    out["row_share"] = {key: row_shares(matrix).tolist() for key, matrix in pooled.items()}
    out["classes"] = {
        key: class_metrics(matrix, responses.classes) for key, matrix in pooled.items()
    }
    out["readers"] = [
        {"reader": name, **{key: counts[j].tolist() for key, counts in per_reader.items()}}
        for j, name in enumerate(responses.readers)
    ]
    return out


def _change_counts(p: Paired, readers: int) -> dict[str, Array]:
    """Per reader, counts of each kind of change from the pair's first condition to its
    second (arrays of length readers)."""
    c1, c2 = p.correct1, p.correct2
    d1, d2, mv = p.diagnosis1, p.diagnosis2, p.majority_vote
    w2c = ~c1 & c2
    c2w = c1 & ~c2
    kinds = {
        "paired_cases": np.ones(len(p), dtype=bool),
        "wrong_to_correct": w2c,
        "wrong_to_correct_majority_agrees": w2c & (mv == d2),
        "correct_to_wrong": c2w,
        "correct_to_wrong_majority_agreed_with_first": c2w & (mv == d1),
        "correct_to_wrong_majority_agrees": c2w & (mv == d2),
        "wrong_to_other_wrong": ~c1 & ~c2 & (d1 != d2),
        "unchanged_correct": c1 & c2,
        "unchanged_wrong": ~c1 & ~c2 & (d1 == d2),
        "changed": d1 != d2,
        "second_follows_majority": d2 == mv,
    }
    return {
        name: np.bincount(p.reader, weights=flags, minlength=readers).astype(np.int64)
        for name, flags in kinds.items()
    }


def answer_changes(
    paired: Paired, readers: tuple[str, ...], names: tuple[str, str] = TASK_NAMES
) -> dict[str, Any]:
    """How answers moved from the pair's first condition to its second, pooled and per reader,
    against the majority vote; `names` are the two conditions as the description should say
    them."""
    counts = _change_counts(paired, len(readers))
    first, second = names
    out: dict[str, Any] = {
        "description": (
            f"Cases answered under both {first} and {second}. 'wrong_to_correct' were wrong "
            f"under {first} and right under {second}; '_majority_agrees' counts those where "
            "the aid's majority vote was the new answer. 'correct_to_wrong' went the other "
            "way; '_majority_agreed' counts those where the majority vote agreed with the "
            f"{first} answer; '_follows_majority' counts the {second} answers that were the "
            "majority vote."
        ),
        **{name: int(values.sum()) for name, values in counts.items()},
    }
    out["readers"] = [
        {"reader": name, **{kind: int(values[j]) for kind, values in counts.items()}}
        for j, name in enumerate(readers)
    ]
    return out


def accuracy_by_confidence(
    responses: Responses, scale: Scale | None = None, pair: Compared | None = None
) -> AccuracyByConfidence:
    """Per condition of the pair (None: the first two), under its key, and level of the
    confidence scale (every level, 1 to N): answers, correct answers and accuracy. The scale
    is `scale_of(responses, scale)`."""
    scale = scale_of(responses, scale)
    correct = responses.diagnosis == responses.truth

    def task_rows(sel: Array) -> list[ConfidenceLevel]:
        conf = responses.confidence[sel].astype(np.int64)
        n = np.bincount(conf, minlength=scale.levels + 1)
        hits = np.bincount(conf, weights=correct[sel], minlength=scale.levels + 1)
        return [
            {
                "confidence": level,
                "answers": int(n[level]),
                "correct": int(hits[level]),
                "accuracy": ratio(hits[level], n[level]),
            }
            for level in range(1, scale.levels + 1)
        ]

    masks = by_side(responses, pair or compared(responses.conditions, None))
    return {
        "description": (
            "How often readers were right at each level of the confidence scale (1 = the "
            f"least confident to {scale.levels} = the most; the labels are the scale's). "
            "Well-calibrated readers are right more often when they are more confident."
        ),
        "levels": {key: task_rows(sel) for key, sel in masks.items()},
    }
