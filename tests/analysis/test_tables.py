"""Descriptive tables on a small example worked out by hand (reader B is still in progress)."""

from __future__ import annotations

import json

import pytest

from app.analysis import (
    ResponsesError,
    analyse,
    render_text,
    responses_from_columns,
    responses_from_rows,
    thesis_keyed,
    with_pair,
)
from app.analysis.responses import CLASSES
from app.analysis.results import TABLE_FIELDS
from app.analysis.tables import NO_CONDITION, sides
from tests.analysis.helpers import answer

ROWS = [
    # Reader A, three cases, both tasks.
    answer("A", "img1", "mel", 1, "nv", 2, "mel"),
    answer("A", "img2", "nv", 1, "nv", 5, "nv"),
    answer("A", "img3", "bcc", 1, "bcc", 3, "nv"),
    answer("A", "img1", "mel", 2, "mel", 4, "mel"),
    answer("A", "img2", "nv", 2, "nv", 5, "nv"),
    answer("A", "img3", "bcc", 2, "nv", 4, "nv"),
    # Reader B has not answered img4 in Task 2 yet.
    answer("B", "img2", "nv", 1, "mel", 2, "nv"),
    answer("B", "img4", "bkl", 1, "bkl", 4, "mel"),
    answer("B", "img5", "mel", 1, "mel", 5, "mel"),
    answer("B", "img2", "nv", 2, "nv", 3, "nv"),
    answer("B", "img5", "mel", 2, "bkl", 2, "mel"),
]


@pytest.fixture(scope="module")
def result() -> dict:
    return analyse(responses_from_rows(ROWS), bootstrap=200, seed=1)


def test_result_is_strict_json(result: dict) -> None:
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_reader_rows(result: dict) -> None:
    a, b = result["readers"]
    assert (a["reader"], a["cases"], a["paired_cases"]) == ("A", 3, 3)
    assert a["majority_vote_accuracy"] == pytest.approx(2 / 3)
    assert a["unaided"] == pytest.approx(
        {
            "answers": 3,
            "correct": 2,
            "accuracy": 2 / 3,
            "confidence": 10 / 3,
            "confidence_correct": 4.0,
            "confidence_wrong": 2.0,
        }
    )
    assert a["se_cbir"] == pytest.approx(
        {
            "answers": 3,
            "correct": 2,
            "accuracy": 2 / 3,
            "confidence": 13 / 3,
            "confidence_correct": 4.5,
            "confidence_wrong": 4.0,
        }
    )
    assert (b["reader"], b["cases"], b["paired_cases"]) == ("B", 3, 2)
    assert b["majority_vote_accuracy"] == pytest.approx(2 / 3)
    assert b["unaided"]["accuracy"] == pytest.approx(2 / 3)
    assert b["unaided"]["confidence"] == pytest.approx(11 / 3)
    assert b["se_cbir"] == pytest.approx(
        {
            "answers": 2,
            "correct": 1,
            "accuracy": 0.5,
            "confidence": 2.5,
            "confidence_correct": 3.0,
            "confidence_wrong": 2.0,
        }
    )


def test_pooled_row(result: dict) -> None:
    pooled = result["pooled"]
    assert (pooled["readers"], pooled["images"], pooled["cases"], pooled["paired_cases"]) == (
        2,
        5,
        6,
        5,
    )
    assert pooled["majority_vote_accuracy"] == pytest.approx(4 / 6)
    assert pooled["unaided"] == pytest.approx(
        {
            "answers": 6,
            "correct": 4,
            "accuracy": 4 / 6,
            "confidence": 3.5,
            "confidence_correct": 4.25,
            "confidence_wrong": 2.0,
        }
    )
    assert pooled["se_cbir"] == pytest.approx(
        {
            "answers": 5,
            "correct": 3,
            "accuracy": 0.6,
            "confidence": 3.6,
            "confidence_correct": 4.0,
            "confidence_wrong": 3.0,
        }
    )
    assert pooled["mean"]["se_cbir"] == pytest.approx(7 / 12)
    assert pooled["sd"]["se_cbir"] == pytest.approx((2 / 3 - 1 / 2) / 2**0.5)
    assert pooled["sd"]["unaided"] == pytest.approx(0.0)


