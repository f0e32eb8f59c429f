"""Feature banks and exact cosine top-k retrieval.

The bank is the retrieval set (train + val); the queries are the test split. Features are
the global average pool after the last convolution, L2-normalised, so cosine similarity is
a plain dot product. Retrieval is exact (no approximate index): at 10^5 bank images a
chunked matrix product is fast enough and leaves nothing to tune. TensorFlow is only needed
by `extract_features`, and only through the model it is given.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.errors import PipelineError
from training.kerastypes import KerasModel

# Largest similarity block held at once (bytes of float32); bounds memory for any bank size.
CHUNK_BYTES = 64 * 1024 * 1024


def l2_normalise(features: NDArray[Any]) -> NDArray[np.float32]:
    """Rows scaled to unit length (float32); all-zero rows stay zero instead of becoming NaN."""
    rows = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    divisor: NDArray[np.float32] = np.where(norms > 0, norms, 1.0).astype(np.float32)
    return rows / divisor


def extract_features(
    model: KerasModel, images: NDArray[Any], batch_size: int
) -> NDArray[np.float32]:
    """L2-normalised float32 features (N, D) of `images` from a model that outputs features.

    Pass `feature_model(classifier)` (the global average pool). A model that outputs a
    feature map (N, h, w, c) is average-pooled here, anything else is flattened.
    Rows are normalised batch by batch into one preallocated array: the flattened
    convolutional map (`features=conv_map`, 258,048-d for B4 at 380 px) of a 9,000-image
    bank is 9.3 GB, which must not be held twice.
    """
    if len(images) == 0:
        raise ValueError("no images to extract features from")
    result: NDArray[np.float32] | None = None
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], dtype=np.float32)
        out = np.asarray(model(batch, training=False))
        if out.ndim == 4:
            out = out.mean(axis=(1, 2))
        out = l2_normalise(out.reshape(len(batch), -1))
        if result is None:
            result = np.empty((len(images), out.shape[1]), np.float32)
        result[start : start + len(batch)] = out
    assert result is not None
    return result


def _group_codes(
    query_groups: Sequence[str], bank_groups: Sequence[str]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Integer codes for the groups of queries and bank, shared between the two."""
    _, codes = np.unique(
        np.concatenate([np.asarray(query_groups, dtype=str), np.asarray(bank_groups, dtype=str)]),
        return_inverse=True,
    )
    codes = codes.ravel()
    return codes[: len(query_groups)], codes[len(query_groups) :]


