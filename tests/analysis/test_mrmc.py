"""Obuchowski-Rockette with Hillis ddf: a hand-worked example and step-by-step references."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from app.analysis.endpoints import Blocks, Endpoint, figures
from app.analysis.mrmc import or_hillis


def obuchowski_rockette(
    reader: np.ndarray, case: np.ndarray, correct1: np.ndarray, correct2: np.ndarray
) -> dict[str, Any]:
    """Proportion correct, `aided` (correct2) against `unaided` (correct1), flattened."""
    reader = np.asarray(reader)
    score = np.stack([np.asarray(correct2, float), np.asarray(correct1, float)])
    n = reader.size
    blocks = Blocks(
        conditions=("aided", "unaided"),
        readers=tuple(f"R{j}" for j in range(int(reader.max()) + 1)),
        reader=reader,
        case=np.asarray(case),
        truth=np.zeros(n, dtype=np.int64),
        majority_vote=np.zeros(n, dtype=np.int64),
        diagnosis=np.zeros((2, n), dtype=np.int64),
        confidence=np.zeros((2, n)),
        seconds=np.zeros((2, n)),
    )
    result = or_hillis(Endpoint("pc", "pc", "", np.zeros(n, dtype=np.int64), score), blocks)
    out: dict[str, Any] = {
        "readers": result["readers"],
        "readers_left_out": result["readers_left_out"],
        "available": result["available"],
    }
    if not result["available"]:
        return out
    assert result["equality"] is not None and result["covariances"] is not None
    (diff,) = result["differences"]
    assert diff["comparison"] == "aided - unaided"
    fixed = result["fixed_readers"]
    return {
        **out,
        **result["covariances"],
        "task1": result["means"]["unaided"],
        "task2": result["means"]["aided"],
        "difference": diff["estimate"],
        "f": result["equality"]["F"],
        "ddf": result["equality"]["df2"],
        "p_value": result["equality"]["p"],
        "se": diff["se"],
        "ci_low": diff["ci_low"],
        "ci_high": diff["ci_high"],
        "fixed_readers": None if fixed is None else {"chi2": fixed["equality"]["chi2"]},
    }


def test_hand_example_three_readers_disjoint_cases() -> None:
    """3 readers x 4 cases each, no case shared, so Cov2 = Cov3 = 0.

    theta (task x reader): Task 1 = 1/2, 1/4, 3/4 (mean 1/2); Task 2 = 3/4, 3/4, 1 (mean 5/6).
    MS(T) = r * sum_i (theta_i. - theta..)^2 = 3 * 2 * (1/6)^2 = 1/6.
    Interaction residuals: +-1/24, -+1/12, +-1/24 -> MS(T*R) = 2 * (1/576 + 1/144 + 1/576) / 2
    = 1/96. F = (1/6) / (1/96) = 16 on (1, 2) df; SE = sqrt(2/3 * 1/96) = 1/12.
    With 2 df, P(|T| > t) = 1 - t / sqrt(2 + t^2), so p = 1 - 4 / sqrt(18).
    Jackknife variance of a proportion p over a reader's c cases: p (1 - p) / (c - 1), e.g. 1/12
    at p = 1/2, times (n - 1)/n * c/(c - 1) = 11/9 for MRMCaov's scale by the study's n = 12
    cases (mrmc.py). Every case was read by one reader: MRMCaov sets Cov2 = Cov3 = 0.
    """
    reader = np.repeat([0, 1, 2], 4)
    case = np.arange(12)
    correct1 = np.array([1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0], dtype=bool)
    correct2 = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1], dtype=bool)
    result = obuchowski_rockette(reader, case, correct1, correct2)
    assert result["task1"] == pytest.approx(1 / 2)
    assert result["task2"] == pytest.approx(5 / 6)
    assert result["difference"] == pytest.approx(1 / 3)
    assert result["ms_t"] == pytest.approx(1 / 6)
    assert result["ms_tr"] == pytest.approx(1 / 96)
    assert result["cov2"] == pytest.approx(0.0, abs=1e-15)
    assert result["cov3"] == pytest.approx(0.0, abs=1e-15)
    # Var = 11/9 x mean of 1/12, 1/16, 1/16, 1/16, 1/16, 0; Cov1 = 11/9 x mean of 1/24, 1/48, 0.
    assert result["var"] == pytest.approx(11 / 9 / 18)
    assert result["cov1"] == pytest.approx(11 / 9 / 48)
    assert result["f"] == pytest.approx(16.0)
    assert result["ddf"] == pytest.approx(2.0)
    assert result["p_value"] == pytest.approx(1 - 4 / math.sqrt(18))
    assert result["se"] == pytest.approx(1 / 12)
    t975_2df = 4.302652729911275  # the 97.5% quantile of t on 2 df
    assert result["ci_low"] == pytest.approx(1 / 3 - t975_2df / 12)
    assert result["ci_high"] == pytest.approx(1 / 3 + t975_2df / 12)
    # Readers fixed: X^2 = MS(T) / (Var - Cov1) = (1/6) / (11/9 x 5/144) = 4.8 x 9/11.
    assert result["fixed_readers"]["chi2"] == pytest.approx(4.8 * 9 / 11)


def reference_or(theta: np.ndarray, cov: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """OR-Hillis from a theta table (t x r) and the full covariance matrix, written out longhand."""
    t, r = theta.shape
    index = list(itertools.product(range(t), range(r)))
    groups: dict[str, list[float]] = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    for a, (i, j) in enumerate(index):
        for b, (i2, j2) in enumerate(index):
            if i == i2 and j == j2:
                groups["var"].append(cov[a, b])
            elif i != i2 and j == j2:
                groups["cov1"].append(cov[a, b])
            elif i == i2:
                groups["cov2"].append(cov[a, b])
            else:
                groups["cov3"].append(cov[a, b])
    avg = {name: float(np.mean(values)) for name, values in groups.items()}
    grand = theta.mean()
    ms_t = r * sum((theta[i].mean() - grand) ** 2 for i in range(t)) / (t - 1)
    ms_tr = sum(
        (theta[i, j] - theta[i].mean() - theta[:, j].mean() + grand) ** 2
        for i in range(t)
        for j in range(r)
    ) / ((t - 1) * (r - 1))
    denominator = ms_tr + max(r * (avg["cov2"] - avg["cov3"]), 0)
    ddf = denominator**2 / (ms_tr**2 / ((t - 1) * (r - 1)))
    f = ms_t / denominator
    diff = theta[1].mean() - theta[0].mean()
    se = math.sqrt(2 / r * denominator)
    half = stats.t.ppf(1 - (1 - level) / 2, ddf) * se
    return {
        **avg,
        "ms_t": ms_t,
        "ms_tr": ms_tr,
        "f": f,
        "ddf": ddf,
        "p_value": stats.f.sf(f, t - 1, ddf),
        "ci_low": diff - half,
        "ci_high": diff + half,
    }


def correlated_answers(readers: int, cases: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong (task, reader, case) with shared case difficulty, so readers covary."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1.5, size=cases)
    skill = rng.normal(0, 0.5, size=readers)
    gain = np.array([0.0, 1.0])
    logit = gain[:, None, None] + skill[None, :, None] - difficulty[None, None, :]
    return rng.random((2, readers, cases)) < 1 / (1 + np.exp(-logit)), difficulty


def test_fully_crossed_design_matches_textbook_jackknife() -> None:
    """All readers read the same cases: the standard OR jackknife, leave-one-out by brute force."""
    readers, cases = 4, 9
    x, _ = correlated_answers(readers, cases, seed=11)
    theta = x.mean(axis=2)
    pseudo = np.empty((2, readers, cases))
    for k in range(cases):
        keep = np.arange(cases) != k
        pseudo[:, :, k] = x[:, :, keep].mean(axis=2)  # recompute the figure of merit without k
    flat = pseudo.reshape(2 * readers, cases)
    centred = flat - flat.mean(axis=1, keepdims=True)
    cov = (cases - 1) / cases * centred @ centred.T
    expected = reference_or(theta, cov)
    assert expected["cov2"] > expected["cov3"]  # the covariance term must matter here

    reader = np.repeat(np.arange(readers), cases)
    case = np.tile(np.arange(cases), readers)
    result = obuchowski_rockette(reader, case, x[0].ravel(), x[1].ravel())
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-10, abs=1e-14), key


def test_partly_shared_cases_match_the_documented_generalisation() -> None:
    """Each reader reads a different, overlapping subset: MRMCaov's jackknife by brute force,
    over every case of the study (a reader's figure unchanged by deleting a case not read)."""
    readers, pool = 5, 30
    x, _ = correlated_answers(readers, pool, seed=12)
    rng = np.random.default_rng(13)
    sets = [
        np.sort(rng.choice(pool, size=rng.integers(8, 16), replace=False)) for _ in range(readers)
    ]
    theta = np.array([[x[i, j, sets[j]].mean() for j in range(readers)] for i in range(2)])
    study = sorted({int(k) for s in sets for k in s})
    n = len(study)
    pseudo = np.empty((2 * readers, n))
    for a, (i, j) in enumerate(itertools.product(range(2), range(readers))):
        for col, k in enumerate(study):
            keep = sets[j][sets[j] != k]
            pseudo[a, col] = x[i, j, keep].mean()
    centred = pseudo - pseudo.mean(axis=1, keepdims=True)
    cov = (n - 1) / n * centred @ centred.T
    expected = reference_or(theta, cov)

    reader = np.concatenate([np.full(len(s), j) for j, s in enumerate(sets)])
    case = np.concatenate(sets)
    correct1 = np.concatenate([x[0, j, s] for j, s in enumerate(sets)])
    correct2 = np.concatenate([x[1, j, s] for j, s in enumerate(sets)])
    order = np.random.default_rng(0).permutation(reader.size)  # row order must not matter
    result = obuchowski_rockette(reader[order], case[order], correct1[order], correct2[order])
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=1e-10, abs=1e-14), key

    fig = figures(reader, np.zeros(reader.size, dtype=np.int64), np.stack([correct1, correct2]), 5)
    assert fig.theta == pytest.approx(theta)