def test_confusion_and_classes(result: dict) -> None:
    confusion = result["confusion"]
    assert confusion["labels"] == list(CLASSES)
    k = {c: i for i, c in enumerate(CLASSES)}
    t1 = confusion["unaided"]
    assert sum(map(sum, t1)) == 6
    assert t1[k["mel"]][k["nv"]] == 1 and t1[k["mel"]][k["mel"]] == 1
    assert t1[k["nv"]][k["mel"]] == 1 and t1[k["nv"]][k["nv"]] == 1
    assert t1[k["bcc"]][k["bcc"]] == 1 and t1[k["bkl"]][k["bkl"]] == 1
    assert confusion["row_share"]["unaided"][k["mel"]][k["nv"]] == pytest.approx(0.5)
    assert confusion["row_share"]["unaided"][k["akiec"]] == [0.0] * 7
    mel = confusion["classes"]["unaided"][k["mel"]]
    assert mel == pytest.approx(
        {
            "label": "mel",
            "lesions": 2,
            "diagnosed": 2,
            "true_positives": 1,
            "false_positives": 1,
            "false_negatives": 1,
            "sensitivity": 0.5,
            "ppv": 0.5,
        }
    )
    akiec = confusion["classes"]["unaided"][k["akiec"]]
    assert akiec["sensitivity"] is None and akiec["ppv"] is None
    t2 = confusion["se_cbir"]
    assert sum(map(sum, t2)) == 5
    assert t2[k["bcc"]][k["nv"]] == 1 and t2[k["mel"]][k["bkl"]] == 1
    a, b = confusion["readers"]
    assert sum(map(sum, a["unaided"])) == 3 and sum(map(sum, b["se_cbir"])) == 2
    assert b["unaided"][k["nv"]][k["mel"]] == 1


def test_changes(result: dict) -> None:
    ch = result["changes"]
    assert ch["paired_cases"] == 5
    assert ch["wrong_to_correct"] == 2
    assert ch["wrong_to_correct_majority_agrees"] == 2
    assert ch["correct_to_wrong"] == 2
    assert ch["correct_to_wrong_majority_agreed_with_first"] == 1  # B img5
    assert ch["correct_to_wrong_majority_agrees"] == 1  # A img3
    assert (ch["unchanged_correct"], ch["unchanged_wrong"], ch["wrong_to_other_wrong"]) == (1, 0, 0)
    a, b = ch["readers"]
    assert (a["wrong_to_correct"], a["correct_to_wrong"]) == (1, 1)
    assert b["correct_to_wrong_majority_agreed_with_first"] == 1


def test_accuracy_by_confidence(result: dict) -> None:
    unaided = result["statistics"]["accuracy_by_confidence"]["levels"]["unaided"]
    assert [row["answers"] for row in unaided] == [0, 2, 1, 1, 2]
    assert [row["accuracy"] for row in unaided] == [None, 0.0, 1.0, 1.0, 1.0]


def test_every_section_is_described(result: dict) -> None:
    for section in ("pooled", "confusion", "changes"):
        assert result[section]["description"]
    for name, stat in result["statistics"].items():
        if name == "or_hillis":
            for endpoint in stat.values():
                assert len(endpoint["description"]) > 20, endpoint["endpoint"]
            continue
        assert isinstance(stat["description"], str) and len(stat["description"]) > 40, name


def test_empty_study_does_not_crash() -> None:
    result = analyse(responses_from_rows([]), bootstrap=50)
    assert result["readers"] == []
    assert result["pooled"]["unaided"]["accuracy"] is None
    assert result["statistics"]["or_hillis"]["proportion_correct"]["available"] is False
    assert result["headline"][0]["estimate"] is None
    assert result["statistics"]["bootstrap"]["difference"] is None
    json.dumps(result, allow_nan=False)


def test_only_task1_answers() -> None:
    rows = [r for r in ROWS if r["task"] == 1]
    result = analyse(responses_from_rows(rows), bootstrap=50)
    assert result["pooled"]["se_cbir"]["accuracy"] is None
    assert result["changes"]["paired_cases"] == 0
    assert result["statistics"]["mcnemar"]["pooled"]["p_value"] == 1.0
    json.dumps(result, allow_nan=False)


# ---------------------------------------------------------------- the pair the tables compare


