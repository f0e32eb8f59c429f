r"""Power and sample size for the next study, from this study's own OR variance components.

An organiser who publishes asks how many readers and cases a confirmatory study needs. The
answer here is the one Hillis, Obuchowski and Berbaum (2011, Acad Radiol 18:129-142; Hillis
and Schartz 2018, J Med Imaging 5:045503) give and R's RJafroc computes (`SsPowerGivenJK`,
`SsSampleSizeKGivenJ` with `method = "OR"`, random readers and random cases): the study just
run is the pilot, its OR variance components (`mrmc.py`) describe the figure of merit's
variability, and the next study compares two conditions with J readers who each read K
cases in both. With the pilot's J* readers and K* cases per reader,

    VarTR = max(0, MS(T*R) - Var + Cov1 + max(Cov2 - Cov3, 0))    (Hillis 2011, eq. 9)
    den   = VarTR + (K*/K) (Var - Cov1 + (J - 1) max(Cov2 - Cov3, 0))
    df2   = (J - 1) den^2 / (VarTR + (K*/K) (Var - Cov1 - max(Cov2 - Cov3, 0)))^2
    ncp   = J d^2 / (2 den)                                        (eq. 10)
    power = P(F(1, df2; ncp) > F_{1 - alpha}(1, df2))

for a true difference d between the two conditions. At the pilot's own J and K, den is the
OR-Hillis denominator of the test just run (MS(T*R) + J max(Cov2 - Cov3, 0)), and df2 its
Hillis df when VarTR is not truncated: the planned study is tested as this one was. The
effect's sign does not matter (a two-sided test).

K* is the number of cases behind each reader's figure in one condition (the mean over the
readers the endpoint kept): the variances scale as 1/K from the pilot's case count per
figure. On a fully crossed study that is the study's cases; on the thesis's design, where
each reader read a random 100 of 505, it is 100, not the 505 the jackknife runs over
(MRMCaov's Var there is a reader's figure's variance over 100 cases). The planned study is
read as the pilot was: its K is the cases each reader reads in each condition, and its case
mix (the share of melanomas behind a sensitivity) the pilot's. A pilot of three or more
conditions gives components pooled over all of them; the planned study compares two.

The needed sample size is RJafroc's: the fewest K (from 2, at most `MAX_CASES`) whose power
exceeds the target, for each reader count, found by bisection in a dozen evaluations instead
of RJafroc's scan of thousands (the noncentral F costs some 30 us). Power rises with K: den
falls, and df2 falls too but only towards J - 1. On a plateau the falling df2 can outweigh
the rising ncp a little (on 3000 random sets of components, 37 curves dipped, by at most
0.0015 in power); a target inside such a dip is the one case where the bisection can return
a later K than the scan. On the reference sets both agree on all 364 sample sizes.
`tests/reference/power/` holds RJafroc 2.1.2's figures and the check.

The noncentral F and the F quantile come from scipy.special (`ncfdtr`, `fdtri`), the
routines scipy.stats's distributions call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from app.analysis.headline import HEADLINE_ENDPOINTS
from app.analysis.responses import Array
from app.analysis.results import (
    EndpointPower,
    ORHillis,
    PowerComponents,
    PowerNeeded,
    PowerRow,
)

ALPHA = 0.05
TARGETS = (0.8, 0.9)
# The grid's reader and case counts; the pilot's own are added to them.
READERS = (3, 4, 5, 6, 8, 10, 12, 15, 20)
CASES = (25, 50, 75, 100, 150, 200, 300, 400, 500)
# RJafroc's search stops after 2000 cases per reader; so does this one.
MAX_CASES = 2000
MIN_READERS = 2  # a planned study needs J - 1 >= 1 for the F test's df2
MIN_CASES = 2
CHI_SQUARE_DF = 1e7  # see `power`

# What the OR analysis needs before it has variance components at all (`mrmc.or_hillis`):
# MS(T*R) needs two conditions and two readers; each reader's jackknife needs two cases the
# figure counts in every condition (for an AUC two with the finding and two without).
MINIMUM = (
    "power needs the variance components of a study with at least 2 conditions and 2 readers "
    "who each read, in every condition, at least 2 cases the figure counts (for an AUC, 2 "
    "with the finding and 2 without)"
)


class PowerInputError(ValueError):
    """An effect, alpha, reader or case count that power cannot be computed for."""


def components(block: ORHillis) -> PowerComponents | str:
    """The power formula's inputs from one endpoint's OR-Hillis result, or why there are none."""
    if not block["available"] or block["covariances"] is None:
        why = block["reason"] or "no OR-Hillis result"
        if why.startswith("needs"):
            return f"too small to estimate the variance components ({why}): {MINIMUM}"
        return f"no variance components to plan from: {why}"
    c = block["covariances"]
    kept = [r["cases"] for r in block["per_reader"] if None not in r["values"].values()]
    if not kept:
        return f"no reader has this figure in every condition: {MINIMUM}"
    cov23 = max(c["cov2"] - c["cov3"], 0.0)
    var_tr = max(c["ms_tr"] - c["var"] + c["cov1"] + cov23, 0.0)
    out: PowerComponents = {
        "var_tr": var_tr,
        "var": c["var"],
        "cov1": c["cov1"],
        "cov2": c["cov2"],
        "cov3": c["cov3"],
        "readers": block["readers"],
        "cases": float(np.mean(kept)),
    }
    if _denominator(out, np.asarray(float(block["readers"])), np.asarray(out["cases"])) <= 0:
        return (
            "the figures do not vary between readers or between cases (every reader scored "
            "alike on every case), so the variance components are 0 and give no power"
        )
    return out


def _denominator(c: PowerComponents, readers: Any, cases: Any) -> Any:
    """Hillis's den for J readers and K cases per reader (arrays broadcast)."""
    cov23 = max(c["cov2"] - c["cov3"], 0.0)
    scale = c["cases"] / cases
    return c["var_tr"] + scale * (c["var"] - c["cov1"] + (readers - 1) * cov23)


