"""Study designs through the Flask client (SQLite and PostgreSQL): the organiser's design page
and presets, a reader's way through each design, probes, and what each answer records."""

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
from sqlalchemy import select

from app.analysis.__main__ import main as analysis_main
from app.extensions import db
from app.models import Answer, Assignment, Case, Enrolment, Neighbour, Role, Study
from app.survey.conditions import Condition
from app.survey.designs import williams_sequences
from app.survey.enrolment import conditions_of
from studybundle.vote import majority_vote
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_user, join_study
from tests.app.reading import (
    answer_case,
    assignments_of,
    case_url,
    consent,
    set_design,
    tiles,
    token_of,
)

SE6 = Condition("se_cbir", 6).to_json()
SE3_UNLABELLED = Condition("se_cbir", 3, labelled=False).to_json()
UNAIDED = Condition().to_json()


def readers(app: Flask, study: StudyRef, count: int) -> list[UserRef]:
    """`count` readers of the study, not yet enrolled."""
    out = []
    for index in range(count):
        user = add_user(app, f"reader{index}@example.org", Role.READER)
        join_study(app, user, study)
        out.append(user)
    return out


# ---------------------------------------------------------------- the organiser's page


def test_the_design_page_sets_a_custom_design_and_the_presets(
    app: Flask, client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    page = client.get(f"/admin/studies/{study.id}/design")
    assert page.status_code == 200
    assert "Sequential replay" in page.get_data(as_text=True)
    form = {
        "design": "per_case",
        "conditions-0-aid": "unaided",
        "conditions-1-aid": "se_cbir",
        "conditions-1-k": "3",
        "conditions-2-aid": "se_cbir",
        "conditions-2-k": "6",
        "conditions-2-labelled": "y",
        "rotate_later_sessions": "",
        "probe_share": "0.1",
    }
    assert client.post(f"/admin/studies/{study.id}/design", data=form).status_code == 303
    with app.app_context():
        record = db.session.get(Study, study.id)
        assert record.design == "per_case" and record.probe_share == pytest.approx(0.1)
        assert [c["aid"] for c in record.conditions] == ["unaided", "se_cbir", "se_cbir"]
        assert record.conditions[1] == SE3_UNLABELLED
        assert record.rotate_later_sessions is False
    assert client.post(f"/admin/studies/{study.id}/design/thesis").status_code == 303
    with app.app_context():
        record = db.session.get(Study, study.id)
        assert (record.design, record.conditions) == ("sequential", [UNAIDED, SE6])
        assert record.probe_share == 0


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"design": "crossover", "conditions-0-aid": "unaided"}, "needs at least two conditions"),
        (
            {"design": "sequential", "conditions-0-aid": "se_cbir", "conditions-0-k": "7"},
            "the bundle has only 6 se_cbir neighbours",
        ),
        ({"design": "sequential", "conditions-0-aid": "cbir"}, "The bundle has no cbir"),
        ({"design": "sequential", "conditions-0-aid": "probabilities"}, "no probabilities"),
        (
            {"design": "initial_revised", "conditions-0-aid": "unaided"},
            "the first answer is always unaided",
        ),
        (
            {"design": "sequential", "conditions-0-aid": "se_cbir", "conditions-1-aid": "se_cbir"},
            "listed twice",
        ),
        ({"design": "sequential", "conditions-0-aid": "unaided", "probe_share": "0.2"}, "Probes"),
        ({"design": "sequential", "conditions-0-aid": "unaided", "probe_share": "0.6"}, "0.5"),
        ({"design": "latin", "conditions-0-aid": "unaided"}, "Not a valid choice"),
        ({"design": "sequential", "conditions-0-aid": "hint"}, "Not a valid choice"),
    ],
)
def test_a_design_the_bundle_cannot_run_is_refused_and_nothing_changes(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    study: StudyRef,
    login: Callable,
    form: dict,
    message: str,
) -> None:
    login(client, organiser)
    response = client.post(f"/admin/studies/{study.id}/design", data={"probe_share": "0", **form})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        record = db.session.get(Study, study.id)
        assert record.design == "sequential"
        assert [c.to_json() for c in conditions_of(record)] == [UNAIDED, SE6]


