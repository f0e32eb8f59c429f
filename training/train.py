"""Training of both classifiers as in thesis section 3.3, resumable, on every GPU present.

A custom loop (GradientTape + tf.function) with two Adam optimizers: one for the pre-trained
layers and one, `lr_factor` times faster, for the new ones. Adam divides each step by the
gradient's own scale, so multiplying gradients would change nothing: per-group learning rates
need separate optimizers. Both follow the same per-step schedule (linear ramp-up to
`rampup_peak` times the initial rate over `rampup_epochs`, then `decay` per epoch).

Everything of a stage lives in its folder: `checkpoints/` (model, optimizers, epoch, best
score; rerunning continues after the last finished epoch), `best.keras` (best validation
macro sensitivity) and `history.json`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from training.config import Config
from training.errors import PipelineError
from training.metrics import classification_metrics
from training.model import (
    NUM_CLASSES,
    augment_placement,
    fast_layer_names,
    finalize_normalization,
    get_strategy,
    load_model,
    predict,
    save_model,
    use_jit,
)

__all__ = [
    "RampUpExponentialDecay",
    "augmenter",
    "layer_groups",
    "make_dataset",
    "make_optimizers",
    "make_train_step",
    "predict",
    "train_classifier",
]

BEST_MODEL = "best.keras"
HISTORY = "history.json"
CHECKPOINTS = "checkpoints"


class RampUpExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear ramp-up from `initial` to `peak * initial`, then exponential decay per epoch."""

    def __init__(
        self,
        initial: float,
        peak: float,
        rampup_epochs: int,
        decay: float,
        steps_per_epoch: int,
    ) -> None:
        self.initial = float(initial)
        self.peak = float(peak)
        self.rampup_epochs = int(rampup_epochs)
        self.decay = float(decay)
        self.steps_per_epoch = max(1, int(steps_per_epoch))

    def __call__(self, step: Any) -> Any:
        """The rate at optimizer step `step` (fractional epochs: the rate changes every step)."""
        epoch = keras.ops.cast(step, "float32") / float(self.steps_per_epoch)
        top = self.initial * self.peak
        ramp = self.initial + (top - self.initial) * epoch / float(max(self.rampup_epochs, 1))
        decayed = top * keras.ops.power(self.decay, epoch - float(self.rampup_epochs))
        return keras.ops.where(epoch < float(self.rampup_epochs), ramp, decayed)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, for serialisation."""
        return {
            "initial": self.initial,
            "peak": self.peak,
            "rampup_epochs": self.rampup_epochs,
            "decay": self.decay,
            "steps_per_epoch": self.steps_per_epoch,
        }


def _stage_settings(cfg: Config, stage: str) -> tuple[int, float, float]:
    """Epochs, initial learning rate and fast-group factor of a stage."""
    if stage == "rgb":
        return cfg.epochs_rgb, cfg.lr_rgb, cfg.lr_factor_rgb
    if stage == "rgbs":
        return cfg.epochs_rgbs, cfg.lr_rgbs, cfg.lr_factor_rgbs
    raise PipelineError(f"unknown training stage {stage!r}; expected 'rgb' or 'rgbs'")


def layer_groups(model: keras.Model, stage: str) -> tuple[list[Any], list[Any]]:
    """The trainable variables split into (pre-trained, new) for the two optimizers."""
    fast_names = set(fast_layer_names(model, stage))
    slow: list[Any] = []  # Keras variables
    fast: list[Any] = []
    for layer in model.layers:
        (fast if layer.name in fast_names else slow).extend(layer.trainable_weights)
    return slow, fast


# Loss ----------------------------------------------------------------------------------------

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before the logarithm


def focal_loss(alpha: float, gamma: float) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The thesis's eq. 3.4: per image, the binary focal term summed over all classes.

    L = sum_i -alpha_t (1 - p_t)^gamma log(p_t), with p_t = p_i and alpha_t = alpha for the
    true class, p_t = 1 - p_i and alpha_t = 1 - alpha for every other class (eq. 3.5), on
    the softmax output. Keras's CategoricalFocalCrossentropy keeps only the true-class term,
    where alpha is a constant factor that Adam cancels. Computed in float32.
    """

    def loss(targets: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
        y = tf.cast(targets, tf.float32)
        p = tf.clip_by_value(tf.cast(probabilities, tf.float32), EPSILON, 1.0 - EPSILON)
        p_t = y * p + (1.0 - y) * (1.0 - p)
        alpha_t = y * alpha + (1.0 - y) * (1.0 - alpha)
        return tf.reduce_sum(-alpha_t * tf.pow(1.0 - p_t, gamma) * tf.math.log(p_t), axis=-1)

    return loss


def make_loss(cfg: Config) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The per-image training loss named by cfg.loss."""
    if cfg.loss == "focal":
        return focal_loss(cfg.focal_alpha, cfg.focal_gamma)
    if cfg.loss == "categorical_focal":
        keras_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = (
            keras.losses.CategoricalFocalCrossentropy(
                alpha=cfg.focal_alpha, gamma=cfg.focal_gamma, reduction=None
            )
        )
        return keras_loss
    raise PipelineError(f"unknown loss {cfg.loss!r}; expected focal or categorical_focal")


# Augmentation --------------------------------------------------------------------------------


def _random_rot90(images: tf.Tensor) -> tf.Tensor:
    """Rotate each (square) image of a batch by its own random multiple of 90 degrees."""
    turns = tf.random.uniform([tf.shape(images)[0]], 0, 4, dtype=tf.int32)
    rotated = tf.stack([tf.image.rot90(images, k) for k in range(4)], axis=1)
    return tf.gather(rotated, turns, axis=1, batch_dims=1)


def augmenter(cfg: Config, stage: str) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """The batch augmentation of a stage (Keras preprocessing layers), or None.

    "rgb": cfg.augment "strong" (geometry, colour, blur, noise, erasing), "light" (geometry and
    mild colour), "thesis" (`thesis_augmenter`, on the host) or "none". "rgbs" (any but "none", the
    thesis's 4-channel augmentation too): rotations (90-degree multiples and small angles) and flips
    only, on the stacked image+map tensor so both move together; none if cfg.augment is "none".
    Every layer computes in float32 whatever the global (mixed) precision policy: pixels
    0..255 are not float16 material, and blur, erasing and the noise step mix in float32
    tensors of their own.
    """
    layers = keras.layers
    f32 = {"dtype": "float32"}
    if cfg.augment == "none":
        return None
    if stage == "rgb" and cfg.augment == "thesis":
        return thesis_augmenter(cfg.image_size, cfg.seed)
    if stage == "rgbs":
        geometry = keras.Sequential(
            [
                layers.RandomFlip("horizontal_and_vertical", **f32),
                layers.RandomRotation(1 / 24, **f32),
            ]
        )
        return lambda x: geometry(_random_rot90(tf.cast(x, tf.float32)), training=True)
    pixel_range = (0, 255)
    geometric = [
        layers.RandomFlip("horizontal_and_vertical", **f32),
        layers.RandomRotation(0.5, **f32),
    ]
    if cfg.augment == "light":
        chain = [
            *geometric,
            layers.RandomZoom(0.1, **f32),
            layers.RandomBrightness(0.1, value_range=pixel_range, **f32),
            layers.RandomContrast(0.1, value_range=pixel_range, **f32),
        ]
    elif cfg.augment == "strong":
        chain = [
            *geometric,
            layers.RandomTranslation(0.1, 0.1, **f32),
            layers.RandomZoom((-0.2, 0.1), **f32),
            layers.RandomContrast(0.2, value_range=pixel_range, **f32),
            layers.RandomBrightness(0.2, value_range=pixel_range, **f32),
            layers.RandomHue(0.05, value_range=pixel_range, **f32),
            layers.RandomSaturation((0.35, 0.65), value_range=pixel_range, **f32),
            layers.RandomGaussianBlur(0.5, sigma=(0.1, 1.0), value_range=pixel_range, **f32),
            layers.RandomErasing(0.5, scale=(0.02, 0.1), value_range=pixel_range, **f32),
        ]
    else:
        raise PipelineError(f"augment must be strong, light, thesis or none, not {cfg.augment!r}")
    sequence = keras.Sequential(chain)
    noisy = cfg.augment == "strong"

    def augment(x: tf.Tensor) -> tf.Tensor:
        x = sequence(tf.cast(x, tf.float32), training=True)
        if noisy:  # Gaussian noise of a random strength per image, up to 6 grey levels
            strength = tf.random.uniform([tf.shape(x)[0], 1, 1, 1], 0.0, 6.0)
            x += strength * tf.random.normal(tf.shape(x))
        return tf.clip_by_value(x, 0.0, 255.0)

    return augment


# The fraction of each side that the thesis's random crop removes ("randomly cropping 10%").
THESIS_CROP = 0.1


def thesis_pipeline(size: int, seed: int) -> Any:
    """The thesis's augmentation list (section 3.3) as one albumentations pipeline.

    In the thesis's order: geometry (rotation, flips, shift, scale), noise (one of motion,
    median and Gaussian blur and Gaussian noise), distortions (one of optical, grid and
    elastic), brightness and contrast, colour (CLAHE; hue, saturation and value), then
    resizing, a random crop of 10 % and coarse dropout. The thesis names the transforms but
    not their magnitudes or probabilities: those here are ours, moderate for dermoscopy
    (about the strength of the "strong" Keras chain where the two overlap).
    """
    import albumentations as A
    import cv2

    grow = math.ceil(size / (1.0 - THESIS_CROP))
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.Affine(
                scale=(0.9, 1.1),
                translate_percent=(-0.1, 0.1),
                rotate=(-180, 180),
                border_mode=cv2.BORDER_REFLECT_101,
                p=0.85,
            ),
            A.OneOf(
                [
                    A.MotionBlur(blur_limit=5),
                    A.MedianBlur(blur_limit=5),
                    A.GaussianBlur(blur_limit=(3, 5)),
                    A.GaussNoise(std_range=(0.01, 0.025)),
                ],
                p=0.7,
            ),
            A.OneOf(
                [
                    A.OpticalDistortion(distort_limit=0.5),
                    A.GridDistortion(num_steps=5, distort_limit=0.3),
                    A.ElasticTransform(alpha=3.0, sigma=50.0),
                ],
                p=0.7,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.75),
            A.CLAHE(clip_limit=4.0, p=0.7),
            A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=20, val_shift_limit=10, p=0.5),
            A.Resize(grow, grow),
            A.RandomCrop(size, size),
            A.CoarseDropout(
                num_holes_range=(1, 8),
                hole_height_range=(0.02, 0.1),
                hole_width_range=(0.02, 0.1),
                fill=0,
                p=0.5,
            ),
        ],
        seed=seed,
    )


def thesis_augmenter(size: int, seed: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """A batch function running `thesis_pipeline` on each image on the host (uint8 in and out).

    albumentations works on NumPy arrays, so this runs as a tf.data map on the CPU cores
    (as in the thesis), never inside the compiled step; each image draws its own parameters.
    Its output stays uint8, so a GPU receives a quarter of float32's bytes. Not deterministic:
    tf.data's parallel calls draw from the one seeded pipeline in a racing order.
    """
    pipeline = thesis_pipeline(size, seed)

    def each(batch: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return np.stack([pipeline(image=image)["image"] for image in batch]).astype(np.uint8)

    def augment(x: tf.Tensor) -> tf.Tensor:
        out = tf.numpy_function(each, [tf.cast(x, tf.uint8)], tf.uint8, stateful=True)
        return tf.ensure_shape(out, x.shape)

    return augment


# Input pipeline ------------------------------------------------------------------------------


def make_dataset(
    images: NDArray[np.uint8],
    labels: NDArray[np.integer[Any]],
    batch_size: int,
    *,
    maps: NDArray[np.uint8] | None = None,
    augment: Callable[[tf.Tensor], tf.Tensor] | None = None,
    shuffle: bool = False,
    seed: int = 0,
    balanced: bool = False,
) -> tf.data.Dataset:
    """Batches of (uint8 pixels, one-hot labels) read from uint8 arrays.

    Pixels stay uint8 until the training step casts them on its device: a quarter of
    float32's bytes cross to a GPU (Keras's augmentation, where it runs here, returns float32).

    `balanced` (training only): each epoch draws as many images as the set holds, every
    class equally often (rare classes repeat, common ones are subsampled), in random order.

    Batches are gathered from the arrays by index, so nothing is copied into a TensorFlow
    constant (10k images at 380 px stay one 4.3 GB array). `maps` (N, H, W), if given, become
    the 4th channel, joined batch by batch in NumPy: a caller that can afford the memory passes
    4-channel images instead, whose gather is many times faster (benchmarks/input_pipeline.py).
    Shuffled training batches drop the remainder (no batch of one for batch norm) unless the
    set is smaller than a batch.
    """
    count, size = len(images), images.shape[1]
    if len(labels) != count or (maps is not None and len(maps) != count):
        raise PipelineError("images, labels and saliency maps differ in number")
    channels = images.shape[-1] + (0 if maps is None else 1)
    labels = np.asarray(labels, np.int32)

    def gather(index: NDArray[np.int64]) -> tuple[NDArray[np.uint8], NDArray[np.integer[Any]]]:
        batch = images[index]
        if maps is not None:
            batch = np.concatenate([batch, maps[index][..., None]], axis=-1)
        return batch.astype(np.uint8, copy=False), labels[index]

    def load(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch, label = tf.numpy_function(gather, [index], (tf.uint8, tf.int32), stateful=False)
        batch = tf.ensure_shape(batch, (None, size, size, channels))
        return batch, tf.one_hot(tf.ensure_shape(label, (None,)), NUM_CLASSES)

    if balanced:
        dataset = balanced_indices(labels, seed)
    else:
        dataset = tf.data.Dataset.range(count)
        if shuffle:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=shuffle and count >= batch_size)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        dataset = dataset.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def balanced_indices(labels: NDArray[np.integer[Any]], seed: int) -> tf.data.Dataset:
    """One epoch of row indices with every present class drawn equally often, reshuffled."""
    per_class = []
    for number, name in enumerate(np.unique(labels)):
        rows = np.flatnonzero(labels == name).astype(np.int64)
        per_class.append(
            tf.data.Dataset.from_tensor_slices(rows)
            .shuffle(len(rows), seed=seed + number, reshuffle_each_iteration=True)
            .repeat()
        )
    mixed = tf.data.Dataset.sample_from_datasets(
        per_class, seed=seed, rerandomize_each_iteration=True
    )
    return mixed.take(len(labels))


# Mixed precision -----------------------------------------------------------------------------


class _DynamicLossScale(tf.Module):
    """Loss scaling for float16 shared by both optimizers (Keras's wraps only one optimizer).

    Halve the scale and skip the step on non-finite gradients; double it after 2000 good steps.
    """

    def __init__(self, initial: float = 2.0**15, growth_steps: int = 2000) -> None:
        super().__init__()
        self.scale = tf.Variable(initial, trainable=False, dtype=tf.float32)
        self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64)
        self.growth_steps = growth_steps

    def update(self, finite: tf.Tensor) -> None:
        """Adjust the scale after a step whose gradients were (not) all finite."""
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_steps)
        self.scale.assign(
            tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale), self.scale / 2.0)
        )
        self.good_steps.assign(tf.where(finite & ~grow, self.good_steps + 1, 0))


# The training loop ---------------------------------------------------------------------------


def _validate_inputs(
    model: keras.Model, images: NDArray[Any], maps: NDArray[Any] | None, what: str
) -> None:
    """Raise a PipelineError unless the arrays fit the model's input."""
    expected = tuple(model.input_shape[1:])
    channels = images.shape[-1] + (0 if maps is None else 1)
    shape = (*images.shape[1:-1], channels)
    if images.ndim != 4 or shape != expected:
        raise PipelineError(f"{what} images have shape {shape}, the model expects {expected}")


def make_optimizers(
    cfg: Config, stage: str, groups: tuple[list[Any], list[Any]], steps_per_epoch: int
) -> tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
    """Two Adams, built: (pre-trained layers at the initial rate, new layers `factor` faster)."""
    _, initial_rate, factor = _stage_settings(cfg, stage)
    optimizers = []
    for rate, name, variables in (
        (initial_rate, "pretrained_adam", groups[0]),
        (initial_rate * factor, "new_adam", groups[1]),
    ):
        schedule = RampUpExponentialDecay(
            rate, cfg.rampup_peak, cfg.rampup_epochs, cfg.decay, steps_per_epoch
        )
        optimizer = keras.optimizers.Adam(schedule, name=name)
        # Built now, outside any tf.function, so a checkpoint can restore its slots.
        optimizer.build(variables)
        optimizers.append(optimizer)
    return optimizers[0], optimizers[1]


def make_train_step(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    optimizers: tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer],
    groups: tuple[list[Any], list[Any]],
    loss_fn: keras.losses.Loss,
    loss_scale: _DynamicLossScale | None,
    augment: Callable[[tf.Tensor], tf.Tensor] | None = None,
    jit_compile: bool = False,
) -> Callable[[Any], tf.Tensor]:
    """A tf.function running one distributed step; returns the mean loss of the batch.

    Images arrive as uint8 (or float32 after augmentation in tf.data) and are cast to float32
    here, on each replica's device. `augment`, if given, runs inside the step on each
    replica's batch (on the accelerator, in float32), instead of in the tf.data pipeline on
    the host's CPU cores. `jit_compile`: the forward and backward pass (not the augmentation,
    whose image transforms XLA may lack) compiled by XLA, on each replica.

    Replicas only compute gradients; summing them and applying both optimizers happen in
    cross-replica context, where skipping a float16 step that overflowed is a plain tf.cond
    (a condition around the optimizers' own all-reduce inside a replica is not supported).
    """
    slow_vars, fast_vars = groups
    variables = slow_vars + fast_vars
    # The distributed (mirrored) variables are where the summed gradients must end up.
    destinations = [getattr(v, "value", v) for v in variables]

    def gradients(images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(targets, probabilities))
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = loss if loss_scale is None else loss * loss_scale.scale
        grads = tape.gradient(scaled, variables)
        if loss_scale is not None:
            grads = [g / loss_scale.scale for g in grads]
        return loss, grads

    forward_backward = tf.function(gradients, jit_compile=True) if jit_compile else gradients

    def replica_step(images: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        images = tf.cast(images, tf.float32)
        if augment is not None:
            images = augment(images)
        return forward_backward(images, targets)

    def apply(grads: list[Any]) -> tf.Tensor:
        optimizers[0].apply(grads[: len(slow_vars)], slow_vars)
        optimizers[1].apply(grads[len(slow_vars) :], fast_vars)
        return tf.constant(True)

    @tf.function
    def step(batch: Any) -> tf.Tensor:
        loss, grads = strategy.run(replica_step, args=batch)
        # The loss was divided by the global batch size, so the sum is the mean gradient.
        grads = strategy.extended.batch_reduce_to(
            tf.distribute.ReduceOp.SUM, list(zip(grads, destinations, strict=True))
        )
        if loss_scale is None:
            apply(grads)
        else:
            local = [strategy.experimental_local_results(g)[0] for g in grads]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in local])
            tf.cond(finite, lambda: apply(grads), lambda: tf.constant(False))
            loss_scale.update(finite)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

    traced: Callable[[Any], tf.Tensor] = step  # tf.function's result: untyped, as TensorFlow is
    return traced