def power(
    c: PowerComponents,
    readers: Any,
    cases: Any,
    effect: Any,
    alpha: float = ALPHA,
) -> Any:
    """The power of the random-readers, random-cases OR test (the module docstring's formula)
    for J `readers`, K `cases` per reader and a true difference `effect`; numbers or arrays,
    broadcast together. A den of 0 (no variability left) gives power 1 for any effect."""
    j = np.asarray(readers, dtype=np.float64)
    k = np.asarray(cases, dtype=np.float64)
    d = np.asarray(effect, dtype=np.float64)
    cov23 = max(c["cov2"] - c["cov3"], 0.0)
    scale = c["cases"] / k
    den = _denominator(c, j, k)
    spread = c["var_tr"] + scale * (c["var"] - c["cov1"] - cov23)
    with np.errstate(divide="ignore", invalid="ignore"):
        df2 = np.where(
            spread != 0, (j - 1) * den**2 / np.where(spread != 0, spread, 1) ** 2, np.inf
        )
        ncp = np.where(den > 0, j * d**2 / (2 * np.where(den > 0, den, 1)), np.inf)
    shift = np.where(np.isfinite(ncp), ncp, 0.0)
    # Beyond CHI_SQUARE_DF F(1, df2) is a chi-square on 1 df to 1e-8 in power, and scipy's F
    # quantile loses its digits (from about 1e12 on; NaN at 1e20): where the spread term
    # nears 0, df2 = den^2 / spread^2 runs off to such values.
    finite = df2 < CHI_SQUARE_DF
    df2_safe = np.where(finite, df2, 1.0)
    critical = special.fdtri(1, df2_safe, 1 - alpha)
    out = 1 - special.ncfdtr(1, df2_safe, shift, critical)
    # scipy's noncentral F gives NaN far in its tail (ncp in the thousands, the miss below
    # 1e-300): the power is 1 to double precision there.
    out = np.where(np.isnan(out) & (shift > critical), 1.0, out)
    if not finite.all():
        chi = 1 - special.chndtr(special.chdtri(1, alpha), 1, shift)
        out = np.where(finite, out, chi)
    out = np.where(np.isfinite(ncp), out, 1.0)
    return out if out.ndim else float(out)


