"""The synthetic dataset: HAM10000's format, imbalance with a floor, re-imaged lesions,
byte-identical for a seed, and cues a classifier can learn but not trivially."""

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from training import cli, synth
from training.data import CLASSES, load_dataset, read_images
from training.errors import PipelineError
from training.synth import (
    COLUMNS,
    PART_FOLDERS,
    class_counts,
    plan_lesions,
    render_view,
    sample_look,
    write_synthetic,
)

IMAGES = 120
SIZE = 32


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset, written once for the module."""
    out = tmp_path_factory.mktemp("synth")
    write_synthetic(out, IMAGES, SIZE, seed=5)
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_format_is_hams_and_loads(synthetic: Path) -> None:
    with (synthetic / "HAM10000_metadata.csv").open() as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == COLUMNS
        rows = list(reader)
    assert len(rows) == IMAGES
    records = load_dataset(synthetic)
    assert len(records) == IMAGES
    assert {record.dx for record in records} == set(CLASSES)
    part_1 = sorted(p.stem for p in (synthetic / PART_FOLDERS[0]).glob("*.jpg"))
    part_2 = sorted(p.stem for p in (synthetic / PART_FOLDERS[1]).glob("*.jpg"))
    assert len(part_1) == len(part_2) == IMAGES // 2
    assert part_1[-1] < part_2[0]  # like HAM10000: the lower image ids in part 1
    assert {record.path.parent.name for record in records} == set(PART_FOLDERS)
    images = read_images([record.path for record in records[:5]], SIZE)
    assert images.shape == (5, SIZE, SIZE, 3)
    assert images.std() > 10  # not blank


def test_metadata_columns_look_like_hams(synthetic: Path) -> None:
    with (synthetic / "HAM10000_metadata.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert row["lesion_id"].startswith("HAM_") and len(row["lesion_id"]) == 11
        assert row["image_id"].startswith("ISIC_") and len(row["image_id"]) == 12
        assert row["dx_type"] in {"histo", "follow_up", "consensus", "confocal"}
        assert int(row["age"]) % 5 == 0
        assert row["sex"] in {"male", "female", "unknown"}
    by_lesion: dict[str, set] = {}
    for row in rows:
        by_lesion.setdefault(row["lesion_id"], set()).add(
            (row["dx"], row["age"], row["sex"], row["localization"])
        )
    assert all(len(values) == 1 for values in by_lesion.values())  # one patient, one lesion


def test_same_seed_same_bytes_other_seed_other_bytes(synthetic: Path, tmp_path: Path) -> None:
    write_synthetic(tmp_path / "again", IMAGES, SIZE, seed=5)
    assert files_of(tmp_path / "again") == files_of(synthetic)
    write_synthetic(tmp_path / "other", IMAGES, SIZE, seed=6)
    assert files_of(tmp_path / "other") != files_of(synthetic)


@pytest.mark.parametrize("images", [56, 100, 120, 500, 1500, 10015])
def test_class_counts_keep_imbalance_and_floor(images: int) -> None:
    counts = class_counts(images)
    assert tuple(counts) == CLASSES
    assert sum(counts.values()) == images
    floor = max(8, math.ceil(0.04 * images))
    assert min(counts.values()) >= floor
    assert counts["nv"] == max(counts.values())
    if images >= 500:
        assert counts["nv"] > 0.5 * images
        assert counts["mel"] > counts["vasc"]


def test_too_few_images_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="at least 56"):
        write_synthetic(tmp_path, 50, SIZE, seed=0)
    with pytest.raises(PipelineError, match="too small"):
        write_synthetic(tmp_path, 100, 8, seed=0)


def test_written_classes_follow_class_counts(synthetic: Path) -> None:
    counts = Counter(record.dx for record in load_dataset(synthetic))
    assert dict(counts) == class_counts(IMAGES)


def test_several_images_of_some_lesions_at_hams_ratio() -> None:
    lesions = plan_lesions(1500, seed=0)
    sizes = Counter(lesion["images"] for lesion in lesions)
    assert sum(lesion["images"] for lesion in lesions) == 1500
    assert 1.2 < 1500 / len(lesions) < 1.5  # HAM10000: 10,015 / 7,470 = 1.34
    assert sizes[1] > sizes[2] > sizes[3] > 0
    assert max(sizes) <= 6


def test_reimaged_lesions_are_different_photographs(synthetic: Path) -> None:
    records = load_dataset(synthetic)
    by_lesion: dict[str, list] = {}
    for record in records:
        by_lesion.setdefault(record.lesion_id, []).append(record)
    multi = [group for group in by_lesion.values() if len(group) > 1]
    assert multi
    for group in multi:
        images = read_images([record.path for record in group], SIZE).astype(int)
        assert np.abs(images[0] - images[1]).mean() > 2


def test_cues_are_learnable_but_not_trivial() -> None:
    """1-nearest-neighbour on colour histograms at 32 px beats chance (1/7) by far, yet is far
    from perfect: a CNN has something to learn, and something left to learn."""
    per_class = 30
    images, labels = [], []
    for label, dx in enumerate(CLASSES):
        for index in range(per_class):
            look = sample_look(dx, np.random.default_rng([1, label, index]))
            images.append(render_view(look, 0, 32, np.random.default_rng([1, label, index, 0])))
            labels.append(label)
    centre = np.stack(images)[:, 6:26, 6:26].astype(np.float32) / 255
    truth = np.array(labels)
    quantised = np.clip((centre * 4).astype(int), 0, 3)
    bins = quantised[..., 0] * 16 + quantised[..., 1] * 4 + quantised[..., 2]
    histograms = np.stack([np.bincount(b.ravel(), minlength=64) for b in bins]).astype(float)
    features = np.sqrt(histograms / histograms.sum(axis=1, keepdims=True))
    train = np.arange(len(truth)) % per_class < per_class // 2
    distances = ((features[~train, None] - features[None, train]) ** 2).sum(axis=-1)
    predicted = truth[train][np.argmin(distances, axis=1)]
    tested = truth[~train]
    sensitivity = np.mean([(predicted[tested == k] == k).mean() for k in range(len(CLASSES))])
    assert 0.3 < sensitivity < 0.9


def test_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    code = cli.main(["synth", "--out", str(out), "--images", "60", "--size", "24", "--seed", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "60 images" in printed
    assert "HAM10000_images_part_2" in printed
    assert len(load_dataset(out)) == 60
    assert cli.main(["synth", "--out", str(out), "--images", "10"]) == 2
    assert "at least 56" in capsys.readouterr().err


@pytest.mark.parametrize("artefact", ["ruler", "bubbles", "ink", "vignette"])
def test_each_artefact_marks_the_image(artefact: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = np.full((64, 64, 3), 0.7, np.float32)
    monkeypatch.setattr(synth, "ARTEFACT_RATES", dict.fromkeys(synth.ARTEFACT_RATES, 0.0))
    untouched = synth.add_artefacts(plain, np.random.default_rng(0), 64)
    np.testing.assert_array_equal(untouched, plain)
    monkeypatch.setitem(synth.ARTEFACT_RATES, artefact, 1.0)
    marked = synth.add_artefacts(plain, np.random.default_rng(0), 64)
    assert np.abs(marked - plain).max() > 0.1


def test_artefacts_do_not_depend_on_the_class() -> None:
    # The artefacts take no class and draw from their own stream: the same stream gives the
    # same artefacts on any lesion, and the rates are one table for all classes.
    canvas = np.full((48, 48, 3), 0.5, np.float32)
    first = synth.add_artefacts(canvas, np.random.default_rng(7), 48)
    second = synth.add_artefacts(canvas, np.random.default_rng(7), 48)
    np.testing.assert_array_equal(first, second)
    assert set(synth.ARTEFACT_RATES) == {"ruler", "bubbles", "ink", "vignette"}
