"""Reader-level tests (paired t, sign test), descriptive pooled tests, a secondary bootstrap.

The primary analysis is OR-Hillis (`mrmc.py`). Beside it, `reader_level` compares conditions
with each reader counted once: the per-reader differences in accuracy and in mean
confidence, tested with a paired t test and a sign test. The pooled McNemar and Wilcoxon
tests treat every reader-case pair as independent although answers cluster by reader and
by case, so their p-values are far too small: they are kept as descriptive figures only.
The two-level bootstrap (readers, then cases) is secondary; with few readers its plain
percentile interval is too narrow, so it is widened by the small-sample correction below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

from app.analysis.endpoints import Blocks
from app.analysis.mrmc import _pairs
from app.analysis.responses import Array
from app.analysis.results import PairedTest, ReaderLevel
from app.analysis.tables import TASK_NAMES, Paired

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
    p = special.chdtrc(1, chi2)  # stats.chi2.sf(chi2, 1), bit for bit, faster
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
            "Descriptive only. McNemar's test: among cases answered right in one task and "
            "wrong in the other, "
            "does one direction win more often than chance would give? A small p-value says "
            "the accuracy changed. Exact binomial test below 25 such cases, else chi-square "
            "with continuity correction. The pooled test treats all answers as independent, "
            "which they are not (they cluster by reader and by case): its p-value is too small "
            "to rely on; the per-reader tests are each one reader's own."
        ),
        "pooled": mcnemar(int(c2w.sum()), int(w2c.sum())),
        "readers": [
            {"reader": name, **mcnemar(int(c2w[j]), int(w2c[j]))} for j, name in enumerate(readers)
        ],
    }


def wilcoxon_confidence(paired: Paired, names: tuple[str, str] = TASK_NAMES) -> dict[str, Any]:
    """Wilcoxon signed-rank test of Task 2 against Task 1 confidence, paired per case; `names`
    are the two conditions' (Task 1's, Task 2's) as the description should say them."""
    diff = paired.confidence2 - paired.confidence1
    nonzero = diff[diff != 0]
    first, second = names
    out: dict[str, Any] = {
        "description": (
            "Descriptive only. Wilcoxon signed-rank test on confidence, case by case "
            f"({second} minus {first}), all readers pooled, as if every answer were "
            "independent (they cluster by reader and case, so the p-value is too small to "
            "rely on; the reader-level tests above are the ones to report). Unchanged cases "
            "are left out."
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
    paired: Paired,
    readers: int,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    names: tuple[str, str] = TASK_NAMES,
) -> dict[str, Any]:
    """Two-level bootstrap of the mean per-reader accuracy under each condition of the pair
    (under its key, `paired.keys`) and their gap, second minus first (secondary); `names` are
    the two conditions as the description should say them.

    The interval is estimate -/+ t_{r-1} * SE * sqrt(r / (r - 1)), SE the standard deviation
    of the resampled figures: resampling r readers with replacement underestimates the
    between-reader variance by (r - 1)/r and the normal quantile is too small for few
    readers, which made the plain percentile interval narrower than OR-Hillis's.

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
    first, second = names
    first_key, second_key = paired.keys
    out: dict[str, Any] = {
        "description": (
            f"Secondary. Bootstrap confidence interval for the accuracy gain ({second} minus "
            f"{first}, the average over readers of each reader's gain on the cases read under "
            "both). Readers and, within each reader, cases are drawn again at random many "
            "times; the spread of the recomputed gains, corrected for the small number of "
            "readers (t quantile on readers - 1 df, variance times readers / (readers - 1)), "
            "gives the interval."
        ),
        "resamples": int(resamples),
        "seed": int(seed),
        "level": level,
        "readers": r,
        "method": "two-level bootstrap (readers, then cases within reader), t interval with "
        "small-sample correction",
    }
    if r == 0 or resamples <= 0:
        return {**out, first_key: None, second_key: None, "difference": None}
    acc1 = (counts[:, 2] + counts[:, 3]) / n
    acc2 = (counts[:, 1] + counts[:, 3]) / n
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, r, size=(resamples, r))
    drawn = rng.multinomial(n[picked], counts[picked] / n[picked, None])
    n_picked = n[picked]
    boot1 = ((drawn[..., 2] + drawn[..., 3]) / n_picked).mean(axis=1)
    boot2 = ((drawn[..., 1] + drawn[..., 3]) / n_picked).mean(axis=1)
    tail = (1 - level) / 2 * 100
    inflate = np.sqrt(r / (r - 1)) if r > 1 else 1.0
    quantile = float(stats.t.ppf(1 - (1 - level) / 2, r - 1)) if r > 1 else float("nan")

    def summary(estimate: float, draws: Array) -> dict[str, float | None]:
        se = float(draws.std(ddof=1) * inflate) if draws.size > 1 else 0.0
        low, high = np.percentile(draws, [tail, 100 - tail])
        defined = r > 1
        return {
            "estimate": float(estimate),
            "ci_low": float(estimate - quantile * se) if defined else None,
            "ci_high": float(estimate + quantile * se) if defined else None,
            "se": se,
            "percentile_low": float(low),
            "percentile_high": float(high),
        }

    return {
        **out,
        first_key: summary(acc1.mean(), boot1),
        second_key: summary(acc2.mean(), boot2),
        "difference": summary((acc2 - acc1).mean(), boot2 - boot1),
    }


def paired_over_readers(
    comparison: str, what: str, a: Array, b: Array, level: float = 0.95
) -> PairedTest:
    """Paired t test and two-sided sign test of per-reader values a - b (one per reader)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    r = int(diff.size)
    improved, worsened = int((diff > 0).sum()), int((diff < 0).sum())
    out: PairedTest = {
        "comparison": comparison,
        "what": what,
        "readers": r,
        "mean_difference": float(diff.mean()) if r else None,
        "sd": float(diff.std(ddof=1)) if r > 1 else None,
        "ci_low": None,
        "ci_high": None,
        "t": None,
        "df": None,
        "p": None,
        "improved": improved,
        "worsened": worsened,
        "tied": r - improved - worsened,
        "sign_p": (
            float(stats.binomtest(improved, improved + worsened, 0.5).pvalue)
            if improved + worsened
            else None
        ),
    }
    if r < 2:
        return out
    sd = float(diff.std(ddof=1))
    mean = float(diff.mean())
    se = sd / np.sqrt(r)
    quantile = float(special.stdtrit(r - 1, 1 - (1 - level) / 2))
    out.update({"ci_low": mean - quantile * se, "ci_high": mean + quantile * se, "df": r - 1})
    if se > 0:
        t = mean / se
        out.update({"t": float(t), "p": float(2 * special.stdtr(r - 1, -abs(t)))})
    return out


def reader_level(blocks: Blocks, level: float = 0.95) -> ReaderLevel:
    """Per pair of conditions: paired t and sign tests over readers of accuracy and confidence."""
    r = len(blocks.readers)
    description = (
        "Each reader counts once: for every reader, the difference between two conditions "
        "in the share of right diagnoses (and in mean confidence) on the cases that "
        "reader read in both; then a paired t test of the mean difference over readers "
        "and a sign test of how many readers improved. These respect that answers "
        "cluster by reader; unlike OR-Hillis they treat the cases as fixed."
    )
    if len(blocks.conditions) < 2:
        return {"description": description, "level": level, "accuracy": [], "confidence": []}
    counts = np.bincount(blocks.reader, minlength=r)
    active = counts > 0
    n = np.maximum(counts, 1)
    correct = blocks.diagnosis == blocks.truth[None, :]
    accuracy = np.stack([np.bincount(blocks.reader, weights=c, minlength=r) / n for c in correct])[
        :, active
    ]
    confidence = np.stack(
        [np.bincount(blocks.reader, weights=c, minlength=r) / n for c in blocks.confidence]
    )[:, active]
    names = blocks.conditions
    pairs = _pairs(names)
    return {
        "description": description,
        "level": level,
        "accuracy": [
            paired_over_readers(f"{names[a]} - {names[b]}", "accuracy", accuracy[a], accuracy[b])
            for a, b in pairs
        ],
        "confidence": [
            paired_over_readers(
                f"{names[a]} - {names[b]}", "confidence", confidence[a], confidence[b]
            )
            for a, b in pairs
        ],
    }