def _read_history(path: Path, epochs_done: int) -> list[dict[str, Any]]:
    """The epochs recorded by a previous run, cut to those the checkpoint holds."""
    if not path.is_file():
        return []
    epochs: list[dict[str, Any]] = json.loads(path.read_text())["epochs"][:epochs_done]
    return epochs


def _write_history(
    path: Path, stage: str, epochs: list[dict[str, Any]], best: float, epochs_total: int
) -> None:
    """Write history.json: one entry per finished epoch plus the best epoch."""
    scores = [entry["val_macro_sensitivity"] for entry in epochs]
    best_epoch = int(np.argmax(scores)) + 1 if scores else None
    document = {
        "stage": stage,
        "epochs_planned": epochs_total,
        "best_epoch": best_epoch,
        "best_val_macro_sensitivity": best if scores else None,
        "epochs": epochs,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


@dataclass
class _StageState:
    """What a stage's checkpoint holds besides the model (optimizers, epochs done, best score,
    the loss scale), with its manager: kept together so that set-up, restore and the epoch
    loop agree on one set of tracked objects."""

    optimizers: tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]
    epoch: tf.Variable
    best: tf.Variable
    loss_scale: _DynamicLossScale | None
    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager


def _check_sets(
    model: keras.Model,
    train: tuple[NDArray[np.uint8], NDArray[np.integer[Any]]],
    val: tuple[NDArray[np.uint8], NDArray[np.integer[Any]]],
    maps: tuple[NDArray[np.uint8] | None, NDArray[np.uint8] | None],
) -> None:
    """Refuse arrays that do not fit the model, or an empty set, before anything is built:
    a mistake here would otherwise show up as a shape error deep inside a tf.function."""
    _validate_inputs(model, train[0], maps[0], "training")
    _validate_inputs(model, val[0], maps[1], "validation")
    if len(train[0]) == 0 or len(val[0]) == 0:
        raise PipelineError("training and validation sets must not be empty")


