"""How a result's figures read wherever people see them (the dashboard, the headline, the
figures): a p-value, a comparison in the conditions' names, the scale of an endpoint.

One home, so that the page's tables, its forest plot and its headline sentences cannot come
to say the same number two ways.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Endpoints whose figure is an area under a ROC curve (0.5 = chance), not a proportion of
# lesions: named so by the analysis ("melanoma_auc"), they read as 0.xxx, not as percent.
AUC_SUFFIX = "_auc"


def is_auc(endpoint: str) -> bool:
    """Whether an endpoint's figures are AUCs (shown as 0.xxx) rather than proportions."""
    return endpoint.endswith(AUC_SUFFIX)


def p_text(value: float | None) -> str:
    """A p-value with three decimals, '< 0.001' below that ('—' when undefined): exact enough
    to read, without the false precision of 0.0000123."""
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def compared(comparison: str, names: Mapping[str, str]) -> str:
    """A comparison of condition keys, "se_cbir_6 - unaided", in the conditions' readable
    names, "SE-CBIR 6 − Unaided", as readers saw them (a key without a name stays itself)."""
    first, separator, second = comparison.partition(" - ")
    if not separator:
        return comparison
    return f"{names.get(first, first)} − {names.get(second, second)}"


def heading(label: str) -> str:
    """A label as a heading: its first letter capitalised, the rest as it is ("AUC for
    melanoma" keeps its capitals, which str.capitalize would lower)."""
    return label[:1].upper() + label[1:]


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal ('—' when undefined)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def points(value: float | None) -> str:
    """A difference of fractions in percentage points, signed."""
    return "—" if value is None else f"{value * 100:+.1f} pp"


def signed(value: float | None, places: int = 2) -> str:
    """A difference with its sign and `places` decimals ('—' when undefined)."""
    return "—" if value is None else f"{value:+.{places}f}"


def decimal(value: float | None, places: int = 2) -> str:
    """A number with `places` decimals ('—' when undefined)."""
    return "—" if value is None else f"{value:.{places}f}"


def figure(value: float | None, endpoint: str) -> str:
    """An endpoint's mean: a percentage, or an AUC with three decimals."""
    return decimal(value, 3) if is_auc(endpoint) else percent(value)


def change(value: float | None, endpoint: str) -> str:
    """A difference of an endpoint's means: percentage points, or AUC with three decimals."""
    return signed(value, 3) if is_auc(endpoint) else points(value)


def interval(low: float | None, high: float | None, endpoint: str) -> str:
    """A CI of a difference of an endpoint's means, its unit once: "+2.1 to +27.9 pp"."""
    if is_auc(endpoint):
        return f"{signed(low, 3)} to {signed(high, 3)}"
    return f"{signed(None if low is None else low * 100, 1)} to {points(high)}"


# Template filters: the names the dashboard's and the study report's templates use.
FILTERS: dict[str, Callable[..., Any]] = {
    "percent": percent,
    "points": points,
    "signed": signed,
    "decimal": decimal,
    "pvalue": p_text,
    "compared": compared,
    "heading": heading,
    "figure": figure,
    "change": change,
    "interval": interval,
}
