"""Benchmark: images/s of each training stage's input pipeline, beside the no-augmentation floor.

At a preset's real size (thesis: 380 px) on random uint8 images held in memory, as a run
holds them. For each stage ("rgb" with the preset's augmentation, "rgbs" with the
geometric one on image + map), three variants, interleaved round by round on a shared
machine (medians reported):

- floor: the tf.data pipeline without augmentation (gather, cast, one-hot);
- pipeline: augmentation as a tf.data map, on the host's CPU cores (the CPU default);
- step: the floor's batches, augmented inside a compiled function as the training step does
  it (the GPU default: there it runs on the accelerator; on this CPU it shares its cores).

Run: .venv/bin/python benchmarks/input_pipeline.py [--preset thesis] [--images 256]
     [--batch 32] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import tensorflow as tf

from training.config import get_config
from training.train import augmenter, make_dataset


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


def main() -> None:
    """Print images/s per stage and variant, and the ratio to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="thesis")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = get_config(args.preset)
    size = cfg.image_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, size, size, 3), np.uint8)
    maps = rng.integers(0, 256, (args.images, size, size), np.uint8)
    labels = np.arange(args.images) % 7
    print(
        f"preset {cfg.preset}: {args.images} images at {size} px, batch {args.batch}, "
        f"augment={cfg.augment!r}, {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}"
    )
    for stage in ("rgb", "rgbs"):
        stage_maps = maps if stage == "rgbs" else None
        augment = augmenter(cfg, stage)
        floor_set = make_dataset(images, labels, args.batch, maps=stage_maps)
        pipeline_set = make_dataset(images, labels, args.batch, maps=stage_maps, augment=augment)
        in_step = tf.function(augment)
        rate(floor_set), rate(pipeline_set), rate(floor_set, in_step)  # warm-up and tracing
        results: dict[str, list[float]] = {"floor": [], "pipeline": [], "step": []}
        for _ in range(args.rounds):
            results["floor"].append(rate(floor_set))
            results["pipeline"].append(rate(pipeline_set))
            results["step"].append(rate(floor_set, in_step))
        floor = statistics.median(results["floor"])
        print(f"stage {stage}:")
        for name, values in results.items():
            median = statistics.median(values)
            print(f"  {name:<9} {median:9.1f} images/s  ({median / floor:.3f} x the floor)")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
