"""Exact cosine top-k with lesion exclusion, feature extraction and bank files."""

from pathlib import Path

import numpy as np
import pytest

from training.bank import (
    extract_features,
    l2_normalise,
    load_bank,
    neighbour_ids,
    save_bank,
    top_k,
)
from training.errors import PipelineError


def random_unit(rows: int, dim: int, seed: int) -> np.ndarray:
    """Random L2-normalised float32 rows."""
    return l2_normalise(np.random.default_rng(seed).standard_normal((rows, dim)))


def brute_force(
    queries: np.ndarray,
    bank: np.ndarray,
    k: int,
    query_groups: list[str] | None = None,
    bank_groups: list[str] | None = None,
) -> np.ndarray:
    """Reference answer: full sort by (-similarity, index), own-group rows dropped."""
    sims = queries.astype(np.float64) @ bank.T.astype(np.float64)
    result = []
    for q, row in enumerate(sims):
        order = np.lexsort((np.arange(len(row)), -row))
        if query_groups is not None and bank_groups is not None:
            order = [i for i in order if bank_groups[i] != query_groups[q]]
        result.append(order[:k])
    return np.array(result)


def test_top_k_matches_brute_force_argsort() -> None:
    bank = random_unit(500, 32, seed=1)
    queries = random_unit(40, 32, seed=2)
    indices, sims = top_k(queries, bank, 7)
    assert indices.shape == sims.shape == (40, 7)
    assert indices.dtype == np.int64 and sims.dtype == np.float32
    np.testing.assert_array_equal(indices, brute_force(queries, bank, 7))
    np.testing.assert_allclose(sims, np.take_along_axis(queries @ bank.T, indices, 1), atol=1e-6)
    assert (np.diff(sims, axis=1) <= 0).all()


@pytest.mark.parametrize("chunk_bytes", [1, 4 * 500 * 3, 1 << 30])
def test_top_k_never_returns_the_query_group(chunk_bytes: int) -> None:
    rng = np.random.default_rng(3)
    bank = random_unit(300, 16, seed=4)
    bank_groups = [f"L{g}" for g in rng.integers(0, 60, len(bank))]
    # Queries are noisy copies of bank rows, so their own lesion would rank first.
    picks = rng.choice(len(bank), 25, replace=False)
    queries = l2_normalise(bank[picks] + 0.01 * rng.standard_normal((25, 16)))
    query_groups = [bank_groups[i] for i in picks[:-1]] + ["unseen lesion"]

    indices, _ = top_k(queries, bank, 5, query_groups, bank_groups, chunk_bytes=chunk_bytes)
    for q, row in enumerate(indices):
        assert all(bank_groups[i] != query_groups[q] for i in row)
    np.testing.assert_array_equal(indices, brute_force(queries, bank, 5, query_groups, bank_groups))
    # Without exclusion (the thesis's retrieval) each query finds its own source image first.
    kept, _ = top_k(queries, bank, 5, query_groups, bank_groups, exclude_same_group=False)
    np.testing.assert_array_equal(kept[:, 0], picks)


def test_ties_go_to_the_lower_index() -> None:
    row = l2_normalise(np.array([[1.0, 0.0]]))
    other = l2_normalise(np.array([[0.0, 1.0]]))
    # Five identical best rows at 1, 3, 4, 6, 8: any k must take them in index order.
    bank = np.repeat(other, 10, axis=0)
    bank[[8, 3, 6, 1, 4]] = row
    for k in range(1, 10):
        indices, _ = top_k(row, bank, k)
        expected = [1, 3, 4, 6, 8, 0, 2, 5, 7][:k]
        assert indices[0].tolist() == expected


def test_too_few_candidates_are_marked() -> None:
    bank = random_unit(4, 8, seed=5)
    indices, sims = top_k(bank[:1], bank, 4, ["a"], ["a", "a", "b", "c"])
    assert sorted(indices[0, :2].tolist()) == [2, 3]
    assert indices[0, 2:].tolist() == [-1, -1]
    assert np.isneginf(sims[0, 2:]).all()
    assert neighbour_ids(indices, ["w", "x", "y", "z"])[0] in (["y", "z"], ["z", "y"])


def test_top_k_rejects_bad_arguments() -> None:
    bank = random_unit(5, 4, seed=6)
    with pytest.raises(ValueError, match="k must be"):
        top_k(bank, bank, 6)
    with pytest.raises(ValueError, match="both"):
        top_k(bank, bank, 2, query_groups=list("abcde"))


def test_l2_normalise_keeps_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_bank_round_trip(tmp_path: Path) -> None:
    features = random_unit(6, 5, seed=7)
    ids = [f"ISIC_{i:07d}" for i in range(6)]
    save_bank(tmp_path / "bank.npz", ids, features)
    loaded_ids, loaded = load_bank(tmp_path / "bank.npz")
    assert loaded_ids == ids
    np.testing.assert_array_equal(loaded, features)
    with pytest.raises(PipelineError, match="not found"):
        load_bank(tmp_path / "missing.npz")


@pytest.mark.training
def test_extract_features_from_a_keras_model() -> None:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu")(inputs)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    pooled = keras.Model(inputs, features)
    feature_map = keras.Model(inputs, x)
    images = np.random.default_rng(8).integers(0, 256, (5, 16, 16, 3)).astype(np.uint8)

    out = extract_features(pooled, images, batch_size=2)
    assert out.shape == (5, 6) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out, extract_features(pooled, images, batch_size=5), atol=1e-6)
    # A model ending at the last convolution is pooled the same way.
    np.testing.assert_allclose(out, extract_features(feature_map, images, 3), atol=1e-6)
