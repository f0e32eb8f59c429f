"""Training: schedule, per-group optimizers, input pipeline, augmentation, resumable runs."""

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import model as model_lib
from training import train
from training.config import get_config
from training.errors import PipelineError

pytestmark = pytest.mark.training

CFG = get_config("tiny")
SIZE = CFG.image_size


def images(count: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, channels), np.uint8)


def labels(count: int) -> np.ndarray:
    """Class indices cycling through all 7 classes."""
    return np.arange(count) % 7


def toy_classifier(seed: int = 0) -> keras.Model:
    """A classifier with the real model's layer names around a one-convolution backbone.

    Small enough to trace in a second, so the graph-mode training loop is tested too.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=4, name="stem_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    x = keras.layers.Dense(6, activation="relu", name="head_dense")(x)
    x = keras.layers.Dense(7, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture
def eager() -> Iterator[None]:
    """Run tf.functions eagerly: tracing EfficientNet costs far more than a tiny batch."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def test_schedule_ramps_up_then_decays_every_step() -> None:
    schedule = train.RampUpExponentialDecay(
        1e-3, peak=6.0, rampup_epochs=5, decay=0.8, steps_per_epoch=10
    )
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(1e-3)
    assert rate(5) == pytest.approx(1.5e-3)  # half an epoch into the ramp
    assert rate(10) == pytest.approx(2e-3)
    assert rate(50) == pytest.approx(6e-3)  # the peak, six times the initial rate
    assert rate(60) == pytest.approx(6e-3 * 0.8)
    assert rate(70) == pytest.approx(6e-3 * 0.8**2)
    assert rate(190) == pytest.approx(6e-3 * 0.8**14)


def test_thesis_rates_for_the_new_layers() -> None:
    model = toy_classifier()
    thesis = get_config("thesis")
    for stage, expected in (("rgb", (5e-5, 1e-2)), ("rgbs", (1e-5, 1e-3))):
        groups = train.layer_groups(model, stage)
        optimizers = train.make_optimizers(thesis, stage, groups, steps_per_epoch=100)
        rates = [float(optimizer.learning_rate) for optimizer in optimizers]
        assert rates == pytest.approx(expected)


def test_layer_groups_split_every_trainable_variable_once() -> None:
    model = toy_classifier()
    slow, fast = train.layer_groups(model, "rgb")
    assert {v.path.split("/")[0] for v in fast} == {"head_bn", "head_dense", "logits"}
    assert {v.path.split("/")[0] for v in slow} == {"stem_conv"}
    assert len(slow) + len(fast) == len(model.trainable_variables)
    slow, fast = train.layer_groups(model, "rgbs")
    assert {v.path.split("/")[0] for v in fast} == {"stem_conv", "head_bn"}


def test_new_layers_take_a_larger_step() -> None:
    model = toy_classifier()
    cfg = dataclasses.replace(CFG, lr_rgb=1e-3, lr_factor_rgb=50.0, rampup_peak=1.0)
    groups = train.layer_groups(model, "rgb")
    optimizers = train.make_optimizers(cfg, "rgb", groups, steps_per_epoch=1)
    loss = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, reduction=None)
    step = train.make_train_step(
        model, tf.distribute.get_strategy(), optimizers, groups, loss, None
    )
    before = [v.numpy() for v in groups[0] + groups[1]]
    x = tf.constant(images(8, seed=1), tf.float32)
    y = tf.one_hot(labels(8), 7)
    assert np.isfinite(float(step((x, y))))
    after = [v.numpy() for v in groups[0] + groups[1]]
    moved = [np.abs(a - b).max() for a, b in zip(after, before, strict=True)]
    slow_moves, fast_moves = moved[: len(groups[0])], moved[len(groups[0]) :]
    # Adam's first step moves each weight by about its learning rate, whatever the gradient.
    assert max(slow_moves) == pytest.approx(1e-3, rel=0.05)
    assert max(fast_moves) == pytest.approx(5e-2, rel=0.05)
    assert int(optimizers[0].iterations) == int(optimizers[1].iterations) == 1


