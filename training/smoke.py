"""`python -m training smoke`: every stage of a preset, for real, in a minute or two.

A user runs it before committing a GPU for hours: the preset's backbone at its real
resolution, under its precision (`--mixed-precision` forces float16 on a CPU, where the
preset would choose float32), on a handful of synthetic images, one training step per
stage, random weights (nothing is downloaded). It must end with a valid study bundle.
"""

import argparse
import dataclasses
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

from training import bundle, data, pipeline, split, synth
from training.config import Config, get_config
from training.errors import PipelineError

MIN_IMAGES = 3 * len(data.CLASSES)  # one lesion per class in each of train, val and test
# Images per class that the preset's split needs: a lesion per class in each of train, val and
# test (lesion split); ten, so that the 10 % test and val parts still hold every class (the
# thesis's image-level 80/10/10 split, stratified).
PER_CLASS = {"lesion": 3, "image": 10}
# At most this many images per step: EfficientNetB4 at 380 px takes about 19 GB of host memory
# for a batch of 32 under float16 on a CPU, where the kernels fall back to Eigen.
SMOKE_BATCH = 16


def images_needed(cfg: Config, asked: int) -> int:
    """How many synthetic images the smoke test of `cfg` uses: `asked`, or more if its split
    needs more."""
    return max(asked, PER_CLASS[cfg.split_by] * len(data.CLASSES))


def smoke_config(cfg: Config, train_images: int) -> Config:
    """The preset cut to one epoch per stage (one batch when the images fit in the preset's
    batch size): random weights."""
    return dataclasses.replace(
        cfg,
        weights=None,
        epochs_rgb=1,
        epochs_rgbs=1,
        rampup_epochs=1,
        batch_size=min(train_images, cfg.batch_size, SMOKE_BATCH),
        saliency_batch=min(cfg.saliency_batch, 8),
    )


def write_data(folder: Path, images: int, cfg: Config) -> int:
    """The synthetic images at the preset's size; the number that the split puts in train."""
    per_class = math.ceil(images / len(data.CLASSES))
    synth.write_handful(folder, per_class, cfg.image_size, seed=cfg.seed)
    rows = data.load_metadata(folder / data.METADATA_NAME)
    if cfg.split_by == "lesion":
        mapping = split.split_by_lesion(rows, seed=cfg.split_seed)
    else:
        mapping = split.split_by_image(rows, seed=cfg.split_seed)
    return sum(part == "train" for part in mapping.values())


def report(cfg: Config, out: Path, policy: str, seconds: float, images: int) -> str:
    """The short report: stage times, the precision, the bundle's queries."""
    stages = json.loads((out / "timings.json").read_text())["stages"]
    summary = bundle.validate_bundle(out / "study")
    lines = [
        f"smoke test of preset {cfg.preset!r} passed: {cfg.backbone} at {cfg.image_size} px, "
        f"precision {policy}, {images} images, one step per stage",
        "  " + ", ".join(f"{name} {value:.1f} s" for name, value in stages.items() if value),
        f"  valid study bundle with {len(summary.queries)} queries; total {seconds:.1f} s",
    ]
    return "\n".join(lines)


def smoke(preset: str, images: int, mixed: bool, out: Path | None = None) -> str:
    """Run the smoke test of `preset`; its report. Raises on the first stage that fails."""
    if images < MIN_IMAGES:
        raise PipelineError(f"--images must be at least {MIN_IMAGES} (3 per class)")
    cfg = get_config(preset)
    images = images_needed(cfg, images)
    work = Path(tempfile.mkdtemp(prefix=f"smoke-{preset}-")) if out is None else Path(out)
    try:
        started = time.perf_counter()
        train_images = write_data(work / "data", images, cfg)
        cfg = smoke_config(cfg, train_images)
        policy = pipeline.announce(cfg, force_mixed=mixed, warn=False)
        pipeline.run(cfg, work / "data", work / "run", announced=True)
        return report(cfg, work / "run", policy, time.perf_counter() - started, images)
    finally:
        if out is None:
            shutil.rmtree(work, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    """`python -m training smoke`: print the report, or fail with the stage's error."""
    print(smoke(args.preset, args.images, args.mixed_precision, args.out), flush=True)
    return 0
