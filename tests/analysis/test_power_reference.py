"""Power and sample size against R's RJafroc 2.1.2 (`SsPowerGivenJK`, `SsSampleSizeKGivenJ`,
method OR, random readers and cases), on every reference set.

`tests/reference/power/rjafroc_power.json` (its README: how it was made) holds:

- per set and endpoint, RJafroc's power over readers x cases x effects and its cases needed
  for 80 % and 90 % power, from the variance components MRMCaov computed for that set: here
  the platform computes its own components from the answers and its own power from them, so
  the check runs from the answers to the power;
- on the fully crossed set's two modalities, RJafroc end to end: its own ROC dataset, its
  own jackknife components and the observed effect.

The issue asks for 0.01 in power; the platform agrees to rounding (R's noncentral F and
scipy's differ by about 1e-9), so the tolerance is 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.analysis import analyse, responses_from_rows
from app.analysis.power import MAX_CASES, cases_needed, components, power
from app.analysis.results import PowerComponents
from tests.analysis.helpers import reference_rows

HERE = Path(__file__).resolve().parents[1] / "reference"
REFERENCE = json.loads((HERE / "power" / "rjafroc_power.json").read_text(encoding="utf-8"))
OWN_SETS = ("per_case_randomised", "initial_revised", "per_case_subsets")
SHARED_SETS = ("thesis_study", "crossed_three_arms", "random_subsets_crossover")
TOLERANCE = 1e-6


def ours(name: str, shared: Path, conditions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The platform's OR-Hillis results of a reference set (only `conditions`, if given)."""
    folder = HERE / "mrmc" if name in OWN_SETS else shared
    rows = reference_rows(folder / f"{name}.csv")
    if conditions:
        rows = [row for row in rows if row["condition"] in conditions]
    return analyse(responses_from_rows(rows), bootstrap=0)["statistics"]["or_hillis"]


def same_components(mine: PowerComponents, theirs: dict[str, Any], what: str) -> None:
    """RJafroc's VarTR, Cov1-3, Var and K* against ours (RJafroc truncates VarTR at 0 when it
    computes power, where ours is truncated already)."""
    assert mine["cases"] == theirs["KStar"], what
    assert mine["var_tr"] == pytest.approx(max(theirs["VarTR"], 0.0), rel=1e-6, abs=1e-12), what
    for key, their in (("cov1", "Cov1"), ("cov2", "Cov2"), ("cov3", "Cov3"), ("var", "Var")):
        assert mine[key] == pytest.approx(theirs[their], rel=1e-6, abs=1e-12), f"{what} {key}"


def test_the_reference_names_its_tool() -> None:
    assert REFERENCE["versions"]["RJafroc"] == "2.1.2"
    assert set(REFERENCE["components"]) == {*OWN_SETS, *SHARED_SETS}


@pytest.mark.parametrize("name", OWN_SETS + SHARED_SETS)
def test_power_and_cases_needed_match_rjafroc(mrmc_reference_dir: Path, name: str) -> None:
    blocks = ours(name, mrmc_reference_dir)
    compared = 0
    for endpoint, expected in REFERENCE["components"][name].items():
        c = components(blocks[endpoint])
        assert not isinstance(c, str), (name, endpoint, c)
        same_components(c, expected["components"], f"{name} {endpoint}")
        for row in expected["power"]:
            mine = power(c, row["readers"], row["cases"], row["effect"])
            what = f"{name} {endpoint} {row}"
            assert mine == pytest.approx(row["power"], abs=TOLERANCE), what
            compared += 1
        for row in expected["sample_size"]:
            (found,) = cases_needed(c, [row["readers"]], row["effect"], [row["target"]])
            what = f"{name} {endpoint} {row}"
            if row["cases"] > MAX_CASES:  # RJafroc stops after 2000 cases and says 2001
                assert found["cases"] is None, what
                continue
            assert found["cases"] == row["cases"], what
            assert found["power"] == pytest.approx(row["power"], abs=TOLERANCE), what
    assert compared >= 5 * 3 * 3 * 4


def test_rjafroc_end_to_end_on_fully_crossed_data(mrmc_reference_dir: Path) -> None:
    """RJafroc's own jackknife on its own ROC dataset gives our components and our power."""
    assert len(REFERENCE["datasets"]) == 2
    for expected in REFERENCE["datasets"]:
        blocks = ours(expected["set"], mrmc_reference_dir, tuple(expected["modalities"]))
        block = blocks[expected["endpoint"]]
        for condition, mean in expected["means"].items():
            assert block["means"][condition] == pytest.approx(mean, rel=1e-9)
        c = components(block)
        assert not isinstance(c, str)
        same_components(c, expected["components"], expected["endpoint"])
        effect = abs(block["differences"][0]["estimate"])
        for row in expected["power"]:
            mine = power(c, row["readers"], row["cases"], effect)
            assert mine == pytest.approx(row["power"], abs=TOLERANCE), row
        for row in expected["sample_size"]:
            (found,) = cases_needed(c, [row["readers"]], effect, [row["target"]])
            assert found["cases"] == row["cases"], row


def test_the_thesis_needs_what_rjafroc_says(mrmc_reference_dir: Path) -> None:
    """The figures quoted in the README: 80 % power for the thesis's 22.7 points."""
    c = components(ours("thesis_study", mrmc_reference_dir)["proportion_correct"])
    assert not isinstance(c, str)
    rows = {(n["readers"], n["target"]): n["cases"] for n in cases_needed(c, [5, 9], 0.22666666667)}
    assert rows == {(5, 0.8): 35, (9, 0.8): 8, (5, 0.9): 227, (9, 0.9): 11}
