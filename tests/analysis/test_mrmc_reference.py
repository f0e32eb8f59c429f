"""OR-Hillis against R's MRMCaov 0.3.0 on three designs (`../shared/reference/mrmc/`).

Tolerance as that folder's README states: fully crossed data agree to 4 significant digits;
partially paired data (readers' case sets overlap at random) within 3 % relative on F and
standard errors and 0.01 absolute on CI bounds, because this code scales each reader's
jackknife by the reader's own case count where MRMCaov uses all cases of the study.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.analysis import analyse, responses_from_rows
from app.analysis.endpoints import complete_blocks
from app.analysis.mrmc import or_hillis_all
from tests.analysis.helpers import reference_rows, to_csv

SETS = {
    "crossed_three_arms": "crossed",
    "thesis_study": "partial",
    "random_subsets_crossover": "partial",
}
ENDPOINTS = ("proportion_correct", "melanoma_sensitivity", "melanoma_specificity")


def close(ours: float | None, theirs: float, kind: str, what: str) -> None:
    """Assert agreement within the README's tolerance for this design and quantity."""
    assert ours is not None, what
    if kind == "crossed":
        assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-9), what
    elif what.endswith(("ci_low", "ci_high")):
        assert ours == pytest.approx(theirs, abs=0.01), what
    elif what.endswith(("estimate", "means")):
        assert ours == pytest.approx(theirs, abs=1e-9), what
    else:
        assert ours == pytest.approx(theirs, rel=0.03), what


@pytest.mark.parametrize("name", sorted(SETS))
def test_or_hillis_reproduces_mrmcaov(mrmc_reference_dir: Path, name: str) -> None:
    kind = SETS[name]
    expected = json.loads((mrmc_reference_dir / f"{name}.mrmcaov.json").read_text())
    responses = responses_from_rows(reference_rows(mrmc_reference_dir / f"{name}.csv"))
    result = or_hillis_all(complete_blocks(responses))
    for endpoint in ENDPOINTS:
        ours, theirs = result[endpoint], expected[endpoint]
        assert ours["available"], endpoint
        assert set(ours["means"]) == set(theirs["means"])
        for condition, value in theirs["means"].items():
            close(ours["means"][condition], value, kind, f"{endpoint} means")
        assert ours["equality"] is not None
        for key in ("F", "df2"):
            close(ours["equality"][key], theirs["equality"][key], kind, f"{endpoint} {key}")
        assert ours["equality"]["df1"] == theirs["equality"]["df1"]
        if kind == "crossed":
            close(ours["equality"]["p"], theirs["equality"]["p"], kind, f"{endpoint} p")
        else:
            assert ours["equality"]["p"] == pytest.approx(theirs["equality"]["p"], rel=0.05)
        mine = {d["comparison"]: d for d in ours["differences"]}
        assert set(mine) == {d["comparison"] for d in theirs["differences"]}
        for difference in theirs["differences"]:
            got = mine[difference["comparison"]]
            for key in ("estimate", "se", "df", "ci_low", "ci_high"):
                what = f"{endpoint} {difference['comparison']} {key}"
                close(got[key], difference[key], kind, what)


def test_thesis_issue_figures(mrmc_reference_dir: Path) -> None:
    """The issue's figures: +22.7 points [13.4, 32.0]; melanoma +11.1 [1.2, 21.1], +10.8."""
    responses = responses_from_rows(reference_rows(mrmc_reference_dir / "thesis_study.csv"))
    result = or_hillis_all(complete_blocks(responses))
    (pc,) = result["proportion_correct"]["differences"]
    assert (pc["estimate"], pc["ci_low"], pc["ci_high"]) == pytest.approx(
        (0.2267, 0.1335, 0.3198), abs=5e-4
    )
    (sens,) = result["melanoma_sensitivity"]["differences"]
    assert (sens["estimate"], sens["ci_low"], sens["ci_high"]) == pytest.approx(
        (0.111, 0.012, 0.211), abs=2e-3
    )
    (spec,) = result["melanoma_specificity"]["differences"]
    assert (spec["ci_low"], spec["ci_high"]) == pytest.approx((0.054, 0.162), abs=1e-3)
    # Every class has its sensitivity, and malignant vs benign is there (HAM10000's flag).
    for code in ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"):
        assert f"sensitivity_{code}" in result
    assert result["malignant_sensitivity"]["available"]
    assert result["balanced_accuracy"]["available"]


def test_cli_json_carries_the_reference_shape(
    mrmc_reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.analysis.__main__ import main

    path = tmp_path / "crossed.csv"
    path.write_text(
        to_csv(
            reference_rows(mrmc_reference_dir / "crossed_three_arms.csv"),
            (
                "reader",
                "image_id",
                "truth",
                "condition",
                "diagnosis",
                "confidence",
                "majority_vote",
            ),
        )
    )
    assert main([str(path), "--json", "--bootstrap", "0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = json.loads((mrmc_reference_dir / "crossed_three_arms.mrmcaov.json").read_text())
    block = printed["statistics"]["or_hillis"]["proportion_correct"]
    theirs = expected["proportion_correct"]
    assert set(theirs) <= set(block)
    assert set(theirs["equality"]) <= set(block["equality"])
    assert set(theirs["differences"][0]) <= set(block["differences"][0])
    assert block["equality"]["F"] == pytest.approx(theirs["equality"]["F"], rel=1e-4)
    assert printed["conditions"] == ["unaided", "cbir", "se_cbir"]


def test_analyse_runs_on_three_conditions(mrmc_reference_dir: Path) -> None:
    responses = responses_from_rows(reference_rows(mrmc_reference_dir / "crossed_three_arms.csv"))
    result = analyse(responses, bootstrap=0)
    assert len(result["statistics"]["or_hillis"]["proportion_correct"]["differences"]) == 3


def test_cli_writes_the_exports(mrmc_reference_dir: Path, tmp_path: Path) -> None:
    """`--exports DIR`: the MRMCaov CSV with its truth-0 rows, the R script, the iMRMC file."""
    from app.analysis.__main__ import main
    from app.analysis.files import PLACEHOLDER_CASE

    source = tmp_path / "thesis.csv"
    columns = ("reader", "image_id", "truth", "condition", "diagnosis", "confidence")
    rows = reference_rows(mrmc_reference_dir / "thesis_study.csv")
    source.write_text(to_csv(rows, (*columns, "majority_vote")))
    out = tmp_path / "exports"
    assert main([str(source), "--exports", str(out), "--bootstrap", "0"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mrmcaov.R", "mrmcaov.csv", "study.imrmc"]
    with (out / "mrmcaov.csv").open() as handle:
        table = list(csv.DictReader(handle))
    real = [r for r in table if r["case"] != PLACEHOLDER_CASE]
    assert len(real) == 1800 and {r["truth"] for r in real} == {"1"}
    assert len(table) - len(real) == 9 * 2  # one truth-0 row per reader x test
    assert sum(r["rating"] == "1" for r in real if r["test"] == "se_cbir") == 764
    script = (out / "mrmcaov.R").read_text()
    assert 'path <- if (length(args) > 0) args[1] else "mrmcaov.csv"' in script
    assert "NM: 2" in (out / "study.imrmc").read_text()
