"""The analysis command line: faulty-aid probe rows are left out unless asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.analysis.__main__ import main
from app.analysis.responses import COLUMNS
from tests.analysis.helpers import answer, to_csv

CLASSES = ("mel", "nv", "bcc")


def study_rows() -> list[dict[str, object]]:
    """3 readers x 6 images x 2 tasks, with probe 0, then 2 probe readings per reader (wrong)."""
    rows: list[dict[str, object]] = []
    for r, reader in enumerate("ABC"):
        for i in range(6):
            truth = CLASSES[i % 3]
            for task in (1, 2):
                right = (i + r + task) % 3 != 0
                diagnosis = truth if right else CLASSES[(i + 1) % 3]
                rows.append({**answer(reader, f"img{i}", truth, task, diagnosis, 3), "probe": 0})
        for i in (6, 7):
            truth = CLASSES[i % 3]
            given = CLASSES[(i + 1) % 3]
            shown = given if i == 6 else CLASSES[(i + 2) % 3]  # the misleading class shown
            rows.append(
                {**answer(reader, f"img{i}", truth, 2, given, 5), "probe": 1, "probe_class": shown}
            )
    return rows


@pytest.fixture
def responses_csv(tmp_path: Path) -> Path:
    path = tmp_path / "responses.csv"
    path.write_text(to_csv(study_rows(), (*COLUMNS, "probe", "probe_class")), encoding="utf-8")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict, str]:
    assert main([*args, "--json", "--bootstrap", "0"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_probe_rows_are_left_out_by_default_and_counted(
    responses_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result, err = run_json(capsys, str(responses_csv))
    assert result["probes_left_out"] == 6
    assert "left out 6 faulty-aid probe rows" in err
    pooled = result["pooled"]
    assert (pooled["task1"]["answers"], pooled["task2"]["answers"]) == (18, 18)
    assert pooled["images"] == 6  # the probes' images are not in the analysis at all
    probes = result["reliance"]["probes"]  # but the probes have figures of their own
    assert (probes["readings"], probes["correct"], probes["misleading_adopted"]) == (6, 0, 3)
    assert probes["conditions"]["se_cbir"]["misleading_adopted_share"] == 0.5

    assert main([str(responses_csv), "--bootstrap", "0"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Left out 6 faulty-aid probe readings")


def test_with_probes_keeps_them(responses_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result, err = run_json(capsys, str(responses_csv), "--with-probes")
    assert result["probes_left_out"] == 0
    assert "probe" not in err
    assert result["pooled"]["task2"]["answers"] == 24
    assert result["pooled"]["images"] == 8


def test_the_exports_leave_the_probes_out_too(
    responses_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exports"
    assert main([str(responses_csv), "--bootstrap", "0", "--exports", str(out)]) == 0
    capsys.readouterr()
    mrmcaov = (out / "mrmcaov.csv").read_text(encoding="utf-8")
    assert "img6" not in mrmcaov and "img7" not in mrmcaov
    assert "img5" in mrmcaov


def test_a_file_without_probe_column_says_nothing_of_probes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.csv"
    rows = [row for row in study_rows() if row["probe"] == 0]
    path.write_text(to_csv(rows), encoding="utf-8")
    result, err = run_json(capsys, str(path))
    assert result["probes_left_out"] == 0 and "probe" not in err


def test_a_bad_probe_value_names_its_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = study_rows()
    rows[2] = {**rows[2], "probe": "maybe"}
    path = tmp_path / "bad.csv"
    path.write_text(to_csv(rows, (*COLUMNS, "probe", "probe_class")), encoding="utf-8")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "row 3 (line 4), column 'probe'" in err and "'maybe'" in err


def test_a_bad_probe_class_names_its_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = study_rows()
    rows[13] = {**rows[13], "probe_class": "zzz"}
    path = tmp_path / "bad.csv"
    path.write_text(to_csv(rows, (*COLUMNS, "probe", "probe_class")), encoding="utf-8")
    assert main([str(path)]) == 2
    assert "row 14 (line 15), column 'probe_class': unknown class 'zzz'" in capsys.readouterr().err


def test_a_problem_after_left_out_probes_names_the_row_of_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = study_rows()
    assert rows[14]["reader"] == "B" and rows[13]["probe"] == 1  # after reader A's 2 probes
    rows[14] = {**rows[14], "confidence": 10}
    path = tmp_path / "bad.csv"
    path.write_text(to_csv(rows, (*COLUMNS, "probe", "probe_class")), encoding="utf-8")
    assert main([str(path)]) == 2
    assert "row 15 (line 16), column 'confidence'" in capsys.readouterr().err


@pytest.fixture
def three_conditions_csv(tmp_path: Path) -> Path:
    """The study's non-probe answers as unaided and se_cbir, with a cbir reading of every case
    (always wrong) written between them: cbir is the file's second condition."""
    rows = [row for row in study_rows() if row["probe"] == 0]
    named = [{**row, "condition": ("unaided", "se_cbir")[row["task"] - 1]} for row in rows]
    cbir = [
        {**row, "condition": "cbir", "diagnosis": CLASSES[(CLASSES.index(row["truth"]) + 1) % 3]}
        for row in named
        if row["condition"] == "unaided"
    ]
    ordered = [*[r for r in named if r["task"] == 1], *cbir, *[r for r in named if r["task"] == 2]]
    path = tmp_path / "three.csv"
    path.write_text(to_csv(ordered, (*COLUMNS, "condition")), encoding="utf-8")
    return path


def test_pair_chooses_what_the_tables_compare(
    three_conditions_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_two, _ = run_json(capsys, str(three_conditions_csv))
    assert first_two["pair"]["names"] == ["unaided", "cbir"]
    assert first_two["pooled"]["task2"]["accuracy"] == 0.0  # cbir: always wrong
    chosen, _ = run_json(capsys, str(three_conditions_csv), "--pair", "unaided", "se_cbir")
    assert (chosen["pair"]["first"], chosen["pair"]["second"]) == ("unaided", "se_cbir")
    assert chosen["pooled"]["task2"] == chosen["pooled"]["conditions"]["se_cbir"]
    assert chosen["pooled"]["task2"]["accuracy"] > 0
    # The primary analysis does not depend on the pair.
    assert chosen["statistics"]["or_hillis"] == first_two["statistics"]["or_hillis"]

    # The text report names the pair where the thesis said Task 1 and Task 2.
    assert main([str(three_conditions_csv), "--bootstrap", "0", "--pair", "cbir", "se_cbir"]) == 0
    text = capsys.readouterr().out
    assert "Answer changes, cbir -> se_cbir" in text
    assert "Confusion matrix, Task 2 (se_cbir)" in text


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("unaided", "cbirr"), "no condition 'cbirr' in the responses (they have unaided, cbir"),
        (("cbir", "cbir"), "two different conditions, not 'cbir' twice"),
    ],
)
def test_a_pair_that_is_not_two_of_the_files_conditions_is_refused(
    three_conditions_csv: Path,
    capsys: pytest.CaptureFixture[str],
    pair: tuple[str, str],
    message: str,
) -> None:
    assert main([str(three_conditions_csv), "--pair", *pair]) == 2
    assert f"error: --pair: {message}" in capsys.readouterr().err
