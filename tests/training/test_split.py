"""Splits: by lesion (no lesion in two splits, stratified, 80/10/10) and by image (the
thesis's split, reproduced exactly), on the real metadata and on synthetic data."""

import json
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from training import cli
from training.data import CLASSES, load_dataset, load_metadata
from training.errors import PipelineError
from training.split import (
    SPLITS,
    read_split,
    split_by_image,
    split_by_lesion,
    write_split,
)
from training.synth import write_synthetic


@pytest.fixture(scope="module")
def real_rows(reference_dir: Path) -> list[dict[str, str]]:
    """The real HAM10000 metadata, 10,015 rows in the published order."""
    return load_metadata(reference_dir / "HAM10000_metadata.csv")


@pytest.fixture(scope="module")
def thesis_test_ids(reference_dir: Path) -> set[str]:
    """The thesis's 1,002 test images: the queries of its neighbours file."""
    neighbours = json.loads((reference_dir / "neighbours_se_cbir.json").read_text())
    return {key.removesuffix(".png") for key in neighbours}


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset large enough that every class survives a 10 % image split."""
    out = tmp_path_factory.mktemp("split-synth")
    write_synthetic(out, 400, 16, seed=3)
    return out


def check_lesion_split(rows: Sequence[Mapping[str, str]], mapping: Mapping[str, str]) -> None:
    """The invariants every lesion split must hold."""
    assert set(mapping) == {row["image_id"] for row in rows}
    assert set(mapping.values()) == set(SPLITS)
    splits_of = defaultdict(set)
    for row in rows:
        splits_of[row["lesion_id"]].add(mapping[row["image_id"]])
    assert all(len(splits) == 1 for splits in splits_of.values()), "a lesion in two splits"
    sizes = Counter(mapping.values())
    total = len(rows)
    assert abs(sizes["train"] - 0.8 * total) <= max(2, 0.005 * total)
    assert abs(sizes["val"] - 0.1 * total) <= max(2, 0.005 * total)
    assert abs(sizes["test"] - 0.1 * total) <= max(2, 0.005 * total)
    per_class = Counter((row["dx"], mapping[row["image_id"]]) for row in rows)
    for name in CLASSES:
        for split in SPLITS:
            assert per_class[name, split] > 0, f"no {name} in {split}"


def check_stratified(
    rows: Sequence[Mapping[str, str]], mapping: Mapping[str, str], slack: int
) -> None:
    """Every class is split 80/10/10 within `slack` images."""
    class_sizes = Counter(row["dx"] for row in rows)
    per_class = Counter((row["dx"], mapping[row["image_id"]]) for row in rows)
    for name, size in class_sizes.items():
        for split, fraction in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
            assert abs(per_class[name, split] - fraction * size) <= slack, (name, split)


def test_lesion_split_on_real_metadata(real_rows: list[dict[str, str]]) -> None:
    mapping = split_by_lesion(real_rows, seed=71)
    check_lesion_split(real_rows, mapping)
    check_stratified(real_rows, mapping, slack=3)
    assert Counter(mapping.values()) == {"train": 8011, "val": 1002, "test": 1002}


def test_lesion_split_keeps_multi_image_lesions_in_every_split(
    real_rows: list[dict[str, str]],
) -> None:
    """No split is left with the singletons only: images per lesion stay near 1.34."""
    mapping = split_by_lesion(real_rows, seed=71)
    lesions = defaultdict(set)
    for row in real_rows:
        lesions[mapping[row["image_id"]]].add(row["lesion_id"])
    sizes = Counter(mapping.values())
    for split in SPLITS:
        assert 1.25 < sizes[split] / len(lesions[split]) < 1.45, split


def test_lesion_split_is_deterministic_and_seeded(real_rows: list[dict[str, str]]) -> None:
    first = split_by_lesion(real_rows, seed=71)
    assert split_by_lesion(real_rows, seed=71) == first
    shuffled = list(real_rows)
    random.Random(0).shuffle(shuffled)
    assert split_by_lesion(shuffled, seed=71) == first  # row order does not matter
    other = split_by_lesion(real_rows, seed=72)
    assert other != first
    check_lesion_split(real_rows, other)


def test_image_split_reproduces_the_thesis_test_set(
    real_rows: list[dict[str, str]], thesis_test_ids: set[str]
) -> None:
    mapping = split_by_image(real_rows, seed=71)
    test = {image_id for image_id, split in mapping.items() if split == "test"}
    assert test == thesis_test_ids
    assert Counter(mapping.values()) == {"train": 8012, "val": 1001, "test": 1002}
    check_stratified(real_rows, mapping, slack=1)


def test_image_split_is_deterministic_and_seeded(real_rows: list[dict[str, str]]) -> None:
    first = split_by_image(real_rows)
    assert split_by_image(real_rows, seed=71) == first
    assert split_by_image(real_rows, seed=1) != first


def test_image_split_mixes_lesions_as_the_thesis_did(real_rows: list[dict[str, str]]) -> None:
    """The thesis's known flaw: many lesions have images on both sides of the split."""
    mapping = split_by_image(real_rows)
    splits_of = defaultdict(set)
    for row in real_rows:
        splits_of[row["lesion_id"]].add(mapping[row["image_id"]])
    assert sum(len(splits) > 1 for splits in splits_of.values()) > 500


