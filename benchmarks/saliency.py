"""Benchmark: batched saliency extraction against one tf-explain call per image.

Model: the demo classifier (EfficientNetB0, random weights, 64 px, the thesis head).
Variants, interleaved round by round on a shared machine (medians reported):

- `saliency_maps`: ours, fixed-shape batches, one traced gradient graph per model;
- tf-explain per image, as documented: `VanillaGradients().explain((image[None], None),
  model, class_index)`. Each call builds a new score model, so tf.function traces the
  gradient graph again on every call; it is timed on a few images only;
- tf-explain per image with its score model built once (`explain_score_model`): traces once
  per class (warmed up before timing), then one image per gradient call.

Run: .venv/bin/python benchmarks/saliency.py [--images 256] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import tensorflow as tf
from tf_explain.core.vanilla_gradients import VanillaGradients

from training.config import get_config
from training.model import build_classifier
from training.saliency import normalise_gradients, saliency_maps

CLASSES = 7


def per_second(count: int, seconds: float) -> float:
    """Images per second."""
    return count / seconds


def main() -> None:
    """Time the three variants and print images/s and the ratios to ours."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="images per batched run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-images", type=int, default=1, help="per round, explain()")
    parser.add_argument("--warm-images", type=int, default=14, help="per round, score model")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")

    cfg = get_config("demo")
    model = build_classifier(cfg)
    rng = np.random.default_rng(0)
    size = cfg.image_size
    images = rng.integers(0, 256, (args.images, size, size, 3)).astype(np.uint8)
    classes = rng.integers(0, CLASSES, args.images)
    print(f"{cfg.backbone} at {size} px, batch {cfg.saliency_batch}, {args.images} images")

    start = time.perf_counter()
    ours = saliency_maps(model, images, classes, cfg.saliency_batch)
    print(f"ours, first call (traces the gradient graph): {time.perf_counter() - start:.1f} s")

    explainer = VanillaGradients()
    scores = explainer.get_score_model(model)
    for c in range(CLASSES):  # one trace per class, outside the timings
        VanillaGradients.compute_gradients(images[:1].astype(np.float32), scores, c)

    rates: dict[str, list[float]] = {"ours": [], "explain()": [], "score model": []}
    worst = 0
    for round_ in range(args.rounds):
        start = time.perf_counter()
        saliency_maps(model, images, classes, cfg.saliency_batch)
        rates["ours"].append(per_second(args.images, time.perf_counter() - start))

        picks = rng.choice(args.images, args.warm_images, replace=False)
        start = time.perf_counter()
        for i in picks:
            image = images[i][None].astype(np.float32)
            explainer.explain_score_model((image, None), scores, int(classes[i]))
        rates["score model"].append(per_second(len(picks), time.perf_counter() - start))
        # The same gradients, normalised our way, agree with our batched maps.
        for i in picks[:3]:
            grads = VanillaGradients.compute_gradients(
                images[i][None].astype(np.float32), scores, int(classes[i])
            ).numpy()
            diff = np.abs(normalise_gradients(grads)[0].astype(int) - ours[i])
            worst = max(worst, int(diff.max()))

        start = time.perf_counter()
        for i in range(args.cold_images):
            j = (round_ * args.cold_images + i) % args.images
            explainer.explain((images[j][None].astype(np.float32), None), model, int(classes[j]))
        rates["explain()"].append(per_second(args.cold_images, time.perf_counter() - start))
        print(
            f"round {round_ + 1}: "
            + ", ".join(f"{name} {values[-1]:.2f}/s" for name, values in rates.items()),
            flush=True,
        )

    base = statistics.median(rates["ours"])
    print(f"\n{'variant':<40} {'images/s':>9} {'ours is x faster':>17}")
    labels = {
        "ours": "saliency_maps (batched)",
        "score model": "tf-explain per image, score model reused",
        "explain()": "tf-explain explain() per image",
    }
    for name, label in labels.items():
        rate = statistics.median(rates[name])
        print(f"{label:<40} {rate:>9.2f} {base / rate:>17.1f}")
    print(f"largest difference to per-image tf-explain gradients: {worst} grey level(s)")


if __name__ == "__main__":
    main()
