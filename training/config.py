"""Run configuration: one frozen dataclass, three named presets, overridable from the CLI.

The resolved configuration is written as `config.json` beside everything a run produces.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.errors import PipelineError


@dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes (thesis section 3.3 for the defaults)."""

    preset: str
    # Backbone and input.
    backbone: str = "EfficientNetB4"  # a keras.applications class name
    image_size: int = 380
    weights: str | None = "imagenet"  # "imagenet" or None (random initialisation)
    # Head (thesis Figure 3.1): GAP, batch norm, dropout, dense 64, dropout, dense 7, softmax.
    dropout: float = 0.2
    dense_units: int = 64
    # Momentum of every batch-norm layer (backbone and head). Keras's 0.99 suits fine-tuning
    # ImageNet weights; from random weights over a few hundred steps the moving averages lag
    # so far behind that inference collapses to one class, so the small presets use less.
    bn_momentum: float = 0.99
    # Optimisation (shared by both classifiers unless named per model).
    batch_size: int = 32
    epochs_rgb: int = 20
    epochs_rgbs: int = 20
    lr_rgb: float = 5e-5
    lr_factor_rgb: float = 200.0  # new head layers learn this much faster
    lr_rgbs: float = 1e-5
    lr_factor_rgbs: float = 100.0  # new stem and first head layer of the 4-channel model
    rampup_epochs: int = 5
    rampup_peak: float = 6.0  # the schedule ramps up to this multiple of the initial rate
    decay: float = 0.8  # exponential decay per epoch after the ramp-up
    # "focal": the thesis's eq. 3.4, the binary focal term summed over all classes;
    # "categorical_focal": Keras's CategoricalFocalCrossentropy (true-class term only).
    loss: str = "focal"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    augment: str = "strong"  # "strong", "light" or "none" for the RGB model, or "thesis"
    # ("thesis": the thesis's full albumentations list, on the host; see train.thesis_augmenter)
    # Where augmentation runs: "pipeline" (tf.data, on the host's CPU cores), "step" (inside
    # the compiled training step, on the accelerator) or "auto" (step on GPUs, else pipeline).
    augment_placement: str = "auto"
    # Class-balanced sampling of training batches (each class drawn equally often).
    balanced: bool = False
    # "auto": mixed float16 on GPUs, float32 on CPUs; "on" / "off" force it.
    mixed_precision: str = "auto"
    # EfficientNet scaling when the backbone is not a stock one: width and depth multipliers
    # of EfficientNet-B0's layout (1.0 and 1.0 = the keras.applications class named above).
    width: float = 1.0
    depth: float = 1.0
    # Data split.
    split_by: str = "lesion"  # "lesion" (default) or "image" (the thesis's split)
    split_seed: int = 71
    # Saliency, retrieval and the study bundle.
    saliency_batch: int = 32
    retrieval_k: tuple[int, ...] = (1, 3, 6, 9)
    # The k that metrics.json and the printed comparisons name primary: the thesis's six
    # neighbours (its reader study shows six), fixed before any result is seen.
    primary_k: int = 6
    # Retrieval features: "pooled" (the global average pool, 1,792-d for B4) or "conv_map"
    # (the last convolutional map flattened, 12 x 12 x 1,792 for B4 at 380 px: the thesis's
    # "after the last convolutional layer, before the classification layers", read literally).
    features: str = "pooled"
    # Saliency maps' 0..255 scale: "p99" (each map's 99th percentile is 255, clipped) or
    # "tf_explain" (tf-explain's standardisation and uint8 cast, which wraps, per image).
    saliency_scaling: str = "p99"
    # Saliency maps of the SE-CBIR bank's training images: "true_class" (the thesis) or
    # "predicted_class" (as queries get them). Both are evaluated: metrics.json's label_channel.
    bank_maps: str = "true_class"
    # The label-channel diagnostic (maps of the predicted class for the training images the
    # rgb model gets wrong, and SE-CBIR's bank with them). Off only where the fourth channel
    # is no saliency map (the positive control's arms).
    label_channel: bool = True
    neighbours: int = 6
    exclude_same_lesion: bool = True
    query_filter: str = "lesion"  # "lesion" (one per lesion) or "thesis" (also drop shared top-6)
    # The bundle's class_neighbours: each query's `neighbours` nearest images of every class,
    # per neighbour aid, which probes show (app.survey.probes). They make queries.json some
    # four times larger (about 30 KB and 790 JSON values a query instead of 7 KB and 180), so
    # a pool of over about 1,000 queries nears the bundle's limits (studybundle.limits): off
    # there, its probes show other cases' lists.
    class_neighbours: bool = True
    web_image_size: int = 450  # longest side of the images shown to readers
    seed: int = 71
    # Deterministic TensorFlow kernels, so a run repeats exactly for its seed. Free on the CPU
    # (measured: no slower); on GPUs some kernels are slower or missing, so off for `thesis`.
    deterministic: bool = False
    # TensorFlow's threads in each training process, within an op and across ops; 0: one per
    # core (its default).
    # The small presets use 1: their models are too small for a second core to help
    # (measured: the demo's rgb stage took 27.3 s on one core, 29.2 s on two), and reductions
    # split by thread count sum in another order, so a fixed count repeats on any machine's
    # number of cores, and leaves the other core to the control (concurrent_control).
    threads: int = 0
    # Train the no-saliency control in a second process beside the 4-channel model, on a
    # machine without a GPU. One small model's training keeps about one CPU core busy
    # (measured: the demo's rgb stage runs as fast on one core as on two), so a 2-core
    # machine trains both in the time of one. Same result as one after the other (tested).
    # Off for the GPU presets: two trainings would share one accelerator's memory.
    concurrent_control: bool = False
    # A third fine-tune beside the zero-map control: the same 4-channel model trained and
    # queried with another image's saliency map (one of the same split part). SE-CBIR beating
    # the zero-map control but not this one gains from any fourth channel, not from this
    # image's saliency.
    shuffled_control: bool = True
    # Paired training seeds (seed, seed + 1, ...): each trains every model again on the same
    # split; the intervals of SE-CBIR's differences then hold the variance between training
    # runs (metrics.bootstrap_difference). Claims on real data use at least 3.
    seeds: int = 1
    # XLA for the training step's forward and backward pass: "auto" (on GPUs, as Keras's
    # compile() does; off on CPUs, where it measured 0.05x the speed), "on" or "off".
    jit_compile: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The configuration as indented JSON, for `config.json` beside each artifact."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        """Write the resolved configuration to `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")


PRESETS: dict[str, Config] = {
    # The thesis's configuration: EfficientNetB4 at 380 px with ImageNet weights.
    "thesis": Config(preset="thesis"),
    # The thesis's own protocol, for a like-for-like comparison with its Table 4.I: the
    # image-level split (seed 71), neighbours of the query's own lesion not excluded, and
    # the thesis's query filter. Its retrieval figures are optimistic (a lesion's other
    # images sit in the bank), which is why `thesis` splits by lesion.
    "thesis-replica": Config(
        preset="thesis-replica",
        split_by="image",
        split_seed=71,
        exclude_same_lesion=False,
        query_filter="thesis",
        # The thesis's own choices where `thesis` differs (README, "thesis and thesis-replica").
        features="conv_map",
        saliency_scaling="tf_explain",
        augment="thesis",
    ),
    # A few minutes end to end on a 2-core CPU with the synthetic dataset.
    "demo": Config(
        preset="demo",
        # EfficientNet-B0's layout at half width and half depth: the same input
        # normalisation and stem (which the 4-channel model relies on), about a sixth of the
        # compute, so the demo can afford many more epochs on a 2-core CPU.
        backbone="EfficientNetB0",
        width=0.5,
        depth=0.5,
        bn_momentum=0.9,
        deterministic=True,
        threads=1,
        concurrent_control=True,
        image_size=64,
        weights=None,
        # Class-balanced batches: with nv at two thirds of the images, plain sampling from
        # random weights learned little beyond nv.
        balanced=True,
        epochs_rgb=20,
        epochs_rgbs=5,
        lr_rgb=1e-3,
        lr_factor_rgb=3.0,
        lr_rgbs=5e-4,
        lr_factor_rgbs=3.0,
        rampup_epochs=1,
        rampup_peak=2.0,
        decay=0.85,
        augment="light",
        saliency_batch=64,
        web_image_size=256,
    ),
    # Seconds on a CPU: for tests.
    "tiny": Config(
        preset="tiny",
        backbone="EfficientNetB0",
        bn_momentum=0.9,
        deterministic=True,
        threads=1,
        concurrent_control=True,
        image_size=32,
        weights=None,
        batch_size=16,
        epochs_rgb=1,
        epochs_rgbs=1,
        lr_rgb=1e-3,
        lr_factor_rgb=2.0,
        lr_rgbs=1e-3,
        lr_factor_rgbs=2.0,
        rampup_epochs=1,
        rampup_peak=1.0,
        augment="light",
        saliency_batch=16,
        web_image_size=64,
    ),
}


def _parse_value(name: str, text: str, current: Any) -> Any:
    """Convert `text` to the type of the field's current value."""
    if current is None or name == "weights":
        return None if text.lower() in ("none", "null", "") else text
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise PipelineError(f"--set {name}={text}: expected true or false")
        return text.lower() in ("true", "1", "yes")
    if isinstance(current, tuple):
        return tuple(int(part) for part in text.split(","))
    try:
        return type(current)(text)
    except ValueError as error:
        raise PipelineError(f"--set {name}={text}: expected {type(current).__name__}") from error


def get_config(preset: str, overrides: list[str] | None = None) -> Config:
    """The named preset with `KEY=VALUE` overrides applied, checked for unknown keys."""
    if preset not in PRESETS:
        raise PipelineError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = PRESETS[preset]
    fields = {f.name for f in dataclasses.fields(Config)} - {"preset", "extra"}
    changes: dict[str, Any] = {}
    for item in overrides or []:
        name, sep, text = item.partition("=")
        if not sep or name not in fields:
            raise PipelineError(
                f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}"
            )
        changes[name] = _parse_value(name, text, getattr(config, name))
    config = dataclasses.replace(config, **changes)
    if config.seeds < 1:
        raise PipelineError(f"seeds must be at least 1, got {config.seeds}")
    for name, allowed in (
        ("split_by", ("lesion", "image")),
        ("query_filter", ("lesion", "thesis")),
        ("augment", ("strong", "light", "none", "thesis")),
        ("loss", ("focal", "categorical_focal")),
        ("augment_placement", ("auto", "pipeline", "step")),
        ("mixed_precision", ("auto", "on", "off")),
        ("features", ("pooled", "conv_map")),
        ("saliency_scaling", ("p99", "tf_explain")),
        ("bank_maps", ("true_class", "predicted_class")),
        ("jit_compile", ("auto", "on", "off")),
    ):
        if getattr(config, name) not in allowed:
            raise PipelineError(f"{name} must be one of {', '.join(allowed)}")
    if config.primary_k not in config.retrieval_k:
        raise PipelineError(
            f"primary_k={config.primary_k} must be one of retrieval_k "
            f"({','.join(map(str, config.retrieval_k))})"
        )
    if config.bank_maps == "predicted_class" and not config.label_channel:
        raise PipelineError("bank_maps=predicted_class needs label_channel (its maps)")
    if config.augment == "thesis" and config.augment_placement == "step":
        raise PipelineError(
            "augment=thesis runs albumentations on the host: augment_placement must be "
            "pipeline or auto"
        )
    return config


# Fields that decide how a run executes, not what it computes: a resumed run may change them.
EXECUTION_FIELDS = frozenset({"concurrent_control", "jit_compile"})


def differing_fields(saved: Config, wanted: Config) -> list[str]:
    """The fields, other than execution ones, in which two configurations differ."""
    return sorted(
        f.name
        for f in dataclasses.fields(Config)
        if f.name not in EXECUTION_FIELDS and getattr(saved, f.name) != getattr(wanted, f.name)
    )


def load_config(path: Path) -> Config:
    """Read a `config.json` written by `Config.save`."""
    values = json.loads(path.read_text())
    values["retrieval_k"] = tuple(values["retrieval_k"])
    return Config(**values)
