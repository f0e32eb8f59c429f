"""Mixed precision: augmentation and saliency stay float32 under the mixed_float16 policy.

The thesis preset turns mixed precision on for GPUs; these tests set the policy on the CPU,
which builds the same float16 layers, so the GPU's code path is checked here.
"""

import dataclasses
from collections.abc import Iterator

import keras
import numpy as np
import pytest

from training import model as model_lib
from training import saliency, train
from training.config import get_config

pytestmark = pytest.mark.training

CFG = get_config("tiny")
SIZE = CFG.image_size


@pytest.fixture
def mixed() -> Iterator[None]:
    """The mixed_float16 global policy for the test, float32 again afterwards."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def images(count: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, (count, SIZE, SIZE, channels), np.uint8)


@pytest.mark.parametrize("strength", ["strong", "light"])
def test_rgb_augmentation_builds_and_runs_under_mixed_precision(mixed: None, strength: str) -> None:
    augment = train.augmenter(dataclasses.replace(CFG, augment=strength), "rgb")
    dataset = train.make_dataset(images(8), np.arange(8) % 7, 8, augment=augment)
    ((x, _),) = list(dataset)
    assert x.dtype == "float32"
    assert float(np.min(x)) >= 0.0 and float(np.max(x)) <= 255.0


def test_four_channel_augmentation_runs_under_mixed_precision(mixed: None) -> None:
    augment = train.augmenter(CFG, "rgbs")
    pictures = images(8, seed=1)
    dataset = train.make_dataset(
        pictures, np.arange(8) % 7, 8, maps=pictures[..., 0], augment=augment
    )
    ((x, _),) = list(dataset)
    assert x.dtype == "float32"
    np.testing.assert_allclose(np.asarray(x)[..., 3], np.asarray(x)[..., 0], atol=1e-3)


def test_saliency_is_computed_in_float32_under_mixed_precision(mixed: None) -> None:
    keras.utils.set_random_seed(4)
    half = model_lib.build_classifier(CFG)
    assert model_lib.is_mixed(half)
    keras.mixed_precision.set_global_policy("float32")
    full = model_lib.build_classifier(CFG)
    full.set_weights(half.get_weights())
    assert not model_lib.is_mixed(full)
    batch, classes = images(4, seed=2), np.arange(4)
    expected = saliency.saliency_maps(full, batch, classes, batch_size=4)
    maps = saliency.saliency_maps(half, batch, classes, batch_size=4)
    # Same network, same weights: the maps of the float16 model are the float32 model's.
    np.testing.assert_array_equal(maps, expected)
    assert expected.max() > 0


def test_float32_copy_keeps_weights_and_normalisation(mixed: None) -> None:
    keras.utils.set_random_seed(5)
    half = model_lib.build_classifier(CFG)
    norm = next(layer for layer in half.layers if isinstance(layer, keras.layers.Normalization))
    mean, variance, count = norm.get_weights()
    norm.set_weights([mean + 120.0, variance * 4000.0, count + 1])
    norm.finalize_state()
    copy = model_lib.float32_copy(half)
    assert not model_lib.is_mixed(copy)
    batch = images(3, seed=6)
    np.testing.assert_allclose(
        model_lib.predict(copy, batch, 3), model_lib.predict(half, batch, 3), atol=2e-2
    )