def cases_needed(
    c: PowerComponents,
    readers: Sequence[int],
    effect: float,
    targets: Sequence[float] = TARGETS,
    alpha: float = ALPHA,
    max_cases: int = MAX_CASES,
) -> list[PowerNeeded]:
    """For each target and reader count, the fewest cases per reader (MIN_CASES to
    `max_cases`) with power above the target for `effect`, and that power (None for both
    when `max_cases` are not enough). One bisection for every (target, readers) at once."""
    goal, j = (a.ravel() for a in np.meshgrid(targets, readers, indexing="ij"))
    reachable = power(c, j, max_cases, effect, alpha) > goal
    # power(low) <= goal < power(high) where reachable (MIN_CASES - 1 as "none yet")
    low: Array = np.full(j.shape, MIN_CASES - 1)
    high: Array = np.full(j.shape, max_cases)
    while np.any(high - low > 1):
        middle = (low + high) // 2
        above = power(c, j, np.maximum(middle, MIN_CASES), effect, alpha) > goal
        high = np.where(above, middle, high)
        low = np.where(above, low, middle)
    found = power(c, j, high, effect, alpha)
    return [
        {
            "effect": float(effect),
            "target": float(g),
            "readers": int(r),
            "cases": int(k) if ok else None,
            "power": float(p) if ok else None,
        }
        for g, r, k, p, ok in zip(goal, j, high, found, reachable, strict=True)
    ]


def _check(
    effects: Sequence[float], alpha: float, readers: Sequence[int], cases: Sequence[int]
) -> None:
    """PowerInputError for an input the formula has no meaning for."""
    for effect in effects:
        if not (math.isfinite(effect) and 0 < abs(effect) <= 1):
            raise PowerInputError(
                f"an effect is a difference of two proportions or AUCs, above 0 and at most 1; "
                f"not {effect:g}"
            )
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise PowerInputError(f"alpha is a significance level between 0 and 1, not {alpha:g}")
    if not readers or min(readers) < MIN_READERS:
        raise PowerInputError(f"a planned study needs at least {MIN_READERS} readers")
    if not cases or min(cases) < MIN_CASES:
        raise PowerInputError(f"a planned study needs at least {MIN_CASES} cases per reader")


def _observed(block: ORHillis, pair: tuple[str, str] | None) -> tuple[str | None, float | None]:
    """The compared pair's difference (the first one listed without a pair): its name and its
    size, or None where the endpoint has none or it is 0."""
    differences = block["differences"]
    chosen = differences[0] if differences else None
    if pair is not None:
        wanted = set(pair)
        chosen = next((d for d in differences if {d["minuend"], d["subtrahend"]} == wanted), chosen)
    if chosen is None:
        return None, None
    size = abs(chosen["estimate"])
    # Equal means can differ in the last bits (a mean of means): no effect to plan for.
    return chosen["comparison"], (size if size > 1e-12 else None)


