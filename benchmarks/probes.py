"""Benchmark: can a reader tell a faulty-aid probe from a genuine aid by what the aid looks like?

Simulates many readers of an SE-CBIR study (k = 6 labelled neighbours, 30 cases, a fifth of
them probes) with three kinds of probe:

- before: what the survey made before issue 22, k images of one wrong class;
- borrowed: another case's genuine list whose vote is the drawn wrong class (or the case's own
  list with its majority moved), what the survey shows on a bundle without class_neighbours;
- own: that list's class-by-rank pattern filled with the case's own nearest images of each
  class (app.survey.probes.own_in_pattern), what it shows on a bundle with them.

A logistic regression is trained on what a reader sees of each reading, in nested sets of
features (each adds to the last):

- list: the share of the list's top class, how many classes it holds, the ranks its top class
  takes (the share of ranks 1-3 it holds, whether rank 1 is of it);
- + class: which class the list votes for (one-hot);
- + images: the mean and spread of each colour channel of the neighbours' images, and of the
  query's (what a glance at the tiles shows);
- + likeness: how like the query the neighbours are (the cosine of their pixel features with
  the query's): a reader comparing the tiles with the case;
- + similarity: all of these and the mean and spread of the neighbours' stored similarity to
  the query (never shown to readers: an upper bound).

The classifier's out-of-fold scores (5 folds, grouped by reader) give the AUC of telling
probes from genuine readings, with a 95 % interval from 1,000 bootstrap resamples of readers.
0.5 is chance; the issue asks for at most 0.6. A second table sets the last design's probes
against the genuine aids that vote a wrong class, and gives how well the same classifier
tells those from the genuine aids that are right; "floor" is what probes exactly like genuine
wrong aids would score against all genuine readings ((1 - w) x that AUC + w x 0.5, w the
share of wrong genuine aids).

Pools: `--thesis DIR` (the thesis study's reference lists: SE-CBIR top 6 of 1,002 queries and
HAM10000's labels; list and class features only, no images, no per-class lists),
`--synthetic DIR` (a `training synth` folder: queries are a fifth of its lesions, retrieved
from the rest by cosine on 16 x 16 grey pixel features, other lesions only; each class's
nearest images by the same cosine) and `--bundle DIR` (a pipeline-made study bundle: its
SE-CBIR lists and class_neighbours, image features from its own images).

Run: .venv/bin/python benchmarks/probes.py --thesis ../shared/reference/thesis-study \
    --synthetic data/synthetic [--bundle models/tiny/study] [--readers 300]
(the bundle: `.venv/bin/python -m training run --preset tiny --data data/synthetic
--out models/tiny`; about 35 minutes on two busy cores)

Measured (2026-12-08, 100 readers each, AUC [95 % interval]; synthetic: `training synth
--images 1500 --size 128 --seed 0`, 223 queries):

| pool, features | before | borrowed | own |
| --- | --- | --- | --- |
| thesis, list | 0.581 [0.573, 0.588] | 0.492 [0.472, 0.511] | - |
| thesis, + class | 0.937 [0.925, 0.948] | 0.528 [0.507, 0.548] | - |
| synthetic, list | 0.727 [0.718, 0.737] | 0.533 [0.509, 0.555] | 0.533 [0.509, 0.555] |
| synthetic, + class | 0.907 [0.895, 0.918] | 0.518 [0.495, 0.541] | 0.518 [0.495, 0.541] |
| synthetic, + images | 0.963 [0.954, 0.971] | 0.638 [0.613, 0.667] | 0.689 [0.667, 0.712] |
| synthetic, + likeness | 0.970 [0.963, 0.975] | 0.977 [0.970, 0.984] | 0.764 [0.744, 0.785] |
| synthetic, + similarity | 0.968 [0.962, 0.974] | 0.987 [0.979, 0.994] | 0.861 [0.845, 0.877] |

Synthetic, own probes against genuine aids that are wrong (27 % of genuine readings):

| features | probes vs wrong | wrong vs right | floor |
| --- | --- | --- | --- |
| list | 0.608 [0.577, 0.640] | 0.699 [0.676, 0.724] | 0.645 |
| + class | 0.631 [0.603, 0.662] | 0.727 [0.705, 0.748] | 0.665 |
| + images | 0.678 [0.647, 0.712] | 0.914 [0.900, 0.928] | 0.802 |
| + likeness | 0.689 [0.657, 0.723] | 0.935 [0.926, 0.945] | 0.817 |

Bundle: a `training run --preset tiny` on that synthetic set (EfficientNetB0 at 32 px, one
epoch; 112 queries, its web-sized images), 100 readers:

| features | before | borrowed | own |
| --- | --- | --- | --- |
| list | 0.899 [0.892, 0.907] | 0.478 [0.453, 0.504] | 0.478 [0.453, 0.504] |
| + class | 0.969 [0.965, 0.973] | 0.491 [0.466, 0.515] | 0.491 [0.466, 0.515] |
| + images | 0.995 [0.994, 0.997] | 0.580 [0.555, 0.603] | 0.669 [0.646, 0.693] |
| + likeness | 0.998 [0.997, 0.999] | 0.740 [0.715, 0.764] | 0.743 [0.720, 0.766] |
| + similarity | 0.998 [0.997, 0.999] | 0.740 [0.716, 0.765] | 0.886 [0.867, 0.903] |

Bundle, own probes against genuine aids that are wrong (33 % of genuine readings):

| features | probes vs wrong | wrong vs right | floor |
| --- | --- | --- | --- |
| list | 0.584 [0.555, 0.612] | 0.636 [0.615, 0.657] | 0.591 |
| + class | 0.587 [0.557, 0.617] | 0.684 [0.663, 0.705] | 0.623 |
| + images | 0.684 [0.658, 0.709] | 0.836 [0.820, 0.851] | 0.725 |
| + likeness | 0.682 [0.656, 0.709] | 0.935 [0.928, 0.943] | 0.791 |

(833 of the thesis's 1,002 genuine top-6 lists are of one class, 117 of the 223 synthetic
ones, 21 of the bundle's 112.) What a probe's list looks like on its own does not give it
away (list, + class: about 0.5). A borrowed list was retrieved for another picture, and how
unlike the case its tiles are gave it away on the synthetic pool (+ likeness 0.977); filled
with the case's own images of the same classes, 0.764.

The target of 0.6 is not reached on images and likeness, and on these pools no probe can
reach it: the same classifier tells genuine aids that are wrong from those that are right at
0.84-0.91 (images) and 0.94 (likeness), since the tiles of a wrong class look unlike the case
(here its class sets its colours). A probe exactly like a genuine mistake would score the
floor (synthetic 0.80 and 0.82, bundle 0.73 and 0.79); own probes score below it, and
against genuine mistakes alone 0.68-0.69. What remains is a reader seeing that the aid is
wrong, which is the skill a probe measures, not a sign of a probe.

The own images trade one cue for another: tiles that look like the case are images of the
wrong class that look unlike that class's usual lists, so + images rises (synthetic 0.638 to
0.689, bundle 0.580 to 0.669). On the tiny bundle, whose one-epoch 32 px model retrieves
little of what the pixels show, likeness does not fall (0.740, 0.743); how a full run's
SE-CBIR features behave is not measured here. Two things tried on the synthetic pool did not
help: ordering the filled list by similarity (the case's own class then takes rank 1; 0.740
images, 0.801 likeness) and choosing, for a probe's class, the reader's case whose images of
that class come nearest (best of all: 0.800 and 0.818; best of two: 0.699 and 0.752): probes
then gather on the cases near a class boundary, which the case's own colours show.
"""

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from app.survey import designs, probes
from app.survey.sampling import stream
from studybundle.taxonomy import HAM10000_CODES
from studybundle.vote import majority_vote
from training.bank import l2_normalise, top_k
from training.data import load_dataset, read_image

