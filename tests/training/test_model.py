"""The classifiers: shapes, save/load, the 4-channel conversion, ImageNet weights from a file."""

import dataclasses
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import model as model_lib
from training.config import get_config
from training.errors import PipelineError

pytestmark = pytest.mark.training

CFG = get_config("tiny")
SIZE = CFG.image_size


@pytest.fixture(scope="module", autouse=True)
def eager() -> Iterator[None]:
    """Run tf.functions eagerly: tracing EfficientNet costs far more than a tiny batch."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def rgb_model() -> keras.Model:
    """A random-weight tiny classifier with non-trivial batch-norm and normalisation stats."""
    keras.utils.set_random_seed(1)
    model = model_lib.build_classifier(CFG)
    # Give the normalisation layer ImageNet-like statistics that take effect (loading
    # ImageNet weights from a file ends with finalize_state() too), so the 4-channel copy
    # has something to keep and a copy that ignores them computes something else.
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    mean, variance, count = norm.get_weights()
    imagenet_mean = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
    imagenet_variance = (np.array([0.229, 0.224, 0.225], np.float32) * 255.0) ** 2
    norm.set_weights([mean * 0 + imagenet_mean, variance * 0 + imagenet_variance, count + 1])
    norm.finalize_state()
    head_bn = model.get_layer("head_bn")
    gamma, beta, moving_mean, moving_variance = head_bn.get_weights()
    head_bn.set_weights([gamma, beta + 0.1, moving_mean + 0.2, moving_variance * 2.0])
    return model


@pytest.fixture(scope="module")
def four_model(rgb_model: keras.Model) -> keras.Model:
    """The 4-channel conversion of `rgb_model`."""
    return model_lib.to_four_channels(rgb_model, CFG)


def images(count: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, channels), np.uint8)


def test_classifier_layout_and_output_shapes(rgb_model: keras.Model) -> None:
    assert rgb_model.input_shape == (None, SIZE, SIZE, 3)
    assert rgb_model.layers[-1].name == "softmax"
    assert isinstance(rgb_model.layers[-1], keras.layers.Activation)
    assert rgb_model.get_layer("logits").units == 7
    assert rgb_model.get_layer("head_dense").units == CFG.dense_units
    assert rgb_model.get_layer("head_dropout_1").rate == CFG.dropout
    assert not any(layer.name == "imagenet_rescaling" for layer in rgb_model.layers)
    batch = images(5)
    probabilities = model_lib.predict(rgb_model, batch, batch_size=2)
    assert probabilities.shape == (5, 7) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    features = model_lib.feature_model(rgb_model)(batch.astype(np.float32))
    assert features.shape == (5, 1280)  # EfficientNetB0's last convolution has 1280 channels
    logits = np.asarray(model_lib.score_model(rgb_model)(batch.astype(np.float32)))
    assert logits.shape == (5, 7)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probabilities, atol=1e-5)


def batch_norm_momenta(model: keras.Model) -> set[float]:
    """The distinct momenta of every BatchNormalization layer of `model`."""
    return {
        layer.momentum
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def test_every_batch_norm_carries_the_configured_momentum(
    rgb_model: keras.Model, four_model: keras.Model, tmp_path: Path
) -> None:
    # Keras builds EfficientNet with 0.99; the tiny preset asks for something else.
    assert get_config("thesis").bn_momentum == 0.99
    assert CFG.bn_momentum != 0.99
    count = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in rgb_model.layers)
    assert count > 40  # the whole backbone, not only the head
    assert batch_norm_momenta(rgb_model) == {CFG.bn_momentum}
    assert batch_norm_momenta(four_model) == {CFG.bn_momentum}
    model_lib.save_model(four_model, tmp_path / "four.keras")
    assert batch_norm_momenta(model_lib.load_model(tmp_path / "four.keras")) == {CFG.bn_momentum}
    other = model_lib.build_classifier(dataclasses.replace(CFG, bn_momentum=0.5))
    assert batch_norm_momenta(other) == {0.5}


def test_feature_and_score_models_take_a_lone_tensor_without_warning(
    four_model: keras.Model,
) -> None:
    batch = images(2, channels=4).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_lib.feature_model(four_model)(batch)
        model_lib.score_model(four_model)(batch)
    assert not [w for w in caught if "structure of `inputs`" in str(w.message)]


def test_predict_is_batch_independent(rgb_model: keras.Model) -> None:
    batch = images(5, seed=3)
    whole = model_lib.predict(rgb_model, batch, batch_size=8)
    padded = model_lib.predict(rgb_model, batch, batch_size=2)
    np.testing.assert_allclose(whole, padded, atol=1e-5)
    assert model_lib.predict(rgb_model, batch[:0], batch_size=2).shape == (0, 7)


def test_save_load_round_trip(rgb_model: keras.Model, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.keras"
    model_lib.save_model(rgb_model, path)
    loaded = model_lib.load_model(path)
    batch = images(4, seed=1)
    np.testing.assert_allclose(
        model_lib.predict(loaded, batch, 4), model_lib.predict(rgb_model, batch, 4), atol=1e-6
    )
    with pytest.raises(PipelineError, match="not found"):
        model_lib.load_model(tmp_path / "missing.keras")
    with pytest.raises(PipelineError, match=r"\.keras"):
        model_lib.save_model(rgb_model, tmp_path / "model.h5")


def assert_same_features(actual: object, expected: object) -> None:
    """Equal up to float rounding, relative to the features' scale (random networks' features
    are ~1e-5, so an absolute tolerance of that size would accept anything)."""
    expected = np.asarray(expected)
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-4, atol=1e-4 * scale)


def test_the_normalisation_statistics_take_effect(rgb_model: keras.Model) -> None:
    """Without this, the 4-channel tests below could not tell kept statistics from lost ones."""
    plain = model_lib.build_classifier(CFG)
    plain.set_weights(rgb_model.get_weights())  # variables copied, but not taken up
    batch = images(4, seed=2).astype(np.float32)
    features = model_lib.feature_model(rgb_model)(batch).numpy()
    # A random network's softmax barely depends on its input; its (tiny) features do.
    lost = model_lib.feature_model(plain)(batch).numpy()
    assert np.abs(lost - features).max() > 0.1 * np.abs(features).max()
    model_lib.finalize_normalization(plain)
    assert_same_features(model_lib.feature_model(plain)(batch), features)


def test_four_channels_survive_save_and_load_as_the_three_channel_function(
    rgb_model: keras.Model, four_model: keras.Model, tmp_path: Path
) -> None:
    batch = images(4, seed=12)
    zero_map = np.concatenate([batch, np.zeros((4, SIZE, SIZE, 1), np.uint8)], axis=-1)
    expected = model_lib.feature_model(rgb_model)(batch.astype(np.float32)).numpy()
    zero_map = zero_map.astype(np.float32)
    features = model_lib.feature_model(four_model)
    assert_same_features(features(zero_map), expected)
    model_lib.save_model(four_model, tmp_path / "four.keras")
    loaded = model_lib.feature_model(model_lib.load_model(tmp_path / "four.keras"))
    assert_same_features(loaded(zero_map), expected)
    assert_same_features(features(zero_map), expected)


def test_four_channels_with_any_map_computes_the_three_channel_function(
    rgb_model: keras.Model, four_model: keras.Model
) -> None:
    assert four_model.input_shape == (None, SIZE, SIZE, 4)
    batch = images(4, seed=2)
    zero_map = np.concatenate([batch, np.zeros((4, SIZE, SIZE, 1), np.uint8)], axis=-1)
    some_map = np.concatenate([batch, images(4, channels=1, seed=9)], axis=-1)
    expected = model_lib.predict(rgb_model, batch, 4)
    np.testing.assert_allclose(model_lib.predict(four_model, zero_map, 4), expected, atol=1e-5)
    # The new kernel slice starts at zero, so at first the map has no influence at all.
    np.testing.assert_allclose(model_lib.predict(four_model, some_map, 4), expected, atol=1e-5)
    features = model_lib.feature_model(rgb_model)(batch.astype(np.float32))
    features4 = model_lib.feature_model(four_model)(zero_map.astype(np.float32))
    assert_same_features(features4, features)


def test_four_channels_keeps_every_weight(rgb_model: keras.Model, four_model: keras.Model) -> None:
    assert [layer.name for layer in four_model.layers] == [layer.name for layer in rgb_model.layers]
    assert len(four_model.weights) == len(rgb_model.weights)
    for old, new in zip(rgb_model.layers, four_model.layers, strict=True):
        old_weights, new_weights = old.get_weights(), new.get_weights()
        assert len(old_weights) == len(new_weights), old.name
        if old.name == "stem_conv":
            (kernel,), (kernel4,) = old_weights, new_weights
            assert kernel4.shape == (3, 3, 4, kernel.shape[-1])
            np.testing.assert_array_equal(kernel4[:, :, :3], kernel)
            assert not kernel4[:, :, 3].any()
        elif isinstance(old, keras.layers.Normalization):
            (mean, variance, count), (mean4, variance4, count4) = old_weights, new_weights
            np.testing.assert_array_equal(mean4.ravel(), [*mean.ravel(), 0.0])
            np.testing.assert_array_equal(variance4.ravel(), [*variance.ravel(), 1.0])
            assert count4 == count
        else:
            for a, b in zip(old_weights, new_weights, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=old.name)


def test_fast_layer_names(rgb_model: keras.Model, four_model: keras.Model) -> None:
    assert model_lib.fast_layer_names(rgb_model, "rgb") == [
        "head_bn",
        "head_dropout_1",
        "head_dense",
        "head_dropout_2",
        "logits",
    ]
    names = model_lib.fast_layer_names(four_model, "rgbs")
    assert "stem_conv" in names and "head_bn" in names
    assert any(isinstance(four_model.get_layer(name), keras.layers.Normalization) for name in names)
    assert "head_dense" not in names and "block1a_dwconv" not in names
    with pytest.raises(PipelineError):
        model_lib.fast_layer_names(rgb_model, "grey")


def test_unknown_backbone_is_a_pipeline_error() -> None:
    with pytest.raises(PipelineError, match="ResNet50"):
        model_lib.build_classifier(dataclasses.replace(CFG, backbone="ResNet50"))


# ImageNet weights from a local file (never downloads) ---------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty KERAS_HOME, and any download attempt fails at once."""
    from keras.src.utils import file_utils

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no network in tests")

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def write_notop_weights(path: Path) -> keras.Model:
    """Save a random EfficientNetB0 (no top) in Keras's legacy HDF5 layout, like the real file."""
    keras.utils.set_random_seed(5)
    source = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    norm = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    norm.set_weights([np.array([124.0, 117.0, 104.0]), np.array([3e3, 3.1e3, 3.2e3]), np.int64(1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    source.save(path)
    return source


def test_imagenet_weights_from_the_keras_cache_and_from_a_file(
    offline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = model_lib.imagenet_weights_path("EfficientNetB0")
    assert cached == offline / "models" / "efficientnetb0_notop.h5"
    source = write_notop_weights(cached)
    imagenet_cfg = dataclasses.replace(CFG, weights="imagenet")
    model = model_lib.build_classifier(imagenet_cfg)
    rescaling = model.get_layer("imagenet_rescaling")
    np.testing.assert_allclose(rescaling.scale, [1 / math.sqrt(s) for s in (0.229, 0.224, 0.225)])
    names = [layer.name for layer in model.layers]
    assert names.index("imagenet_rescaling") == names.index("stem_conv_pad") - 1
    # Layer names of the random source differ only in Keras's auto-numbering ("normalization_1").
    source_layers = [layer for layer in source.layers if layer.weights]
    loaded_layers = [layer for layer in model.layers if layer.weights]
    assert len(loaded_layers) == len(source_layers) + 3  # head_bn, head_dense, logits
    for layer, copy in zip(source_layers, loaded_layers, strict=False):
        for a, b in zip(layer.get_weights(), copy.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=layer.name)

    # The same network Keras builds itself for weights="imagenet" (its download redirected).
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "get_file", lambda *args, **kwargs: str(cached))
    reference = keras.applications.EfficientNetB0(
        include_top=False, weights="imagenet", input_shape=(SIZE, SIZE, 3)
    )
    batch = images(2, seed=4).astype(np.float32)
    np.testing.assert_allclose(
        model_lib.feature_model(model)(batch),
        keras.layers.GlobalAveragePooling2D()(reference(batch)),
        atol=1e-5,
    )

    # The 4-channel model extends the ImageNet rescaling with a neutral factor.
    four = model_lib.to_four_channels(model, CFG)
    assert list(four.get_layer("imagenet_rescaling").scale) == [*rescaling.scale, 1.0]
    # In memory, with the file's statistics in effect, it computes the 3-channel function.
    zero_map = np.concatenate([batch, np.zeros((2, SIZE, SIZE, 1), np.float32)], axis=-1)
    assert_same_features(
        model_lib.feature_model(four)(zero_map), model_lib.feature_model(model)(batch)
    )
    np.testing.assert_array_equal(
        four.get_layer("stem_conv").get_weights()[0][:, :, :3],
        source.get_layer("stem_conv").get_weights()[0],
    )

    # A file given explicitly (--imagenet-weights) takes the same road from wherever it is.
    elsewhere = tmp_path / "downloads" / "b0.h5"
    elsewhere.parent.mkdir()
    cached.rename(elsewhere)
    assert model_lib.imagenet_weights_file(imagenet_cfg, "imagenet") is None  # would download
    assert model_lib.imagenet_weights_file(CFG, elsewhere) == elsewhere


def test_missing_imagenet_weights_name_the_expected_file(offline: Path, tmp_path: Path) -> None:
    imagenet_cfg = dataclasses.replace(CFG, weights="imagenet")
    with pytest.raises(PipelineError, match=r"efficientnetb0_notop\.h5") as raised:
        model_lib.build_classifier(imagenet_cfg)
    assert "--imagenet-weights" in str(raised.value)
    with pytest.raises(PipelineError, match=r"nowhere\.h5 not found.*efficientnetb0_notop\.h5"):
        model_lib.build_classifier(CFG, weights=tmp_path / "nowhere.h5")
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an hdf5 file")
    with pytest.raises(PipelineError, match="not an HDF5 weights file"):
        model_lib.build_classifier(CFG, weights=broken)


def test_conv_map_features_are_the_last_convolutional_map_flattened() -> None:
    cfg = dataclasses.replace(CFG, image_size=64)  # a 2 x 2 map (32 px gives 1 x 1)
    keras.utils.set_random_seed(3)
    classifier = model_lib.build_classifier(cfg)
    batch = np.random.default_rng(4).integers(0, 256, (2, 64, 64, 3)).astype(np.float32)
    conv = keras.Model(classifier.input, classifier.get_layer("features").input)(batch)
    flat = model_lib.feature_model(classifier, "conv_map")(batch)
    height, width, channels = conv.shape[1:]
    assert (height, width) == (2, 2) and flat.shape == (2, height * width * channels)
    np.testing.assert_allclose(np.asarray(flat), np.asarray(conv).reshape(2, -1), rtol=1e-6)
    pooled = model_lib.feature_model(classifier, "pooled")(batch)
    np.testing.assert_allclose(np.asarray(pooled), np.asarray(conv).mean(axis=(1, 2)), atol=1e-5)
    with pytest.raises(PipelineError, match="pooled or conv_map"):
        model_lib.feature_model(classifier, "logits")


def test_a_mixed_precision_model_loads_as_float32_where_the_process_computes_in_float32(
    tmp_path: Path,
) -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(2)
        half = model_lib.build_classifier(CFG)
        model_lib.save_model(half, tmp_path / "half.keras")
        assert model_lib.is_mixed(model_lib.load_model(tmp_path / "half.keras"))  # a GPU's run
    finally:
        keras.mixed_precision.set_global_policy("float32")
    loaded = model_lib.load_model(tmp_path / "half.keras")  # resumed on a CPU
    assert not model_lib.is_mixed(loaded)
    assert loaded.get_layer("stem_conv").compute_dtype == "float32"
    batch = images(3, seed=7)
    np.testing.assert_allclose(
        model_lib.predict(loaded, batch, 3), model_lib.predict(half, batch, 3), atol=2e-2
    )
