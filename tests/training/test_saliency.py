"""Vanilla-gradient saliency maps: per-image 8-bit normalisation, batch independence, PNGs."""

from pathlib import Path

import numpy as np
import pytest

from training.errors import PipelineError
from training.saliency import normalise_gradients, read_maps, write_maps

SIZE = 32


def test_normalise_by_hand() -> None:
    # One image, two channels: |g| summed is 0..100 in steps; 99th percentile of 0..100 is 99.
    grads = np.stack([np.arange(101.0), -np.zeros(101)], axis=-1).reshape(1, 1, 101, 2)
    maps = normalise_gradients(grads)
    assert maps.dtype == np.uint8 and maps.shape == (1, 1, 101)
    expected = np.rint(np.clip(np.arange(101.0) / 99.0 * 255.0, 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(maps[0, 0], expected)
    assert maps.min() == 0 and maps.max() == 255


def test_normalise_never_wraps_around() -> None:
    # Magnitudes 0..99: the 99th percentile is 98.01, so the top pixel lands at 257.6 grey
    # levels, which a plain uint8 cast would wrap to 1.
    magnitude = np.arange(100.0).reshape(1, 10, 10)
    maps = normalise_gradients(magnitude)
    assert maps[0, 9, 9] == 255 and maps[0, 9, 8] == 255
    assert (np.diff(maps.ravel().astype(int)) >= 0).all()  # monotonic: nothing wrapped
    # Negative gradients count by magnitude: the sign does not decide saliency.
    np.testing.assert_array_equal(normalise_gradients(-magnitude), maps)


def test_normalise_is_per_image() -> None:
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((4, 8, 8, 3)) * np.array([1e-6, 1.0, 1e3, 0.0])[:, None, None, None]
    maps = normalise_gradients(batch)
    for i in range(4):
        np.testing.assert_array_equal(maps[i], normalise_gradients(batch[i : i + 1])[0])
    # Whole range for any scale; a constant-zero gradient gives an all-zero map.
    assert maps[:3].max(axis=(1, 2)).tolist() == [255, 255, 255]
    assert (maps[3] == 0).all()
    # A sparse gradient (99th percentile 0) is scaled by its maximum instead.
    sparse = np.zeros((1, 20, 20))
    sparse[0, 5, 5] = 1e-9
    assert normalise_gradients(sparse).max() == 255


def test_png_round_trip(tmp_path: Path) -> None:
    maps = np.random.default_rng(1).integers(0, 256, (3, 12, 12)).astype(np.uint8)
    ids = ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    write_maps(tmp_path / "maps", ids, maps)
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [f"{i}.png" for i in ids]
    np.testing.assert_array_equal(read_maps(tmp_path / "maps", ids, 12), maps)
    assert read_maps(tmp_path / "maps", ids[::-1], 6).shape == (3, 6, 6)
    with pytest.raises(PipelineError, match=r"1 saliency map.*ISIC_9"):
        read_maps(tmp_path / "maps", [*ids, "ISIC_9"], 12)


@pytest.fixture(scope="module")
def classifier():
    """A tiny classifier shaped like ours: ... Dense(7) then a separate softmax Activation."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    x = keras.layers.Dense(7)(x)
    outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def efficientnet():
    """EfficientNetB0 (random weights, 32 px) with a Dense(7) + softmax head, as in training."""
    import keras

    keras.utils.set_random_seed(1)
    backbone = keras.applications.EfficientNetB0(
        weights=None, include_top=False, input_shape=(SIZE, SIZE, 3)
    )
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D(name="features")(backbone(inputs))
    x = keras.layers.Dense(7)(x)
    outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs)


def images(count: int, seed: int) -> np.ndarray:
    """Random uint8 RGB images."""
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, 3)).astype(np.uint8)


@pytest.mark.training
def test_maps_match_tf_explain_gradients(classifier) -> None:
    from tf_explain.core.vanilla_gradients import VanillaGradients

    from training.saliency import saliency_maps, score_model

    batch = images(6, seed=2)
    classes = np.array([0, 3, 3, 6, 0, 1])
    maps = saliency_maps(classifier, batch, classes, batch_size=4)
    assert maps.shape == (6, SIZE, SIZE) and maps.dtype == np.uint8
    scores = score_model(classifier)
    assert scores.layers[-1].name != "softmax"
    for c in np.unique(classes):
        chosen = np.flatnonzero(classes == c)
        grads = VanillaGradients.compute_gradients(batch[chosen], scores, int(c)).numpy()
        # Same gradient up to float rounding: at most one grey level apart, nearly all equal.
        diff = np.abs(normalise_gradients(grads).astype(int) - maps[chosen])
        assert diff.max() <= 1 and diff.mean() < 0.01


@pytest.mark.training
@pytest.mark.parametrize("model_name", ["classifier", "efficientnet"])
def test_maps_do_not_depend_on_the_batch(model_name: str, request: pytest.FixtureRequest) -> None:
    from training.saliency import saliency_maps

    classifier = request.getfixturevalue(model_name)
    batch = images(7, seed=3)
    classes = np.array([5, 1, 4, 4, 2, 0, 6])
    together = saliency_maps(classifier, batch, classes, batch_size=4)
    for i in (0, 3, 6):
        alone = saliency_maps(classifier, batch[i : i + 1], classes[i : i + 1], batch_size=4)
        np.testing.assert_array_equal(alone[0], together[i])
    # Shuffled order, different neighbours in each batch: still the same maps.
    order = np.array([6, 2, 0, 5, 1, 3, 4])
    shuffled = saliency_maps(classifier, batch[order], classes[order], batch_size=4)
    np.testing.assert_array_equal(shuffled, together[order])
    # Whole 0..255 range, one map per image.
    assert (together.max(axis=(1, 2)) == 255).all()
    assert (together.min(axis=(1, 2)) < 255).all()
    # The class matters: another class gives another map.
    other = saliency_maps(classifier, batch[:1], np.array([2]), batch_size=4)
    assert not np.array_equal(other[0], together[0])


@pytest.mark.training
def test_predicted_classes(classifier) -> None:
    from training.saliency import predicted_classes

    batch = images(5, seed=4)
    expected = np.asarray(classifier(batch.astype(np.float32))).argmax(axis=1)
    np.testing.assert_array_equal(predicted_classes(classifier, batch, batch_size=2), expected)


def test_tf_explain_scaling_is_tf_explains_own_function_on_each_image_alone() -> None:
    import tensorflow as tf
    from tf_explain.utils.image import transform_to_normalized_grayscale

    from training.saliency import tf_explain_scaling

    rng = np.random.default_rng(3)
    grads = rng.standard_normal((3, 6, 6, 3)).astype(np.float32) * np.array([1.0, 5.0, 1e-3])[
        :, None, None, None
    ].astype(np.float32)
    maps = tf_explain_scaling(grads)
    assert maps.dtype == np.uint8 and maps.shape == (3, 6, 6)
    for i in range(3):
        alone = transform_to_normalized_grayscale(tf.abs(tf.constant(grads[i : i + 1])))
        np.testing.assert_array_equal(maps[i], np.asarray(alone)[0])
        # Per image: the same map whatever the batch around it (tf-explain's batch call is not).
        np.testing.assert_array_equal(tf_explain_scaling(grads[i : i + 1])[0], maps[i])
    batched = np.asarray(transform_to_normalized_grayscale(tf.abs(tf.constant(grads))))
    assert not np.array_equal(batched, maps)
    # TensorFlow's cast wraps: a pixel just below its image's mean becomes a bright one.
    magnitude = np.abs(grads[0]).sum(-1)
    below = magnitude < magnitude.mean() - 0.1 * magnitude.std()
    assert (maps[0][below] > 128).any()


def test_saliency_maps_take_the_scaling_by_name() -> None:
    import keras

    from training.saliency import saliency_maps, tf_explain_scaling

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(7)(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    pictures = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    classes = np.array([0, 3, 6])
    p99 = saliency_maps(model, pictures, classes, batch_size=2)
    wrapped = saliency_maps(model, pictures, classes, batch_size=2, scaling="tf_explain")
    assert not np.array_equal(p99, wrapped)
    # A linear model's gradient is its weight column of the class: scaled the tf-explain way.
    weights = model.layers[2].get_weights()[0].reshape(8, 8, 3, 7)
    expected = tf_explain_scaling(np.stack([weights[..., c] for c in classes]))
    np.testing.assert_array_equal(wrapped, expected)
    with pytest.raises(ValueError, match="scaling must be one of"):
        saliency_maps(model, pictures, classes, batch_size=2, scaling="max")
