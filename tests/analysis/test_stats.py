"""McNemar, Wilcoxon and the two-level bootstrap against hand computations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from app.analysis import responses_from_rows
from app.analysis.stats import bootstrap_accuracy, mcnemar, mcnemar_tests, wilcoxon_confidence
from app.analysis.tables import paired_cases
from tests.analysis.helpers import answer


def synthetic_rows(readers: int, cases: int, seed: int) -> list[dict]:
    """Readers whose Task 2 is better than Task 1, with confidence rising too."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(readers):
        skill = rng.uniform(0.4, 0.8)
        for k in range(cases):
            image, truth = f"img{j}_{k}", "nv" if k % 3 else "mel"
            wrong = "mel" if truth == "nv" else "nv"
            for task, p in ((1, skill), (2, min(skill + 0.15, 0.95))):
                right = rng.random() < p
                conf = int(rng.integers(1, 5)) + (task == 2 and rng.random() < 0.5)
                rows.append(answer(f"R{j}", image, truth, task, truth if right else wrong, conf))
    return rows


def test_mcnemar_chi_square_by_hand() -> None:
    result = mcnemar(correct_to_wrong=10, wrong_to_correct=30)
    chi2 = (abs(10 - 30) - 1) ** 2 / 40  # 9.025
    assert result["method"] == "chi-square with continuity correction"
    assert result["statistic"] == pytest.approx(9.025)
    # Chi-square on 1 df: P(X > x) = erfc(sqrt(x / 2)).
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9)
    assert result["p_value"] == pytest.approx(0.0026631, abs=1e-7)


def test_mcnemar_exact_by_hand_and_scipy() -> None:
    result = mcnemar(correct_to_wrong=2, wrong_to_correct=9)
    assert result["method"] == "exact binomial"
    by_hand = 2 * sum(math.comb(11, k) for k in range(3)) / 2**11  # 134 / 2048
    assert result["p_value"] == pytest.approx(by_hand, rel=1e-12)
    assert result["p_value"] == pytest.approx(stats.binomtest(2, 11, 0.5).pvalue, rel=1e-12)
    assert mcnemar(0, 0)["p_value"] == 1.0
    assert mcnemar(12, 12)["p_value"] == pytest.approx(1.0)  # 24 < 25: exact, symmetric


def test_mcnemar_tests_count_discordant_pairs_per_reader() -> None:
    responses = responses_from_rows(synthetic_rows(3, 40, seed=2))
    paired = paired_cases(responses)
    result = mcnemar_tests(paired, responses.readers)
    for j, row in enumerate(result["readers"]):
        mine = paired.reader == j
        assert row["wrong_to_correct"] == int((~paired.correct1 & paired.correct2 & mine).sum())
        assert row["correct_to_wrong"] == int((paired.correct1 & ~paired.correct2 & mine).sum())
    pooled = result["pooled"]
    assert pooled["discordant"] == sum(r["discordant"] for r in result["readers"])


def test_wilcoxon_matches_scipy_on_paired_cases() -> None:
    rows = synthetic_rows(4, 30, seed=3)
    rows.append(answer("R0", "only_task1", "nv", 1, "nv", 1))  # unpaired: left out
    paired = paired_cases(responses_from_rows(rows))
    result = wilcoxon_confidence(paired)
    diff = paired.confidence2 - paired.confidence1
    reference = stats.wilcoxon(diff, zero_method="wilcox", method="asymptotic")
    assert result["pairs"] == 120
    assert result["nonzero"] == int((diff != 0).sum())
    assert result["method"] == "asymptotic"
    assert result["statistic"] == pytest.approx(reference.statistic)
    assert result["p_value"] == pytest.approx(reference.pvalue)
    assert result["mean_difference"] == pytest.approx(diff.mean())


def test_wilcoxon_small_sample_without_ties_is_exact() -> None:
    rows = []
    for k, (c1, c2) in enumerate([(1, 2), (1, 3), (1, 4), (1, 5), (5, 4)]):
        rows += [answer("A", f"i{k}", "nv", 1, "nv", c1), answer("A", f"i{k}", "nv", 2, "nv", c2)]
    result = wilcoxon_confidence(paired_cases(responses_from_rows(rows)))
    # |d| = 1, 2, 3, 4, 1 has a tie, so this is asymptotic; drop the tie and it is exact.
    assert result["method"] == "asymptotic"
    result = wilcoxon_confidence(paired_cases(responses_from_rows(rows[:8])))
    assert result["method"] == "exact"
    # All four differences positive: W = 0, exact two-sided p = 2 / 2^4.
    assert result["statistic"] == 0.0
    assert result["p_value"] == pytest.approx(2 / 16)


def test_bootstrap_is_seeded_and_contains_the_estimate() -> None:
    responses = responses_from_rows(synthetic_rows(6, 50, seed=4))
    paired = paired_cases(responses)
    first = bootstrap_accuracy(paired, 6, resamples=2000, seed=7)
    again = bootstrap_accuracy(paired, 6, resamples=2000, seed=7)
    other = bootstrap_accuracy(paired, 6, resamples=2000, seed=8)
    assert first == again
    assert first["difference"] != other["difference"]
    per_reader = [
        paired.correct2[paired.reader == j].mean() - paired.correct1[paired.reader == j].mean()
        for j in range(6)
    ]
    d = first["difference"]
    assert d["estimate"] == pytest.approx(np.mean(per_reader))
    assert d["ci_low"] < d["estimate"] < d["ci_high"]
    for condition in ("unaided", "se_cbir"):
        assert (
            first[condition]["ci_low"] < first[condition]["estimate"] < first[condition]["ci_high"]
        )


def test_bootstrap_agrees_with_explicit_two_level_resampling() -> None:
    """The multinomial shortcut must behave like drawing readers, then their cases, by index."""
    responses = responses_from_rows(synthetic_rows(5, 40, seed=5))
    paired = paired_cases(responses)
    result = bootstrap_accuracy(paired, 5, resamples=3000, seed=0)
    rng = np.random.default_rng(123)
    gains = paired.correct2.astype(float) - paired.correct1
    per_reader = [gains[paired.reader == j] for j in range(5)]
    draws = []
    for _ in range(3000):
        chosen = rng.integers(0, 5, size=5)
        draws.append(
            np.mean([rng.choice(per_reader[j], per_reader[j].size).mean() for j in chosen])
        )
    draws = np.asarray(draws)
    # The reported SE carries the small-sample factor sqrt(r / (r - 1)), the CI a t on r - 1 df.
    se = draws.std(ddof=1) * math.sqrt(5 / 4)
    d = result["difference"]
    assert d["se"] == pytest.approx(se, rel=0.08)
    half = stats.t.ppf(0.975, 4) * d["se"]
    assert (d["ci_low"], d["ci_high"]) == pytest.approx(
        (d["estimate"] - half, d["estimate"] + half)
    )
    low, high = np.percentile(draws, [2.5, 97.5])
    assert d["percentile_low"] == pytest.approx(low, abs=0.02)
    assert d["percentile_high"] == pytest.approx(high, abs=0.02)


def test_bootstrap_skips_readers_without_paired_cases() -> None:
    rows = [*synthetic_rows(2, 10, seed=6), answer("late", "x", "nv", 1, "nv", 3)]
    responses = responses_from_rows(rows)
    result = bootstrap_accuracy(paired_cases(responses), 3, resamples=100)
    assert result["readers"] == 2
