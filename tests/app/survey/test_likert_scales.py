"""Studies with a 3-level and a 7-level confidence scale: answered, analysed, exported.

Two readers answer every case of a format-2 study in both tasks through the survey's pages,
using every level of the bundle's scale; the dashboard must show every level with the
study's labels, the exports must carry the scale, and the analysis command on the responses
export must give the dashboard's figures. Runs on SQLite and PostgreSQL.
"""

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.analysis.__main__ import main
from app.models import Role, StudyStatus
from tests.app.bundle_factory import make_bundle_v2
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_study, add_user, join_study
from tests.app.reading import answer, consent
from tests.app.results import case_at, page

CASES = 14  # each level of the seven-level scale twice per reader and task
THREE = ("unsure", "fairly sure", "certain")
SEVEN = ("a guess", "very unsure", "unsure", "undecided", "sure", "very sure", "certain")

# (reader, task, truth, diagnosis, confidence) of every answer given
Given = list[tuple[str, int, str, str, int]]


@pytest.fixture(params=[THREE, SEVEN], ids=["3 levels", "7 levels"])
def labels(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The study's confidence labels, level 1 first."""
    return request.param


@pytest.fixture
def bundle(tmp_path: Path, labels: tuple[str, ...]) -> Path:
    """A format-2 bundle (HAM10000's classes, every aid) with the scale of `labels`."""
    return make_bundle_v2(tmp_path / "bundle", cases=CASES, seed=4, likert=labels)


@pytest.fixture
def scaled_study(app: Flask, bundle: Path, organiser: UserRef) -> StudyRef:
    """The bundle's study, open, every case in both tasks, no wash-out."""
    return add_study(
        app, bundle, "Scale", status=StudyStatus.OPEN, cases_per_reader=CASES, washout_hours=0
    )


def read_everything(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, shift: int, levels: int
) -> Given:
    """`reader` answers both tasks: case n at level 1 + (n + shift + task) mod `levels`, right
    when that level is odd or the case's number is a multiple of three."""
    client.post("/logout")
    assert client.post("/login", data={"email": reader.email, "password": reader.password})
    consent(client, study.id)
    given = []
    for task in (1, 2):
        for number in range(1, CASES + 1):
            truth = case_at(app, reader, study, task, number).truth
            level = 1 + (number + shift + task) % levels
            wrong = "nv" if truth != "nv" else "mel"
            diagnosis = truth if level % 2 or number % 3 == 0 else wrong
            assert answer(client, study.id, task, number, diagnosis, level).status_code == 303
            given.append((reader.pseudonym, task, truth, diagnosis, level))
    client.post("/logout")
    return given


def answered_by_two(app: Flask, client: FlaskClient, study: StudyRef, levels: int) -> Given:
    """Two readers complete both tasks, each using every level of the scale."""
    given: Given = []
    for index in range(2):
        reader = add_user(app, f"scale{index}@example.org", Role.READER)
        join_study(app, reader, study)
        given += read_everything(app, client, study, reader, index, levels)
    return given


def by_confidence_rows(html: str) -> list[tuple[int, str, int, int]]:
    """(level, label, Task 1 answers, Task 2 answers) of the page's accuracy-by-confidence table."""
    table = re.search(r'id="by-confidence">(.*?)</table>', html, re.S)
    assert table, "no accuracy-by-confidence table"
    row = (
        r'<tr><th scope="row">(\d+)</th><td class="text">([^<]*)</td>'
        r"<td>(\d+)</td><td>[^<]*</td><td>(\d+)</td>"
    )
    return [(int(a), label, int(b), int(c)) for a, label, b, c in re.findall(row, table.group(1))]


def test_a_study_scale_goes_through_survey_dashboard_and_exports(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    scaled_study: StudyRef,
    labels: tuple[str, ...],
    clock: FakeClock,
    login: Callable,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    levels = len(labels)
    given = answered_by_two(app, client, scaled_study, levels)
    assert {level for *_, level in given} == set(range(1, levels + 1))

    # The reader's form refuses a level beyond the scale (and the dashboard never sees one).
    late = add_user(app, "late@example.org", Role.READER)
    join_study(app, late, scaled_study)
    login(client, late)
    consent(client, scaled_study.id)
    assert answer(client, scaled_study.id, 1, 1, "nv", levels + 1).status_code == 400
    assert answer(client, scaled_study.id, 1, 1, "nv", 0).status_code == 400
    client.post("/logout")

    # The dashboard: every level of the study's scale, with its label, counted right.
    login(client, organiser)
    html = page(client, scaled_study)
    counted = Counter((task, level) for _, task, _, _, level in given)
    assert by_confidence_rows(html) == [
        (level, labels[level - 1], counted[1, level], counted[2, level])
        for level in range(1, levels + 1)
    ]
    level_tests = re.search(r'id="reader-level"(.*?)</ul>', html, re.S)
    assert level_tests and f"Confidence (1–{levels}), SE-CBIR 6 − Unaided:" in level_tests.group(1)
    assert f"the study's 1–{levels} scale (1 “{labels[0]}” to {levels} “{labels[-1]}”)" in html

    # The responses export: each answer's level with its label.
    text = client.get(f"/dashboard/{scaled_study.id}/export/responses").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(given)
    assert all(row["confidence_label"] == labels[int(row["confidence"]) - 1] for row in rows)
    assert Counter(int(row["confidence"]) for row in rows) == Counter(c for *_, c in given)

    # The full analysis download carries the scale; the command on the responses export gives
    # the same figures: with the bundle's manifest (labels too), with --levels N, and with
    # the levels present (every level was used). Only the conditions' names differ.
    summary = client.get(f"/dashboard/{scaled_study.id}/export/summary-json")
    downloaded = json.loads(summary.get_data(as_text=True))
    assert downloaded["scale"] == {"levels": levels, "labels": list(labels)}
    table = downloaded["statistics"]["accuracy_by_confidence"]
    assert [row["confidence"] for row in table["task2"]] == list(range(1, levels + 1))
    path = tmp_path / "responses.csv"
    path.write_text(text, encoding="utf-8")
    bundle = tmp_path / "bundle"
    for options, scale in (
        (["--taxonomy", str(bundle)], list(labels)),
        (["--levels", str(levels)], []),
        ([], []),
    ):
        assert main([str(path), "--json", *options]) == 0
        from_command = json.loads(capsys.readouterr().out)
        assert from_command["scale"] == {"levels": levels, "labels": scale}
        assert figures(from_command) == figures(downloaded)


def figures(result: dict) -> dict:
    """The result without the conditions' names (and the sentences using them) and without
    the scale's labels: what a responses file alone can reproduce."""
    result = json.loads(json.dumps(result))
    result.pop("names")
    result["pair"].pop("names")
    for line in result["headline"]:
        line.pop("sentence")
    for section in (
        result["changes"],
        result["statistics"]["wilcoxon_confidence"],
        result["statistics"]["bootstrap"],
    ):
        section.pop("description")
    result["scale"].pop("labels")
    return result
