"""`python -m training smoke`: every stage of a preset at its real size, one step each.

The thesis preset runs with mixed precision forced, so the GPU's float16 code path
(augmentation, loss scaling, saliency, the 4-channel model and the control) runs in CI: in
a step of its own in `.ci/run` (`-m thesis_smoke`), since EfficientNetB4 at 380 px takes many
CPU minutes and `make test` must stay short.
"""

import dataclasses
from pathlib import Path

import pytest

from training import cli, smoke
from training.bundle import validate_bundle
from training.config import PRESETS, get_config
from training.errors import PipelineError

pytestmark = pytest.mark.training


def run_smoke(preset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """Run the CLI, check the bundle and the report; the printed output."""
    argv = ["smoke", "--preset", preset, "--images", "21", "--out", str(tmp_path), *flags]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"smoke test of preset {preset!r} passed" in printed
    assert len(validate_bundle(tmp_path / "run" / "study").queries) > 0
    for stage in ("rgb", "saliency", "rgbs", "control", "features", "study"):
        assert f"[{stage}] done" in printed
    cfg = get_config(preset)
    assert f"{cfg.backbone} at {cfg.image_size} px" in printed
    return printed


@pytest.mark.thesis_smoke
def test_smoke_of_the_thesis_preset_under_mixed_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = run_smoke("thesis", tmp_path, capsys, "--mixed-precision")
    assert "precision mixed_float16" in printed
    assert "WARNING" not in printed  # the smoke test is meant for a CPU


@pytest.mark.long_pipeline
@pytest.mark.parametrize("preset", ["demo", "tiny"])
def test_smoke_of_the_small_presets(
    preset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "precision float32" in run_smoke(preset, tmp_path, capsys)


def test_smoke_configuration_is_one_step_with_random_weights() -> None:
    for name in PRESETS:
        cfg = smoke.smoke_config(get_config(name), train_images=7)
        assert cfg.weights is None and cfg.batch_size == 7
        assert cfg.epochs_rgb == cfg.epochs_rgbs == 1
        assert (cfg.backbone, cfg.image_size) == (
            get_config(name).backbone,
            get_config(name).image_size,
        )
    with pytest.raises(PipelineError, match="at least 21"):
        smoke.smoke("tiny", images=10, mixed=False)


def test_the_image_level_split_gets_enough_images_to_hold_every_class(tmp_path: Path) -> None:
    # thesis-replica splits by image, 80/10/10 stratified: 21 images leave 2 per held-out part.
    cfg = get_config("thesis-replica")
    assert smoke.images_needed(cfg, 21) == 70
    assert smoke.images_needed(get_config("thesis"), 21) == 21  # by lesion: 3 per class do
    small = dataclasses.replace(cfg, image_size=16)
    train = smoke.write_data(tmp_path, smoke.images_needed(cfg, 21), small)
    assert train == 56
    assert smoke.smoke_config(small, train).batch_size == min(cfg.batch_size, smoke.SMOKE_BATCH)