def _stage_state(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    cfg: Config,
    stage: str,
    groups: tuple[list[Any], list[Any]],
    steps: int,
    out_dir: Path,
) -> _StageState:
    """The stage's optimizers and counters, built under the strategy's scope, restored from
    `out_dir`'s checkpoint when there is one (so a rerun continues after the last epoch)."""
    mixed = model.get_layer("stem_conv").compute_dtype == "float16"
    with strategy.scope():
        optimizers = make_optimizers(cfg, stage, groups, steps)
        epoch = tf.Variable(0, trainable=False, dtype=tf.int64)
        best = tf.Variable(-1.0, trainable=False, dtype=tf.float64)
        loss_scale = _DynamicLossScale() if mixed else None
    tracked: dict[str, Any] = {
        "model": model,
        "pretrained_optimizer": optimizers[0],
        "new_optimizer": optimizers[1],
        "epoch": epoch,
        "best": best,
    }
    if loss_scale is not None:
        tracked["loss_scale"] = loss_scale
    checkpoint = tf.train.Checkpoint(**tracked)
    manager = tf.train.CheckpointManager(checkpoint, out_dir / CHECKPOINTS, max_to_keep=1)
    if manager.latest_checkpoint:
        _restore(checkpoint, manager, model, out_dir)
    return _StageState(optimizers, epoch, best, loss_scale, checkpoint, manager)


