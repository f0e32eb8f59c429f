"""Saliency maps by vanilla gradients (thesis section 3.1), stored as 8-bit grayscale PNGs.

The gradient of one class score (softmax removed, via tf-explain's `get_score_model`) with
respect to the input pixels, always computed in float32: the ground-truth class for
training images, the predicted class for validation and test images (the caller passes one
class per image). Validation maps follow the test images because the 4-channel model is
selected on validation: maps derived from the true label would let that choice see the
answer through its input, which a query never offers.

tf-explain's own post-processing (`transform_to_normalized_grayscale`) standardises over
the whole batch and casts to uint8, which wraps around; by default we keep only its channel
sum and normalise each image on its own instead (`normalise_gradients`). High value = salient.
`scaling="tf_explain"` (thesis-replica) applies tf-explain's own function to each image alone
(`tf_explain_scaling`): the thesis's scale, without a map depending on its batch.
"""

import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from numpy.typing import NDArray
from PIL import Image
from tf_explain.core.vanilla_gradients import VanillaGradients
from tf_explain.utils.image import transform_to_normalized_grayscale

from training.errors import PipelineError
from training.kerastypes import KerasModel

# The map's 255 is this percentile of the image's own gradient magnitudes; the few pixels
# above it saturate. Vanilla gradients are heavy-tailed, so scaling by the plain maximum
# would leave almost the whole map near 0 because of a handful of pixels.
PERCENTILE = 99.0

# Traced gradient functions per model and batch shape: tracing an EfficientNet's gradient
# takes seconds, so repeated calls on the same model (splits, tests) reuse the graph.
_TRACED: "weakref.WeakKeyDictionary[KerasModel, dict[tuple[int, ...], Callable[..., Any]]]" = (
    weakref.WeakKeyDictionary()
)


def score_model(model: KerasModel) -> KerasModel:
    """The model without its final softmax `Activation`, so gradients are of class scores."""
    return VanillaGradients().get_score_model(model)


def float32_network(model: KerasModel) -> KerasModel:
    """`model` itself, or a float32 copy of it if it computes in float16 (mixed precision).

    Vanilla gradients back-propagated through float16 layers without loss scaling underflow
    to zero in many pixels; the maps are defined on the float32 network.
    """
    from training.model import float32_copy, is_mixed

    return float32_copy(model) if is_mixed(model) else model


def predicted_classes(
    model: KerasModel, images: NDArray[Any], batch_size: int
) -> NDArray[np.int64]:
    """Index of the most probable class for each image (for test images' saliency maps)."""
    predictions: list[NDArray[Any]] = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], dtype=np.float32)
        predictions.append(np.asarray(model(batch, training=False)).argmax(axis=1))
    classes: NDArray[np.int64] = np.concatenate(predictions).astype(np.int64)
    return classes


def normalise_gradients(
    gradients: NDArray[Any], percentile: float = PERCENTILE
) -> NDArray[np.uint8]:
    """uint8 maps (N, H, W): |gradient| summed over channels, scaled per image to 0..255.

    255 is the image's own `percentile` of its magnitudes (its maximum if that percentile is
    0), values above are clipped rather than wrapped, and an all-zero gradient gives an
    all-zero map. No statistic crosses images, so a map never depends on its batch.
    """
    gradients = np.asarray(gradients, dtype=np.float32)
    if gradients.ndim == 4:
        magnitude = np.abs(gradients).sum(axis=-1)
    elif gradients.ndim == 3:
        magnitude = np.abs(gradients)
    else:
        raise ValueError(f"expected (N, H, W[, C]) gradients, got shape {gradients.shape}")
    flat = magnitude.reshape(len(magnitude), -1)
    scale = np.percentile(flat, percentile, axis=1) if flat.shape[1] else np.zeros(len(flat))
    scale = np.where(scale > 0, scale, flat.max(axis=1, initial=0.0))
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    scaled = magnitude / safe[:, None, None] * 255.0
    maps: NDArray[np.uint8] = np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    return maps


def tf_explain_scaling(gradients: NDArray[Any]) -> NDArray[np.uint8]:
    """uint8 maps (N, H, W) as tf-explain scales them, each image on its own.

    tf-explain's `transform_to_normalized_grayscale` (channel sum of |gradient|, then
    `per_image_standardization`, times 255, cast to uint8), called on one image at a time:
    on a whole batch it standardises over the batch. TensorFlow's cast truncates and wraps
    modulo 256 (measured: -300 -> 212, -1.5 -> 255, 300 -> 44), so pixels below the image's
    mean and the most salient ones land anywhere in 0..255; that is the thesis's input.
    """
    gradients = np.asarray(gradients, dtype=np.float32)
    if gradients.ndim == 3:
        gradients = gradients[..., None]
    if gradients.ndim != 4:
        raise ValueError(f"expected (N, H, W[, C]) gradients, got shape {gradients.shape}")
    maps = np.empty(gradients.shape[:3], dtype=np.uint8)
    for row, one in enumerate(gradients):
        maps[row] = transform_to_normalized_grayscale(tf.abs(tf.constant(one[None])))[0].numpy()
    return maps