def test_cli_image_split_round_trip_gives_the_thesis_test_set(
    reference_dir: Path, thesis_test_ids: set[str], tmp_path: Path
) -> None:
    out = tmp_path / "split.csv"
    metadata = str(reference_dir / "HAM10000_metadata.csv")
    argv = ["split", "--metadata", metadata, "--out", str(out), "--by", "image", "--seed", "71"]
    assert cli.main(argv) == 0
    mapping = read_split(out)
    assert len(mapping) == 10015
    assert {image_id for image_id, split in mapping.items() if split == "test"} == thesis_test_ids


def test_lesion_split_on_synthetic_data(synthetic_dir: Path) -> None:
    rows = load_metadata(synthetic_dir / "HAM10000_metadata.csv")
    assert len({row["lesion_id"] for row in rows}) < len(rows)  # lesion grouping matters
    mapping = split_by_lesion(rows, seed=71)
    check_lesion_split(rows, mapping)
    assert split_by_lesion(rows, seed=71) == mapping
    # Records from the loader split exactly like the metadata rows.
    assert split_by_lesion(load_dataset(synthetic_dir), seed=71) == mapping


def test_image_split_on_synthetic_data(synthetic_dir: Path) -> None:
    rows = load_metadata(synthetic_dir / "HAM10000_metadata.csv")
    mapping = split_by_image(rows, seed=71)
    assert Counter(mapping.values()) == {"train": 320, "val": 40, "test": 40}
    check_stratified(rows, mapping, slack=1)
    assert split_by_image(rows, seed=71) == mapping
    assert split_by_image(load_dataset(synthetic_dir), seed=71) == mapping


def test_image_split_of_too_few_images_is_a_clear_error() -> None:
    rows = [{"image_id": f"i{n}", "lesion_id": f"l{n}", "dx": CLASSES[n % 7]} for n in range(14)]
    with pytest.raises(PipelineError, match="cannot split 14 images by image"):
        split_by_image(rows)


def test_tiny_classes_still_reach_every_split() -> None:
    """Three single-image lesions of a class: one in each split, whatever the targets say."""
    rows = [{"image_id": f"n{n}", "lesion_id": f"ln{n // 2}", "dx": "nv"} for n in range(40)]
    rows += [{"image_id": f"d{n}", "lesion_id": f"ld{n}", "dx": "df"} for n in range(3)]
    mapping = split_by_lesion(rows, seed=0)
    assert {mapping[f"d{n}"] for n in range(3)} == set(SPLITS)


def test_cli_lesion_split_writes_and_summarises(
    synthetic_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "split.csv"
    metadata = str(synthetic_dir / "HAM10000_metadata.csv")
    assert cli.main(["split", "--metadata", metadata, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "split by lesion, seed 71" in printed
    assert "lesions in more than one split: 0" in printed
    rows = load_metadata(synthetic_dir / "HAM10000_metadata.csv")
    assert read_split(out) == split_by_lesion(rows, seed=71)
    assert out.read_text().splitlines()[0] == "image_id,split"


def test_cli_rejects_unknown_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata = tmp_path / "m.csv"
    metadata.write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\n"
        "L1,I1,nv,histo,50,male,back\n"
        "L2,I2,naevus,histo,50,male,back\n"
    )
    code = cli.main(["split", "--metadata", str(metadata), "--out", str(tmp_path / "s.csv")])
    assert code == 2
    assert "I2 has unknown class 'naevus'" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_write_and_read_split_round_trip(tmp_path: Path) -> None:
    mapping = {"b": "train", "a": "test", "c": "val"}
    write_split(tmp_path / "s.csv", mapping)
    assert list(read_split(tmp_path / "s.csv").items()) == list(mapping.items())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,split\na,train\n", "header must be image_id,split"),
        ("", "header must be image_id,split"),
        ("image_id,split\na,train\nb,holdout\n", r"line 3: split 'holdout'"),
        ("image_id,split\na,train\na,test\n", "line 3: duplicate image_id a"),
        ("image_id,split\na,train,x\n", "line 2: 3 fields"),
    ],
)
def test_read_split_reports_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(PipelineError, match=message):
        read_split(path)
    with pytest.raises(PipelineError, match="not found"):
        read_split(tmp_path / "absent.csv")
