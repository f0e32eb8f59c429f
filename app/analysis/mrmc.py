r"""Obuchowski-Rockette (OR) analysis of the accuracy gain, readers and cases random (Hillis ddf).

Figure of merit: proportion correct, theta[i, j] for task i (1, 2) and reader j, on the cases
reader j answered in both tasks (C_j, c_j = |C_j|; readers with fewer than 2 such cases are
left out, a jackknife needs two). t = 2 tasks, r readers.

Jackknife over cases. Deleting case k from reader j's set gives theta[i, j](-k); its deviation
from the mean of the pseudo-values is, for a proportion,

    d[i, j, k] = theta[i, j](-k) - mean_k theta[i, j](-k) = (theta[i, j] - x[i, j, k]) / (c_j - 1)

(x = 1 if the answer was right). Cases are identified by image id. Every reader here may have
read a different set of cases (in the thesis study, 9 readers read 505 distinct images, some of
them by several readers), so the usual jackknife covariance, (c - 1)/c * sum_k d d', is
generalised with each reader's own scale and a sum over the cases both readers read:

    Cov(theta[i, j], theta[i', j']) = w_j w_j' * sum_{k in C_j & C_j'} d[i, j, k] d[i', j', k],
    w_j = sqrt((c_j - 1) / c_j).

With one shared case set this is exactly the standard OR jackknife; for one reader it is the
usual jackknife variance (p(1 - p)/(c - 1) for a proportion); for readers who read disjoint
case sets the covariances between different readers, Cov2 and Cov3, are 0 (a split-plot
design), and the analysis reduces to a paired comparison across readers.

The averaged covariances (OR notation):

    Var  = mean over (i, j) of Cov(theta[i, j], theta[i, j])
    Cov1 = same reader, different task;  Cov2 = different reader, same task;
    Cov3 = different reader, different task.

ANOVA of the theta table:  MS(T) = r/(t-1) sum_i (theta[i, .] - theta[., .])^2,
MS(T*R) = 1/((t-1)(r-1)) sum_ij (theta[i, j] - theta[i, .] - theta[., j] + theta[., .])^2.

Hillis (2007, Stat Med 26:596-619; 2008) test, readers and cases random:

    D     = MS(T*R) + max(r (Cov2 - Cov3), 0)
    F     = MS(T) / D,  on (t - 1, ddf_H) degrees of freedom
    ddf_H = D^2 / (MS(T*R)^2 / ((t - 1)(r - 1)))
    For t = 2:  SE(theta[2, .] - theta[1, .]) = sqrt(2/r * D),
                CI = difference -/+ t_{1 - alpha/2; ddf_H} * SE.

Also reported, readers fixed (conclusions about these readers only, cases random):
X^2 = (t - 1) MS(T) / (Var - Cov1 + (r - 1)(Cov2 - Cov3)) on t - 1 df (chi-square).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def jackknife_covariances(
    reader: np.ndarray, case: np.ndarray, correct1: np.ndarray, correct2: np.ndarray
) -> dict[str, Any]:
    """Proportion correct per task and reader, and the OR covariances Var, Cov1, Cov2, Cov3.

    `reader` must index readers 0..r-1, each with at least 2 cases; one element per case that
    reader answered in both tasks.
    """
    reader = np.asarray(reader, dtype=np.int64)
    _, case = np.unique(np.asarray(case), return_inverse=True)
    x = np.stack([np.asarray(correct1, dtype=np.float64), np.asarray(correct2, dtype=np.float64)])
    r = int(reader.max()) + 1
    c = np.bincount(reader, minlength=r).astype(np.float64)
    theta = np.stack([np.bincount(reader, weights=x[i], minlength=r) / c for i in range(2)])
    # Jackknife deviations, already multiplied by the reader's scale w_j.
    d = (theta[:, reader] - x) / (c[reader] - 1)
    u = d * np.sqrt((c[reader] - 1) / c[reader])
    own = np.stack([np.bincount(reader, weights=u[i] * u[i], minlength=r) for i in range(2)])
    cross_own = np.bincount(reader, weights=u[0] * u[1], minlength=r)
    # Summing u over the readers of each case turns the sum over reader pairs into a sum over
    # cases: sum_{j, j'} Cov = sum_k U_k U'_k, which includes the j = j' terms subtracted below.
    per_case = np.stack([np.bincount(case, weights=u[i]) for i in range(2)])
    pairs = r * (r - 1)
    same_task_all = (per_case * per_case).sum(axis=1)
    cross_task_all = float((per_case[0] * per_case[1]).sum())
    cov2 = float((same_task_all - own.sum(axis=1)).sum() / (2 * pairs)) if pairs else 0.0
    cov3 = float((cross_task_all - cross_own.sum()) / pairs) if pairs else 0.0
    return {
        "theta": theta,
        "cases": c.astype(np.int64),
        "var": float(own.mean()),
        "cov1": float(cross_own.mean()),
        "cov2": cov2,
        "cov3": cov3,
    }


def obuchowski_rockette(
    reader: np.ndarray,
    case: np.ndarray,
    correct1: np.ndarray,
    correct2: np.ndarray,
    level: float = 0.95,
) -> dict[str, Any]:
    """OR analysis with Hillis's ddf of the Task 2 minus Task 1 difference in proportion correct."""
    out: dict[str, Any] = {
        "description": (
            "Obuchowski-Rockette analysis (readers and cases both random, Hillis's degrees of "
            "freedom): is the accuracy gain larger than reader-to-reader and case-to-case "
            "variation would explain, so that it should hold for other readers and other "
            "lesions? Gives the gain (Task 2 minus Task 1, average of the readers' proportion "
            "correct) with a confidence interval and a p-value."
        ),
        "method": "Obuchowski-Rockette, jackknife covariances over cases, Hillis (2007) ddf",
        "figure_of_merit": "proportion correct",
        "level": level,
    }
    reader = np.asarray(reader, dtype=np.int64)
    if reader.size == 0:
        return {**out, "readers": 0, "available": False, "reason": "no paired cases"}
    counts = np.bincount(reader)
    keep_readers = np.flatnonzero(counts >= 2)
    keep = np.isin(reader, keep_readers)
    r = int(keep_readers.size)
    out["readers"] = r
    out["readers_left_out"] = int((counts > 0).sum()) - r
    if r < 2:
        return {**out, "available": False, "reason": "needs at least 2 readers with 2 paired cases"}
    remap = np.full(counts.size, -1, dtype=np.int64)
    remap[keep_readers] = np.arange(r)
    jk = jackknife_covariances(
        remap[reader[keep]],
        np.asarray(case)[keep],
        np.asarray(correct1)[keep],
        np.asarray(correct2)[keep],
    )
    theta = jk["theta"]
    t = 2
    task_mean = theta.mean(axis=1)
    reader_mean = theta.mean(axis=0)
    grand = theta.mean()
    ms_t = r * ((task_mean - grand) ** 2).sum() / (t - 1)
    ms_r = t * ((reader_mean - grand) ** 2).sum() / (r - 1)
    resid = theta - task_mean[:, None] - reader_mean[None, :] + grand
    ms_tr = (resid**2).sum() / ((t - 1) * (r - 1))
    cov_term = max(r * (jk["cov2"] - jk["cov3"]), 0.0)
    denominator = ms_tr + cov_term
    difference = float(task_mean[1] - task_mean[0])
    alpha = 1 - level
    out.update(
        {
            "available": True,
            "task1": float(task_mean[0]),
            "task2": float(task_mean[1]),
            "difference": difference,
            "ms_t": float(ms_t),
            "ms_r": float(ms_r),
            "ms_tr": float(ms_tr),
            "var": jk["var"],
            "cov1": jk["cov1"],
            "cov2": jk["cov2"],
            "cov3": jk["cov3"],
        }
    )
    if denominator <= 0:
        return {
            **out,
            "available": False,
            "reason": "no variation between readers or cases: the test is undefined",
        }
    se = float(np.sqrt(2 / r * denominator))
    f_stat = float(ms_t / denominator)
    if ms_tr > 0:
        ddf = float(denominator**2 / (ms_tr**2 / ((t - 1) * (r - 1))))
        p = float(stats.f.sf(f_stat, t - 1, ddf))
        quantile = float(stats.t.ppf(1 - alpha / 2, ddf))
    else:
        # No task-by-reader interaction: ddf_H is infinite and F*(t-1) is chi-square.
        ddf = None
        p = float(stats.chi2.sf(f_stat * (t - 1), t - 1))
        quantile = float(stats.norm.ppf(1 - alpha / 2))
    out.update(
        {
            "f": f_stat,
            "ndf": t - 1,
            "ddf": ddf,
            "p_value": p,
            "se": se,
            "ci_low": difference - quantile * se,
            "ci_high": difference + quantile * se,
        }
    )
    fixed_denominator = jk["var"] - jk["cov1"] + (r - 1) * (jk["cov2"] - jk["cov3"])
    if fixed_denominator > 0:
        chi2 = float((t - 1) * ms_t / fixed_denominator)
        se_fixed = float(np.sqrt(2 / r * fixed_denominator))
        z = float(stats.norm.ppf(1 - alpha / 2))
        out["fixed_readers"] = {
            "description": (
                "The same question for these readers only (cases random, readers fixed): "
                "narrower, but says nothing about other readers."
            ),
            "chi2": chi2,
            "df": t - 1,
            "p_value": float(stats.chi2.sf(chi2, t - 1)),
            "se": se_fixed,
            "ci_low": difference - z * se_fixed,
            "ci_high": difference + z * se_fixed,
        }
    else:
        out["fixed_readers"] = None
    return out
