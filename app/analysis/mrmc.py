r"""Obuchowski-Rockette (OR) analysis with Hillis's degrees of freedom, any number of conditions.

The primary analysis of every endpoint (`endpoints.py`) on every design the platform runs:
t conditions, r readers, figure of merit theta[i, j] for condition i and reader j on the
cases C_ij that reader read in that condition (inside the endpoint: a sensitivity's own
lesions, a specificity's others). Fully crossed and crossover designs read the same cases in
every condition (C_ij = C_j); per-case randomised designs read each case in one condition
per reader, so C_ij and C_i'j do not meet; initial-then-revised designs read every case twice
in the same sitting (`responses.py`).

Jackknife over cases, as MRMCaov computes it (Hillis's recommended estimator, and the
reference this module is checked against, `tests/analysis/test_mrmc_reference.py`). The n
cases are all the cases of the study inside the endpoint. Deleting case k gives
theta[i, j](-k), which is theta[i, j] itself when reader j did not read k in condition i;
then

    Cov(theta[i, j], theta[i', j']) = (n - 1)/n * sum_{k=1..n} d[i, j, k] d[i', j', k]
    d[i, j, k] = theta[i, j](-k) - mean over all n cases of theta[i, j](-k')

With a = theta(-k) - theta on the cases read (0 elsewhere) and b[i, j] = -(1/n) sum_k a,
d = a + b, and the sum is sum over the cases both figures read of a a' - n b b': what
`jackknife_covariances` computes without a case-by-case loop. For proportions the
leave-one-out figures average to the figure itself, so b = 0 and d vanishes off the reader's
cases: where two figures share no case (a per-case randomised design's two conditions of one
reader) their covariance is exactly 0. For one reader who read all n cases and a proportion
this is the binomial variance p(1 - p)/(n - 1); for a reader who read c of the n, MRMCaov's
(n - 1)/n scale instead of (c - 1)/c makes it (n - 1)/n * c/(c - 1) times that (1.008 on the
thesis data, 1.015 where readers read 50 of 200), a convention we follow so that the
exported R script reproduces our figures on every design. As MRMCaov does, Cov2 and Cov3 are
0 when every case was read by one reader only, Cov1 and Cov3 when every case was read in one
condition only.

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
    LeftOut,
    ORHillis,
    ReaderFigure,
)


def jackknife_covariances(
    reader: Array, case: Array, dev: Array, b: Array, n: int, readers: int
) -> dict[str, float]:
    """Var, Cov1, Cov2, Cov3 (see the module docstring) from the deviations `dev` (conditions x
    pairs, readers 0..r-1), their means `b` (conditions x readers) and the study's n cases.

    Summing `dev` over the readers of each case turns the sum over reader pairs into a sum over
    cases: sum_{j, j'} sum_k a a' = sum_k A_k A'_k, which includes the j = j' terms subtracted.
    """
    t = dev.shape[0]
    r = readers
    if case.size and int(case.max()) > 4 * case.size:  # sparse ids: number the cases densely
        _, case = np.unique(case, return_inverse=True)
    scale = (n - 1) / n if n else 0.0
    own = np.empty((t, t, r))
    for i in range(t):
        for i2 in range(i, t):
            shared = np.bincount(reader, weights=dev[i] * dev[i2], minlength=r)
            own[i, i2] = own[i2, i] = (shared - n * b[i] * b[i2]) * scale
    per_case = np.stack([np.bincount(case, weights=dev[i]) for i in range(t)])
    summed = b.sum(axis=1)
    across = (per_case @ per_case.T - n * np.outer(summed, summed)) * scale
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


def _left_out_reason(endpoint: Endpoint, fig: Figures, j: int, names: tuple[str, ...]) -> str:
    """Why reader j has no figure for this endpoint: the first condition where it is missing."""
    for i, name in enumerate(names):
        if fig.cases[i, j] == 0:
            return f"no answers in {name}"
        if not fig.eligible[i, j]:
            if endpoint.kind == "auc":
                return f"fewer than 2 positive and 2 negative cases in {name}"
            if fig.scored[i, j] < 2:
                return f"fewer than 2 cases this figure counts in {name}"
    return "no figure"


def _design_zeros(reader: Array, case: Array, present: Array) -> tuple[bool, bool]:
    """(every case read by one reader only, every case read in one condition only)."""
    if not case.size:
        return False, False
    readers_per_case = np.bincount(case)  # pairs are unique per (reader, case)
    conditions_per_case = np.zeros(readers_per_case.size, dtype=np.int64)
    for read in present:
        conditions_per_case += np.bincount(case, weights=read, minlength=readers_per_case.size) > 0
    counted = readers_per_case > 0
    return (
        bool((readers_per_case[counted] == 1).all()),
        bool((conditions_per_case[counted] == 1).all()),
    )


def or_hillis(endpoint: Endpoint, blocks: Blocks, level: float = 0.95) -> ORHillis:
    """OR-Hillis for one endpoint over the conditions of `blocks` (see the module docstring)."""
    r_all = len(blocks.readers)
    fig: Figures = figures(
        blocks.reader, endpoint.stratum, endpoint.score, r_all, blocks.present, endpoint.positive
    )
    active = np.flatnonzero(fig.cases.sum(axis=0) > 0)
    complete: Array = np.asarray(fig.eligible.all(axis=0))
    keep_readers = np.flatnonzero(complete)
    r = int(keep_readers.size)
    cases, scored = (
        fig.cases.max(axis=0, initial=0).tolist(),
        fig.scored.max(axis=0, initial=0).tolist(),
    )
    theta_of, defined = fig.theta.T.tolist(), complete.tolist()
    per_reader: list[ReaderFigure] = [
        {
            "reader": blocks.readers[j],
            "cases": int(cases[j]),
            "scored": int(scored[j]),
            "values": dict(
                zip(
                    blocks.conditions,
                    theta_of[j] if defined[j] else [None] * len(blocks.conditions),
                    strict=True,
                )
            ),
        }
        for j in active.tolist()
    ]
    left_out: list[LeftOut] = [
        {
            "reader": blocks.readers[j],
            "reason": _left_out_reason(endpoint, fig, j, blocks.conditions),
        }
        for j in active
        if not complete[j]
    ]
    out: ORHillis = {
        "endpoint": endpoint.name,
        "label": endpoint.label,
        "description": endpoint.description,
        "kind": endpoint.kind,
        "available": False,
        "reason": None,
        "level": level,
        "readers": r,
        "readers_left_out": len(left_out),
        "left_out": left_out,
        "cases": 0,
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
            "reason": "needs at least 2 readers with this figure defined (2 or more cases it "
            "counts) in every condition",
        }
    theta = fig.theta[:, keep_readers]
    out["means"] = {name: float(theta[i].mean()) for i, name in enumerate(blocks.conditions)}
    kept_reader = complete[blocks.reader]
    inside = blocks.present & (endpoint.stratum >= 0)[None, :] & kept_reader[None, :]
    pairs = np.flatnonzero(inside.any(axis=0))
    remap = np.full(r_all, -1, dtype=np.int64)
    remap[keep_readers] = np.arange(r)
    reader, case, dev = remap[blocks.reader[pairs]], blocks.case[pairs], fig.dev[:, pairs]
    n = int(np.count_nonzero(np.bincount(case)))
    out["cases"] = n
    b = -np.stack([np.bincount(reader, weights=d, minlength=r) for d in dev]) / n
    comps = jackknife_covariances(reader, case, dev, b, n, r)
    one_reader_per_case, one_condition_per_case = _design_zeros(reader, case, inside[:, pairs])
    if one_reader_per_case:
        comps["cov2"] = comps["cov3"] = 0.0
    if one_condition_per_case:
        comps["cov1"] = comps["cov3"] = 0.0
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
