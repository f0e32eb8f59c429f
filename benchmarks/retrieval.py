"""Benchmark: exact top-6 retrieval for 1,000 queries over banks of 10k and 100k images.

Compares `training.bank.top_k` (with and without lesion exclusion) with a bare NumPy matrix
product + argpartition run side by side, on random 1792-d L2-normalised float32 vectors
(EfficientNetB4's feature size). The machine is shared, so each variant runs several times
interleaved with the baseline and the report gives medians and ratios to the baseline.

Run: .venv/bin/python benchmarks/retrieval.py [--repeats 3]
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.bank import l2_normalise, top_k

QUERIES = 1000
DIM = 1792
K = 6


def baseline(queries: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    """The naive approach: one full similarity matrix, argpartition, no ties, no exclusion."""
    sims = queries @ bank.T
    n = sims.shape[1]
    part = np.argpartition(sims, n - k, axis=1)[:, n - k :]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def bench_size(size: int, queries: np.ndarray, repeats: int, rng: np.random.Generator) -> None:
    """Time the three variants on one bank size, interleaved, and print one line each."""
    bank = l2_normalise(rng.standard_normal((size, DIM), dtype=np.float32))
    # About 1.35 images per lesion, as in HAM10000 (10,015 images of 7,470 lesions).
    bank_groups = [f"L{i}" for i in rng.integers(0, int(size / 1.35), size)]
    query_groups = [bank_groups[i] for i in rng.integers(0, size, len(queries))]
    variants: dict[str, Callable[[], object]] = {
        "numpy matmul + argpartition": lambda: baseline(queries, bank, K),
        "top_k": lambda: top_k(queries, bank, K),
        "top_k, lesion exclusion": lambda: top_k(queries, bank, K, query_groups, bank_groups),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    answers: dict[str, object] = {}
    for _ in range(repeats):
        for name, function in variants.items():
            start = time.perf_counter()
            answers[name] = function()
            times[name].append(time.perf_counter() - start)
    # Random data has no ties, so top_k must agree with the baseline exactly.
    indices, _ = answers["top_k"]  # type: ignore[misc]
    assert np.array_equal(indices, answers["numpy matmul + argpartition"])
    base = statistics.median(times["numpy matmul + argpartition"])
    for name, samples in times.items():
        median = statistics.median(samples)
        per_query = 1000 * median / len(queries)
        print(f"{size:>8} {name:<28} {per_query:>9.3f} {median / base:>11.2f}", flush=True)


def main() -> None:
    """Time every variant on each bank size and print ms per query and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    queries = l2_normalise(rng.standard_normal((QUERIES, DIM), dtype=np.float32))
    print(f"{QUERIES} queries, top-{K}, {DIM}-d float32, median of {args.repeats} runs")
    print(f"{'bank':>8} {'variant':<28} {'ms/query':>9} {'x baseline':>11}")
    for size in args.sizes:
        bench_size(size, queries, args.repeats, rng)


if __name__ == "__main__":
    main()