def test_focal_loss_is_the_thesis_equation_by_hand() -> None:
    """Eq. 3.4: sum over classes of -alpha_t (1 - p_t)^gamma log p_t (eq. 3.5 for _t)."""
    p = np.array([[0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03], [0.2, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1]])
    y = np.zeros_like(p)
    y[0, 0] = y[1, 2] = 1.0
    expected = []
    for probs, target in zip(p, y, strict=True):
        total = 0.0
        for prob, truth in zip(probs, target, strict=True):
            p_t, alpha_t = (prob, 0.25) if truth else (1.0 - prob, 0.75)
            total += -alpha_t * (1.0 - p_t) ** 2 * math.log(p_t)
        expected.append(total)
    loss = train.focal_loss(alpha=0.25, gamma=2.0)
    got = np.asarray(loss(tf.constant(y, tf.float32), tf.constant(p, tf.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # The same as 7 x Keras's class-balanced binary focal loss on the softmax output.
    binary = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=True, alpha=0.25, gamma=2.0, reduction=None
    )
    np.testing.assert_allclose(got, 7 * np.asarray(binary(y, p)), rtol=1e-4)
    # It is the default, and it is not Keras's categorical focal loss (true class only).
    assert CFG.loss == get_config("thesis").loss == "focal"
    default = np.asarray(train.make_loss(get_config("thesis"))(y, p))
    np.testing.assert_allclose(default, expected, rtol=1e-5)
    categorical = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, reduction=None)
    assert not np.allclose(np.asarray(categorical(y, p)), expected, rtol=1e-2)


def test_a_resumed_stage_computes_with_the_saved_normalisation(tmp_path: Path) -> None:
    """A checkpoint restore writes the statistics' variables; the layer must take them up."""

    def four_channel_model(mean: float, variance: float) -> keras.Model:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((SIZE, SIZE, 4))
        norm = keras.layers.Normalization(axis=-1, name="normalization")
        x = norm(inputs)
        norm.set_weights([np.full(4, mean), np.full(4, variance), np.int64(1)])
        norm.finalize_state()
        x = keras.layers.Conv2D(8, 3, strides=4, name="stem_conv")(x)
        x = keras.layers.GlobalAveragePooling2D(name="features")(x)
        x = keras.layers.BatchNormalization(name="head_bn")(x)
        x = keras.layers.Dense(7, name="logits")(x)
        return keras.Model(inputs, keras.layers.Activation("softmax", name="softmax")(x))

    cfg = dataclasses.replace(CFG, batch_size=8, augment="none")
    data = (images(16, channels=4, seed=6), labels(16))
    out = tmp_path / "rgbs"
    first = four_channel_model(120.0, 3600.0)
    train.train_classifier(
        first, data, data, dataclasses.replace(cfg, epochs_rgbs=1), out, "rgbs", verbose=0
    )
    fresh = four_channel_model(0.0, 1.0)
    train.train_classifier(
        fresh, data, data, dataclasses.replace(cfg, epochs_rgbs=2), out, "rgbs", verbose=0
    )
    pixels = np.full((1, 2, 2, 4), 180.0, np.float32)
    normalised = np.asarray(fresh.get_layer("normalization")(pixels))
    np.testing.assert_allclose(normalised, (180.0 - 120.0) / 60.0, rtol=1e-5)


def test_dataset_gathers_batches_and_stacks_maps() -> None:
    pictures, maps = images(10, seed=2), images(10, channels=1, seed=3)[..., 0]
    dataset = train.make_dataset(pictures, labels(10), 4, maps=maps)
    batches = list(dataset)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    x = np.concatenate([b[0] for b in batches])
    # uint8 until the step casts them on its device: a quarter of float32's bytes to send.
    assert x.dtype == np.uint8 and x.shape == (10, SIZE, SIZE, 4)
    np.testing.assert_array_equal(x[..., :3], pictures)
    np.testing.assert_array_equal(x[..., 3], maps)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]).argmax(1), labels(10))
    shuffled = list(train.make_dataset(pictures, labels(10), 4, shuffle=True, seed=1))
    assert [b[0].shape[0] for b in shuffled] == [4, 4]  # training drops the remainder
    with pytest.raises(PipelineError, match="differ in number"):
        train.make_dataset(pictures, labels(9), 4)