def _chunk_rows(bank_size: int, chunk_bytes: int) -> int:
    """How many query rows fit in one similarity block of at most `chunk_bytes`."""
    return max(1, chunk_bytes // (4 * max(bank_size, 1)))


def _select_top(sims: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Column indices of the k largest values per row, ties broken by the lower index."""
    # Partitioning at n - k puts the k largest last, without negating a copy of the block.
    n = sims.shape[1]
    part = np.argpartition(sims, n - k, axis=1)[:, n - k :]
    # The k-th largest value of each row: anything equal to it is a tie at the cut.
    kth = np.take_along_axis(sims, part, axis=1).min(axis=1)
    ambiguous = np.flatnonzero(np.count_nonzero(sims >= kth[:, None], axis=1) > k)
    for r in ambiguous:
        # argpartition picks arbitrarily among equal values; take the lowest indices instead.
        candidates = np.flatnonzero(sims[r] >= kth[r])
        order = np.argsort(-sims[r, candidates], kind="stable")
        part[r] = candidates[order[:k]]
    # Sort each row's k winners by similarity, then index (lexsort: last key is primary).
    values = np.take_along_axis(sims, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    return np.take_along_axis(part, order, axis=1)


def top_k(
    queries: NDArray[Any],
    bank: NDArray[Any],
    k: int,
    query_groups: Sequence[str] | None = None,
    bank_groups: Sequence[str] | None = None,
    exclude_same_group: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Exact cosine top-k of each query in the bank: (indices int64 (Q, k), similarities float32).

    Rows must already be L2-normalised. With groups (lesion ids) and `exclude_same_group`,
    no query ever retrieves an image of its own group (`exclude_same_group=False` only to
    reproduce the thesis). Ties go to the lower bank index, so results are reproducible.
    Ask for k + margin to get spare candidates for later filtering. If exclusion leaves a
    query fewer than k candidates, its missing places hold index -1 and similarity -inf.
    """
    queries = np.asarray(queries, dtype=np.float32)
    bank = np.asarray(bank, dtype=np.float32)
    if queries.ndim != 2 or bank.ndim != 2 or queries.shape[1] != bank.shape[1]:
        raise ValueError(f"need (Q, D) queries and (N, D) bank, got {queries.shape}, {bank.shape}")
    if not 1 <= k <= len(bank):
        raise ValueError(f"k must be between 1 and the bank size {len(bank)}, got {k}")
    if (query_groups is None) != (bank_groups is None):
        raise ValueError("give both query_groups and bank_groups, or neither")
    exclude = exclude_same_group and query_groups is not None
    if exclude:
        assert query_groups is not None and bank_groups is not None  # `exclude` says so
        if len(query_groups) != len(queries) or len(bank_groups) != len(bank):
            raise ValueError("one group per query and one per bank row are needed")
        query_codes, bank_codes = _group_codes(query_groups, bank_groups)
        # Bank rows grouped by code (CSR-like), so each query finds its group's rows directly.
        by_group = np.argsort(bank_codes, kind="stable")
        group_count = int(max(query_codes.max(), bank_codes.max())) + 1
        starts = np.searchsorted(bank_codes[by_group], np.arange(group_count + 1))
        counts = np.diff(starts)

    indices = np.empty((len(queries), k), dtype=np.int64)
    similarities = np.empty((len(queries), k), dtype=np.float32)
    step = _chunk_rows(len(bank), chunk_bytes)
    for start in range(0, len(queries), step):
        block = queries[start : start + step]
        sims = block @ bank.T
        if exclude:
            codes = query_codes[start : start + len(block)]
            sizes = counts[codes]
            rows = np.repeat(np.arange(len(block)), sizes)
            # Position of each masked entry within its query's group, then its bank row.
            offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            cols = by_group[np.repeat(starts[codes], sizes) + offsets]
            sims[rows, cols] = -np.inf
        chosen = _select_top(sims, k)
        values = np.take_along_axis(sims, chosen, axis=1)
        chosen[np.isneginf(values)] = -1
        indices[start : start + len(block)] = chosen
        similarities[start : start + len(block)] = values
    return indices, similarities


def neighbour_ids(indices: NDArray[np.int64], bank_ids: Sequence[str]) -> list[list[str]]:
    """Bank ids for each row of `top_k` indices, dropping the -1 placeholders."""
    ids = np.asarray(bank_ids, dtype=str)
    return [[str(ids[i]) for i in row if i >= 0] for row in np.asarray(indices)]


def save_bank(path: Path, ids: Sequence[str], features: NDArray[Any]) -> None:
    """Write image ids and their feature rows to an .npz file."""
    features = np.asarray(features, dtype=np.float32)
    if len(ids) != len(features):
        raise ValueError(f"{len(ids)} ids but {len(features)} feature rows")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=np.asarray(ids, dtype=str), features=features)


def load_bank(path: Path) -> tuple[list[str], NDArray[np.float32]]:
    """Read a bank written by `save_bank`: (ids, float32 features)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"feature bank not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            ids = [str(i) for i in data["ids"]]
            features = data["features"].astype(np.float32, copy=False)
    except (OSError, ValueError, KeyError) as error:
        raise PipelineError(f"cannot read feature bank {path}: {error}") from error
    if len(ids) != len(features):
        raise PipelineError(f"feature bank {path}: {len(ids)} ids but {len(features)} rows")
    return ids, features