SCALINGS: dict[str, Callable[[NDArray[Any]], NDArray[np.uint8]]] = {
    "p99": normalise_gradients,
    "tf_explain": tf_explain_scaling,
}


def _gradient_function(scores: Any, batch_shape: tuple[int, ...]) -> Any:
    """A traced function: d score[i, class_i] / d image_i for a fixed-shape batch.

    Summing the selected scores before differentiating gives every image the gradient of
    its own score, because in inference mode no image's score depends on another image (the
    same quantity tf-explain's `compute_gradients` gives per class, in one pass for all).
    """

    @tf.function(
        input_signature=[
            tf.TensorSpec(batch_shape, tf.float32),
            tf.TensorSpec((batch_shape[0],), tf.int32),
        ]
    )
    def gradients(images: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = scores(images, training=False)
            selected = tf.gather(logits, classes, axis=1, batch_dims=1)
        return tape.gradient(selected, images)

    return gradients


def saliency_maps(
    model: KerasModel,
    images: NDArray[Any],
    classes: NDArray[Any],
    batch_size: int,
    scaling: str = "p99",
) -> NDArray[np.uint8]:
    """uint8 saliency maps (N, H, W) of `images` for one class index per image.

    `scaling`: "p99" (`normalise_gradients`) or "tf_explain" (`tf_explain_scaling`).
    Every batch is padded to `batch_size`, so each image goes through the same
    fixed-shape computation whether it comes alone or with others: its map is identical
    either way (and the gradient graph is traced once).
    """
    images = np.asarray(images)
    classes = np.asarray(classes).astype(np.int32).ravel()
    if images.ndim != 4:
        raise ValueError(f"expected images (N, H, W, C), got shape {images.shape}")
    if len(classes) != len(images):
        raise ValueError(f"{len(images)} images but {len(classes)} classes")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, not {scaling!r}")
    scale = SCALINGS[scaling]
    if len(images) == 0:
        return np.zeros((0, *images.shape[1:3]), dtype=np.uint8)
    outputs = int(model.output_shape[-1])
    if classes.min() < 0 or classes.max() >= outputs:
        raise ValueError(f"class indices must be in 0..{outputs - 1}")
    shape = (batch_size, *images.shape[1:])
    traced = _TRACED.setdefault(model, {})
    if shape not in traced:
        traced[shape] = _gradient_function(score_model(float32_network(model)), shape)
    gradients = traced[shape]

    maps = np.empty(images.shape[:3], dtype=np.uint8)
    for start in range(0, len(images), batch_size):
        batch = np.zeros((batch_size, *images.shape[1:]), dtype=np.float32)
        chosen = np.zeros(batch_size, dtype=np.int32)
        count = min(batch_size, len(images) - start)
        batch[:count] = images[start : start + count]
        chosen[:count] = classes[start : start + count]
        grads = gradients(tf.constant(batch), tf.constant(chosen)).numpy()
        maps[start : start + count] = scale(grads[:count])
    return maps


def write_maps(folder: Path, image_ids: Sequence[str], maps: NDArray[np.uint8]) -> None:
    """Save each map as `<folder>/<image_id>.png`, 8-bit grayscale."""
    maps = np.asarray(maps)
    if maps.dtype != np.uint8 or maps.ndim != 3:
        raise ValueError(f"expected uint8 maps (N, H, W), got {maps.dtype} {maps.shape}")
    if len(image_ids) != len(maps):
        raise ValueError(f"{len(image_ids)} ids but {len(maps)} maps")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, saliency in zip(image_ids, maps, strict=True):
        Image.fromarray(saliency).save(folder / f"{image_id}.png")


def read_maps(folder: Path, image_ids: Sequence[str], size: int) -> NDArray[np.uint8]:
    """Load `<folder>/<image_id>.png` maps as uint8 (N, size, size), resized if needed."""
    folder = Path(folder)
    missing = [i for i in image_ids if not (folder / f"{i}.png").is_file()]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise PipelineError(f"{len(missing)} saliency map(s) missing in {folder}: {shown}")
    maps = np.empty((len(image_ids), size, size), dtype=np.uint8)
    for row, image_id in enumerate(image_ids):
        path = folder / f"{image_id}.png"
        try:
            with Image.open(path) as image:
                gray = image.convert("L")
                if gray.size != (size, size):
                    gray = gray.resize((size, size), Image.Resampling.BILINEAR)
                maps[row] = np.asarray(gray)
        except OSError as error:
            raise PipelineError(f"cannot read saliency map {path}: {error}") from error
    return maps