def _restore(
    checkpoint: tf.train.Checkpoint,
    manager: tf.train.CheckpointManager,
    model: keras.Model,
    out_dir: Path,
) -> None:
    """Restore the latest checkpoint, or say in one sentence that it belongs to another
    configuration: TensorFlow's own error names variables, not the cause."""
    try:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        # A restore writes the variables only; the normalisation must take them up.
        finalize_normalization(model)
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise PipelineError(
            f"the checkpoint in {out_dir / CHECKPOINTS} does not fit this model "
            f"(another configuration?); remove {out_dir} to train this stage afresh"
        ) from error


def _train_epoch(
    train_step: Callable[[Any], tf.Tensor], train_set: Any, steps: int, progress: Any
) -> list[float]:
    """One pass over the training set; the loss of every step. The progress bar shows all
    steps but the last, which the caller finalises together with the validation scores."""
    losses = []
    for number, batch in enumerate(train_set, start=1):
        losses.append(float(train_step(batch)))
        if number < steps:
            progress.update(number, [("loss", losses[-1])])
    return losses


def train_classifier(
    model: keras.Model,
    train: tuple[NDArray[np.uint8], NDArray[np.integer[Any]]],
    val: tuple[NDArray[np.uint8], NDArray[np.integer[Any]]],
    cfg: Config,
    out_dir: Path,
    stage: str,
    saliency: tuple[NDArray[np.uint8], NDArray[np.uint8]] | None = None,
    verbose: int = 1,
) -> keras.Model:
    """Train `model` for a stage ("rgb" or "rgbs"); return the best model by val macro sensitivity.

    `train`/`val`: (uint8 images (N, size, size, 3 or 4), int class indices (N,)).
    `saliency`: optional uint8 maps (N, size, size) for (train, val), stacked as channel 4.
    Resumes from `out_dir`'s checkpoint; a finished stage only loads and returns its best model.
    The returned model is `model` itself with the best weights, unless the best epoch ran
    before an interruption (then it is loaded from `best.keras`).
    """
    epochs = _stage_settings(cfg, stage)[0]
    train_maps, val_maps = saliency if saliency is not None else (None, None)
    _check_sets(model, train, val, (train_maps, val_maps))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    best_path, history_path = out_dir / BEST_MODEL, out_dir / HISTORY
    keras.utils.set_random_seed(cfg.seed)

    strategy = get_strategy()
    batch_size = cfg.batch_size
    steps = max(1, len(train[0]) // batch_size) if len(train[0]) >= batch_size else 1
    groups = layer_groups(model, stage)
    state = _stage_state(model, strategy, cfg, stage, groups, steps, out_dir)
    optimizers, best = state.optimizers, state.best
    done = int(state.epoch.numpy())
    if done >= epochs and best_path.is_file():
        if verbose:
            print(f"stage {stage}: all {epochs} epochs done, best model in {best_path}")
        return load_model(best_path)
    if done and verbose:
        print(f"stage {stage}: resuming after epoch {done} of {epochs}")

    in_step = augment_placement(cfg) == "step"
    with strategy.scope():  # the layers' random-seed state lives beside the model's variables
        augment = augmenter(cfg, stage)
    train_set = make_dataset(
        train[0],
        train[1],
        batch_size,
        maps=train_maps,
        augment=None if in_step else augment,
        shuffle=True,
        seed=cfg.seed + done,
        balanced=cfg.balanced,
    )
    train_set = strategy.experimental_distribute_dataset(train_set)
    loss_fn = make_loss(cfg)
    train_step = make_train_step(
        model,
        strategy,
        optimizers,
        groups,
        loss_fn,
        state.loss_scale,
        augment if in_step else None,
        jit_compile=use_jit(cfg),
    )
    val_images = val[0] if val_maps is None else np.concatenate([val[0], val_maps[..., None]], -1)
    val_truth = np.asarray(val[1])
    history = _read_history(history_path, done)
    best_weights = None

    for index in range(done, epochs):
        started = time.monotonic()
        rates = [float(opt.learning_rate.numpy()) for opt in optimizers]
        if verbose:
            print(f"stage {stage} epoch {index + 1}/{epochs}")
        progress = keras.utils.Progbar(
            steps, verbose=verbose, stateful_metrics=["val_acc", "val_macro_sens"]
        )
        losses = _train_epoch(train_step, train_set, steps, progress)
        predicted = predict(model, val_images, batch_size).argmax(axis=1)
        scores = classification_metrics(val_truth, predicted)
        accuracy, sensitivity = scores["accuracy"], scores["macro_sensitivity"]
        progress.update(
            steps,
            [("loss", losses[-1]), ("val_acc", accuracy), ("val_macro_sens", sensitivity)],
            finalize=True,
        )
        if sensitivity > float(best.numpy()):
            best.assign(sensitivity)
            save_model(model, best_path)
            best_weights = model.get_weights()
        history.append(
            {
                "epoch": index + 1,
                "loss": float(np.mean(losses)),
                "val_accuracy": accuracy,
                "val_macro_sensitivity": sensitivity,
                "learning_rate": rates[0],
                "learning_rate_new_layers": rates[1],
                "seconds": round(time.monotonic() - started, 2),
            }
        )
        _write_history(history_path, stage, history, float(best.numpy()), epochs)
        # The checkpoint is written last: an epoch counts as finished only once all is saved.
        state.epoch.assign(index + 1)
        state.manager.save(checkpoint_number=index + 1)
    if best_weights is None:  # the best epoch was before an interruption
        return load_model(best_path)
    model.set_weights(best_weights)
    return model