def test_readers_with_too_few_cases_are_left_out() -> None:
    reader = np.array([0, 0, 0, 1, 1, 1, 2])
    case = np.arange(7)
    c1 = np.array([1, 0, 0, 0, 1, 0, 1], dtype=bool)
    c2 = np.array([1, 1, 0, 1, 1, 1, 1], dtype=bool)
    result = obuchowski_rockette(reader, case, c1, c2)
    assert result["readers"] == 2 and result["readers_left_out"] == 1
    one = obuchowski_rockette(reader[:3], case[:3], c1[:3], c2[:3])
    assert one["available"] is False


def test_no_interaction_falls_back_to_infinite_ddf() -> None:
    # Both readers gain exactly 1/4 over 4 cases: MS(T*R) = 0 but the jackknife term is > 0.
    reader = np.repeat([0, 1], 4)
    case = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    c1 = np.array([1, 0, 0, 1, 1, 0, 0, 1], dtype=bool)
    c2 = np.array([1, 1, 0, 1, 1, 1, 0, 1], dtype=bool)
    result = obuchowski_rockette(reader, case, c1, c2)
    assert result["ms_tr"] == pytest.approx(0.0, abs=1e-15)
    assert result["ddf"] is None
    z = result["difference"] / result["se"]
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(z))
