"""The headline: the primary paired result per endpoint, in plain words."""

from __future__ import annotations

from collections.abc import Mapping

from app.analysis.results import Headline, ORHillis
from app.analysis.wording import p_text

# The endpoints the headline leads with, in this order (per-class sensitivities follow in
# their own table).
HEADLINE_ENDPOINTS = (
    "proportion_correct",
    "balanced_accuracy",
    "melanoma_sensitivity",
    "melanoma_specificity",
    "malignant_sensitivity",
    "malignant_specificity",
)


def _p(value: float) -> str:
    """A p-value for a sentence: "p = 0.031", "p < 0.001"."""
    text = p_text(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def sentence(result: ORHillis, index: int = 0, names: Mapping[str, str] | None = None) -> str:
    """One difference of one endpoint as a sentence a clinician can read, conditions by their
    readable `names` (condition key -> name; the key where none is given). The condition that
    comes later in the study (the aided one, `se_cbir` after `unaided`) is named first, as a
    reader expects, whichever way the difference's `a - b` key runs."""
    names = names or {}
    d = result["differences"][index]
    a, b = d["minuend"], d["subtrahend"]
    estimate, low, high = d["estimate"], d["ci_low"], d["ci_high"]
    order = list(result["means"])
    if order.index(a) < order.index(b):
        a, b, estimate, low, high = b, a, -estimate, -high, -low
    level = round(result["level"] * 100)
    change = "higher" if estimate > 0 else "lower" if estimate < 0 else "no different"
    return (
        f"{result['label'].capitalize()}: {100 * result['means'][a]:.1f}% with "
        f"{names.get(a, a)} against {100 * result['means'][b]:.1f}% with {names.get(b, b)}, "
        f"{abs(100 * estimate):.1f} points {change} ({level}% CI {100 * low:+.1f} to "
        f"{100 * high:+.1f} points, {_p(d['p'])}; {result['readers']} readers, readers and "
        "cases random)."
    )


def headline(
    results: dict[str, ORHillis], names: Mapping[str, str] | None = None
) -> list[Headline]:
    """The headline endpoints' differences, or why each is not available; the sentences name
    the conditions by `names` (condition key -> readable name) where given."""
    lines: list[Headline] = []
    for name in HEADLINE_ENDPOINTS:
        result = results.get(name)
        if result is None:
            continue
        if not result["available"]:
            lines.append(
                {
                    "endpoint": name,
                    "label": result["label"],
                    "comparison": "",
                    "sentence": f"{result['label'].capitalize()}: not available "
                    f"({result['reason']}).",
                    "estimate": None,
                    "ci_low": None,
                    "ci_high": None,
                    "p": None,
                }
            )
            continue
        for index, d in enumerate(result["differences"]):
            lines.append(
                {
                    "endpoint": name,
                    "label": result["label"],
                    "comparison": d["comparison"],
                    "sentence": sentence(result, index, names),
                    "estimate": d["estimate"],
                    "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"],
                    "p": d["p"],
                }
            )
    return lines