K = 6
DEPTH = 10  # neighbours kept per case: a probe borrows from the case's own list this deep
CASES = 30
SHARE = 0.2
CONDITION = 0  # every reading is under the one SE-CBIR condition
# before: k images of one wrong class (before issue 22); borrowed: another case's genuine list;
# own: that list's class pattern filled with the case's own nearest images of each class.
DESIGNS = ("before", "borrowed", "own")
FEATURE_SETS = ("list", "+ class", "+ images", "+ likeness", "+ similarity")


@dataclass(frozen=True)
class Image:
    """A neighbour image as the probes module sees it, with what a reader could see of it."""

    image_id: str
    truth: str
    similarity: float


@dataclass
class Pool:
    """The study's cases: truths, genuine lists (DEPTH deep) and optional image features."""

    ids: list[str]
    truths: list[str]
    lists: list[list[Image]]
    stats: dict[str, np.ndarray]  # image id -> mean and spread of R, G, B (empty: no images)
    pixels: dict[str, np.ndarray]  # image id -> L2-normalised pixel features
    # per case, each class's nearest bank images (DEPTH, most similar first); empty: none
    by_class: list[dict[str, list[Image]]] = field(default_factory=list)


def thesis_pool(folder: Path) -> Pool:
    """The thesis's 1,002 queries with their SE-CBIR lists, labelled from HAM10000's metadata."""
    with (folder / "HAM10000_metadata.csv").open(newline="") as handle:
        dx = {row["image_id"]: row["dx"] for row in csv.DictReader(handle)}
    found = json.loads((folder / "neighbours_se_cbir.json").read_text())
    ids, truths, lists = [], [], []
    for query, neighbours in sorted(found.items()):
        query_id = query.removesuffix(".png")
        ids.append(query_id)
        truths.append(dx[query_id])
        names = [name.removesuffix(".png") for name in neighbours[:DEPTH]]
        # No similarities in the reference: ranks stand in (1.0 at rank 1, falling).
        lists.append([Image(n, dx[n], 1.0 - rank / 100) for rank, n in enumerate(names)])
    return Pool(ids, truths, lists, {}, {})


