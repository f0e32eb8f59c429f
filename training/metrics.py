"""Retrieval and classification metrics: P@k per class, macro AP@k, rank-weighted majority vote.

`python -m training evaluate-retrieval` scores any neighbours file in the thesis study's
format, so our retrieval and the thesis's published one are measured by the same code.
No TensorFlow here: the command must start in a blink.
"""

import argparse
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from studybundle.vote import majority_vote
from training.data import CLASSES, load_metadata
from training.errors import PipelineError

# Suffixes the thesis study's files put after image ids (`ISIC_0026189.png`).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# How many neighbours the majority vote and the reader study look at.
VOTE_K = 6


def strip_suffix(image_id: str) -> str:
    """The image id without an image file extension (`ISIC_1.png` -> `ISIC_1`)."""
    lower = image_id.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return image_id[: -len(suffix)]
    return image_id


def load_neighbours_json(path: Path) -> dict[str, list[str]]:
    """Read `{query: [neighbour, ...]}` (most similar first); ids come back without extension."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"neighbours file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PipelineError(f"cannot read neighbours file {path}: {error}") from error
    if not isinstance(data, dict) or not all(
        isinstance(query, str)
        and isinstance(neighbours, list)
        and all(isinstance(n, str) for n in neighbours)
        for query, neighbours in data.items()
    ):
        raise PipelineError(
            f"neighbours file {path}: expected a JSON object mapping each query id to a list "
            'of neighbour ids, e.g. {"ISIC_0026189.png": ["ISIC_0028704.png", ...]}'
        )
    neighbours: dict[str, list[str]] = {}
    for query, ids in data.items():
        key = strip_suffix(query)
        if key in neighbours:
            raise PipelineError(f"neighbours file {path}: query {key} appears twice")
        neighbours[key] = [strip_suffix(n) for n in ids]
    return neighbours


def ordered_classes(labels: Sequence[str]) -> list[str]:
    """The distinct labels in display order: CLASSES first, anything else sorted after."""
    present = set(labels)
    return [c for c in CLASSES if c in present] + sorted(present - set(CLASSES))


def precision_at_k(
    query_truth: Sequence[str], neighbour_truth: Sequence[Sequence[str]], ks: Sequence[int]
) -> dict[str, Any]:
    """P@k per class (mean over its queries of hits/k) and their macro average over classes.

    A query with fewer than k neighbours counts its missing ones as misses (the denominator
    stays k), so a shortened list can never raise a score.
    """
    if len(query_truth) != len(neighbour_truth):
        raise ValueError(
            f"{len(query_truth)} query labels but {len(neighbour_truth)} neighbour lists"
        )
    if not query_truth:
        raise PipelineError("no queries to evaluate")
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise PipelineError(f"every k must be at least 1, got {ks}")
    classes = ordered_classes(query_truth)
    precision: dict[str, dict[str, float]] = {}
    for k in ks:
        per_class: dict[str, list[float]] = defaultdict(list)
        for truth, neighbours in zip(query_truth, neighbour_truth, strict=True):
            hits = sum(label == truth for label in neighbours[:k])
            per_class[truth].append(hits / k)
        row = {c: float(np.mean(per_class[c])) for c in classes}
        row["macro"] = float(np.mean([row[c] for c in classes]))
        precision[str(k)] = row
    return {"k": ks, "precision": precision, "queries": len(query_truth)}


def per_query_precision(
    query_truth: Sequence[str], neighbour_truth: Sequence[Sequence[str]], ks: Sequence[int]
) -> NDArray[np.float64]:
    """hits/k of every query at every k: float64 (Q, len(ks)); missing neighbours are misses."""
    result = np.zeros((len(query_truth), len(ks)))
    for row, (truth, neighbours) in enumerate(zip(query_truth, neighbour_truth, strict=True)):
        for column, k in enumerate(ks):
            result[row, column] = sum(label == truth for label in neighbours[:k]) / k
    return result


BOOTSTRAP_DRAWS = 2000


def _as_seeds(precision: ArrayLike, queries: int, ks: Sequence[int]) -> NDArray[np.float64]:
    """Per-query precision as (seeds, Q, len(ks)): a (Q, len(ks)) array is one seed."""
    array = np.asarray(precision, np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (queries, len(ks)) or not len(array):
        raise ValueError(f"expected precisions of shape {(queries, len(ks))} or (seeds, ...)")
    return array


def _resample_weights(rng: np.random.Generator, draws: int, items: int) -> NDArray[np.float64]:
    """How often each of `items` is drawn in each of `draws` resamples with replacement."""
    return rng.multinomial(items, np.full(items, 1.0 / items), size=draws).astype(np.float64)


def bootstrap_difference(
    query_truth: Sequence[str],
    precision_a: ArrayLike,
    precision_b: ArrayLike,
    ks: Sequence[int],
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
    clusters: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Macro AP@k of A minus B with a 95 % interval, per k: {k: {estimate, ci_low, ci_high}}.

    `precision_a`, `precision_b`: per-query hits/k, (Q, len(ks)) for one trained pair of
    models or (S, Q, len(ks)) for S paired training seeds (the same queries each time).
    `clusters`: the lesion of each query (None: every query its own lesion).

    A two-level paired bootstrap, so that the interval holds the variance between training
    runs as well as between queries: each draw resamples the S seeds with replacement, and,
    within every class, the class's lesions with replacement (all images of a drawn lesion
    together: images of one lesion are not independent queries); the same draw of lesions
    serves every seed, since every seed answers the same queries. A draw's value is the
    mean over its seeds of the macro average over classes of the per-class mean difference;
    the interval is the 2.5th and 97.5th percentile of the draws. The estimate is the
    mean over seeds of the difference on the queries as they are.

    A class whose queries all come from one lesion has nothing to resample, and would add
    no spread (with one seed, a zero-width interval where every class has one lesion).
    Such a class keeps its observed mean plus a deviation drawn from the pool of every other
    class's lesion deviations (a lesion's mean difference minus its class's mean): the
    spread a single lesion shows elsewhere (survey statistics' "lonely PSU" problem, here
    solved by borrowing the other strata's variance). When no class has two lesions, the
    pool is the classes' own mean differences about their average (conservative: it holds
    the true differences between classes too). So an interval has zero width only when
    every query's difference is the same.
    """
    truth = np.asarray(query_truth)
    ks = list(ks)
    a = _as_seeds(precision_a, len(truth), ks)
    b = _as_seeds(precision_b, len(truth), ks)
    if a.shape != b.shape:
        raise ValueError(f"A has {len(a)} seeds, B {len(b)}: the seeds must be paired")
    if clusters is not None and len(clusters) != len(truth):
        raise ValueError(f"{len(truth)} queries but {len(clusters)} cluster labels")
    groups = np.asarray(clusters if clusters is not None else np.arange(len(truth)), dtype=str)
    difference = a - b  # (S, Q, K)
    seeds = len(difference)
    classes = ordered_classes(list(query_truth))
    rng = np.random.default_rng(seed)
    seed_weights = _resample_weights(rng, draws, seeds) / seeds  # (D, S)

    # Per class: each lesion's summed difference per seed, and its number of queries.
    per_class = []
    deviations = []
    for name in classes:
        rows = np.flatnonzero(truth == name)
        lesions, which = np.unique(groups[rows], return_inverse=True)
        sums = np.zeros((seeds, len(lesions), len(ks)))
        # NumPy's stubs take ufunc.at's indices as one integer array; a tuple is valid too.
        np.add.at(sums, (slice(None), which), difference[:, rows])  # type: ignore[arg-type]
        sizes = np.bincount(which, minlength=len(lesions)).astype(np.float64)
        per_class.append((sums, sizes))
        if len(lesions) > 1:
            lesion_means = sums.mean(axis=0) / sizes[:, None]
            class_mean = sums.mean(axis=0).sum(axis=0) / sizes.sum()
            deviations.append(lesion_means - class_mean)
    if deviations:
        pool = np.concatenate(deviations)
    else:  # every class a single lesion: the classes' spread about their mean
        pool = np.array([sums.mean(axis=0).sum(axis=0) / sizes.sum() for sums, sizes in per_class])
    pool -= pool.mean(axis=0)  # borrowed spread, not a shift (lesions differ in size)

    observed = np.zeros(len(ks))
    sampled = np.zeros((draws, len(ks)))
    for sums, sizes in per_class:
        class_means = sums.sum(axis=1) / sizes.sum()  # (S, K)
        observed += class_means.mean(axis=0)
        if len(sizes) > 1:
            lesion_weights = _resample_weights(rng, draws, len(sizes))  # (D, C)
            totals = np.einsum("ds,sck,dc->dk", seed_weights, sums, lesion_weights, optimize=True)
            sampled += totals / (lesion_weights @ sizes)[:, None]
        else:
            borrowed = pool[rng.integers(0, len(pool), size=draws)]
            sampled += seed_weights @ class_means + borrowed
    observed /= len(classes)
    sampled /= len(classes)
    low, high = np.percentile(sampled, [2.5, 97.5], axis=0)
    return {
        str(k): {
            "estimate": float(observed[i]),
            "ci_low": float(low[i]),
            "ci_high": float(high[i]),
        }
        for i, k in enumerate(ks)
    }


