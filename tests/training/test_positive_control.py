"""The positive control: its decoy-pairs data set, the arms' maps, the pointing game, the CLI,
and (marked `positive_control_run`, left out of `make test`) a tiny run end to end."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import cli, data, positive_control, synth
from training.errors import PipelineError

SIZE = 48


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 decoy-pair images at 48 px (ten per class)."""
    return positive_control.write_decoy_pairs(tmp_path_factory.mktemp("pairs"), 70, SIZE, seed=4)


def read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).astype(np.int16)


def test_each_image_holds_its_index_lesion_and_a_decoy_of_another_class(pairs: Path) -> None:
    rows = data.load_metadata(pairs / "plain" / data.METADATA_NAME)
    decoys = json.loads((pairs / "done.json").read_text())["decoys"]
    counts = {name: sum(row["dx"] == name for row in rows) for name in data.CLASSES}
    assert counts == dict.fromkeys(data.CLASSES, 10)  # balanced index classes
    assert all(decoys[row["image_id"]] != row["dx"] for row in rows)
    assert len({decoys[row["image_id"]] for row in rows}) == len(data.CLASSES)
    for row in rows:
        index = read(pairs / "masks" / f"{row['image_id']}.png") > 0
        decoy = read(pairs / "decoys" / f"{row['image_id']}.png") > 0
        assert index.any() and decoy.any()
        assert not (index & decoy).any()  # apart
        assert 0.4 < index.sum() / decoy.sum() < 2.5  # of similar size (shapes differ)


def test_each_lesion_is_drawn_in_its_class_colour(pairs: Path) -> None:
    """The classes are told by colour (module docstring): a lesion's median colour, through
    skin, lighting, hairs and JPEG, is nearest its own class's for nearly every lesion."""
    rows = data.load_metadata(pairs / "plain" / data.METADATA_NAME)
    decoys = json.loads((pairs / "done.json").read_text())["decoys"]
    names = list(positive_control.CLEAR_COLOURS)
    colours = np.array([positive_control.CLEAR_COLOURS[name] for name in names])
    nearest = []
    for row in rows:
        pixels = read(pairs / "plain" / synth.PART_FOLDERS[0] / f"{row['image_id']}.jpg") / 255
        for folder, dx in (("masks", row["dx"]), ("decoys", decoys[row["image_id"]])):
            lesion = read(pairs / folder / f"{row['image_id']}.png") > 0
            median = np.median(pixels[lesion], axis=0)
            nearest.append(names[int(np.argmin(((colours - median) ** 2).sum(axis=1)))] == dx)
    assert np.mean(nearest) > 0.9


def test_the_ringed_model_trains_as_ringed_config_says() -> None:
    cfg = positive_control.control_config("demo", [])
    ringed = positive_control.ringed_config(cfg)
    assert (ringed.loss, ringed.batch_size, ringed.epochs_rgb) == ("categorical_focal", 16, 15)
    unchanged = {"loss": cfg.loss, "batch_size": cfg.batch_size, "epochs_rgb": cfg.epochs_rgb}
    assert dataclasses.replace(ringed, **unchanged) == cfg  # nothing else differs
    tiny = positive_control.ringed_config(positive_control.control_config("tiny", []))
    assert (tiny.batch_size, tiny.epochs_rgb) == (16, 1)


def test_the_ringed_variant_differs_by_the_ring_round_the_index_lesion_only(pairs: Path) -> None:
    rows = data.load_metadata(pairs / "plain" / data.METADATA_NAME)
    part = synth.PART_FOLDERS[0]
    for row in rows[:10]:
        name = f"{row['image_id']}.jpg"
        changed = np.abs(read(pairs / "ringed" / part / name) - read(pairs / "plain" / part / name))
        changed = changed.max(axis=-1) > 40
        index = read(pairs / "masks" / f"{row['image_id']}.png") > 0
        decoy = read(pairs / "decoys" / f"{row['image_id']}.png") > 0
        ys, xs = np.nonzero(index)
        centre = np.array([ys.mean(), xs.mean()])
        yc, xc = np.nonzero(changed)
        assert len(yc) > 10  # a visible ring
        distance = np.hypot(yc - centre[0], xc - centre[1])
        decoy_distance = np.hypot(*(np.argwhere(decoy).mean(axis=0) - centre))
        assert distance.max() < decoy_distance  # round the index lesion, not the decoy
        assert not (changed & index).sum() > 0.1 * index.sum()  # around it, not over it


