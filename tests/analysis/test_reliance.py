"""Conditions, reliance on the aid, time per case and reader groups, on hand-made answers."""

from __future__ import annotations

import io

import pytest

from app.analysis import analyse, read_responses, responses_from_rows
from app.analysis.reliance import reliance
from app.analysis.timing import CEILING_SECONDS, timing
from tests.analysis.helpers import to_csv


def row(reader: str, image: str, truth: str, condition: str, diagnosis: str, vote: str, **extra):
    """One answer with a `condition` column."""
    return {
        "reader": reader,
        "image_id": image,
        "truth": truth,
        "condition": condition,
        "diagnosis": diagnosis,
        "confidence": 3,
        "majority_vote": vote,
        **extra,
    }


# Reader A, four cases. The aid (majority vote) is right on i1, i2 and wrong on i3, i4.
# Unaided: i1 right, i2 wrong, i3 right, i4 wrong (said bcc). Aided: i1 right, i2 right,
# i3 wrong (took the aid's mel), i4 wrong (took the aid's bcc).
ROWS = [
    row("A", "i1", "nv", "unaided", "nv", "nv", seconds=10, hidden_seconds=0),
    row("A", "i2", "nv", "unaided", "mel", "nv", seconds=20, hidden_seconds=5),
    row("A", "i3", "bkl", "unaided", "bkl", "mel", seconds=1000, hidden_seconds=0),
    row("A", "i4", "nv", "unaided", "bcc", "bcc", seconds=30, hidden_seconds=0),
    row("A", "i1", "nv", "se_cbir", "nv", "nv", seconds=8, hidden_seconds=0),
    row("A", "i2", "nv", "se_cbir", "nv", "nv", seconds=9, hidden_seconds=0),
    row("A", "i3", "bkl", "se_cbir", "mel", "mel", seconds=12, hidden_seconds=0),
    row("A", "i4", "nv", "se_cbir", "bcc", "bcc", seconds=7, hidden_seconds=0),
]


def test_reliance_by_hand() -> None:
    result = reliance(responses_from_rows(ROWS))
    a = result["conditions"]["se_cbir"]["all"]
    assert (a["aid_right"], a["aid_wrong"]) == (2, 2)
    assert a["aided_accuracy_aid_right"] == 1.0
    assert a["unaided_accuracy_aid_right"] == 0.5
    assert a["aided_accuracy_aid_wrong"] == 0.0
    assert a["unaided_accuracy_aid_wrong"] == 0.5
    assert (a["wrong_aid_adopted"], a["wrong_aid_adopted_share"]) == (2, 1.0)
    assert a["wrong_aid_class_unaided_share"] == 0.5  # bcc on i4 without the aid too
    assert (a["changed_to_aid"], a["changed_against_aid"]) == (2, 0)
    assert "probes" in result


def test_the_aid_alone_is_compared_as_a_reader() -> None:
    rows = [
        {**r, "reader": reader, "image_id": f"{reader}{r['image_id']}"}
        for reader in ("A", "B", "C")
        for r in ROWS
    ]
    rows[0 + 8]["diagnosis"] = "bkl"  # reader B unaided on i1 wrong: readers differ
    rows[7 + 16]["diagnosis"] = "nv"  # reader C aided right where the aid was wrong
    result = reliance(responses_from_rows(rows))
    aid = result["conditions"]["se_cbir"]["aid_as_reader"]["proportion_correct"]
    # The aid is right on 2 of 4 cases of every reader; aided readers 2, 2 and 3 of 4.
    assert aid["means"] == {"se_cbir": pytest.approx(7 / 12), "aid_alone": 0.5}
    assert aid["differences"][0]["comparison"] == "aid_alone - se_cbir"
    assert aid["differences"][0]["estimate"] == pytest.approx(0.5 - 7 / 12)


def test_time_per_case_excludes_hidden_time_and_caps() -> None:
    result = timing(responses_from_rows(ROWS))
    unaided = result["conditions"]["unaided"]["all"]
    # 10, 15 (20 - 5 hidden), 30 and 1000 capped at the ceiling.
    assert unaided["answers"] == 4 and unaided["capped"] == 1
    assert unaided["median"] == pytest.approx(22.5)
    assert unaided["q3"] == pytest.approx(30 + (CEILING_SECONDS - 30) / 4)  # numpy linear
    assert result["conditions"]["se_cbir"]["all"]["median"] == pytest.approx(8.5)


def test_groups_come_from_the_profile_columns() -> None:
    rows = [
        *ROWS,
        *({**r, "reader": "B", "reader_role": "resident", "reader_years": "1"} for r in ROWS),
    ]
    rows = [{"reader_role": "dermatologist", "reader_years": "12", **r} for r in rows]
    text = to_csv(rows, (*rows[0].keys(),))
    responses = read_responses(io.StringIO(text))
    assert responses.groups == {
        "role": {"A": "dermatologist", "B": "resident"},
        "experience": {"A": "10 years or more", "B": "under 2 years"},
    }
    result = analyse(responses, bootstrap=0)
    split = result["reliance"]["conditions"]["se_cbir"]["groups"]
    assert split["role"]["resident"]["cases"] == 4
    assert set(result["timing"]["conditions"]["unaided"]["groups"]["experience"]) == {
        "10 years or more",
        "under 2 years",
    }


def test_condition_names_any_number_unaided_first() -> None:
    rows = [
        row(reader, f"i{k}", "nv", condition, "nv" if (k + len(condition)) % 3 else "mel", "nv")
        for reader in ("A", "B", "C")
        for condition in ("cbir", "se_cbir", "unaided")
        for k in range(6)
    ]
    responses = responses_from_rows(rows)
    assert responses.conditions == ("unaided", "cbir", "se_cbir")
    result = analyse(responses, bootstrap=0)
    names = [d["comparison"] for d in result["statistics"]["reader_level"]["accuracy"]]
    assert names == ["cbir - se_cbir", "cbir - unaided", "se_cbir - unaided"]
    with pytest.raises(Exception, match="condition 'cbir'"):
        responses_from_rows([*rows, rows[0]])
