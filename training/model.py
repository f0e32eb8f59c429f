"""The classifiers of thesis section 3.1: EfficientNet with the thesis head, and its 4-channel twin.

The 3-channel model is `EfficientNet (include_top=False) -> GAP "features" -> batch norm ->
dropout -> dense 64 -> dropout -> dense 7 "logits" -> softmax "softmax"`, one flat functional
model so that every layer ("stem_conv", "features", ...) is reachable by name. The 4-channel
model is the same graph with a fourth input channel (the saliency map) whose stem weights start
at zero, so it begins by computing exactly what the 3-channel model computes.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from training.config import Config
from training.errors import PipelineError

NUM_CLASSES = 7
# ImageNet channel standard deviations: Keras's EfficientNet adds a Rescaling by
# 1/sqrt(stddev) after its Normalization layer, but only when built with weights="imagenet".
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
# The new head of the 3-channel model (thesis Figure 3.1), in graph order.
HEAD_LAYERS = ("features", "head_bn", "head_dropout_1", "head_dense", "head_dropout_2", "logits")
# Layers the 4-channel model adapts or whose input statistics change: they learn faster there.
# "First classification layer" (thesis 3.3) is read as the first head layer with weights.
FOUR_CHANNEL_HEAD_LAYERS = ("head_bn",)
_USE_CONFIG = "config"  # sentinel default for build_classifier's `weights`


@functools.cache
def get_strategy() -> tf.distribute.Strategy:
    """The distribution strategy: all GPUs when there are several, else the default one."""
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def has_gpu() -> bool:
    """Whether TensorFlow sees at least one GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def use_mixed_precision(cfg: Config, force: bool = False) -> bool:
    """Whether the model computes in float16: cfg.mixed_precision, "auto" meaning on GPUs only.

    CPUs gain nothing from float16 (and are slower with it); `force` turns it on anyway,
    for `smoke --mixed-precision` to exercise the GPU's code path on a CPU.
    """
    if force or cfg.mixed_precision == "on":
        return True
    return cfg.mixed_precision == "auto" and has_gpu()


def set_threads(count: int) -> None:
    """Give TensorFlow `count` threads within an op and `count` to run ops side by side (0:
    leave its defaults, one per core each).

    Only possible before TensorFlow starts computing; a process that already did (a second
    run in one Python session) keeps its count, and is told so unless it is the same.
    """
    if not count:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(count)
        tf.config.threading.set_inter_op_parallelism_threads(count)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        if count not in (current, int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))):
            print(
                f"note: TensorFlow already runs with {current or 'one per core'} intra-op "
                f"threads in this process, not {count}: figures may differ from a fresh run's",
                flush=True,
            )


def set_precision(mixed: bool) -> str:
    """Set Keras's global dtype policy for the models built next; its name."""
    policy = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def device_summary(cfg: Config, policy: str) -> str:
    """One loud line naming the devices, the distribution strategy and the precision."""
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    devices = f"{len(gpus)} GPU(s): {', '.join(names)}" if gpus else "CPU only (no GPU found)"
    strategy = get_strategy()
    replicas = strategy.num_replicas_in_sync
    placement = augment_placement(cfg)
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return (
        f"=== {cfg.preset}: {devices} | strategy {type(strategy).__name__} "
        f"({replicas} replica{'s' if replicas != 1 else ''}) | precision {policy} | "
        f"augmentation in the {'training step' if placement == 'step' else 'tf.data pipeline'}"
        f" | {threads or 'one per core'} thread{'s' if threads != 1 else ''} per op"
        f" | XLA {'on' if use_jit(cfg) else 'off'} ==="
    )


def augment_placement(cfg: Config) -> str:
    """ "step" (in the training step, on the accelerator) or "pipeline" (tf.data on the CPU).

    The thesis's albumentations chain (augment="thesis") runs in NumPy: always "pipeline".
    """
    if cfg.augment_placement != "auto":
        return cfg.augment_placement
    return "step" if has_gpu() and cfg.augment != "thesis" else "pipeline"


def use_jit(cfg: Config) -> bool:
    """Whether the training step's forward and backward pass are compiled by XLA.

    cfg.jit_compile "auto": on GPUs (Keras's own compile() default there), off on CPUs, where
    XLA measured 0.05x the speed of the plain graph (benchmarks/input_pipeline.py).
    """
    if cfg.jit_compile != "auto":
        return cfg.jit_compile == "on"
    return has_gpu()


def cpu_warning(cfg: Config) -> str | None:
    """A warning when a GPU-sized preset is about to run on a machine without a GPU."""
    if has_gpu() or cfg.image_size < 256:
        return None
    return (
        f"WARNING: preset {cfg.preset!r} trains {cfg.backbone} at {cfg.image_size} px, a "
        "configuration meant for a GPU, but TensorFlow sees none: on this CPU it will take "
        "days. Install the CUDA build (requirements/training-gpu.txt) on a GPU host, or run "
        f"`python -m training smoke --preset {cfg.preset}` to check the set-up first."
    )