def format_comparisons(
    comparisons: Mapping[str, Mapping[str, Mapping[str, float]]], primary_k: int | None = None
) -> str:
    """One line per comparison: macro AP@k difference and its 95 % interval at each k.

    `primary_k`, if given, is starred and named: the k a claim rests on, chosen in advance.
    """
    lines = []
    for name, by_k in comparisons.items():
        parts = [
            f"@{k}{'*' if str(k) == str(primary_k) else ''} {value['estimate']:+.3f} "
            f"[{value['ci_low']:+.3f}, {value['ci_high']:+.3f}]"
            for k, value in by_k.items()
        ]
        lines.append(f"  {name:<18} " + "  ".join(parts))
    primary = f" (* primary k = {primary_k})" if primary_k is not None else ""
    return (
        "macro AP@k differences, 95 % class-stratified bootstrap over seeds and lesions"
        f"{primary}:\n" + "\n".join(lines)
    )


def majority_vote_accuracy(
    query_truth: Sequence[str], neighbour_truth: Sequence[Sequence[str]], k: int = VOTE_K
) -> float:
    """Fraction of queries whose rank-weighted vote over their top-k neighbours is right."""
    if not query_truth:
        raise ValueError("no queries")
    right = sum(
        majority_vote(list(neighbours[:k])) == truth
        for truth, neighbours in zip(query_truth, neighbour_truth, strict=True)
    )
    return right / len(query_truth)


