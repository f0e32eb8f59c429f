"""Benchmark: the training input pipeline and step, each change of issue 25 beside its baseline.

At a preset's real size (thesis: 380 px) on random uint8 images held in memory, as a run
holds them. Every section runs its variants interleaved round by round on a shared machine
and reports medians and the ratio to the section's baseline (the first variant):

- augmentation: per stage ("rgb" with the preset's augmentation, "rgbs" with the geometric
  one on image + map), the tf.data pipeline without augmentation (floor), augmentation as a
  tf.data map on the host's cores (pipeline), augmentation inside a compiled function as the
  GPU's training step runs it (step), and for "rgb" the thesis's albumentations list on the
  host (thesis);
- control: the control stage's input, image and zero map joined per batch in NumPy (before)
  against the pre-stacked 4-channel array gathered per batch (after);
- dtype: batches cast to float32 on the host (before) against uint8 batches cast by the step
  (after), with the bytes per batch that would cross to a GPU;
- xla: training steps per second of the `--model-preset`'s classifier, plain graph against
  XLA (`jit_compile`), compile time excluded;
- resume: predictions per second of a model saved under mixed precision and loaded in a
  float32 process, as Keras loads it (float16 layers, before) and as `model.load_model` does
  (a float32 copy, after).

Run: .venv/bin/python benchmarks/input_pipeline.py [--preset thesis] [--images 256]
     [--batch 32] [--rounds 3] [--sections augmentation,control,dtype,xla,resume]
     [--model-preset demo] [--steps 5]
"""

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import tensorflow as tf

from training.config import Config, get_config
from training.train import augmenter, make_dataset

SECTIONS = ("augmentation", "control", "dtype", "xla", "resume")


def rate(dataset: tf.data.Dataset, transform: Callable | None = None) -> float:
    """Images per second of one pass over `dataset`, after `transform` if given."""
    count = 0
    start = time.perf_counter()
    for x, _ in dataset:
        if transform is not None:
            x = transform(x)
        count += int(x.shape[0])
        _ = x.numpy()[0, 0, 0, 0]  # the batch really exists
    return count / (time.perf_counter() - start)


def compare(
    title: str, variants: dict[str, Callable[[], float]], rounds: int, unit: str = "images/s"
) -> dict[str, float]:
    """Run every variant once to warm up, then `rounds` interleaved rounds; print medians and
    the ratio of each to the first (the baseline); the medians."""
    for measure in variants.values():
        measure()  # warm-up: tracing, compilation, caches
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, measure in variants.items():
            results[name].append(measure())
    medians = {name: statistics.median(values) for name, values in results.items()}
    baseline = next(iter(medians.values()))
    print(f"{title}:")
    for name, median in medians.items():
        print(f"  {name:<22} {median:10.2f} {unit}  ({median / baseline:.3f} x the first)")
    return medians


def section_augmentation(cfg: Config, images: np.ndarray, maps: np.ndarray, args: Any) -> None:
    """Augmentation in tf.data, in the step, or the thesis's albumentations, beside the floor."""
    labels = np.arange(len(images)) % 7
    for stage in ("rgb", "rgbs"):
        stage_maps = maps if stage == "rgbs" else None
        augment = augmenter(cfg, stage)
        floor_set = make_dataset(images, labels, args.batch, maps=stage_maps)
        variants = {"floor": lambda s=floor_set: rate(s)}
        if augment is not None:
            pipeline_set = make_dataset(
                images, labels, args.batch, maps=stage_maps, augment=augment
            )
            in_step = tf.function(lambda x, a=augment: a(tf.cast(x, tf.float32)))
            variants["pipeline"] = lambda s=pipeline_set: rate(s)
            variants["step"] = lambda s=floor_set, f=in_step: rate(s, f)
        if stage == "rgb":
            thesis = augmenter(dataclasses.replace(cfg, augment="thesis"), "rgb")
            thesis_set = make_dataset(images, labels, args.batch, augment=thesis)
            variants["thesis (albumentations)"] = lambda s=thesis_set: rate(s)
        compare(f"augmentation, stage {stage} (augment={cfg.augment!r})", variants, args.rounds)


def section_control(images: np.ndarray, args: Any) -> None:
    """The control's zero map: joined per batch (before) or pre-stacked (after)."""
    labels = np.arange(len(images)) % 7
    zeros = np.zeros(images.shape[:3], np.uint8)
    stacked = np.concatenate([images, zeros[..., None]], axis=-1)
    joined_set = make_dataset(images, labels, args.batch, maps=zeros, shuffle=True)
    stacked_set = make_dataset(stacked, labels, args.batch, shuffle=True)
    compare(
        "control stage input",
        {
            "joined per batch": lambda: rate(joined_set),
            "pre-stacked": lambda: rate(stacked_set),
        },
        args.rounds,
    )