def endpoint_power(
    block: ORHillis,
    effects: Sequence[float] = (),
    alpha: float = ALPHA,
    pair: tuple[str, str] | None = None,
    readers: Sequence[int] = READERS,
    cases: Sequence[int] = CASES,
    targets: Sequence[float] = TARGETS,
) -> EndpointPower:
    """Power over readers x cases x effects and the cases needed per reader count, for one
    endpoint: the observed difference of `pair` (or the first) first, then `effects`."""
    _check(effects, alpha, readers, cases)
    comparison, observed = _observed(block, pair)
    out: EndpointPower = {
        "endpoint": block["endpoint"],
        "label": block["label"],
        "kind": block["kind"],
        "available": False,
        "reason": None,
        "alpha": alpha,
        "comparison": comparison,
        "observed_effect": observed,
        "effects": [],
        "components": None,
        "table": [],
        "needed": [],
    }
    c = components(block)
    if isinstance(c, str):
        return {**out, "reason": c}
    sizes = list(dict.fromkeys(abs(e) for e in ([observed] if observed else []) + list(effects)))
    if not sizes:
        return {
            **out,
            "components": c,
            "reason": "the conditions' means are equal, so there is no observed effect to plan "
            "for: give the effect the next study should detect",
        }
    grid_readers = sorted({*readers, c["readers"]})
    grid_cases = sorted({*cases, max(MIN_CASES, round(c["cases"]))})
    e, j, k = np.meshgrid(sizes, grid_readers, grid_cases, indexing="ij")
    values = np.asarray(power(c, j, k, e, alpha)).ravel().tolist()
    table: list[PowerRow] = [
        {"effect": float(ee), "readers": int(jj), "cases": int(kk), "power": p}
        for ee, jj, kk, p in zip(e.ravel(), j.ravel(), k.ravel(), values, strict=True)
    ]
    needed = [row for size in sizes for row in cases_needed(c, grid_readers, size, targets, alpha)]
    return {
        **out,
        "available": True,
        "effects": sizes,
        "components": c,
        "table": table,
        "needed": needed,
    }


def plan_power(
    result: Mapping[str, Any],
    effects: Sequence[float] = (),
    alpha: float = ALPHA,
    readers: Sequence[int] = READERS,
    cases: Sequence[int] = CASES,
    targets: Sequence[float] = TARGETS,
) -> dict[str, EndpointPower]:
    """Power and sample size of every endpoint of an analysis result (`analyse(...)`), by
    endpoint name: the observed effect is the difference of the result's pair (its Task 1 and
    Task 2), and `effects` are added to it. PowerInputError for an effect, alpha or grid the
    formula has no meaning for."""
    pair = _pair(result)
    blocks: Mapping[str, ORHillis] = result["statistics"]["or_hillis"]
    return {
        name: endpoint_power(block, effects, alpha, pair, readers, cases, targets)
        for name, block in blocks.items()
    }


def plan_endpoint(
    result: Mapping[str, Any],
    endpoint: str | None = None,
    effects: Sequence[float] = (),
    alpha: float = ALPHA,
) -> EndpointPower | None:
    """One endpoint's plan (what a page shows, without computing every endpoint's): `endpoint`,
    else the first headline endpoint with variance components, else the first endpoint; None
    when the result has no such endpoint (or none at all)."""
    blocks: Mapping[str, ORHillis] = result["statistics"]["or_hillis"]
    if endpoint is None:
        ready = [
            name for name in HEADLINE_ENDPOINTS if name in blocks and blocks[name]["available"]
        ]
        endpoint = next(iter(ready), next(iter(blocks), None))
    if endpoint is None or endpoint not in blocks:
        return None
    return endpoint_power(blocks[endpoint], effects, alpha, _pair(result))


def _pair(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """The result's compared pair (Task 1 and Task 2) as two keys; None without two."""
    keys = result.get("pair") or {}
    first, second = keys.get("first"), keys.get("second")
    return (first, second) if first and second else None


def needed_rows(plan: EndpointPower) -> list[dict[str, Any]]:
    """The plan's cases needed at its first effect (the observed one), a row per reader count:
    `readers` and, per target power (0.8, 0.9), the cases per reader (None: beyond the
    search's limit)."""
    effect = plan["effects"][0] if plan["effects"] else None
    rows: dict[int, dict[str, Any]] = {}
    for n in plan["needed"]:
        if n["effect"] == effect:
            rows.setdefault(n["readers"], {"readers": n["readers"]})[f"{n['target']:g}"] = n[
                "cases"
            ]
    return [rows[count] for count in sorted(rows)]