def as_condition(row: dict, condition: str) -> dict:
    """A responses row under a named condition instead of a task."""
    out = {k: v for k, v in row.items() if k != "task"}
    return {**out, "condition": condition}


def three_conditions() -> list[dict]:
    """ROWS as unaided and se_cbir, with a cbir reading of every case between them (other
    answers, and a majority vote that is always wrong), so that cbir is the file's second."""
    keys = {1: "unaided", 2: "se_cbir"}
    unaided = [as_condition(r, keys[r["task"]]) for r in ROWS if r["task"] == 1]
    aided = [as_condition(r, keys[r["task"]]) for r in ROWS if r["task"] == 2]
    cbir = [
        {**as_condition(r, "cbir"), "diagnosis": "nv", "confidence": 1, "majority_vote": "df"}
        for r in ROWS
        if r["task"] == 1
    ]
    return [*unaided, *cbir, *aided]


def pair_tables(result: dict) -> dict:
    """What the pair decides: the thesis-layout tables and the secondary statistics."""
    statistics = result["statistics"]
    readers = [{k: v for k, v in r.items() if k != "conditions"} for r in result["readers"]]
    pooled = {k: v for k, v in result["pooled"].items() if k != "conditions"}
    secondary = ("mcnemar", "wilcoxon_confidence", "bootstrap", "accuracy_by_confidence")
    return {
        "readers": readers,
        "pooled": pooled,
        "confusion": result["confusion"],
        "changes": result["changes"],
        **{name: statistics[name] for name in secondary},
    }


def test_a_pair_of_three_conditions_is_compared_as_if_it_were_the_only_two(result: dict) -> None:
    three = with_pair(
        analyse(
            responses_from_rows(three_conditions()),
            bootstrap=200,
            seed=1,
            pairs=[("unaided", "se_cbir")],
        ),
        "unaided~se_cbir",
    )
    assert three["conditions"] == ["unaided", "cbir", "se_cbir"]
    assert three["pair"] == {
        "first": "unaided",
        "second": "se_cbir",
        "names": ["unaided", "se_cbir"],
    }
    assert pair_tables(three) == pair_tables(result)
    # The primary analysis is every condition's, whatever the pair.
    assert set(three["statistics"]["or_hillis"]["proportion_correct"]["means"]) == {
        "unaided",
        "cbir",
        "se_cbir",
    }


def test_the_default_pair_is_the_first_two_and_every_condition_has_its_figures() -> None:
    responses = responses_from_rows(three_conditions())
    default = analyse(responses, bootstrap=0, names={"cbir": "CBIR 6"})
    assert default["pair"] == {"first": "unaided", "second": "cbir", "names": ["unaided", "CBIR 6"]}
    a = default["readers"][0]
    assert (a["unaided"]["accuracy"], a["cbir"]["accuracy"]) == (pytest.approx(2 / 3), 1 / 3)
    assert "CBIR 6 minus unaided" in default["statistics"]["wilcoxon_confidence"]["description"]
    chosen = with_pair(analyse(responses, bootstrap=0, pairs=[("cbir", "se_cbir")]), "cbir~se_cbir")
    b = chosen["readers"][0]
    assert (b["cbir"]["accuracy"], b["se_cbir"]["accuracy"]) == (1 / 3, pytest.approx(2 / 3))
    # Every condition's figures in every result, the same whatever the pair.
    for one in (default, chosen):
        assert one["readers"][0]["conditions"]["cbir"]["accuracy"] == 1 / 3
        assert one["pooled"]["conditions"]["se_cbir"]["answers"] == 5
    assert [r["conditions"] for r in default["readers"]] == [
        r["conditions"] for r in chosen["readers"]
    ]


def test_one_run_holds_the_tables_of_every_pair_asked_for() -> None:
    """The dashboard's pairs come from one analysis: each pair's tables as if it were asked
    for alone, the first two at the top level and under `pairs` too."""
    responses = responses_from_rows(three_conditions())
    both = analyse(responses, bootstrap=100, pairs=[("cbir", "se_cbir"), ("unaided", "se_cbir")])
    assert list(both["pairs"]) == ["unaided~cbir", "cbir~se_cbir", "unaided~se_cbir"]
    alone = analyse(responses, bootstrap=100)
    assert with_pair(both) == with_pair(alone)
    assert {k: v for k, v in both.items() if k != "pairs"} == with_pair(both)
    chosen = with_pair(both, "cbir~se_cbir")
    assert chosen["pair"]["first"] == "cbir"
    assert chosen["statistics"]["or_hillis"] == alone["statistics"]["or_hillis"]


