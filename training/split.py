"""Train / validation / test splits: by lesion (the default) or by image (the thesis's).

By lesion, every image of a lesion lands in the same split, so a test query can never
find its own lesion in the retrieval set. By image reproduces the thesis exactly: its
1,002 test images are the keys of the thesis's neighbours file.
"""

import argparse
import csv
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from training.data import CLASSES, Record, check_classes, load_metadata, row_value
from training.errors import PipelineError

SPLITS: tuple[str, ...] = ("train", "val", "test")
FRACTIONS: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}

Row = Mapping[str, str] | Record


def _targets(class_sizes: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Whole-image targets per class and split: rows sum to the class, columns to 80/10/10.

    Each class gets floor(10 %) of its images for val and for test; the images left over by
    rounding go to the classes with the largest remainders, until each column reaches 10 %
    of all images rounded, so the overall split is as close to 80/10/10 as whole images allow.
    """
    total = sum(class_sizes.values())
    targets = {name: {"train": 0, "val": 0, "test": 0} for name in class_sizes}
    for split in ("val", "test"):
        wanted = round(FRACTIONS[split] * total)
        exact = {name: FRACTIONS[split] * size for name, size in class_sizes.items()}
        for name in class_sizes:
            targets[name][split] = int(exact[name])
        by_remainder = sorted(class_sizes, key=lambda name: (-(exact[name] % 1), name))
        for name in by_remainder[: max(0, wanted - sum(t[split] for t in targets.values()))]:
            targets[name][split] += 1
    for name, size in class_sizes.items():
        targets[name]["train"] = size - targets[name]["val"] - targets[name]["test"]
    return targets


def _lesion_class(dxs: list[str]) -> str:
    """A lesion's stratum: its diagnosis (HAM10000 never mixes; if one did, the commonest)."""
    return Counter(dxs).most_common(1)[0][0]


def split_by_lesion(rows: Sequence[Row], seed: int) -> dict[str, str]:
    """image_id -> train/val/test with no lesion in two splits, stratified by lesion class.

    Within each class, lesions are shuffled (seeded). One single lesion goes to val and one
    to test first, so every split holds every class that has at least three lesions. Then
    the multi-image lesions, then the single-image ones, each go to the split furthest
    below its image target relative to that target: the multi-image lesions spread over
    the splits in proportion (so no split is mostly singletons), and the singletons,
    three quarters of HAM10000's lesions, fill every split up to its exact target.
    """
    images: dict[str, list[str]] = defaultdict(list)
    dxs: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        lesion = row_value(row, "lesion_id")
        images[lesion].append(row_value(row, "image_id"))
        dxs[lesion].append(row_value(row, "dx"))
    by_class: dict[str, list[str]] = defaultdict(list)
    for lesion in sorted(images):  # sorted: the result must not depend on the row order
        by_class[_lesion_class(dxs[lesion])].append(lesion)
    class_sizes = {
        name: sum(len(images[lesion]) for lesion in lesions) for name, lesions in by_class.items()
    }
    targets = _targets(dict(sorted(class_sizes.items())))

    rng = np.random.default_rng(seed)
    lesion_split: dict[str, str] = {}
    for name in sorted(by_class):
        shuffled = [by_class[name][index] for index in rng.permutation(len(by_class[name]))]
        # Stable sort: multi-image lesions first, each group still in shuffled order.
        shuffled.sort(key=lambda lesion: len(images[lesion]) == 1)
        target = targets[name]
        counts = dict.fromkeys(SPLITS, 0)
        if len(shuffled) >= len(SPLITS):
            for split in ("test", "val"):
                # The last of the smallest lesions: a random one, as the order is shuffled.
                index = min(reversed(range(len(shuffled))), key=lambda i: len(images[shuffled[i]]))
                lesion = shuffled.pop(index)
                lesion_split[lesion] = split
                counts[split] += len(images[lesion])
        for lesion in shuffled:
            # Ties go to train, then val, then test.
            split = max(SPLITS, key=lambda s: (target[s] - counts[s]) / max(target[s], 1))
            lesion_split[lesion] = split
            counts[split] += len(images[lesion])
    return {row_value(row, "image_id"): lesion_split[row_value(row, "lesion_id")] for row in rows}


def split_by_image(rows: Sequence[Row], seed: int = 71) -> dict[str, str]:
    """image_id -> train/val/test: the thesis's image-level stratified 80/10/10 split.

    Two calls of scikit-learn's train_test_split stratified by diagnosis, with random_state
    `seed` both times: 20 % held out of all images in row order, then that half and half
    into val and test. With seed 71 on HAM10000_metadata.csv in its published row order,
    this gives exactly the thesis's 1,002 test images.
    """
    from sklearn.model_selection import train_test_split  # slow import; only this split needs it

    ids = [row_value(row, "image_id") for row in rows]
    dx = np.array([row_value(row, "dx") for row in rows])
    everything = np.arange(len(ids))
    try:
        train, held_out = train_test_split(
            everything, test_size=0.2, stratify=dx, random_state=seed
        )
        val, test = train_test_split(
            held_out, test_size=0.5, stratify=dx[held_out], random_state=seed
        )
    except ValueError as error:
        sizes = ", ".join(f"{name} {count}" for name, count in sorted(Counter(dx).items()))
        raise PipelineError(
            f"cannot split {len(ids)} images by image, stratified ({sizes}): {error}"
        ) from error
    split_of = np.empty(len(ids), dtype=object)
    split_of[train], split_of[val], split_of[test] = "train", "val", "test"
    return dict(zip(ids, split_of.tolist(), strict=True))


def write_split(path: Path, mapping: Mapping[str, str]) -> None:
    """Write `image_id,split` rows, in the mapping's order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("image_id", "split"))
        writer.writerows(mapping.items())


def read_split(path: Path) -> dict[str, str]:
    """The `image_id -> split` mapping of a split CSV, checked."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"split file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [name.strip() for name in header] != ["image_id", "split"]:
            raise PipelineError(f"split file {path}: the header must be image_id,split")
        mapping: dict[str, str] = {}
        problems = []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            line = reader.line_num
            if len(fields) != 2:
                problems.append(f"line {line}: {len(fields)} fields, expected 2")
                continue
            image_id, split = (field.strip() for field in fields)
            if split not in SPLITS:
                problems.append(f"line {line}: split {split!r} is not train, val or test")
            elif image_id in mapping:
                problems.append(f"line {line}: duplicate image_id {image_id}")
            else:
                mapping[image_id] = split
    if problems:
        raise PipelineError(f"split file {path}: " + "; ".join(problems))
    return mapping


def summary(rows: Sequence[Row], mapping: Mapping[str, str]) -> str:
    """A small table: images and lesions per split, images per class per split."""
    counts: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    lesions: dict[str, set[str]] = {split: set() for split in SPLITS}
    splits_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        split = mapping[row_value(row, "image_id")]
        counts[split][row_value(row, "dx")] += 1
        lesions[split].add(row_value(row, "lesion_id"))
        splits_of[row_value(row, "lesion_id")].add(split)
    total = len(rows)
    lines = ["split   images       lesions  " + " ".join(f"{name:>6}" for name in CLASSES)]
    for split in SPLITS:
        images = sum(counts[split].values())
        lines.append(
            f"{split:<6} {images:>6} {100 * images / total:4.1f}% {len(lesions[split]):>7}  "
            + " ".join(f"{counts[split][name]:>6}" for name in CLASSES)
        )
    shared = sum(1 for splits in splits_of.values() if len(splits) > 1)
    lines.append(f"lesions in more than one split: {shared}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """`python -m training split`: split the metadata's images and write SPLIT.csv."""
    rows = load_metadata(args.metadata)
    check_classes(rows, args.metadata)
    if args.by == "image":
        mapping = split_by_image(rows, seed=args.seed)
    else:
        mapping = split_by_lesion(rows, seed=args.seed)
    write_split(args.out, mapping)
    print(f"wrote {args.out}: {len(mapping)} images split by {args.by}, seed {args.seed}")
    print(summary(rows, mapping))
    return 0