def finalize_normalization(model: keras.Model) -> None:
    """Make every Normalization layer use the mean/variance its variables hold now.

    Keras's Normalization computes with tensors derived from its variables in
    `finalize_state()`; `set_weights` and checkpoint restores change the variables only, so
    without this the layer keeps normalising with the old statistics (mean 0, variance 1).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
            layer.finalize_state()


def float32_copy(model: keras.Model) -> keras.Model:
    """The same network and weights computing entirely in float32 (for saliency gradients).

    Under mixed precision the layers compute in float16; gradients back-propagated through
    them underflow without loss scaling. The copy is built from the model's config with
    every layer's dtype policy set to float32.
    """
    config = copy.deepcopy(model.get_config())
    for layer in config["layers"]:
        if "dtype" in layer["config"]:
            layer["config"]["dtype"] = "float32"
    copied = keras.Model.from_config(config)
    copied.set_weights(model.get_weights())
    finalize_normalization(copied)
    return copied


def is_mixed(model: keras.Model) -> bool:
    """Whether any layer of `model` computes in float16."""
    return any(
        layer.compute_dtype == "float16"
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)  # holds no computation
    )


def imagenet_weights_path(backbone: str) -> Path:
    """Where Keras caches the 'notop' ImageNet weights of `backbone` (honours KERAS_HOME)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / f"{backbone.lower()}_notop.h5"


def _application(cfg: Config) -> Any:
    """The keras.applications constructor named by `cfg.backbone`, or a scaled EfficientNet.

    With cfg.width/cfg.depth other than 1, EfficientNet-B0's layout scaled by them: same
    input normalisation, stem and block structure (so the 4-channel construction holds),
    fewer channels and repeats. Random weights only: ImageNet has none for such a network.
    """
    if not cfg.backbone.startswith("EfficientNet") or not hasattr(keras.applications, cfg.backbone):
        raise PipelineError(f"backbone {cfg.backbone!r} is not a keras.applications EfficientNet")
    if cfg.width == 1.0 and cfg.depth == 1.0:
        return getattr(keras.applications, cfg.backbone)
    if cfg.weights is not None:
        raise PipelineError("a scaled EfficientNet (width/depth != 1) needs weights=None")
    # Keras's public B0..B7 are this builder with fixed coefficients; it is not exported.
    from keras.src.applications.efficientnet import EfficientNet

    return functools.partial(
        EfficientNet,
        cfg.width,
        cfg.depth,
        cfg.image_size,
        name=f"efficientnet_w{cfg.width:g}_d{cfg.depth:g}",
    )


def _with_imagenet_rescaling(backbone: keras.Model) -> keras.Model:
    """The same backbone with the extra Rescaling Keras inserts for weights="imagenet".

    Built from the model's config so the graph is identical to Keras's own ImageNet build,
    which lets a local weights file give exactly the network a download would give (Keras's
    cache path cannot be used for that: it re-downloads any file whose hash differs).
    """
    config = copy.deepcopy(backbone.get_config())
    layers = config["layers"]
    position = next(i for i, layer in enumerate(layers) if layer["class_name"] == "Normalization")
    norm = layers[position]
    rescale = {
        "module": "keras.layers",
        "class_name": "Rescaling",
        "config": {
            "name": "imagenet_rescaling",
            "trainable": True,
            "dtype": copy.deepcopy(norm["config"]["dtype"]),
            "scale": [1.0 / math.sqrt(stddev) for stddev in IMAGENET_STDDEV_RGB],
            "offset": 0.0,
        },
        "registered_name": None,
        "build_config": copy.deepcopy(norm["build_config"]),
        "name": "imagenet_rescaling",
        "inbound_nodes": [
            {
                "args": [
                    {
                        "class_name": "__keras_tensor__",
                        "config": {
                            "shape": norm["build_config"]["input_shape"],
                            "dtype": "float32",
                            "keras_history": [norm["name"], 0, 0],
                        },
                    }
                ],
                "kwargs": {},
            }
        ],
    }
    # Whatever read the normalisation's output now reads the rescaling's.
    for layer in layers:
        for node in layer["inbound_nodes"]:
            for arg in node["args"]:
                if (
                    isinstance(arg, dict)
                    and arg["config"].get("keras_history", [None])[0] == (norm["name"])
                ):
                    arg["config"]["keras_history"] = ["imagenet_rescaling", 0, 0]
    layers.insert(position + 1, rescale)
    return keras.Model.from_config(config)