def test_a_pair_with_a_condition_nobody_read_under_has_empty_tables() -> None:
    result = with_pair(
        analyse(responses_from_rows(ROWS), bootstrap=50, pairs=[("unaided", "cbir")]),
        "unaided~cbir",
    )
    assert result["pair"]["second"] == "cbir"
    assert result["pooled"]["cbir"]["answers"] == 0
    assert result["changes"]["paired_cases"] == 0
    with pytest.raises(ValueError, match="twice"):
        analyse(responses_from_rows(ROWS), bootstrap=0, pairs=[("unaided", "unaided")])


def test_the_majority_vote_is_the_one_shown_with_the_task_2_answer() -> None:
    """Each condition shows its own aid's vote: Task 1's row may carry another aid's."""
    rows = [
        {**as_condition(answer("X", "img1", "mel", 1, "nv", 2, "nv"), "cbir")},
        {**as_condition(answer("X", "img1", "mel", 1, "mel", 4, "mel"), "se_cbir")},
    ]
    result = with_pair(
        analyse(responses_from_rows(rows), bootstrap=0, pairs=[("cbir", "se_cbir")]), "cbir~se_cbir"
    )
    assert result["readers"][0]["majority_vote_accuracy"] == 1.0
    assert result["changes"]["wrong_to_correct_majority_agrees"] == 1


# ---------------------------------------------------------------- keyed by condition (issue 27)


def test_every_table_of_a_pair_is_keyed_by_its_conditions() -> None:
    """A pair's tables hold each side under its condition's key, whatever the pair, and no
    `task1`/`task2` is left in the result."""
    full = analyse(
        responses_from_rows(three_conditions()), bootstrap=50, pairs=[("cbir", "se_cbir")]
    )
    result = with_pair(full, "cbir~se_cbir")
    keys = ("cbir", "se_cbir")
    assert sides(result["pair"]) == keys
    for row in [*result["readers"], result["pooled"]]:
        assert all(row[key] == row["conditions"][key] for key in keys)
    assert result["readers"][0]["cbir"]["accuracy"] == 1 / 3
    assert (
        set(result["pooled"]["mean"])
        == set(result["pooled"]["sd"])
        == {
            "majority_vote_accuracy",
            *keys,
        }
    )
    confusion = result["confusion"]
    assert set(confusion["row_share"]) == set(confusion["classes"]) == set(keys)
    assert sum(map(sum, confusion["cbir"])) == result["pooled"]["cbir"]["answers"]
    assert all(set(row) == {"reader", *keys} for row in confusion["readers"])
    statistics = result["statistics"]
    assert set(statistics["accuracy_by_confidence"]["levels"]) == set(keys)
    bootstrap = statistics["bootstrap"]
    assert bootstrap["se_cbir"]["estimate"] - bootstrap["cbir"]["estimate"] == pytest.approx(
        bootstrap["difference"]["estimate"]
    )
    changes = result["changes"]
    assert changes["second_follows_majority"] == sum(
        row["second_follows_majority"] for row in changes["readers"]
    )
    assert changes["correct_to_wrong_majority_agreed_with_first"] == 0  # cbir never right
    text = json.dumps(full)
    assert "task1" not in text and "task2" not in text