def image_features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mean and spread of each channel, 16 x 16 grey pixels) of one image."""
    rgb = read_image(path, 64).astype(np.float32)
    stats = np.concatenate([rgb.mean(axis=(0, 1)), rgb.std(axis=(0, 1))])
    grey = rgb.mean(axis=2).reshape(16, 4, 16, 4).mean(axis=(1, 3)).ravel()
    return stats, grey - grey.mean()


def synthetic_pool(folder: Path, seed: int = 0) -> Pool:
    """A fifth of a synthetic dataset's lesions as queries, the rest as the retrieval bank."""
    records = load_dataset(folder)
    rng = np.random.default_rng(seed)
    lesions = sorted({r.lesion_id for r in records})
    chosen = set(rng.choice(lesions, size=len(lesions) // 5, replace=False).tolist())
    first: dict[str, object] = {}
    for record in sorted(records, key=lambda r: r.image_id):
        if record.lesion_id in chosen:
            first.setdefault(record.lesion_id, record)
    queries = [first[lesion] for lesion in sorted(first)]
    bank = [r for r in records if r.lesion_id not in chosen]
    stats, pixels = {}, {}
    for record in [*queries, *bank]:
        stats[record.image_id], pixels[record.image_id] = image_features(record.path)
    query_rows = l2_normalise(np.stack([pixels[q.image_id] for q in queries]))
    bank_rows = l2_normalise(np.stack([pixels[b.image_id] for b in bank]))
    index, similarity = top_k(query_rows, bank_rows, DEPTH)
    lists = [
        [Image(bank[j].image_id, bank[j].dx, float(s)) for j, s in zip(row, sims, strict=True)]
        for row, sims in zip(index, similarity, strict=True)
    ]
    normalised = {key: l2_normalise(value[None])[0] for key, value in pixels.items()}
    by_class: list[dict[str, list[Image]]] = [{} for _ in queries]
    for code in sorted({b.dx for b in bank}):
        rows = [j for j, b in enumerate(bank) if b.dx == code]
        found, sims = top_k(query_rows, bank_rows[rows], min(DEPTH, len(rows)))
        for q, (row, values) in enumerate(zip(found, sims, strict=True)):
            by_class[q][code] = [
                Image(bank[rows[j]].image_id, code, float(s))
                for j, s in zip(row, values, strict=True)
            ]
    ids, truths = [q.image_id for q in queries], [q.dx for q in queries]
    return Pool(ids, truths, lists, stats, normalised, by_class)


def bundle_pool(folder: Path) -> Pool:
    """A pipeline-made study bundle's queries with their SE-CBIR lists and, when it carries
    them, their class_neighbours; image features from the bundle's own (web-sized) images."""
    queries = json.loads((folder / "queries.json").read_text())
    ids, truths, lists, by_class = [], [], [], []
    paths: dict[str, Path] = {}

    def images(items: Sequence[dict[str, Any]]) -> list[Image]:
        """Neighbour records as Images, their files noted."""
        for item in items:
            paths[item["image_id"]] = folder / item["image"]
        return [Image(n["image_id"], n["truth"], float(n["similarity"])) for n in items]

    for query in queries:
        aid = query["aids"]["se_cbir"]
        ids.append(query["image_id"])
        truths.append(query["truth"])
        paths[query["image_id"]] = folder / query["image"]
        lists.append(images(aid["neighbours"][:DEPTH]))
        found = aid.get("class_neighbours")
        if found is not None:
            by_class.append({code: images(items) for code, items in found.items()})
    stats, pixels = {}, {}
    for image_id, path in paths.items():
        stats[image_id], grey = image_features(path)
        pixels[image_id] = l2_normalise(grey[None])[0]
    return Pool(ids, truths, lists, stats, pixels, by_class)


def before(pool: Pool, cases: list[int], seed: int, bank: list[Image]) -> dict[int, list[Image]]:
    """Probes as the survey made them before issue 22: k images of the aid's best wrong class."""
    shown = {}
    for index in designs.probe_positions([CONDITION] * len(cases), SHARE, seed):
        case = cases[index]
        own = pool.lists[case]
        wrong = probes.wrong_class(pool.truths[case], [n.truth for n in own], HAM10000_CODES)
        shown[index] = probes.misleading_neighbours(wrong, own, bank, K, [pool.ids[case]])
    return shown


def after(
    pool: Pool,
    cases: list[int],
    seed: int,
    bank: list[Image],
    suggested: dict[int, str],
    own_images: bool = True,
) -> dict[int, list[Image]]:
    """Probes as the survey makes them now (app.survey.enrolment and presentation): the
    donor's class pattern filled with the case's own nearest images of each class where the
    pool has them (`own_images`), else the donor's list itself (before class_neighbours)."""
    placed = designs.probe_positions(
        [CONDITION] * len(cases),
        SHARE,
        seed,
        truths=[pool.truths[c] for c in cases],
        mix={CONDITION: Counter(suggested.values())},
    )
    sources = probes.choose_sources(
        placed,
        [(CONDITION, c) for c in cases],
        {CONDITION: suggested},
        set(cases),
        stream(seed, "probe sources"),
    )
    shown = {}
    for index, wrong in placed.items():
        case = cases[index]
        own = pool.lists[case]
        wrong = wrong or probes.wrong_class(
            pool.truths[case], [n.truth for n in own], HAM10000_CODES
        )
        source = sources[index]
        donor = pool.lists[source][:K] if source is not None else []
        pattern = (
            [n.truth for n in donor]
            if donor
            else probes.swapped_pattern([n.truth for n in own[:K]], wrong)
        )
        filled = (
            probes.own_in_pattern(pattern, pool.by_class[case])
            if own_images and pool.by_class
            else None
        )
        if filled or donor:
            shown[index] = filled or donor
            continue
        moved = probes.moved_majority(own[:K], wrong, bank, [pool.ids[case]])
        shown[index] = moved or probes.misleading_neighbours(wrong, own, bank, K, [pool.ids[case]])
    return shown


def features(pool: Pool, case: int, shown: Sequence[Image]) -> list[list[float]]:
    """What a reader sees of one reading, in the nested FEATURE_SETS (each adds to the last)."""
    truths = [n.truth for n in shown]
    counts = Counter(truths)
    top, top_count = counts.most_common(1)[0]
    voted = majority_vote(truths)
    listed = [
        top_count / len(truths),
        float(len(counts)),
        sum(t == top for t in truths[:3]) / 3,
        float(truths[0] == top),
    ]
    klass = [float(voted == code) for code in HAM10000_CODES]
    sims = np.array([n.similarity for n in shown])
    similarity = [float(sims.mean()), float(sims.std())]
    sets = [listed, listed + klass]
    if pool.stats:
        tiles = np.stack([pool.stats[n.image_id] for n in shown])
        images = [*tiles.mean(axis=0), *tiles.std(axis=0), *pool.stats[pool.ids[case]]]
        query = pool.pixels[pool.ids[case]]
        likeness = [float(np.mean([pool.pixels[n.image_id] @ query for n in shown]))]
        sets += [sets[-1] + images, sets[-1] + images + likeness]
    sets.append(sets[-1] + similarity)  # not shown to readers: an upper bound
    return sets


Simulated = tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]


def simulate(pool: Pool, readers: int, design: str) -> Simulated:
    """Every reading of `readers` simulated readers: feature matrices, probe labels, reader
    ids, and whether the aid shown votes for a class other than the case's truth."""
    bank = sorted(
        {n.image_id: n for listed in pool.lists for n in listed}.values(),
        key=lambda n: (-n.similarity, n.image_id),
    )
    suggested = {
        c: majority_vote([n.truth for n in pool.lists[c][:K]]) for c in range(len(pool.ids))
    }
    rows: list[list[list[float]]] = []
    labels, groups, wrong = [], [], []
    for reader in range(readers):
        rng = np.random.default_rng(reader)
        cases = sorted(rng.choice(len(pool.ids), size=CASES, replace=False).tolist())
        made = (
            before(pool, cases, reader, bank)
            if design == "before"
            else after(pool, cases, reader, bank, suggested, design == "own")
        )
        for index, case in enumerate(cases):
            shown = made.get(index, pool.lists[case][:K])
            rows.append(features(pool, case, shown))
            labels.append(int(index in made))
            groups.append(reader)
            wrong.append(majority_vote([n.truth for n in shown]) != pool.truths[case])
    matrices = [np.array([row[i] for row in rows]) for i in range(len(rows[0]))]
    return matrices, np.array(labels), np.array(groups), np.array(wrong)


def auc_with_interval(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> tuple[float, float, float]:
    """Out-of-fold AUC of a logistic regression (5 folds by reader), and its 95 % interval."""
    scores = np.zeros(len(y))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    for train, test in GroupKFold(n_splits=5).split(x, y, groups):
        model.fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    auc = float(roc_auc_score(y, scores))
    rng = np.random.default_rng(0)
    readers = np.unique(groups)
    rows_of = {g: np.flatnonzero(groups == g) for g in readers}
    boot = []
    for _ in range(1000):
        rows = np.concatenate([rows_of[g] for g in rng.choice(readers, size=len(readers))])
        boot.append(roc_auc_score(y[rows], scores[rows]))
    low, high = np.percentile(boot, [2.5, 97.5])
    return auc, float(low), float(high)


def report(name: str, pool: Pool, readers: int) -> None:
    """One pool's tables: AUC per feature set and design (own: where the pool has per-class
    lists), then the last design's probes against genuine aids that are wrong."""
    print(
        f"\n{name}: {len(pool.ids)} cases, {readers} readers x {CASES} readings, {SHARE:.0%} probes"
    )
    single = Counter(len({n.truth for n in listed[:K]}) == 1 for listed in pool.lists)
    print(f"  genuine top-{K} lists of one class: {single[True]} of {len(pool.lists)}")
    designs_run = DESIGNS if pool.by_class else DESIGNS[:2]
    results = {design: simulate(pool, readers, design) for design in designs_run}
    for design, (matrices, y, _, _) in results.items():
        one = float(np.mean(matrices[0][y == 1][:, 1] == 1))  # column 1: how many classes
        print(f"  {design}: probe lists of one class {one:.0%}")
    labels = [*FEATURE_SETS[: len(results["before"][0]) - 1], FEATURE_SETS[-1]]
    print(f"  {'features':<14}" + "".join(f"{design:>24}" for design in designs_run))
    for i, label in enumerate(labels):
        cells = [cell(results[design][0][i], *results[design][1:3]) for design in designs_run]
        print(f"  {label:<14}" + "".join(f"{c:>24}" for c in cells))
    matrices, y, groups, wrong = results[designs_run[-1]]
    genuine = y == 0
    share = float(wrong[genuine].mean())
    print(f"  genuine aids voting a wrong class: {share:.0%} of readings")
    last = designs_run[-1]
    head = f"  {last}: {'features':<14}{'probes vs wrong':>24}{'wrong vs right':>24}"
    print(head + f"{'floor':>8}")
    for i, label in enumerate(labels):
        versus = (y == 1) | (genuine & wrong)
        auc = auc_with_interval(matrices[i][genuine], wrong[genuine].astype(int), groups[genuine])
        cells = [
            cell(matrices[i][versus], y[versus], groups[versus]),
            f"{auc[0]:.3f} [{auc[1]:.3f}, {auc[2]:.3f}]",
        ]
        # A probe exactly like a genuine wrong aid scores as those do against all genuine ones.
        floor = (1 - share) * auc[0] + share * 0.5
        print(
            f"  {'':<{len(last) + 2}}{label:<14}"
            + "".join(f"{c:>24}" for c in cells)
            + f"{floor:>8.3f}"
        )


def cell(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> str:
    """One table cell: AUC [95 % interval]."""
    auc, low, high = auc_with_interval(x, y, groups)
    return f"{auc:.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    """Parse the arguments and print each pool's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thesis", type=Path, help="the thesis study's reference folder")
    parser.add_argument("--synthetic", type=Path, help="a `training synth` folder")
    parser.add_argument("--bundle", type=Path, help="a pipeline-made study bundle folder")
    parser.add_argument("--readers", type=int, default=300)
    args = parser.parse_args()
    if args.thesis is None and args.synthetic is None and args.bundle is None:
        parser.error("give --thesis DIR, --synthetic DIR, --bundle DIR, or several")
    if args.thesis is not None:
        report(f"thesis study ({args.thesis})", thesis_pool(args.thesis), args.readers)
    if args.synthetic is not None:
        report(f"synthetic ({args.synthetic})", synthetic_pool(args.synthetic), args.readers)
    if args.bundle is not None:
        report(f"bundle ({args.bundle})", bundle_pool(args.bundle), args.readers)


if __name__ == "__main__":
    main()