def section_dtype(images: np.ndarray, args: Any) -> None:
    """Batches cast to float32 on the host (before) or sent as uint8 (after)."""
    labels = np.arange(len(images)) % 7
    uint8_set = make_dataset(images, labels, args.batch, shuffle=True)
    float_set = uint8_set.map(lambda x, y: (tf.cast(x, tf.float32), y))
    for name, dataset in (("float32 on the host", float_set), ("uint8", uint8_set)):
        x, _ = next(iter(dataset))
        print(f"  {name}: {x.dtype.name} batch {tuple(x.shape)}, {x.numpy().nbytes:,} bytes")
    compare(
        "batch dtype (pipeline only; the bytes are what a GPU would receive)",
        {"float32 on the host": lambda: rate(float_set), "uint8": lambda: rate(uint8_set)},
        args.rounds,
    )


def section_xla(cfg: Config, args: Any) -> None:
    """Training steps per second of the model preset's classifier without and with XLA."""
    import keras

    from training import model as model_lib
    from training import train

    rng = np.random.default_rng(1)
    size = cfg.image_size
    x = tf.constant(rng.integers(0, 256, (args.batch, size, size, 3), np.uint8))
    y = tf.one_hot(np.arange(args.batch) % 7, 7)

    def stepper(jit: bool) -> Callable[[], float]:
        keras.utils.set_random_seed(0)
        classifier = model_lib.build_classifier(cfg)
        groups = train.layer_groups(classifier, "rgb")
        optimizers = train.make_optimizers(cfg, "rgb", groups, steps_per_epoch=1)
        step = train.make_train_step(
            classifier,
            tf.distribute.get_strategy(),
            optimizers,
            groups,
            train.make_loss(cfg),
            None,
            jit_compile=jit,
        )

        def measure() -> float:
            start = time.perf_counter()
            for _ in range(args.steps):
                float(step((x, y)))
            return args.steps / (time.perf_counter() - start)

        return measure

    compare(
        f"training step of {cfg.preset} ({cfg.backbone} at {size} px, batch {args.batch})",
        {"plain graph": stepper(False), "XLA": stepper(True)},
        args.rounds,
        unit="steps/s",
    )


def section_resume(cfg: Config, args: Any) -> None:
    """A mixed-precision model loaded on a CPU: float16 as saved, or float32 as loaded now."""
    import keras

    from training import model as model_lib

    folder = Path(tempfile.mkdtemp(prefix="resume-bench-"))
    keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(0)
    model_lib.save_model(model_lib.build_classifier(cfg), folder / "mixed.keras")
    keras.mixed_precision.set_global_policy("float32")
    as_saved = keras.models.load_model(folder / "mixed.keras", compile=False)
    as_loaded = model_lib.load_model(folder / "mixed.keras")
    for name, network in (("as saved", as_saved), ("model.load_model", as_loaded)):
        print(f"  {name}: computes in {network.get_layer('stem_conv').compute_dtype}")
    size = cfg.image_size
    batch = np.random.default_rng(2).integers(0, 256, (args.batch * 2, size, size, 3), np.uint8)

    def measure(network: Any) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            model_lib.predict(network, batch, args.batch)
            return len(batch) / (time.perf_counter() - start)

        return run

    compare(
        f"predictions of a mixed-precision {cfg.preset} model loaded in a float32 process",
        {"float16 (as saved)": measure(as_saved), "float32 (load_model)": measure(as_loaded)},
        args.rounds,
    )


def main() -> None:
    """Run the chosen sections and print their medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="thesis")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--model-preset", default="demo", help="the xla and resume sections'")
    parser.add_argument("--steps", type=int, default=5, help="training steps per xla round")
    args = parser.parse_args()
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    cfg = get_config(args.preset)
    size = cfg.image_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, size, size, 3), np.uint8)
    maps = rng.integers(0, 256, (args.images, size, size), np.uint8)
    print(
        f"preset {cfg.preset}: {args.images} images at {size} px, batch {args.batch}, "
        f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}"
    )
    if "augmentation" in sections:
        section_augmentation(cfg, images, maps, args)
    if "control" in sections:
        section_control(images, args)
    if "dtype" in sections:
        section_dtype(images, args)
    model_cfg = dataclasses.replace(get_config(args.model_preset), weights=None)
    if "xla" in sections:
        section_xla(model_cfg, args)
    if "resume" in sections:
        section_resume(model_cfg, args)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