def test_thesis_keyed_writes_the_pairs_tables_as_task1_and_task2() -> None:
    """The summary JSON and --json keep the thesis's keys: the pair's first condition as
    `task1`, its second as `task2`, in the places and order they always had."""
    full = analyse(
        responses_from_rows(three_conditions()), bootstrap=50, pairs=[("cbir", "se_cbir")]
    )
    chosen = with_pair(full, "cbir~se_cbir")
    old = thesis_keyed(chosen)
    pooled = old["pooled"]
    assert list(pooled) == [
        "description",
        "readers",
        "images",
        "cases",
        "paired_cases",
        "majority_vote_accuracy",
        "task1",
        "task2",
        "mean",
        "sd",
        "conditions",
    ]
    assert (pooled["task1"], pooled["task2"]) == (
        chosen["pooled"]["cbir"],
        chosen["pooled"]["se_cbir"],
    )
    assert pooled["mean"] == {
        "majority_vote_accuracy": chosen["pooled"]["mean"]["majority_vote_accuracy"],
        "task1": chosen["pooled"]["mean"]["cbir"],
        "task2": chosen["pooled"]["mean"]["se_cbir"],
    }
    assert list(old["readers"][0]) == [
        "reader",
        "cases",
        "paired_cases",
        "majority_vote_accuracy",
        "task1",
        "task2",
        "conditions",
    ]
    assert old["readers"][1]["task2"] == chosen["readers"][1]["se_cbir"]
    confusion = old["confusion"]
    assert confusion["task1"] == chosen["confusion"]["cbir"]
    assert confusion["row_share"]["task2"] == chosen["confusion"]["row_share"]["se_cbir"]
    assert confusion["classes"]["task1"] == chosen["confusion"]["classes"]["cbir"]
    assert confusion["readers"][0]["task2"] == chosen["confusion"]["readers"][0]["se_cbir"]
    changes = old["changes"]
    assert changes["task2_follows_majority"] == chosen["changes"]["second_follows_majority"]
    assert (
        changes["readers"][1]["correct_to_wrong_majority_agreed_with_task1"]
        == chosen["changes"]["readers"][1]["correct_to_wrong_majority_agreed_with_first"]
    )
    statistics = old["statistics"]
    assert statistics["bootstrap"]["task2"] == chosen["statistics"]["bootstrap"]["se_cbir"]
    by_confidence = statistics["accuracy_by_confidence"]
    assert list(by_confidence) == ["description", "task1", "task2"]
    assert (
        by_confidence["task1"] == chosen["statistics"]["accuracy_by_confidence"]["levels"]["cbir"]
    )
    # Every other figure as it is, and a whole result's pairs written the same way.
    assert statistics["or_hillis"] == chosen["statistics"]["or_hillis"]
    assert (old["pair"], old["reliance"]) == (chosen["pair"], chosen["reliance"])
    assert thesis_keyed(full)["pairs"]["cbir~se_cbir"]["pooled"] == pooled
    assert "se_cbir" not in pooled and "cbir" not in old["readers"][0]


def test_a_side_without_a_condition_has_empty_tables_under_no_condition() -> None:
    rows = [as_condition(r, "unaided") for r in ROWS if r["task"] == 1]
    result = analyse(responses_from_rows(rows), bootstrap=50)
    assert result["pair"]["second"] is None
    assert sides(result["pair"]) == ("unaided", NO_CONDITION)
    assert result["pooled"][NO_CONDITION]["answers"] == 0
    assert result["statistics"]["bootstrap"][NO_CONDITION] is None
    old = thesis_keyed(result)
    assert old["pooled"]["task1"] == result["pooled"]["unaided"]
    assert old["pooled"]["task2"]["answers"] == 0
    assert "Task 2 (Task 2)" in render_text(result)
    # Without any condition, both sides' empty tables share the key.
    columns = {c: [] for c in ("reader", "image_id", "truth", "condition", "diagnosis")}
    empty = analyse(
        responses_from_columns({**columns, "confidence": [], "majority_vote": []}), bootstrap=0
    )
    assert sides(empty["pair"]) == (NO_CONDITION, NO_CONDITION)
    assert thesis_keyed(empty)["pooled"]["task1"] == thesis_keyed(empty)["pooled"]["task2"]


@pytest.mark.parametrize("name", ["readers", "mean", "description", "levels"])
def test_a_condition_named_like_a_figure_of_the_tables_is_refused(name: str) -> None:
    """The tables key figures by condition beside figures of their own: a condition of one of
    their names would overwrite one (`results.TABLE_FIELDS`)."""
    rows = [as_condition(r, "unaided" if r["task"] == 1 else name) for r in ROWS]
    with pytest.raises(ResponsesError) as refused:
        responses_from_rows(rows)
    assert refused.value.column == "condition"
    assert refused.value.row == 4  # the first answer under that name
    assert repr(name) in refused.value.message
    assert name in TABLE_FIELDS
