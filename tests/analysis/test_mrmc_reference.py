"""OR-Hillis against R's MRMCaov 0.3.0 on six designs, every endpoint MRMCaov computes.

`../shared/reference/mrmc/` holds three designs (fully crossed, the thesis's random subsets,
a crossover on random subsets) with MRMCaov's figures for three endpoints;
`tests/reference/mrmc/` holds MRMCaov's figures for those and for three more designs
(per-case randomised, per-case on random subsets, initial then revised), with the ROC AUCs,
the fixed-reader analyses and the variance components (its README: tool versions, how they
were made). The platform computes MRMCaov's jackknife, so it agrees to rounding: the files
print about 11 significant digits and the tolerance is 1e-6 relative, far inside the issue's
1 % on F and standard errors and 0.005 on CI bounds.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from app.analysis import analyse, read_responses, responses_from_rows
from app.analysis.endpoints import reading_blocks
from app.analysis.mrmc import or_hillis_all
from tests.analysis.helpers import reference_rows, to_csv

OURS = Path(__file__).resolve().parents[1] / "reference" / "mrmc"
SHARED_SETS = ("crossed_three_arms", "thesis_study", "random_subsets_crossover")
OWN_SETS = ("per_case_randomised", "per_case_subsets", "initial_revised")
SHARED_ENDPOINTS = ("proportion_correct", "melanoma_sensitivity", "melanoma_specificity")
ENDPOINTS = (*SHARED_ENDPOINTS, "melanoma_auc", "malignant_auc")
TOLERANCE = 1e-6


def data_of(name: str, shared: Path) -> Path:
    """Where a set's answers are: the shared folder's CSVs are read there, not copied."""
    return shared / f"{name}.csv" if name in SHARED_SETS else OURS / f"{name}.csv"


def close(ours: float | None, theirs: float | None, what: str) -> None:
    """Equal to MRMCaov's printed figure (a p of 0 is MRMCaov's 1 - pchisq underflowing)."""
    assert ours is not None and theirs is not None, what
    assert ours == pytest.approx(theirs, rel=TOLERANCE, abs=1e-9), what


def compare(ours: dict[str, Any], theirs: dict[str, Any], endpoint: str) -> None:
    """Every figure MRMCaov printed for one endpoint against ours."""
    assert ours["available"], (endpoint, ours["reason"])
    assert ours["readers_left_out"] == 0, endpoint
    assert set(ours["means"]) == set(theirs["means"]), endpoint
    for condition, value in theirs["means"].items():
        close(ours["means"][condition], value, f"{endpoint} mean {condition}")
    for key in ("F", "df2", "p"):
        close(ours["equality"][key], theirs["equality"][key], f"{endpoint} {key}")
    assert ours["equality"]["df1"] == theirs["equality"]["df1"]
    mine = {d["comparison"]: d for d in ours["differences"]}
    assert set(mine) == {d["comparison"] for d in theirs["differences"]}, endpoint
    for difference in theirs["differences"]:
        got = mine[difference["comparison"]]
        for key in ("estimate", "se", "df", "ci_low", "ci_high", "p"):
            close(got[key], difference[key], f"{endpoint} {difference['comparison']} {key}")
    fixed = theirs.get("fixed_readers")
    if fixed is not None:
        assert ours["fixed_readers"] is not None, endpoint
        for key in ("chi2", "p"):
            close(
                ours["fixed_readers"]["equality"][key], fixed["equality"][key], f"{endpoint} {key}"
            )
        mine_fixed = {d["comparison"]: d for d in ours["fixed_readers"]["differences"]}
        for difference in fixed["differences"]:
            got = mine_fixed[difference["comparison"]]
            for key in ("se", "ci_low", "ci_high", "p"):
                what = f"{endpoint} fixed {difference['comparison']} {key}"
                close(got[key], difference[key], what)
    components = theirs.get("covariances")
    if components is not None:
        for key, value in components.items():
            assert ours["covariances"][key] == pytest.approx(value, rel=TOLERANCE, abs=1e-12), (
                f"{endpoint} {key}"
            )


@pytest.mark.parametrize("name", SHARED_SETS)
def test_or_hillis_reproduces_the_shared_figures(mrmc_reference_dir: Path, name: str) -> None:
    expected = json.loads((mrmc_reference_dir / f"{name}.mrmcaov.json").read_text())
    responses = responses_from_rows(reference_rows(mrmc_reference_dir / f"{name}.csv"))
    result = or_hillis_all(reading_blocks(responses))
    for endpoint in SHARED_ENDPOINTS:
        compare(result[endpoint], expected[endpoint], endpoint)


@pytest.mark.parametrize("name", SHARED_SETS + OWN_SETS)
def test_or_hillis_reproduces_mrmcaov_on_every_design(mrmc_reference_dir: Path, name: str) -> None:
    """Proportions, sensitivities, specificities and ROC AUCs, random and fixed readers, and
    the variance components, on every design the platform runs."""
    expected = json.loads((OURS / f"{name}.mrmcaov.json").read_text())
    responses = responses_from_rows(reference_rows(data_of(name, mrmc_reference_dir)))
    result = analyse(responses, bootstrap=0)["statistics"]["or_hillis"]
    for endpoint in ENDPOINTS:
        compare(result[endpoint], expected[endpoint], endpoint)


def first_look_rows(path: Path) -> list[dict[str, Any]]:
    """The initial-then-revised set as the app exports it: one row per reading, the revised
    answer in `diagnosis`, the first look in `initial_diagnosis` / `initial_confidence`."""
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    first = {
        (row["reader"], row["case"]): row for row in table if row["modality"].endswith("_initial")
    }
    rows = []
    for row in table:
        if row["modality"].endswith("_initial"):
            continue
        initial = first[row["reader"], row["case"]]
        rows.append(
            {
                "reader": row["reader"],
                "image_id": row["case"],
                "truth": row["truth"],
                "condition": row["modality"],
                "diagnosis": row["diagnosis"],
                "confidence": row["confidence"],
                "majority_vote": row["truth"],
                "initial_diagnosis": initial["diagnosis"],
                "initial_confidence": initial["confidence"],
            }
        )
    return rows


def test_initial_then_revised_as_the_app_exports_it() -> None:
    """The app writes one row per reading with its first look beside it: read so, the first
    looks become `<aid>_initial` readings and every figure is MRMCaov's."""
    rows = first_look_rows(OURS / "initial_revised.csv")
    columns = (*rows[0].keys(),)
    responses = responses_from_rows(rows)
    assert responses.conditions == ("se_cbir_initial", "se_cbir", "cbir_initial", "cbir")
    expected = json.loads((OURS / "initial_revised.mrmcaov.json").read_text())
    result = analyse(responses, bootstrap=0)
    for endpoint in ENDPOINTS:
        compare(result["statistics"]["or_hillis"][endpoint], expected[endpoint], endpoint)
    # Each aid's reliance is measured against its own first looks.
    assert set(result["reliance"]["conditions"]) == {"cbir", "se_cbir"}
    # The same rows as a CSV file: the same readings.
    again = read_responses(io.StringIO(to_csv(rows, columns)))
    assert again.conditions == responses.conditions and len(again) == len(responses) == 1280


def test_thesis_issue_figures(mrmc_reference_dir: Path) -> None:
    """The issue's figures: +22.7 points [13.4, 32.0]; melanoma +11.1 [1.2, 21.1], +10.8."""
    responses = responses_from_rows(reference_rows(mrmc_reference_dir / "thesis_study.csv"))
    result = or_hillis_all(reading_blocks(responses))
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