def imagenet_weights_file(cfg: Config, weights: str | Path) -> Path | None:
    """The local 'notop' ImageNet weights file to load, or None if Keras must download it.

    `weights` is "imagenet" (the Keras cache file if present) or a file given by the user.
    A missing or non-HDF5 file is a PipelineError naming the file Keras expects.
    """
    cached = imagenet_weights_path(cfg.backbone)
    if weights == "imagenet":
        if not cached.is_file():
            return None
        weights = cached
    path = Path(weights).expanduser()
    if not path.is_file():
        raise PipelineError(
            f"ImageNet weights file {path} not found (expected Keras's {cached.name}, "
            f"as cached at {cached})"
        )
    import h5py  # Keras's own dependency for HDF5 weights

    if not h5py.is_hdf5(path):  # fail before the slow build
        raise PipelineError(f"{path} is not an HDF5 weights file like Keras's {cached.name}")
    return path


def _build_backbone(cfg: Config, weights: str | Path | None) -> keras.Model:
    """The EfficientNet without its top, random or with ImageNet weights (download or file)."""
    application = _application(cfg)
    shape = (cfg.image_size, cfg.image_size, 3)
    if weights is None:
        return application(include_top=False, weights=None, input_shape=shape)
    path = imagenet_weights_file(cfg, weights)
    if path is None:
        try:
            return application(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as error:
            raise PipelineError(
                f"could not download the ImageNet weights of {cfg.backbone} ({error}); "
                f"offline, pass --imagenet-weights FILE or place the file at "
                f"{imagenet_weights_path(cfg.backbone)}"
            ) from error
    backbone = _with_imagenet_rescaling(
        application(include_top=False, weights=None, input_shape=shape)
    )
    try:
        backbone.load_weights(str(path))
    except Exception as error:
        raise PipelineError(
            f"{path} does not hold {cfg.backbone} 'notop' ImageNet weights ({error})"
        ) from error
    return backbone


def build_classifier(cfg: Config, weights: str | Path | None = _USE_CONFIG) -> keras.Model:
    """The 3-channel classifier: EfficientNet backbone and the thesis head.

    `weights`: "imagenet" (download or Keras cache), a local 'notop' ImageNet weights file,
    or None (random); by default `cfg.weights`. Every batch norm uses `cfg.bn_momentum`.
    Input: float32 pixels 0..255, shape (size, size, 3); output: float32 softmax
    probabilities over the 7 classes.
    """
    if isinstance(weights, str) and weights == _USE_CONFIG:
        weights = cfg.weights
    with get_strategy().scope():
        backbone = _build_backbone(cfg, weights)
        # Keras builds EfficientNet with momentum 0.99; set before any call traces the layers.
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = cfg.bn_momentum
        x = keras.layers.GlobalAveragePooling2D(name="features")(backbone.output)
        x = keras.layers.BatchNormalization(momentum=cfg.bn_momentum, name="head_bn")(x)
        x = keras.layers.Dropout(cfg.dropout, name="head_dropout_1")(x)
        x = keras.layers.Dense(cfg.dense_units, activation="relu", name="head_dense")(x)
        x = keras.layers.Dropout(cfg.dropout, name="head_dropout_2")(x)
        # float32 logits and softmax even under mixed precision: float16 softmax is too coarse.
        x = keras.layers.Dense(NUM_CLASSES, name="logits", dtype="float32")(x)
        outputs = keras.layers.Activation("softmax", name="softmax", dtype="float32")(x)
        return keras.Model(backbone.input, outputs, name=f"{cfg.backbone.lower()}_rgb")


def _stem_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers from the input up to and including "stem_conv"."""
    names = []
    for layer in model.layers:
        names.append(layer.name)
        if layer.name == "stem_conv":
            return names
    raise PipelineError(f"model {model.name} has no 'stem_conv' layer")


def _widen_shapes(value: Any, channels: int) -> Any:
    """Every image shape [batch, h, w, 3] inside a layer config, with `channels` channels."""
    if isinstance(value, dict):
        return {key: _widen_shapes(item, channels) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 4 and value[-1] == 3 and all(isinstance(v, int | None) for v in value):
            return [*value[:-1], channels]
        return [_widen_shapes(item, channels) for item in value]
    return value


def to_four_channels(model: keras.Model, cfg: Config) -> keras.Model:
    """The same classifier with a 4th input channel (saliency 0..255), every weight kept.

    The stem convolution gains a zero kernel slice for the new channel, the input
    normalisation a 4th channel with mean 0 and variance 1, the ImageNet rescaling (if any)
    a 4th factor 1.0: so with any map the new model computes exactly the old function.
    """
    stem = set(_stem_layer_names(model))
    config = copy.deepcopy(model.get_config())
    for layer in config["layers"]:
        if layer["name"] not in stem:
            continue
        widened = _widen_shapes({k: v for k, v in layer.items() if k != "config"}, 4)
        layer.update(widened)
        layer_config = layer["config"]
        if layer["class_name"] == "InputLayer":
            layer_config["batch_shape"] = [*layer_config["batch_shape"][:-1], 4]
        if layer["class_name"] == "Rescaling" and isinstance(layer_config["scale"], list):
            layer_config["scale"] = [*layer_config["scale"], 1.0]
    config["name"] = model.name.replace("_rgb", "") + "_rgbs"
    with get_strategy().scope():
        four = keras.Model.from_config(config)
    for layer in model.layers:
        old = layer.get_weights()
        if not old:
            continue
        target = four.get_layer(layer.name)
        if layer.name == "stem_conv":
            kernel = old[0]
            zeros = np.zeros((*kernel.shape[:2], 1, kernel.shape[3]), kernel.dtype)
            target.set_weights([np.concatenate([kernel, zeros], axis=2), *old[1:]])
        elif isinstance(layer, keras.layers.Normalization):
            mean, variance, count = old
            # Keras stores them with broadcast shape (1, 1, 1, 3).
            target.set_weights(
                [
                    np.concatenate([mean, np.zeros_like(mean[..., :1])], axis=-1),
                    np.concatenate([variance, np.ones_like(variance[..., :1])], axis=-1),
                    count,
                ]
            )
        else:
            target.set_weights(old)
    # set_weights leaves the statistics the layer computes with untouched until this.
    finalize_normalization(four)
    return four


def fast_layer_names(model: keras.Model, stage: str) -> list[str]:
    """Layers trained with the larger learning rate: the new head ("rgb") or the new stem ("rgbs").

    For "rgbs" these are the input normalisation, the stem convolution and the first head
    layer with weights (thesis 3.3: "the new input layer and the first classification layer").
    """
    if stage == "rgb":
        return [name for name in HEAD_LAYERS if name != "features"]
    if stage == "rgbs":
        stem = [
            layer.name
            for layer in model.layers
            if layer.name in _stem_layer_names(model)
            and (layer.name == "stem_conv" or isinstance(layer, keras.layers.Normalization))
        ]
        return stem + list(FOUR_CHANNEL_HEAD_LAYERS)
    raise PipelineError(f"unknown training stage {stage!r}; expected 'rgb' or 'rgbs'")


def feature_model(model: keras.Model, features: str = "pooled") -> keras.Model:
    """A model from the classifier's input to its retrieval features (not normalised).

    "pooled": the "features" layer (the global average pool); "conv_map": that layer's input,
    the last convolutional map, flattened (the thesis: "right after the last convolutional
    layer and before the classification layers"), which keeps where in the image each
    channel fired.
    """
    pool = model.get_layer("features")
    if features == "pooled":
        return keras.Model(model.input, pool.output, name="features_model")
    if features == "conv_map":
        flat = keras.layers.Flatten(name="conv_map_flat", dtype="float32")(pool.input)
        return keras.Model(model.input, flat, name="conv_map_model")
    raise PipelineError(f"features must be pooled or conv_map, not {features!r}")


def score_model(model: keras.Model) -> keras.Model:
    """A model from the classifier's input to its logits (the softmax removed), for saliency."""
    return keras.Model(model.input, model.get_layer("softmax").input, name="score_model")


def predict(model: keras.Model, images: NDArray[Any], batch_size: int) -> NDArray[np.float32]:
    """Softmax probabilities (N, 7) float32 for uint8 or float images, batch by batch."""
    # predict_on_batch reuses the model's compiled function across calls; padding the last
    # batch to full size avoids a second trace (inference is per-image, so padding is inert).
    # Slicing keeps a large uint8 array from being converted to float32 all at once.
    outputs: list[NDArray[Any]] = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], np.float32)
        real = len(batch)
        if real < batch_size and len(images) > batch_size:
            padding = np.zeros((batch_size - real, *batch.shape[1:]), np.float32)
            batch = np.concatenate([batch, padding])
        outputs.append(np.asarray(model.predict_on_batch(batch))[:real])
    if not outputs:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    probabilities: NDArray[np.float32] = np.concatenate(outputs).astype(np.float32)
    return probabilities


def save_model(model: keras.Model, path: Path) -> None:
    """Save `model` as a `.keras` file (architecture, weights; no optimizer)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise PipelineError(f"model files must end in .keras: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path, include_optimizer=False)


def load_model(path: Path) -> keras.Model:
    """Load a `.keras` model written by `save_model`, inside the distribution strategy.

    A model saved under mixed precision keeps float16 layers in its file; where this process
    computes in float32 (a CPU, whose float16 kernels are slower), it is loaded as a float32
    copy, so a run resumed on another machine computes in that machine's precision.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"model file not found: {path}")
    with get_strategy().scope():
        loaded = keras.models.load_model(path, compile=False)
        if keras.mixed_precision.global_policy().name == "float32" and is_mixed(loaded):
            return float32_copy(loaded)
        return loaded