def test_the_design_locks_once_a_reader_enrolled(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    reader: UserRef,
    study: StudyRef,
    login: Callable,
) -> None:
    login(client, reader)
    consent(client, study.id)
    client.post("/logout")
    login(client, organiser)
    page = client.get(f"/admin/studies/{study.id}/design").get_data(as_text=True)
    assert "design is locked" in page and "Save the design" not in page
    for url, data in (
        (f"/admin/studies/{study.id}/design", {"design": "per_case", "probe_share": "0"}),
        (f"/admin/studies/{study.id}/design/three_arm", {}),
    ):
        assert client.post(url, data=data).status_code == 303
    with app.app_context():
        assert db.session.get(Study, study.id).design == "sequential"


def test_a_study_with_probes_opens_only_when_its_information_discloses_them(
    app: Flask, client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    set_design(app, study, "sequential", [UNAIDED, SE6], probe_share=0.1, information="Hello.")
    with app.app_context():
        db.session.get(Study, study.id).status = "DRAFT"
        db.session.commit()
    login(client, organiser)
    refused = client.post(f"/admin/studies/{study.id}/open", follow_redirects=True)
    assert "was not opened" in refused.get_data(as_text=True)
    with app.app_context():
        record = db.session.get(Study, study.id)
        assert record.status.value == "draft"
        record.information = "Some of the AI's help is deliberately misleading."
        db.session.commit()
    client.post(f"/admin/studies/{study.id}/open")
    with app.app_context():
        assert db.session.get(Study, study.id).status.value == "open"


# ---------------------------------------------------------------- readers in each design


def test_a_three_arm_crossover_balances_orders_and_runs_three_tasks_with_wash_outs(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    login: Callable,
    clock: FakeClock,
    organiser: UserRef,
) -> None:
    set_design(app, study, "crossover", [UNAIDED, SE3_UNLABELLED, SE6], cases_per_reader=3)
    people = readers(app, study, 6)
    orders = []
    for person in people:
        login(client, person)
        consent(client, study.id)
        client.post("/logout")
        plan = assignments_of(app, person)
        assert [task for task, *_ in plan] == [1] * 3 + [2] * 3 + [3] * 3
        orders.append(tuple(plan[i][3] for i in (0, 3, 6)))
        # The same three cases in every task, each task under one condition.
        assert len({frozenset(row[2] for row in plan if row[0] == t) for t in (1, 2, 3)}) == 1
    assert Counter(orders) == Counter(williams_sequences(3))  # six readers: each order once

    # The first reader reads through all three tasks, a wash-out before each later one.
    person, order = people[0], orders[0]
    login(client, person)
    for task in (1, 2, 3):
        if task > 1:
            locked = client.get(case_url(study.id, task, 1))
            assert locked.status_code == 302  # to the task page, which says when it opens
            assert "not open yet" in client.get(f"/survey/{study.id}/task/{task}/").get_data(
                as_text=True
            )
            clock.advance(hours=24)
        shown = [tiles(answer_case(client, study.id, task, n)) for n in (1, 2, 3)]
        expected = {0: 0, 1: 3, 2: 6}[order[task - 1]]
        assert shown == [expected] * 3
    done = client.get(f"/survey/{study.id}/task/3/done").get_data(as_text=True)
    assert "all 3 tasks" in done
    with app.app_context():
        stored = db.session.scalars(select(Answer).order_by(Answer.answered_at)).all()
        keys = [a.shown["condition"] for a in stored]
        names = {0: "unaided", 1: "se_cbir_k3_unlabelled", 2: "se_cbir"}
        assert keys == [names[order[t]] for t in range(3) for _ in range(3)]
        assert [len(a.neighbours_shown) for a in stored[3:6]] == [(0, 3, 6)[order[1]]] * 3
        enrolment = db.session.scalar(select(Enrolment).where(Enrolment.user_id == person.id))
        assert enrolment.finished_at is not None  # finished: the last task is done

    # The organiser's pages follow every task: three columns, the first reader done.
    client.post("/logout")
    login(client, organiser)
    dashboard = client.get(f"/dashboard/{study.id}/").get_data(as_text=True)
    assert "Task 3 opens" in dashboard and "Task 3 completed" in dashboard
    assert "6 enrolled, 1 completed every task" in dashboard
    assert dashboard.count("<td>3 of 3</td>") == 3  # the first reader, task by task
    # The thesis-layout tables compare two of the three conditions, named by condition: by
    # default the first and the last, any pair on request, never "Task 1" and "Task 2".
    assert '<option value="unaided~se_cbir" selected>Unaided and SE-CBIR 6</option>' in dashboard
    assert dashboard.count('<option value="') == 3 + 7  # three pairs, plus the reader filter
    assert ">How answers changed from Unaided to SE-CBIR 6</h2>" in dashboard
    assert "Task 1</th>" not in dashboard
    chosen = client.get(f"/dashboard/{study.id}/?pair=unaided~se_cbir_k3_unlabelled").text
    assert ">How answers changed from Unaided to SE-CBIR 3 unlabelled</h2>" in chosen
    assert 'colspan="4">SE-CBIR 3 unlabelled</th>' in chosen
    unknown = client.get(f"/dashboard/{study.id}/?pair=se_cbir~nothing").text
    assert ">How answers changed from Unaided to SE-CBIR 6</h2>" in unknown
    heat = client.get(
        f"/dashboard/{study.id}/confusion-task2.svg?pair=unaided~se_cbir_k3_unlabelled"
    )
    assert heat.status_code == 200 and b"unlabelled" in heat.data
    progress = client.get(f"/admin/studies/{study.id}/readers").get_data(as_text=True)
    assert '<th scope="col">Task 3</th>' in progress
    assert progress.count("3 / 3 ✓") == 3 and progress.count("0 / 3") == 15


def test_per_case_design_mixes_conditions_in_one_task(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> None:
    set_design(app, study, "per_case", [UNAIDED, SE6], cases_per_reader=10)
    (person,) = readers(app, study, 1)
    login(client, person)
    consent(client, study.id)
    plan = assignments_of(app, person)
    assert {task for task, *_ in plan} == {1}
    assert sorted(Counter(row[3] for row in plan).values()) == [5, 5]
    for number, row in enumerate(plan, start=1):
        html = answer_case(client, study.id, 1, number)
        assert tiles(html) == (6 if row[3] == 1 else 0)
        assert "turned by 180" not in html
    assert "Study completed" in client.get(f"/survey/{study.id}/task/1/done").get_data(as_text=True)


def test_initial_then_revised_keeps_the_first_answer_and_then_shows_the_aid(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> None:
    set_design(app, study, "initial_revised", [SE6], cases_per_reader=2)
    (person,) = readers(app, study, 1)
    login(client, person)
    consent(client, study.id)
    url = case_url(study.id, 1, 1)
    first = client.get(url)
    assert tiles(first.get_data(as_text=True)) == 0
    assert "First give your own diagnosis" in first.get_data(as_text=True)
    initial = {"diagnosis": "mel", "confidence": 2, "token": token_of(first)}
    assert client.post(url, data=initial).headers["Location"].endswith(url)
    # A double click on the first form: the first answer stands, the aid is shown.
    assert client.post(url, data={**initial, "diagnosis": "bcc"}).status_code == 303
    second = client.get(url)
    html = second.get_data(as_text=True)
    assert tiles(html) == 6 and "Your first answer is selected" in html
    assert re.search(r'value="mel"[^>]*checked|checked[^>]*value="mel"', html)
    final = {"diagnosis": "nv", "confidence": 4, "token": token_of(second)}
    assert client.post(url, data=final).status_code == 303
    with app.app_context():
        (assignment,) = [a for a in db.session.scalars(select(Assignment)) if a.answer is not None]
        assert (assignment.initial_diagnosis, assignment.initial_confidence) == ("mel", 2)
        assert (assignment.answer.diagnosis, assignment.answer.confidence) == ("nv", 4)
        assert assignment.answer.shown["condition"] == "se_cbir"
        assert len(assignment.answer.neighbours_shown) == 6


def test_probes_show_another_cases_genuine_list_and_are_recorded(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> None:
    # A probe shows the genuine list of another case whose vote is a wrong class for this
    # one (issue 22: all-one-class lists gave probes away), and says so only at the end.
    set_design(app, study, "per_case", [SE6], cases_per_reader=10, probe_share=0.3)
    (person,) = readers(app, study, 1)
    login(client, person)
    consent(client, study.id)
    plan = assignments_of(app, person)
    assert sum(row[4] for row in plan) == 3
    for number in range(1, 11):
        answer_case(client, study.id, 1, number)
    with app.app_context():
        truths = dict(db.session.execute(select(Case.id, Case.truth)).all())
        labels = dict(db.session.execute(select(Neighbour.image_id, Neighbour.truth)).all())
        mine = {row[2] for row in plan}
        probes, sources = [], set()
        for answer in db.session.scalars(select(Answer)):
            assignment = answer.assignment
            assert answer.shown["probe"] is assignment.probe
            if not assignment.probe:
                assert answer.shown["probe_class"] is None
                continue
            probes.append((assignment.session, assignment.position + 1))
            wrong = answer.shown["probe_class"]
            assert wrong == assignment.probe_class and wrong != truths[assignment.case_id]
            source = db.session.get(Case, assignment.probe_source)
            # Another reader's case where one suggests that class (the study's seed is drawn
            # at random for each new study, so which classes probes draw varies from run to run).
            votes = {
                case.id: majority_vote([n.truth for n in case.neighbours_of("se_cbir", 6)])
                for case in db.session.scalars(select(Case).where(Case.study_id == study.id))
            }
            strangers = {case for case, vote in votes.items() if vote == wrong} - mine
            assert source.id not in mine or not strangers - sources
            sources.add(source.id)
            genuine = [n.image_id for n in source.neighbours_of("se_cbir", 6)]
            assert answer.neighbours_shown == genuine
            assert majority_vote([labels[i] for i in genuine]) == wrong
            assert assignment.case.image_id not in answer.neighbours_shown
        assert len(probes) == len(sources) == 3  # one source per probe, none twice
    end = client.get(f"/survey/{study.id}/task/1/done").get_data(as_text=True)
    named = re.findall(r"<span>Task (\d+), case (\d+)</span>", end)
    assert sorted((int(t), int(n)) for t, n in named) == sorted(probes)


def test_a_probe_drawn_before_issue_22_shows_its_own_list_with_the_majority_moved(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable
) -> None:
    # Assignments made before the migration have neither a drawn class nor a source.
    set_design(app, study, "per_case", [SE6], cases_per_reader=10, probe_share=0.3)
    (person,) = readers(app, study, 1)
    login(client, person)
    consent(client, study.id)
    with app.app_context():
        for assignment in db.session.scalars(select(Assignment).where(Assignment.probe)):
            assignment.probe_class = assignment.probe_source = None
        db.session.commit()
    for number in range(1, 11):
        answer_case(client, study.id, 1, number)
    with app.app_context():
        labels = dict(db.session.execute(select(Neighbour.image_id, Neighbour.truth)).all())
        answers = db.session.scalars(select(Answer).join(Assignment).where(Assignment.probe))
        for answer in answers:
            case = answer.assignment.case
            own = [n.truth for n in case.neighbours_of("se_cbir", 6)]
            shown = [labels[i] for i in answer.neighbours_shown]
            wrong = answer.shown["probe_class"]
            assert wrong != case.truth and majority_vote(shown) == wrong
            # The same mixture of classes (their counts), the voted class and `wrong` swapped.
            assert sorted(Counter(shown).values()) == sorted(Counter(own).values())
            assert case.image_id not in answer.neighbours_shown


def test_probe_cases_are_named_only_once_the_last_task_is_done(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable, clock: FakeClock
) -> None:
    set_design(app, study, "crossover", [UNAIDED, SE6], cases_per_reader=10, probe_share=0.3)
    (person,) = readers(app, study, 1)
    login(client, person)
    consent(client, study.id)
    # Whichever session shows the aid (the arm decides), Task 1's end names nothing.
    probes = sorted((row[0], row[1] + 1) for row in assignments_of(app, person) if row[4])
    assert len(probes) == 3
    for task in (1, 2):
        for number in range(1, 11):
            answer_case(client, study.id, task, number)
        end = client.get(f"/survey/{study.id}/task/{task}/done").get_data(as_text=True)
        named = re.findall(r"<span>Task (\d+), case (\d+)</span>", end)
        if task == 1:
            assert named == [] and "probe-cases" not in end
            clock.advance(hours=24, seconds=1)
        else:
            assert sorted((int(t), int(n)) for t, n in named) == probes


def test_exports_carry_condition_session_and_probe_and_the_dashboard_reads_any_design(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    organiser: UserRef,
    login: Callable,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_design(app, study, "per_case", [UNAIDED, SE6], cases_per_reader=10, probe_share=0.2)
    (person,) = readers(app, study, 1)
    login(client, person)
    consent(client, study.id)
    for number in range(1, 11):
        answer_case(client, study.id, 1, number)
    client.post("/logout")
    login(client, organiser)
    assert client.get(f"/dashboard/{study.id}/").status_code == 200
    text = client.get(f"/dashboard/{study.id}/export/responses").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10
    assert {r["session"] for r in rows} == {"1"}
    assert Counter(r["condition"] for r in rows) == Counter({"unaided": 5, "se_cbir": 5})
    assert {(r["aid"], r["k"]) for r in rows} == {("unaided", ""), ("se_cbir", "6")}
    probes = [r for r in rows if r["probe"] == "1"]
    assert len(probes) == 1 and probes[0]["condition"] == "se_cbir"  # 20 % of 5 aided
    assert probes[0]["probe_class"] not in ("", probes[0]["truth"])
    # The MRMC export is the primary analysis: the probe is counted out.
    mrmc = client.get(f"/dashboard/{study.id}/export/mrmcaov").get_data(as_text=True)
    cases = {r["case"] for r in csv.DictReader(io.StringIO(mrmc)) if r["truth"] == "1"}
    assert probes[0]["case_key"] not in cases and probes[0]["image_id"] not in cases
    # The probe's own figures: on the dashboard and from the responses file by the CLI.
    adopted = int(probes[0]["probe_class"] == "nv")  # answer_case always answers nv
    html = client.get(f"/dashboard/{study.id}/").get_data(as_text=True)
    facts = re.search(r'<dl class="facts" id="probes">(.*?)</dl>', html, re.S).group(1)
    assert "Probe readings</dt><dd>1</dd>" in facts
    assert f"Misleading class adopted</dt><dd>{adopted} " in facts
    path = tmp_path / "responses.csv"
    path.write_text(text, encoding="utf-8")
    assert analysis_main([str(path), "--json", "--bootstrap", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["probes_left_out"] == 1
    probe_figures = result["reliance"]["probes"]
    assert (probe_figures["readings"], probe_figures["misleading_adopted"]) == (1, adopted)
    assert probe_figures["conditions"]["se_cbir"]["readings"] == 1


def test_an_initial_then_revised_study_is_analysed_first_look_against_revised(
    app: Flask, client: FlaskClient, study: StudyRef, login: Callable, organiser: UserRef
) -> None:
    """Each answer's first look is a reading of its own, compared with the revised answer on
    the same cases; the dashboard names them, the MRMCaov file holds both, a reader who has
    not started is not in the analysis at all."""
    set_design(app, study, "initial_revised", [SE6], cases_per_reader=4)
    people = readers(app, study, 3)
    for k, person in enumerate(people[:2]):
        login(client, person)
        consent(client, study.id)
        for number in range(1, 5):
            url = case_url(study.id, 1, number)
            first = client.get(url)
            initial = {"diagnosis": "mel", "confidence": 2, "token": token_of(first)}
            assert client.post(url, data=initial).status_code == 303
            second = client.get(url)
            revised = {"diagnosis": "nv" if number > k else "mel", "confidence": 4}
            assert client.post(url, data={**revised, "token": token_of(second)}).status_code == 303
        client.post("/logout")
    login(client, organiser)
    html = client.get(f"/dashboard/{study.id}/").get_data(as_text=True)
    assert "First look before SE-CBIR" in html and "SE-CBIR 6 + second look" in html
    exported = client.get(f"/dashboard/{study.id}/export/mrmcaov").get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(exported)))
    real = [row for row in table if row["truth"] == "1"]
    assert Counter(row["test"] for row in real) == {"se_cbir_initial": 8, "se_cbir": 8}
    assert {row["diagnosis"] for row in real if row["test"] == "se_cbir_initial"} == {"mel"}
    summary = json.loads(client.get(f"/dashboard/{study.id}/export/summary-json").data)
    assert summary["conditions"] == ["se_cbir_initial", "se_cbir"]
    pc = summary["statistics"]["or_hillis"]["proportion_correct"]
    assert pc["readers"] == 2 and set(pc["means"]) == {"se_cbir_initial", "se_cbir"}
    script = client.get(f"/dashboard/{study.id}/export/mrmcaov-r").get_data(as_text=True)
    assert "No reader was left out" in script
