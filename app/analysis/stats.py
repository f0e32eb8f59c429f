"""Paired tests of Task 2 against Task 1: McNemar, Wilcoxon signed-rank, two-level bootstrap.

All of them use the paired cases (answered in both tasks). The pooled McNemar and Wilcoxon
tests treat every reader-case pair as independent, which ignores that answers of one reader
are alike; the bootstrap and the Obuchowski-Rockette analysis (`mrmc.py`) account for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from app.analysis.tables import Paired

# Below this many discordant pairs the chi-square approximation is poor, so the exact
# binomial test is used instead (a common rule of thumb, e.g. Rosner's "b + c >= 20-25").
MCNEMAR_EXACT_BELOW = 25


def mcnemar(correct_to_wrong: int, wrong_to_correct: int) -> dict[str, Any]:
    """McNemar's test on the discordant pairs b (correct->wrong) and c (wrong->correct).

    Exact two-sided binomial test of b ~ Binomial(b + c, 1/2) when b + c < 25, otherwise the
    chi-square statistic with continuity correction, (|b - c| - 1)^2 / (b + c), on 1 df.
    """
    b, c = int(correct_to_wrong), int(wrong_to_correct)
    n = b + c
    result: dict[str, Any] = {"correct_to_wrong": b, "wrong_to_correct": c, "discordant": n}
    if n == 0:
        return {**result, "method": "none (no discordant pairs)", "statistic": None, "p_value": 1.0}
    if n < MCNEMAR_EXACT_BELOW:
        p = stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue
        return {**result, "method": "exact binomial", "statistic": float(b), "p_value": float(p)}
    chi2 = (abs(b - c) - 1) ** 2 / n
    p = stats.chi2.sf(chi2, 1)
    return {
        **result,
        "method": "chi-square with continuity correction",
        "statistic": float(chi2),
        "p_value": float(p),
    }


def mcnemar_tests(paired: Paired, readers: tuple[str, ...]) -> dict[str, Any]:
    """McNemar's test pooled over all paired answers and per reader."""
    c1, c2 = paired.correct1, paired.correct2
    r = len(readers)
    c2w = np.bincount(paired.reader, weights=c1 & ~c2, minlength=r)
    w2c = np.bincount(paired.reader, weights=~c1 & c2, minlength=r)
    return {
        "description": (
            "McNemar's test: among cases answered right in one task and wrong in the other, "
            "does one direction win more often than chance would give? A small p-value says "
            "the accuracy changed. Exact binomial test below 25 such cases, else chi-square "
            "with continuity correction. The pooled test treats all answers as independent."
        ),
        "pooled": mcnemar(int(c2w.sum()), int(w2c.sum())),
        "readers": [
            {"reader": name, **mcnemar(int(c2w[j]), int(w2c[j]))} for j, name in enumerate(readers)
        ],
    }


def wilcoxon_confidence(paired: Paired) -> dict[str, Any]:
    """Wilcoxon signed-rank test of Task 2 against Task 1 confidence, paired per case."""
    diff = paired.confidence2 - paired.confidence1
    nonzero = diff[diff != 0]
    out: dict[str, Any] = {
        "description": (
            "Wilcoxon signed-rank test on confidence, case by case (Task 2 minus Task 1), all "
            "readers pooled: a small p-value says readers were more (or less) confident with "
            "the retrieved images. Cases with unchanged confidence are left out."
        ),
        "pairs": int(diff.size),
        "nonzero": int(nonzero.size),
        "increased": int((diff > 0).sum()),
        "decreased": int((diff < 0).sum()),
        "mean_difference": float(diff.mean()) if diff.size else None,
        "median_difference": float(np.median(diff)) if diff.size else None,
    }
    if nonzero.size == 0:
        return {**out, "method": "none (no changed confidence)", "statistic": None, "p_value": None}
    # scipy's exact distribution assumes no ties; Likert differences are full of them.
    ties = np.unique(np.abs(nonzero)).size < nonzero.size
    method = "exact" if nonzero.size <= 50 and not ties else "asymptotic"
    res = stats.wilcoxon(
        paired.confidence2, paired.confidence1, zero_method="wilcox", method=method
    )
    return {
        **out,
        "method": method,
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
    }


def bootstrap_accuracy(
    paired: Paired, readers: int, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """Two-level percentile bootstrap of the mean per-reader accuracy in each task and their gap.

    Each resample draws readers with replacement, then, for each drawn reader, that reader's
    paired cases with replacement. A case is one of four kinds (wrong/right in Task 1 x
    wrong/right in Task 2), so drawing a reader's c cases is the same as drawing the four
    counts from a multinomial with that reader's observed shares; NumPy draws all of them at
    once, which keeps 2,000 resamples of 100 readers x 1,000 cases well under a second.
    """
    kind = paired.correct1.astype(np.int64) * 2 + paired.correct2.astype(np.int64)
    counts = np.bincount(paired.reader * 4 + kind, minlength=readers * 4).reshape(readers, 4)
    n = counts.sum(axis=1)
    active = n > 0  # readers without paired cases have no accuracy difference
    counts, n = counts[active], n[active]
    r = int(active.sum())
    out: dict[str, Any] = {
        "description": (
            "Bootstrap confidence interval for the accuracy gain (Task 2 minus Task 1, the "
            "average over readers of each reader's gain on the cases read in both tasks). "
            "Readers and, within each reader, cases are drawn again at random many times; the "
            "middle 95% of the recomputed gains is the interval."
        ),
        "resamples": int(resamples),
        "seed": int(seed),
        "level": level,
        "readers": r,
        "method": "two-level percentile bootstrap (readers, then cases within reader)",
    }
    if r == 0 or resamples <= 0:
        return {**out, "task1": None, "task2": None, "difference": None}
    acc1 = (counts[:, 2] + counts[:, 3]) / n
    acc2 = (counts[:, 1] + counts[:, 3]) / n
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, r, size=(resamples, r))
    drawn = rng.multinomial(n[picked], counts[picked] / n[picked, None])
    n_picked = n[picked]
    boot1 = ((drawn[..., 2] + drawn[..., 3]) / n_picked).mean(axis=1)
    boot2 = ((drawn[..., 1] + drawn[..., 3]) / n_picked).mean(axis=1)
    tail = (1 - level) / 2 * 100

    def summary(estimate: float, draws: np.ndarray) -> dict[str, float]:
        low, high = np.percentile(draws, [tail, 100 - tail])
        return {
            "estimate": float(estimate),
            "ci_low": float(low),
            "ci_high": float(high),
            "se": float(draws.std(ddof=1)) if draws.size > 1 else 0.0,
        }

    return {
        **out,
        "task1": summary(acc1.mean(), boot1),
        "task2": summary(acc2.mean(), boot2),
        "difference": summary((acc2 - acc1).mean(), boot2 - boot1),
    }