def classification_metrics(truth_idx: ArrayLike, pred_idx: ArrayLike) -> dict[str, float]:
    """Accuracy and macro sensitivity (mean recall over the classes present in the truth)."""
    truth = np.asarray(truth_idx).ravel()
    pred = np.asarray(pred_idx).ravel()
    if truth.shape != pred.shape:
        raise ValueError(f"{truth.size} true labels but {pred.size} predictions")
    if truth.size == 0:
        raise ValueError("no labels")
    recalls = [float(np.mean(pred[truth == c] == c)) for c in np.unique(truth)]
    return {
        "accuracy": float(np.mean(truth == pred)),
        "macro_sensitivity": float(np.mean(recalls)),
    }


def exclude_same_group(
    queries: Sequence[str], neighbours: Sequence[Sequence[str]], groups: Mapping[str, str]
) -> list[list[str]]:
    """Each neighbour list without the neighbours that share the query's group (lesion)."""
    return [
        [n for n in ids if groups[n] != groups[q]]
        for q, ids in zip(queries, neighbours, strict=True)
    ]


def format_table(result: Mapping[str, Any], fewer: Mapping[str, int] | None = None) -> str:
    """The P@k result as a plain-text table: one row per k, one column per class, then macro."""
    ks = [str(k) for k in result["k"]]
    columns = list(result["precision"][ks[0]])
    width = max(6, *(len(c) for c in columns))
    lines = ["k".rjust(3) + "".join(c.rjust(width + 1) for c in columns)]
    for k in ks:
        row = result["precision"][k]
        lines.append(k.rjust(3) + "".join(f"{row[c]:.2f}".rjust(width + 1) for c in columns))
    lines.append(f"P@k per class, AP@k = macro over classes; {result['queries']} queries")
    if fewer is not None:
        parts = ", ".join(f"k={k}: {n}" for k, n in fewer.items())
        lines.append(f"same-lesion neighbours excluded; queries with fewer than k left: {parts}")
    return "\n".join(lines)


def main_evaluate_retrieval(args: argparse.Namespace) -> int:
    """`evaluate-retrieval`: P@k per class and macro AP@k of a neighbours file, table or JSON."""
    rows = load_metadata(Path(args.metadata))
    truth = {row["image_id"]: row["dx"] for row in rows}
    lesion = {row["image_id"]: row["lesion_id"] for row in rows}
    neighbours = load_neighbours_json(Path(args.neighbours))
    if not neighbours:
        raise PipelineError(f"neighbours file {args.neighbours} has no queries")

    unknown = sorted(
        {q for q in neighbours if q not in truth}
        | {n for ids in neighbours.values() for n in ids if n not in truth}
    )
    if unknown:
        shown = ", ".join(unknown[:10]) + (
            f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        )
        raise PipelineError(
            f"{len(unknown)} image id(s) of {args.neighbours} are not in {args.metadata}: {shown}"
        )

    queries = list(neighbours)
    lists = [neighbours[q] for q in queries]
    fewer: dict[str, int] | None = None
    if args.exclude_same_lesion:
        lists = exclude_same_group(queries, lists, lesion)
        fewer = {str(k): sum(len(ids) < k for ids in lists) for k in args.k}
    result = precision_at_k(
        [truth[q] for q in queries], [[truth[n] for n in ids] for ids in lists], args.k
    )
    if args.json:
        if fewer is not None:
            result["fewer_than_k"] = fewer
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result, fewer))
    return 0