def test_balanced_sampling_draws_every_class_equally_often() -> None:
    truth = np.array([0] * 140 + [1] * 14 + [2] * 14)
    pictures = np.zeros((len(truth), 4, 4, 3), np.uint8)
    dataset = train.make_dataset(pictures, truth, 24, shuffle=True, seed=3, balanced=True)
    epochs = [np.concatenate([np.asarray(y).argmax(1) for _, y in dataset]) for _ in range(2)]
    for drawn in epochs:
        assert len(drawn) == 168  # seven full batches: an epoch is the set's size
        counts = np.bincount(drawn, minlength=3)
        assert all(abs(count - 56) < 20 for count in counts), counts
    assert not np.array_equal(epochs[0], epochs[1])  # a new draw each epoch


def test_four_channel_augmentation_moves_image_and_map_together() -> None:
    pictures = images(16, seed=4)
    augment = train.augmenter(CFG, "rgbs")
    dataset = train.make_dataset(pictures, labels(16), 16, maps=pictures[..., 0], augment=augment)
    ((x, _),) = list(dataset)
    x = np.asarray(x)
    np.testing.assert_allclose(x[..., 3], x[..., 0], atol=1e-3)
    changed = np.abs(x[..., :3] - pictures).reshape(16, -1).max(axis=1) > 1
    assert changed.sum() >= 8  # rotations and flips really happen
    assert train.augmenter(dataclasses.replace(CFG, augment="none"), "rgbs") is None


@pytest.mark.parametrize("strength", ["strong", "light"])
def test_rgb_augmentation_keeps_shape_and_pixel_range(strength: str) -> None:
    augment = train.augmenter(dataclasses.replace(CFG, augment=strength), "rgb")
    batch = tf.constant(images(8, seed=5), tf.float32)
    out = np.asarray(augment(batch))
    assert out.shape == batch.shape
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert np.abs(out - np.asarray(batch)).mean() > 1.0
    assert train.augmenter(dataclasses.replace(CFG, augment="none"), "rgb") is None


def test_dynamic_loss_scale_halves_on_overflow_and_grows_after_good_steps() -> None:
    scale = train._DynamicLossScale(initial=8.0, growth_steps=2)
    scale.update(tf.constant(False))
    assert float(scale.scale) == 4.0
    scale.update(tf.constant(True))
    assert float(scale.scale) == 4.0 and int(scale.good_steps) == 1
    scale.update(tf.constant(True))
    assert float(scale.scale) == 8.0 and int(scale.good_steps) == 0


