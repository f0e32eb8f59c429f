"""Reading and validating responses: every malformed input names its row and column."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.analysis import ResponsesError, read_responses, responses_from_rows
from app.analysis.__main__ import main
from app.analysis.responses import CLASSES, COLUMNS
from tests.analysis.helpers import answer, to_csv

ROWS = [
    answer("A", "img1", "mel", 1, "nv", 3),
    answer("A", "img1", "mel", 2, "mel", 4),
    answer("A", "img2", "nv", 1, "nv", 5),
    answer("B", "img2", "nv", 1, "mel", 2),
]


def test_reads_csv_into_arrays(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(to_csv(ROWS), encoding="utf-8")
    responses = read_responses(path)
    assert len(responses) == 4
    assert responses.readers == ("A", "B")
    assert responses.image_ids == ("img1", "img2")
    assert [CLASSES[i] for i in responses.diagnosis] == ["nv", "mel", "nv", "mel"]
    assert responses.condition.tolist() == [0, 1, 0, 0]
    assert responses.confidence.tolist() == [3, 4, 5, 2]
    assert list(responses.rows())[1] == {**ROWS[1], "condition": "se_cbir"}


def test_extra_columns_bom_semicolons_and_binary_files_are_accepted() -> None:
    rows = [{**row, "note": "x;y", "started_at": "2024"} for row in ROWS]
    text = to_csv(rows, (*COLUMNS, "note", "started_at")).replace(",", ";")
    text = text.replace("x;y", '"x;y"')
    responses = read_responses(io.BytesIO(("\ufeff" + text).encode("utf-8")))
    assert len(responses) == 4
    assert responses.readers == ("A", "B")


def test_rows_and_csv_give_the_same_result() -> None:
    from_rows = responses_from_rows(ROWS)
    from_csv = read_responses(io.StringIO(to_csv(ROWS)))
    for name in (
        "reader",
        "image",
        "truth",
        "condition",
        "diagnosis",
        "confidence",
        "majority_vote",
    ):
        assert getattr(from_rows, name).tolist() == getattr(from_csv, name).tolist()


def test_class_codes_ignore_case_and_spaces() -> None:
    responses = responses_from_rows([{**ROWS[0], "diagnosis": " NV ", "task": "1"}])
    assert CLASSES[responses.diagnosis[0]] == "nv"


@pytest.mark.parametrize(
    ("change", "row", "column", "words"),
    [
        ({"diagnosis": "melanoma"}, 2, "diagnosis", "unknown class"),
        ({"truth": "xyz"}, 2, "truth", "unknown class"),
        ({"majority_vote": ""}, 2, "majority_vote", "empty"),
        ({"confidence": "10"}, 2, "confidence", "from 1 to 9"),
        ({"confidence": "0"}, 2, "confidence", "from 1 to 9"),
        ({"confidence": "high"}, 2, "confidence", "whole number"),
        ({"task": "3"}, 2, "task", "one of"),
        ({"task": "0"}, 2, "task", "one of"),
        ({"reader": " "}, 2, "reader", "empty"),
        # Same reader, image and task as row 1: a duplicate answer.
        ({"task": "1"}, 2, "task", "duplicate answer"),
        # The same image cannot have two truths.
        ({"truth": "nv", "diagnosis": "nv"}, 2, "truth", "row 1"),
    ],
)
def test_malformed_rows_name_row_and_column(
    change: dict[str, str], row: int, column: str, words: str
) -> None:
    rows = [ROWS[0], {**ROWS[1], **change}, *ROWS[2:]]
    with pytest.raises(ResponsesError) as caught:
        read_responses(io.StringIO(to_csv(rows)))
    error = caught.value
    assert (error.row, error.column, error.line) == (row, column, row + 1)
    assert words in str(error)
    assert f"row {row} (line {row + 1})" in str(error)
    assert repr(column) in str(error)
    # The same validation applies to rows from memory (without a line number).
    with pytest.raises(ResponsesError) as caught:
        responses_from_rows({k: str(v) for k, v in r.items()} for r in rows)
    assert (caught.value.row, caught.value.column, caught.value.line) == (row, column, None)


def test_missing_column_is_named() -> None:
    columns = tuple(c for c in COLUMNS if c != "confidence")
    with pytest.raises(ResponsesError, match="column 'confidence': missing column") as caught:
        read_responses(io.StringIO(to_csv(ROWS, columns)))
    assert caught.value.line == 1
    with pytest.raises(ResponsesError, match="row 1, column 'confidence'"):
        responses_from_rows([{k: v for k, v in ROWS[0].items() if k != "confidence"}])


def test_short_row_and_empty_file() -> None:
    text = to_csv(ROWS) + "C,img9,nv,1\n"
    with pytest.raises(ResponsesError, match=r"row 5 \(line 6\), column 'diagnosis': empty"):
        read_responses(io.StringIO(text))
    with pytest.raises(ResponsesError, match="empty"):
        read_responses(io.StringIO(""))


def test_blank_lines_are_skipped_but_counted_as_lines() -> None:
    lines = to_csv(ROWS).splitlines()
    text = "\n".join([*lines[:2], "", *lines[2:]]) + "\n\n"
    assert len(read_responses(io.StringIO(text))) == 4
    bad = "\n".join([*lines[:2], "", lines[2].replace(",4,", ",0,")]) + "\n"
    with pytest.raises(ResponsesError) as caught:
        read_responses(io.StringIO(bad))
    assert (caught.value.row, caught.value.line) == (2, 4)


def test_cli_reports_invalid_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(to_csv([ROWS[0], {**ROWS[1], "confidence": 10}]), encoding="utf-8")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "row 2 (line 3), column 'confidence'" in err
    assert main([str(tmp_path / "absent.csv")]) == 2


def test_the_earliest_problem_is_reported() -> None:
    rows = [
        ROWS[0],
        {**ROWS[1], "confidence": 10},
        {**ROWS[2], "diagnosis": "??"},
        {**ROWS[3], "task": 1, "image_id": "img2", "reader": "A"},  # duplicate of row 3
    ]
    with pytest.raises(ResponsesError) as caught:
        responses_from_rows(rows)
    assert (caught.value.row, caught.value.column) == (2, "confidence")
    # Values come first: a bad task in row 4 is reported before the duplicate in row 3.
    rows = [ROWS[0], ROWS[2], {**ROWS[2], "confidence": 1}, {**ROWS[1], "task": 7}]
    with pytest.raises(ResponsesError) as caught:
        responses_from_rows(rows)
    assert (caught.value.row, caught.value.column) == (4, "task")
    with pytest.raises(ResponsesError) as caught:
        responses_from_rows([*rows[:3], {**ROWS[1], "truth": "bcc"}, {**ROWS[0], "task": 2}])
    assert (caught.value.row, caught.value.column) == (3, "task")
    assert "already answered image 'img2' in task 1 in row 2" in str(caught.value)


def test_reader_names_are_stripped_and_numbered_in_order_of_appearance() -> None:
    rows = [{**ROWS[3], "reader": " B"}, {**ROWS[1], "reader": "A "}, {**ROWS[0], "reader": "B"}]
    responses = responses_from_rows(rows)
    assert responses.readers == ("B", "A")
    assert responses.reader.tolist() == [0, 1, 0]


def test_one_majority_vote_per_image_and_condition() -> None:
    # Each condition shows its own aid at its own k, so its vote may differ from another's...
    rows = [ROWS[0], {**ROWS[1], "majority_vote": "bcc"}, *ROWS[2:]]
    responses = responses_from_rows(rows)
    assert [CLASSES[i] for i in responses.majority_vote[:2]] == ["mel", "bcc"]
    # ...but within one condition an image has one vote.
    rows = [*ROWS[:3], {**ROWS[3], "majority_vote": "bcc"}]
    with pytest.raises(ResponsesError) as caught:
        read_responses(io.StringIO(to_csv(rows)))
    assert (caught.value.row, caught.value.column) == (4, "majority_vote")
    assert "under 'unaided'" in str(caught.value) and "row 3" in str(caught.value)
