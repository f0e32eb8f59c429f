r"""Obuchowski-Rockette (OR) analysis with Hillis's degrees of freedom, any number of conditions.

The primary analysis of every endpoint (`endpoints.py`): t conditions, r readers, figure of
merit theta[i, j] for condition i and reader j on reader j's complete block of cases C_j
(c_j = |C_j|, the cases that reader answered in every condition).

Jackknife over cases. Deleting case k from reader j's block gives theta[i, j](-k). Readers
may read different, overlapping case sets (in the thesis study 9 readers read 505 distinct
images, 100 each), so the usual jackknife covariance, (c - 1)/c * sum_k d d', is generalised
with each reader's own scale and a sum over the cases both readers read:

    d[i, j, k] = theta[i, j](-k) - mean over k' in C_j of theta[i, j](-k')
    Cov(theta[i, j], theta[i', j']) = w_j w_j' * sum_{k in C_j & C_j'} d[i, j, k] d[i', j', k]
    w_j = sqrt((c_j - 1) / c_j)

With one shared case set this is exactly the standard OR jackknife (what MRMCaov computes);
for one reader and a proportion it is the unbiased binomial variance p(1 - p)/(c - 1). On
partially paired data MRMCaov instead scales every reader by (n - 1)/n with n the cases of
the whole study and averages the pseudo-values over all n; both conventions are
defensible and on the thesis data they differ by (504/505)(100/99) = 1.008 in every
covariance (`../shared/reference/mrmc/README.md`). This module uses the reader's own count.

The averaged covariances (OR notation): Var = mean of Cov(theta[i, j], theta[i, j]);
Cov1 = same reader, different condition; Cov2 = different reader, same condition;
Cov3 = different reader, different condition.

ANOVA of the theta table: MS(T) = r/(t-1) sum_i (theta[i, .] - theta[., .])^2,
MS(T*R) = 1/((t-1)(r-1)) sum_ij (theta[i, j] - theta[i, .] - theta[., j] + theta[., .])^2.

Hillis (2007, Stat Med 26:596-619), readers and cases random:

    D     = MS(T*R) + r max(Cov2 - Cov3, 0)
    F     = MS(T) / D on (t - 1, ddf_H),  ddf_H = D^2 / (MS(T*R)^2 / ((t - 1)(r - 1)))
    difference of two conditions: SE = sqrt(2 D / r), CI = difference -/+ t_{ddf_H} SE

(ddf_H is infinite when MS(T*R) = 0: then F (t - 1) is chi-square and the CI uses z.)
Readers fixed, cases random: X^2 = (t - 1) MS(T) / (Var - Cov1 + (r - 1)(Cov2 - Cov3)) on
t - 1 df, difference SE = sqrt(2 (Var - Cov1 + (r - 1)(Cov2 - Cov3)) / r) with z.

The t, F, chi-square and normal tails come from scipy.special (stdtr, stdtrit, fdtrc, chdtrc,
ndtr, ndtri): the functions scipy.stats's distributions call, bit for bit the same values,
without their argument handling (70 us a call, and a page computes some hundred).

Differences are named as MRMCaov names them: conditions sorted by name, `a - b` for a
before b (`se_cbir - unaided`, `cbir - se_cbir`), so that its output compares line by line.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy import special

from app.analysis.endpoints import Blocks, Endpoint, Figures, Taxonomy, endpoints, figures
from app.analysis.responses import Array
from app.analysis.results import (
    Covariances,
    Difference,
    Equality,
    FixedReaders,
    ORHillis,
    ReaderFigure,
)


def jackknife_covariances(reader: Array, case: Array, u: Array, readers: int) -> dict[str, float]:
    """Var, Cov1, Cov2, Cov3 from scaled deviations `u` (conditions x cases), readers 0..r-1.

    Summing u over the readers of each case turns the sum over reader pairs into a sum over
    cases: sum_{j, j'} Cov = sum_k U_k U'_k, which includes the j = j' terms subtracted.
    """
    t = u.shape[0]
    r = readers
    if case.size and int(case.max()) > 4 * case.size:  # sparse ids: number the cases densely
        _, case = np.unique(case, return_inverse=True)
    own = np.empty((t, t, r))
    for i in range(t):
        for i2 in range(i, t):
            own[i, i2] = own[i2, i] = np.bincount(reader, weights=u[i] * u[i2], minlength=r)
    per_case = np.stack([np.bincount(case, weights=u[i]) for i in range(t)])
    across = per_case @ per_case.T  # (t, t): sum over all reader pairs, own pairs included
    pairs = r * (r - 1)
    diagonal = np.eye(t, dtype=bool)
    var = float(np.mean([own[i, i].mean() for i in range(t)]))
    cov1 = float(own[~diagonal].mean()) if t > 1 else 0.0
    between = (across - own.sum(axis=2)) / pairs if pairs else np.zeros((t, t))
    cov2 = float(between[diagonal].mean())
    cov3 = float(between[~diagonal].mean()) if t > 1 else 0.0
    return {"var": var, "cov1": cov1, "cov2": cov2, "cov3": cov3}


def _pairs(conditions: tuple[str, ...]) -> list[tuple[int, int]]:
    """Index pairs (a, b) for the differences a - b, in MRMCaov's order (by sorted name)."""
    order = sorted(range(len(conditions)), key=lambda i: conditions[i])
    return [(a, b) for a, b in combinations(order, 2)]


def _difference(
    conditions: tuple[str, ...],
    means: Array,
    a: int,
    b: int,
    se: float,
    df: float | None,
    level: float,
) -> Difference:
    """One pairwise difference with its CI and two-sided p (t on df, or z when df is None)."""
    estimate = float(means[a] - means[b])
    tail = (1 + level) / 2
    if df is None:
        quantile = float(special.ndtri(tail))
        p = float(2 * special.ndtr(-abs(estimate) / se)) if se > 0 else float(estimate == 0)
    else:
        quantile = float(special.stdtrit(df, tail))
        p = float(2 * special.stdtr(df, -abs(estimate) / se)) if se > 0 else float(estimate == 0)
    return {
        "comparison": f"{conditions[a]} - {conditions[b]}",
        "minuend": conditions[a],
        "subtrahend": conditions[b],
        "estimate": estimate,
        "se": se,
        "df": df,
        "ci_low": estimate - quantile * se,
        "ci_high": estimate + quantile * se,
        "p": p,
    }


def or_hillis_table(
    theta: Array,
    comps: dict[str, float],
    conditions: tuple[str, ...],
    level: float = 0.95,
) -> tuple[dict[str, float], Equality, list[Difference], FixedReaders | None, Covariances] | str:
    """The OR-Hillis tests from a theta table (conditions x readers) and its covariances.

    Returns the means, the equality test, the differences, the fixed-readers test and the
    components; or a sentence saying why the test is undefined.
    """
    t, r = theta.shape
    cond_mean = theta.mean(axis=1)
    grand = float(theta.mean())
    ms_t = float(r * ((cond_mean - grand) ** 2).sum() / (t - 1))
    resid = theta - cond_mean[:, None] - theta.mean(axis=0)[None, :] + grand
    ms_tr = float((resid**2).sum() / ((t - 1) * (r - 1)))
    covariances: Covariances = {
        "var": comps["var"],
        "cov1": comps["cov1"],
        "cov2": comps["cov2"],
        "cov3": comps["cov3"],
        "ms_t": ms_t,
        "ms_tr": ms_tr,
    }
    denominator = ms_tr + r * max(comps["cov2"] - comps["cov3"], 0.0)
    if denominator <= 1e-15:
        return "no variation between readers or cases: the test is undefined"
    f_stat = ms_t / denominator
    df2: float | None
    if ms_tr > 1e-15:
        df2 = float(denominator**2 / (ms_tr**2 / ((t - 1) * (r - 1))))
        p = float(special.fdtrc(t - 1, df2, f_stat))
    else:
        df2 = None
        p = float(special.chdtrc(t - 1, f_stat * (t - 1)))
    equality: Equality = {"F": float(f_stat), "df1": t - 1, "df2": df2, "p": p}
    se = float(np.sqrt(2 * denominator / r))
    pairs = _pairs(conditions)
    differences = [_difference(conditions, cond_mean, a, b, se, df2, level) for a, b in pairs]
    fixed: FixedReaders | None = None
    fixed_denominator = comps["var"] - comps["cov1"] + (r - 1) * (comps["cov2"] - comps["cov3"])
    if fixed_denominator > 1e-15:
        chi2 = float((t - 1) * ms_t / fixed_denominator)
        se_fixed = float(np.sqrt(2 * fixed_denominator / r))
        fixed = {
            "equality": {"chi2": chi2, "df": t - 1, "p": float(special.chdtrc(t - 1, chi2))},
            "differences": [
                _difference(conditions, cond_mean, a, b, se_fixed, None, level) for a, b in pairs
            ],
        }
    means = {name: float(cond_mean[i]) for i, name in enumerate(conditions)}
    return means, equality, differences, fixed, covariances


def or_hillis(endpoint: Endpoint, blocks: Blocks, level: float = 0.95) -> ORHillis:
    """OR-Hillis for one endpoint over the conditions of `blocks` (see the module docstring)."""
    r_all = len(blocks.readers)
    fig: Figures = figures(blocks.reader, endpoint.stratum, endpoint.score, r_all)
    active = np.bincount(blocks.reader, minlength=r_all) > 0
    keep_readers = np.flatnonzero(fig.eligible)
    r = int(keep_readers.size)
    per_reader: list[ReaderFigure] = [
        {
            "reader": blocks.readers[j],
            "cases": int(fig.cases[j]),
            "scored": int(fig.scored[j]),
            "values": {
                name: (float(fig.theta[i, j]) if fig.eligible[j] else None)
                for i, name in enumerate(blocks.conditions)
            },
        }
        for j in np.flatnonzero(active)
    ]
    out: ORHillis = {
        "endpoint": endpoint.name,
        "label": endpoint.label,
        "description": endpoint.description,
        "available": False,
        "reason": None,
        "level": level,
        "readers": r,
        "readers_left_out": int(active.sum()) - r,
        "means": {},
        "equality": None,
        "differences": [],
        "fixed_readers": None,
        "covariances": None,
        "per_reader": per_reader,
    }
    t = len(blocks.conditions)
    if t < 2:
        return {**out, "reason": "needs answers in at least two conditions"}
    if r < 2:
        return {
            **out,
            "reason": "needs at least 2 readers with this figure defined on 2 or more cases "
            "read in every condition",
        }
    theta = fig.theta[:, keep_readers]
    out["means"] = {name: float(theta[i].mean()) for i, name in enumerate(blocks.conditions)}
    keep = fig.eligible[blocks.reader]
    remap = np.full(r_all, -1, dtype=np.int64)
    remap[keep_readers] = np.arange(r)
    comps = jackknife_covariances(remap[blocks.reader[keep]], blocks.case[keep], fig.u[:, keep], r)
    table = or_hillis_table(theta, comps, blocks.conditions, level)
    if isinstance(table, str):
        return {**out, "reason": table}
    means, equality, differences, fixed, covariances = table
    return {
        **out,
        "available": True,
        "means": means,
        "equality": equality,
        "differences": differences,
        "fixed_readers": fixed,
        "covariances": covariances,
    }


def or_hillis_all(
    blocks: Blocks, taxonomy: Taxonomy | None = None, level: float = 0.95
) -> dict[str, ORHillis]:
    """OR-Hillis for every endpoint of the taxonomy, by endpoint name."""
    return {e.name: or_hillis(e, blocks, level) for e in endpoints(blocks, taxonomy)}
