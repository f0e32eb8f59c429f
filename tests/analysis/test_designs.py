"""Every design analysed as MRMCaov would, on one set of answers: reliance per aid, readers
left out by name, first looks, and the MRMC tools' files holding what the figures hold."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from app.analysis import ResponsesError, analyse, read_responses, responses_from_rows
from app.analysis.files import PLACEHOLDER_CASE, imrmc_text, mrmcaov_csv, mrmcaov_script
from app.analysis.responses import analysed
from tests.analysis.helpers import reference_rows, to_csv

OURS = Path(__file__).resolve().parents[1] / "reference" / "mrmc"
CLASSES = ("mel", "nv", "bkl")


def three_arms() -> list[dict[str, Any]]:
    """4 readers x 12 cases in three conditions; CBIR's vote is wrong on cases 0-5 and
    SE-CBIR's right everywhere; readers adopt CBIR's wrong vote on cases 0-2 only."""
    rows = []
    for r in range(4):
        for c in range(12):
            truth = CLASSES[c % 3]
            wrong = CLASSES[(c + 1) % 3]
            for condition, vote, answer in (
                ("unaided", truth, truth if (c + r) % 4 else wrong),
                ("cbir", wrong if c < 6 else truth, wrong if c < 3 else truth),
                ("se_cbir", truth, truth),
            ):
                rows.append(
                    {
                        "reader": f"R{r}",
                        "image_id": f"C{c:02d}",
                        "truth": truth,
                        "condition": condition,
                        "diagnosis": answer,
                        "confidence": 1 + (c + r) % 5,
                        "majority_vote": vote,
                    }
                )
    return rows


def test_each_aid_is_measured_against_its_own_vote() -> None:
    """CBIR's reliance uses CBIR's vote (wrong on 6 of 12 cases), not SE-CBIR's."""
    result = analyse(responses_from_rows(three_arms()), bootstrap=0)
    cbir = result["reliance"]["conditions"]["cbir"]["all"]
    assert (cbir["cases"], cbir["aid_wrong"]) == (48, 24)
    assert cbir["wrong_aid_adopted"] == 12 and cbir["wrong_aid_adopted_share"] == 0.5
    se = result["reliance"]["conditions"]["se_cbir"]["all"]
    assert se["aid_wrong"] == 0
    # The aid alone as a reader: CBIR's own vote was right half of the time.
    alone = result["reliance"]["conditions"]["cbir"]["aid_as_reader"]["proportion_correct"]
    assert alone["means"]["aid_alone"] == pytest.approx(0.5)


def test_a_reader_without_a_condition_is_left_out_of_everything_by_name() -> None:
    rows = three_arms()
    rows += [
        {**row, "reader": "R9"}
        for row in rows
        if row["reader"] == "R0" and row["condition"] != "se_cbir"
    ]
    responses = responses_from_rows(rows)
    kept, left_out = analysed(responses, {"se_cbir": "SE-CBIR 6"})
    assert left_out == [{"reader": "R9", "reason": "no answers in SE-CBIR 6"}]
    assert "R9" not in kept.readers and len(kept) == len(responses) - 24
    result = analyse(responses, bootstrap=0, names={"se_cbir": "SE-CBIR 6"})
    assert result["left_out"]["readers"] == left_out
    assert "R9" not in {row["reader"] for row in result["readers"]}
    assert result["statistics"]["or_hillis"]["proportion_correct"]["readers"] == 4
    script = mrmcaov_script("t", left_out=left_out)
    assert "#   R9: no answers in SE-CBIR 6" in script
    table = list(csv.DictReader(io.StringIO(mrmcaov_csv(kept))))
    assert "R9" not in {row["reader"] for row in table}
    assert "R9" not in imrmc_text("t", kept)


