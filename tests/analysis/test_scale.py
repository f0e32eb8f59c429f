"""Confidence scales of any length a study bundle allows (2 to 9 levels), read and analysed."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from app.analysis import (
    ResponsesError,
    Scale,
    analyse,
    read_responses,
    render_text,
    responses_from_columns,
    responses_from_rows,
)
from app.analysis.__main__ import main
from app.analysis.responses import COLUMNS, TASK_CONDITIONS
from studybundle.limits import MAX_LIKERT, MIN_LIKERT
from tests.analysis.helpers import answer, to_csv

CLASSES = ("mel", "nv", "bcc")
THREE = ("unsure", "fairly sure", "certain")
SEVEN = ("a guess", "very unsure", "unsure", "undecided", "sure", "very sure", "certain")


def scale_rows(levels: int) -> list[dict[str, Any]]:
    """3 readers x 9 images x 2 tasks; every level of a `levels` scale is used in each task,
    and a reader is right exactly when the level is odd (so accuracy by level is 1, 0, 1...)."""
    rows = []
    for r, reader in enumerate("ABC"):
        for i in range(9):
            truth = CLASSES[i % 3]
            for task in (1, 2):
                level = 1 + (i + r + task) % levels
                diagnosis = truth if level % 2 else CLASSES[(i + 1) % 3]
                rows.append(answer(reader, f"img{i}", truth, task, diagnosis, level))
    return rows


def by_level(rows: list[dict[str, Any]], levels: int, task: int) -> list[tuple[int, int]]:
    """(answers, right answers) at each level 1..levels in `task`, counted from the rows."""
    counts = []
    for level in range(1, levels + 1):
        given = [r for r in rows if r["task"] == task and r["confidence"] == level]
        counts.append((len(given), sum(r["diagnosis"] == r["truth"] for r in given)))
    return counts


@pytest.mark.parametrize("labels", [THREE, SEVEN], ids=["3 levels", "7 levels"])
def test_a_study_scale_is_analysed_level_by_level(labels: tuple[str, ...]) -> None:
    levels = len(labels)
    rows = scale_rows(levels)
    responses = responses_from_rows(rows, levels=levels)
    assert responses.levels == levels
    result = analyse(responses, bootstrap=0, scale=Scale.of_labels(labels))
    assert result["scale"] == {"levels": levels, "labels": list(labels)}
    table = result["statistics"]["accuracy_by_confidence"]
    for task in (1, 2):
        found = [(row["answers"], row["correct"]) for row in table["levels"][TASK_CONDITIONS[task]]]
        assert found == by_level(rows, levels, task)
        assert [row["confidence"] for row in table["levels"][TASK_CONDITIONS[task]]] == list(
            range(1, levels + 1)
        )
        assert [row["accuracy"] for row in table["levels"][TASK_CONDITIONS[task]]] == [
            float(level % 2) for level in range(1, levels + 1)
        ]
    mean = sum(r["confidence"] for r in rows if r["task"] == 1) / 27
    assert result["pooled"]["unaided"]["confidence"] == pytest.approx(mean)
    text = render_text(result)
    assert f"confidence 1-{levels};" in text
    assert f"Accuracy by confidence (a scale of {levels} levels;" in text
    for level, label in enumerate(labels, start=1):
        assert any(line.split()[:1] == [str(level)] and label in line for line in text.splitlines())


def test_without_a_scale_the_levels_present_are_the_scale() -> None:
    rows = scale_rows(7)
    result = analyse(responses_from_rows(rows), bootstrap=0)
    assert result["scale"] == {"levels": 7, "labels": []}
    assert len(result["statistics"]["accuracy_by_confidence"]["levels"]["se_cbir"]) == 7
    # No label column when the labels are not known.
    assert "  label  " not in render_text(result)
    # Nine is the longest scale a bundle allows: every level up to it is read.
    nine = [{**row, "confidence": 9} if k == 0 else row for k, row in enumerate(rows)]
    assert analyse(responses_from_rows(nine), bootstrap=0)["scale"]["levels"] == 9


@pytest.mark.parametrize("levels", [3, 7])
@pytest.mark.parametrize("outside", ["0", "above"])
def test_a_confidence_outside_the_scale_names_row_column_and_range(
    levels: int, outside: str
) -> None:
    value = 0 if outside == "0" else levels + 1
    rows = scale_rows(levels)
    rows[4] = {**rows[4], "confidence": value}
    words = (
        f"confidence must be a whole number from 1 to {levels} (the study's scale), got '{value}'"
    )
    with pytest.raises(ResponsesError) as caught:
        read_responses(io.StringIO(to_csv(rows)), levels=levels)
    assert (caught.value.row, caught.value.column, caught.value.line) == (5, "confidence", 6)
    assert str(caught.value) == f"row 5 (line 6), column 'confidence': {words}"
    with pytest.raises(ResponsesError) as caught:
        responses_from_rows(rows, levels=levels)
    assert str(caught.value) == f"row 5, column 'confidence': {words}"
    columns = {name: [row[name] for row in rows] for name in COLUMNS}
    with pytest.raises(ResponsesError) as caught:
        responses_from_columns(columns, levels=levels)
    assert str(caught.value) == f"row 5, column 'confidence': {words}"


def test_without_a_scale_the_bundle_bound_applies() -> None:
    rows = scale_rows(3)
    for value in (0, MAX_LIKERT + 1):
        bad = [{**row, "confidence": value} if k == 2 else row for k, row in enumerate(rows)]
        with pytest.raises(ResponsesError) as caught:
            responses_from_rows(bad)
        assert (caught.value.row, caught.value.column) == (3, "confidence")
        assert f"from 1 to {MAX_LIKERT} (the longest scale a study bundle allows)" in str(
            caught.value
        )


def test_scales_outside_the_bundle_bounds_are_refused() -> None:
    for levels in (MIN_LIKERT - 1, MAX_LIKERT + 1):
        with pytest.raises(ValueError, match=f"{MIN_LIKERT} to {MAX_LIKERT} levels"):
            Scale(levels)
        with pytest.raises(ValueError, match=f"{MIN_LIKERT} to {MAX_LIKERT} levels"):
            responses_from_rows(scale_rows(3), levels=levels)
    with pytest.raises(ValueError, match="2 labels for a scale of 3 levels"):
        Scale(3, ("low", "high"))


def test_a_scale_that_does_not_fit_the_responses_is_refused() -> None:
    seven = responses_from_rows(scale_rows(7))
    with pytest.raises(ValueError, match="a confidence of 7 is beyond the scale of 3 levels"):
        analyse(seven, bootstrap=0, scale=Scale.of_labels(THREE))
    checked = responses_from_rows(scale_rows(3), levels=3)
    with pytest.raises(ValueError, match="checked against a scale of 3 levels, not the 7"):
        analyse(checked, bootstrap=0, scale=Scale.of_labels(SEVEN))


# ---------------------------------------------------------------- the command line


def write_csv(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "responses.csv"
    path.write_text(to_csv(rows), encoding="utf-8")
    return path


def write_manifest(tmp_path: Path, labels: tuple[str, ...]) -> Path:
    """A bundle folder whose manifest holds the classes and the confidence scale."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    manifest = {"classes": [{"code": c} for c in CLASSES], "likert": list(labels)}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--bootstrap", "0"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_takes_the_levels_present_or_levels_n(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Levels 1 to 5 used; the study's scale had seven.
    path = write_csv(tmp_path, scale_rows(5))
    code, out, _ = run(capsys, str(path), "--json")
    assert code == 0 and json.loads(out)["scale"] == {"levels": 5, "labels": []}
    code, out, _ = run(capsys, str(path), "--json", "--levels", "7")
    assert code == 0
    result = json.loads(out)
    assert result["scale"] == {"levels": 7, "labels": []}
    table = result["statistics"]["accuracy_by_confidence"]["task1"]
    assert [row["answers"] for row in table][5:] == [0, 0]
    # A confidence above --levels is an error naming the row and the column (exit 2).
    code, _, err = run(capsys, str(path), "--levels", "3")
    assert code == 2
    assert (
        "row 4 (line 5), column 'confidence': confidence must be a whole number from 1 to 3" in err
    )
    assert "got '4'" in err
    code, _, err = run(capsys, str(path), "--levels", "12")
    assert code == 2 and "--levels: a confidence scale has 2 to 9 levels, not 12" in err


def test_the_command_takes_the_scale_from_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path, scale_rows(3))
    bundle = write_manifest(tmp_path, THREE)
    code, out, _ = run(capsys, str(path), "--json", "--taxonomy", str(bundle))
    assert code == 0 and json.loads(out)["scale"] == {"levels": 3, "labels": list(THREE)}
    code, out, _ = run(capsys, str(path), "--taxonomy", str(bundle))
    assert code == 0 and "confidence 1-3;" in out
    assert "fairly sure" in out.split("Accuracy by confidence")[1]
    code, _, err = run(capsys, str(path), "--taxonomy", str(bundle), "--levels", "7")
    assert code == 2 and "--levels 7, but the manifest's scale has 3 levels" in err
