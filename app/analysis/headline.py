"""The headline: the primary paired result per endpoint, in plain words."""

from __future__ import annotations

from app.analysis.results import Headline, ORHillis

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
    """A p-value for a sentence."""
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def sentence(result: ORHillis, index: int = 0) -> str:
    """One difference of one endpoint as a sentence a clinician can read."""
    d = result["differences"][index]
    a, b = d["minuend"], d["subtrahend"]
    level = round(result["level"] * 100)
    change = "higher" if d["estimate"] > 0 else "lower" if d["estimate"] < 0 else "no different"
    return (
        f"{result['label'].capitalize()}: {100 * result['means'][a]:.1f}% with {a} against "
        f"{100 * result['means'][b]:.1f}% with {b}, {abs(100 * d['estimate']):.1f} points "
        f"{change} ({level}% CI {100 * d['ci_low']:+.1f} to {100 * d['ci_high']:+.1f} points, "
        f"{_p(d['p'])}; {result['readers']} readers, readers and cases random)."
    )


def headline(results: dict[str, ORHillis]) -> list[Headline]:
    """The headline endpoints' differences, or why each is not available."""
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
                    "sentence": sentence(result, index),
                    "estimate": d["estimate"],
                    "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"],
                    "p": d["p"],
                }
            )
    return lines