def test_a_scene_renders_the_same_with_and_without_the_ring_elsewhere() -> None:
    looks = [synth.sample_look(dx, np.random.default_rng(n)) for n, dx in enumerate(("mel", "nv"))]
    places = [(-0.5, -0.5, 0.5), (0.5, 0.5, 0.5)]
    plain, cover = synth.render_scene(looks, places, 64, np.random.default_rng(9))
    ringed, _ = synth.render_scene(looks, places, 64, np.random.default_rng(9), ring=True)
    assert (plain[40:, 40:] == ringed[40:, 40:]).all()
    assert (plain != ringed).any()
    assert cover[0][16, 16] > 0.9 and cover[1][48, 48] > 0.9 and cover[0][48, 48] == 0
    with pytest.raises(ValueError, match="one placement per lesion"):
        synth.render_scene(looks, places[:1], 64, np.random.default_rng(9))


def test_the_pointing_game_by_hand() -> None:
    index = np.zeros((2, 20, 20), np.uint8)
    decoy = np.zeros((2, 20, 20), np.uint8)
    index[:, 2:8, 2:8] = 255
    decoy[:, 12:18, 12:18] = 255
    maps = np.zeros((2, 20, 20), np.uint8)
    maps[0, 3:7, 3:7] = 255  # on the index lesion
    maps[0, 14, 14] = 255  # a lone saturated pixel on the decoy, first in no order
    maps[1, 12:18, 12:18] = 100  # on the decoy
    result = positive_control.pointing_game(maps, index, decoy)
    assert result["hit_rate"] == 0.5 and result["decoy_hit_rate"] == 0.5
    assert result["chance"] == pytest.approx(36 / 400)
    assert result["mass_ratio"] == pytest.approx(16 * 255 / (255 + 36 * 100))
    # A saturated block later in reading order still wins over a lone pixel earlier.
    late = np.zeros((1, 20, 20), np.uint8)
    late[0, 0, 19] = 255
    late[0, 13:17, 13:17] = 255
    assert positive_control.pointing_game(late, decoy[:1], index[:1])["hit_rate"] == 1.0


def test_a_dose_keeps_the_maps_of_that_fraction_of_the_images() -> None:
    maps = np.full((40, 4, 4), 255, np.uint8)
    kept = positive_control.dosed(maps, 0.25, seed=1)
    assert (kept.reshape(40, -1).max(axis=1) > 0).sum() == 10
    assert (positive_control.dosed(maps, 0.25, seed=1) == kept).all()
    assert positive_control.dosed(maps, 1.0, seed=1) is maps


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="--dose"):
        positive_control.positive_control(tmp_path, images=70, dose=0.0)
    with pytest.raises(PipelineError, match="--seeds"):
        positive_control.positive_control(tmp_path, images=70, seeds=0)
    with pytest.raises(PipelineError, match="at least 70"):
        positive_control.positive_control(tmp_path, images=20)
    with pytest.raises(PipelineError, match="unknown arm"):
        positive_control.positive_control(tmp_path, images=70, arms=("glasses",))
    assert cli.main(["positive-control", "--out", str(tmp_path), "--dose", "2"]) == 2


@pytest.mark.positive_control_run
@pytest.mark.training
def test_a_tiny_positive_control_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "pc"
    argv = ["positive-control", "--out", str(out), "--images", "70", "--seeds", "2"]
    argv += ["--preset", "tiny", "--dose", "0.5"]
    assert cli.main(argv) == 0
    result = json.loads((out / positive_control.RESULT_NAME).read_text())
    assert list(result["arms"]) == list(positive_control.ARMS)
    assert result["seeds"] == [71, 72] and result["dose"] == 0.5
    for arm, figures in result["arms"].items():
        assert sorted(figures["per_seed"]) == ["71", "72"]
        for k, value in figures["se_cbir - control"].items():
            assert value["ci_low"] <= value["estimate"] <= value["ci_high"]
            mean = np.mean(
                [s["se_cbir"][k] - s["control"][k] for s in figures["per_seed"].values()]
            )
            assert value["estimate"] == pytest.approx(mean), arm
    for seed in ("71", "72"):
        game = result["ringed"][seed]["pointing_game"]
        assert 0 <= game["hit_rate"] <= 1 and game["mass_ratio"] > 0
    # The mask arm's 4th channel is the index mask, for half of the images, zero for the rest.
    maps = [read(p) for p in sorted((out / "seed_71" / "mask" / "saliency").glob("*.png"))]
    masks = [read(p) for p in sorted((out / "data" / "masks").glob("*.png"))]
    given = [(m == k).all() and m.any() for m, k in zip(maps, masks, strict=True)]
    zero = [not m.any() for m in maps]
    assert sum(given) == 35 and sum(zero) == 35
    # Everything is done: a second call only re-reads and re-scores.
    assert cli.main(argv) == 0