def test_float16_step_skips_overflowing_gradients_and_applies_finite_ones() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = toy_classifier()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("stem_conv").compute_dtype == "float16"
    groups = train.layer_groups(model, "rgb")
    optimizers = train.make_optimizers(CFG, "rgb", groups, steps_per_epoch=1)
    loss = keras.losses.CategoricalFocalCrossentropy(reduction=None)
    scale = train._DynamicLossScale(initial=2.0**100)  # float16 gradients overflow at once
    strategy = tf.distribute.get_strategy()
    step = train.make_train_step(model, strategy, optimizers, groups, loss, scale)
    batch = (tf.constant(images(8, seed=1), tf.float32), tf.one_hot(labels(8), 7))
    before = [v.numpy() for v in model.trainable_variables]
    step(batch)
    assert float(scale.scale) == 2.0**99 and int(optimizers[0].iterations) == 0
    for old, new in zip(before, model.trainable_variables, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    scale.scale.assign(2.0**10)
    step(batch)
    assert float(scale.scale) == 2.0**10 and int(optimizers[1].iterations) == 1
    assert not np.array_equal(before[-2], model.trainable_variables[-2].numpy())


MIRRORED_STEP = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from training import train

    def one_step(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((8, 8, 3))
            x = keras.layers.Conv2D(4, 3, name="stem_conv")(inputs)
            x = keras.layers.GlobalAveragePooling2D(name="features")(x)
            x = keras.layers.Dense(7, name="logits")(x)
            model = keras.Model(inputs, keras.layers.Activation("softmax", name="softmax")(x))
            groups = train.layer_groups(model, "rgb")
            # Plain SGD with rate 1 turns the update into the gradient itself.
            optimizers = (keras.optimizers.SGD(1.0), keras.optimizers.SGD(1.0))
            for optimizer, variables in zip(optimizers, groups):
                optimizer.build(variables)
            initial = [v.numpy() for v in model.trainable_variables]
        loss = keras.losses.CategoricalFocalCrossentropy(reduction=None)
        step = train.make_train_step(model, strategy, optimizers, groups, loss, None)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (8, 8, 8, 3)).astype("float32")  # small: no saturated softmax
        y = tf.one_hot(np.arange(8) % 7, 7)
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        for batch in strategy.experimental_distribute_dataset(data):
            loss_value = float(step(batch))
        steps = [np.array(v) - w for v, w in zip(model.trainable_variables, initial)]
        assert min(np.abs(s).max() for s in steps) > 1e-4  # every variable really moved
        return loss_value, steps

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    loss_1, steps_1 = one_step(tf.distribute.get_strategy())
    loss_2, steps_2 = one_step(mirrored)
    print(abs(loss_1 - loss_2), max(np.abs(a - b).max() for a, b in zip(steps_1, steps_2)))
    """
)


def test_a_step_on_two_replicas_equals_a_step_on_one() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_STEP],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loss_difference, step_difference = map(float, done.stdout.split()[-2:])
    assert loss_difference < 1e-5 and step_difference < 1e-6


def test_training_rejects_inputs_that_do_not_fit(tmp_path: Path) -> None:
    model = toy_classifier()
    four = images(4, channels=4)
    with pytest.raises(PipelineError, match="expects"):
        train.train_classifier(model, (four, labels(4)), (four, labels(4)), CFG, tmp_path, "rgb")
    with pytest.raises(PipelineError, match="stage"):
        three = images(4)
        train.train_classifier(model, (three, labels(4)), (three, labels(4)), CFG, tmp_path, "x")


def test_training_resumes_after_the_last_finished_epoch(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, batch_size=8, rampup_epochs=1, rampup_peak=2.0, augment="light")
    data, val = (images(16, seed=6), labels(16)), (images(8, seed=7), labels(8))
    out = tmp_path / "rgb"
    first = dataclasses.replace(cfg, epochs_rgb=1)
    train.train_classifier(toy_classifier(), data, val, first, out, "rgb", verbose=0)
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1]
    assert history["epochs"][0]["learning_rate"] == pytest.approx(1e-3)
    assert (out / "best.keras").is_file() and (out / "checkpoints").is_dir()

    # "Interrupted" after epoch 1 of 2: a new process with a fresh model continues.
    second = dataclasses.replace(cfg, epochs_rgb=2)
    model = train.train_classifier(toy_classifier(seed=9), data, val, second, out, "rgb", verbose=0)
    resumed = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    assert resumed["epochs"][0] == history["epochs"][0]
    # The optimizers' step counters were restored: epoch 2 starts at the ramp's peak.
    assert resumed["epochs"][1]["learning_rate"] == pytest.approx(2e-3)
    assert resumed["epochs"][1]["learning_rate_new_layers"] == pytest.approx(4e-3)
    best_epoch = resumed["best_epoch"]
    assert resumed["best_val_macro_sensitivity"] == max(
        e["val_macro_sensitivity"] for e in resumed["epochs"]
    )
    assert resumed["epochs"][best_epoch - 1]["val_macro_sensitivity"] == pytest.approx(
        resumed["best_val_macro_sensitivity"]
    )

    # A checkpoint of another architecture is a clear error, not a half-restored model.
    with pytest.raises(PipelineError, match="does not fit this model"):
        four = model_lib.to_four_channels(toy_classifier(), CFG)
        stacked = (np.concatenate([data[0], data[0][..., :1]], -1), data[1])
        train.train_classifier(four, stacked, stacked, second, out, "rgb", verbose=0)

    # A finished stage is recognised as done: nothing is trained or rewritten.
    stamp = (out / "history.json").stat().st_mtime_ns
    again = train.train_classifier(toy_classifier(), data, val, second, out, "rgb", verbose=0)
    assert (out / "history.json").stat().st_mtime_ns == stamp
    np.testing.assert_allclose(
        model_lib.predict(again, val[0], 8), model_lib.predict(model, val[0], 8), atol=1e-6
    )


def test_augmentation_inside_the_training_step(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, batch_size=8, augment="strong", augment_placement="step")
    assert model_lib.augment_placement(cfg) == "step"
    assert model_lib.augment_placement(dataclasses.replace(cfg, augment_placement="auto")) == (
        "step" if model_lib.has_gpu() else "pipeline"
    )
    data = (images(16, seed=14), labels(16))
    train.train_classifier(toy_classifier(), data, data, cfg, tmp_path, "rgb", verbose=0)
    history = json.loads((tmp_path / "history.json").read_text())
    assert np.isfinite(history["epochs"][0]["loss"])
    # The step really augments: the same batch gives another loss with augmentation inside.
    model = toy_classifier()
    groups = train.layer_groups(model, "rgb")
    loss = train.make_loss(cfg)
    x = tf.constant(images(8, seed=15), tf.float32)
    y = tf.one_hot(labels(8), 7)
    results = []
    for augment in (None, train.augmenter(cfg, "rgb")):
        optimizers = train.make_optimizers(cfg, "rgb", groups, steps_per_epoch=1)
        step = train.make_train_step(
            model, tf.distribute.get_strategy(), optimizers, groups, loss, None, augment
        )
        keras.utils.set_random_seed(0)
        model.set_weights(toy_classifier().get_weights())
        results.append(float(step((x, y))))
    assert results[0] != pytest.approx(results[1], rel=1e-6)


def test_four_channel_stage_trains_on_images_plus_maps(tmp_path: Path) -> None:
    rgb = toy_classifier()
    four = model_lib.to_four_channels(rgb, CFG)
    cfg = dataclasses.replace(CFG, batch_size=8)
    data, val = (images(16, seed=8), labels(16)), (images(8, seed=9), labels(8))
    maps = (images(16, 1, seed=10)[..., 0], images(8, 1, seed=11)[..., 0])
    best = train.train_classifier(four, data, val, cfg, tmp_path, "rgbs", saliency=maps, verbose=0)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["stage"] == "rgbs" and len(history["epochs"]) == 1
    assert (tmp_path / "best.keras").is_file()
    # The saliency slice of the stem started at zero and has begun to learn.
    assert np.abs(best.get_layer("stem_conv").get_weights()[0][:, :, 3]).max() > 0
    stacked = np.concatenate([val[0], maps[1][..., None]], axis=-1)
    assert model_lib.predict(best, stacked, 8).shape == (8, 7)


def test_one_epoch_of_the_tiny_preset(tmp_path: Path, eager: None) -> None:
    keras.utils.set_random_seed(3)
    model = model_lib.build_classifier(CFG)
    data, val = (images(16, seed=12), labels(16)), (images(8, seed=13), labels(8))
    head_before = model.get_layer("logits").get_weights()[0]
    best = train.train_classifier(model, data, val, CFG, tmp_path, "rgb", verbose=0)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["stage"] == "rgb" and [e["epoch"] for e in history["epochs"]] == [1]
    entry = history["epochs"][0]
    assert np.isfinite(entry["loss"]) and 0.0 <= entry["val_macro_sensitivity"] <= 1.0
    assert entry["learning_rate_new_layers"] == pytest.approx(CFG.lr_rgb * CFG.lr_factor_rgb)
    assert (tmp_path / "best.keras").is_file()
    assert not np.array_equal(best.get_layer("logits").get_weights()[0], head_before)
    assert model_lib.predict(best, val[0], 8).shape == (8, 7)


def test_the_thesis_augmentation_runs_the_whole_list_on_the_host() -> None:
    import albumentations as A

    cfg = dataclasses.replace(CFG, augment="thesis", image_size=64)
    names = {type(t).__name__ for t in train.thesis_pipeline(64, 0)}
    for one_of in (t for t in train.thesis_pipeline(64, 0) if isinstance(t, A.OneOf)):
        names |= {type(t).__name__ for t in one_of.transforms}
    assert names >= {
        "ElasticTransform",
        "GridDistortion",
        "OpticalDistortion",
        "CLAHE",
        "MotionBlur",
        "MedianBlur",
        "GaussianBlur",
        "GaussNoise",
        "RandomCrop",
        "CoarseDropout",
        "HueSaturationValue",
        "RandomBrightnessContrast",
        "Affine",
    }
    augment = train.augmenter(cfg, "rgb")
    pictures = np.random.default_rng(2).integers(0, 256, (8, 64, 64, 3), np.uint8)
    dataset = train.make_dataset(pictures, labels(8), 8, augment=augment)
    ((x, _),) = list(dataset)
    assert x.dtype == np.uint8 and x.shape == (8, 64, 64, 3)  # uint8 to the device
    assert (np.abs(np.asarray(x, np.int16) - pictures).reshape(8, -1).mean(axis=1) > 1).all()
    # The 4-channel stage keeps the thesis's rotations and flips, on image and map together.
    assert train.augmenter(cfg, "rgbs") is not None
    # albumentations is NumPy: it never runs inside the compiled step.
    assert model_lib.augment_placement(cfg) == "pipeline"
    with pytest.raises(PipelineError, match="augment_placement must be pipeline or auto"):
        get_config("tiny", ["augment=thesis", "augment_placement=step"])


def test_the_step_casts_uint8_batches_and_xla_computes_the_same_step() -> None:
    cfg = dataclasses.replace(CFG, batch_size=8)
    x8 = images(8, seed=21)
    y = tf.one_hot(labels(8), 7)
    results = []
    for pixels, jit in (
        (tf.constant(x8, tf.float32), False),
        (tf.constant(x8), False),
        (tf.constant(x8), True),
    ):
        model = toy_classifier()
        groups = train.layer_groups(model, "rgb")
        optimizers = train.make_optimizers(cfg, "rgb", groups, steps_per_epoch=1)
        step = train.make_train_step(
            model,
            tf.distribute.get_strategy(),
            optimizers,
            groups,
            train.make_loss(cfg),
            None,
            jit_compile=jit,
        )
        losses = [float(step((pixels, y))) for _ in range(3)]
        results.append((losses, [v.numpy() for v in groups[0] + groups[1]]))
    (loss32, after32), (loss8, after8), (loss_xla, _) = results
    assert loss8 == loss32  # a uint8 batch cast in the step is the float32 batch
    for a, b in zip(after8, after32, strict=True):
        np.testing.assert_array_equal(a, b)
    # XLA sums in another order: Adam's sign-like first steps amplify that in weights whose
    # gradient is near 0, so the losses of three steps are compared, not the weights.
    assert loss_xla == pytest.approx(loss32, rel=1e-4)
    assert loss32[0] != pytest.approx(loss32[2], rel=1e-4)  # the steps really trained
    assert not model_lib.use_jit(dataclasses.replace(CFG, jit_compile="off"))
    assert model_lib.use_jit(dataclasses.replace(CFG, jit_compile="on"))
    assert model_lib.use_jit(CFG) == model_lib.has_gpu()  # auto: XLA on GPUs only