def test_a_reader_part_way_through_a_condition_counts_with_the_cases_read() -> None:
    rows = [
        row
        for row in three_arms()
        if not (row["reader"] == "R3" and row["condition"] == "cbir" and row["image_id"] >= "C06")
    ]
    result = analyse(responses_from_rows(rows), bootstrap=0)
    pc = result["statistics"]["or_hillis"]["proportion_correct"]
    assert pc["available"] and pc["readers"] == 4 and pc["cases"] == 12
    r3 = next(r for r in pc["per_reader"] if r["reader"] == "R3")
    assert r3["values"]["cbir"] == pytest.approx(0.5)  # 3 of its 6 CBIR cases right


def test_per_case_randomised_readings_share_no_case_within_a_reader() -> None:
    """No case of one reader is read in two conditions: Cov1 is 0 for a proportion."""
    responses = responses_from_rows(reference_rows(OURS / "per_case_randomised.csv"))
    pc = analyse(responses, bootstrap=0)["statistics"]["or_hillis"]["proportion_correct"]
    assert pc["available"] and pc["covariances"]["cov1"] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("name", ["per_case_randomised", "initial_revised", "per_case_subsets"])
def test_the_mrmcaov_export_holds_the_answers_analysed(name: str) -> None:
    """The MRMCaov CSV, read back, is the same answers: the same figures to the last digit."""
    responses = responses_from_rows(reference_rows(OURS / f"{name}.csv"))
    kept, _ = analysed(responses)
    table = list(csv.DictReader(io.StringIO(mrmcaov_csv(kept))))
    real = [row for row in table if row["case"] != PLACEHOLDER_CASE]
    assert len(real) == len(responses)
    back = responses_from_rows(
        {
            "reader": row["reader"],
            "image_id": row["case"],
            "truth": row["truth_class"],
            "condition": row["test"],
            "diagnosis": row["diagnosis"],
            "confidence": row["confidence"],
            "majority_vote": row["truth_class"],
        }
        for row in real
    )
    ours = analyse(responses, bootstrap=0)["statistics"]["or_hillis"]
    again = analyse(back, bootstrap=0)["statistics"]["or_hillis"]
    for endpoint in ("proportion_correct", "melanoma_sensitivity", "melanoma_auc"):
        assert again[endpoint]["equality"] == ours[endpoint]["equality"]
    # The ROC ratings: melanoma called with confidence c rates 5 + c, anything else 6 - c.
    for row in real[:50]:
        c = int(row["confidence"])
        assert int(row["mel_rating"]) == (5 + c if row["diagnosis"] == "mel" else 6 - c)


def test_a_bad_first_look_names_its_row_and_column() -> None:
    rows = three_arms()[:6]
    for row in rows:
        row["condition"] = "se_cbir"
        row["initial_diagnosis"] = row["truth"]
        row["initial_confidence"] = 3
    for k, row in enumerate(rows):
        row["image_id"] = f"X{k}"
    rows[4]["initial_diagnosis"] = "melanomaa"
    with pytest.raises(ResponsesError) as raised:
        responses_from_rows(rows)
    assert (raised.value.row, raised.value.column) == (5, "initial_diagnosis")
    rows[4]["initial_diagnosis"] = "mel"
    rows[2]["initial_confidence"] = 10
    text = to_csv(rows, tuple(rows[0].keys()))
    with pytest.raises(ResponsesError) as raised:
        read_responses(io.StringIO(text))
    assert (raised.value.row, raised.value.column, raised.value.line) == (
        3,
        "initial_confidence",
        4,
    )
    rows[2]["initial_confidence"] = 2
    responses = responses_from_rows(rows)
    assert responses.conditions == ("se_cbir_initial", "se_cbir") and len(responses) == 12


def test_no_answers_at_all_give_a_result_that_says_so() -> None:
    result = analyse(responses_from_rows([]), bootstrap=0)
    pc = result["statistics"]["or_hillis"]["proportion_correct"]
    assert not pc["available"] and pc["per_reader"] == [] and result["left_out"]["readers"] == []
