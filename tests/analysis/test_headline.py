"""The headline's sentences: readable condition names, the later condition named first."""

from __future__ import annotations

from app.analysis.headline import sentence
from app.analysis.results import ORHillis


def three_arms() -> ORHillis:
    """An OR-Hillis result shaped as the analysis gives it, conditions in study order."""
    result: dict = {
        "endpoint": "proportion_correct",
        "label": "proportion correct",
        "level": 0.95,
        "readers": 10,
        "means": {"unaided": 0.655, "cbir": 0.697, "se_cbir": 0.785},
        "differences": [
            # MRMCaov's orientation: by sorted name, so cbir - se_cbir runs backwards in time.
            {
                "comparison": "cbir - se_cbir",
                "minuend": "cbir",
                "subtrahend": "se_cbir",
                "estimate": -0.088,
                "ci_low": -0.125,
                "ci_high": -0.052,
                "p": 0.0001,
            },
            {
                "comparison": "se_cbir - unaided",
                "minuend": "se_cbir",
                "subtrahend": "unaided",
                "estimate": 0.13,
                "ci_low": 0.093,
                "ci_high": 0.167,
                "p": 0.0001,
            },
        ],
    }
    return result  # type: ignore[return-value]


NAMES = {"unaided": "Unaided", "cbir": "CBIR 6", "se_cbir": "SE-CBIR 6"}


def test_the_later_condition_comes_first_with_the_interval_turned() -> None:
    text = sentence(three_arms(), 0, NAMES)
    assert text.startswith(
        "Proportion correct: 78.5% with SE-CBIR 6 against 69.7% with CBIR 6, 8.8 points higher"
        " (95% CI +5.2 to +12.5 points, p < 0.001;"
    )


def test_a_difference_in_study_order_stays_as_it_is() -> None:
    text = sentence(three_arms(), 1, NAMES)
    assert "78.5% with SE-CBIR 6 against 65.5% with Unaided, 13.0 points higher" in text
    assert "(95% CI +9.3 to +16.7 points" in text


def test_without_names_the_keys_are_used() -> None:
    assert "with se_cbir against 69.7% with cbir" in sentence(three_arms(), 0)
