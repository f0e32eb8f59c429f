"""The practice set: a few cases before Task 1 on the same page as the study's cases, stored as
session 0, drawn from outside the reader's own cases, never analysed, exported or revealed."""

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Role, Study, StudyStatus
from app.organiser.exports import analysis_columns, response_rows
from app.survey import sampling
from tests.app.conftest import StudyRef, UserRef, add_study, add_user, join_study
from tests.app.reading import SE6, UNAIDED, answer_case, assignments_of, consent, set_design


@pytest.fixture
def practising(app: Flask, bundle_cache: dict) -> StudyRef:
    """The thesis's design on the 30-case pool, 6 cases per reader and 3 practice cases."""
    ref = add_study(
        app,
        bundle_cache[0],
        "Practice",
        status=StudyStatus.OPEN,
        cases_per_reader=6,
        washout_hours=0.0,
        practice_cases=3,
    )
    set_design(app, ref, "sequential", [UNAIDED, SE6])
    return ref


def test_practice_comes_first_on_the_same_page_and_is_never_analysed(
    app: Flask, client: FlaskClient, practising: StudyRef, login: Callable
) -> None:
    reader = add_user(app, "practice@example.org", Role.READER)
    join_study(app, reader, practising)
    login(client, reader)
    welcome = client.get(f"/survey/{practising.id}/").get_data(as_text=True)
    assert "<strong>Practice:</strong> Before Task 1 you practise on 3 cases" in welcome
    response = consent(client, practising.id)
    assert response.headers["Location"].endswith(f"/survey/{practising.id}/task/0/")
    plan = assignments_of(app, reader)
    practice = [row for row in plan if row[0] == 0]
    real = [row for row in plan if row[0] >= 1]
    assert len(practice) == 3 and len(real) == 12
    # Outside the reader's own cases, both conditions in the reader's order, no probes.
    assert {row[2] for row in practice}.isdisjoint({row[2] for row in real})
    assert [row[3] for row in practice] == [0, 1, 0]
    assert not any(row[4] for row in practice)
    # Task 1 waits until the practice is done.
    assert (
        client.get(f"/survey/{practising.id}/task/1/")
        .headers["Location"]
        .endswith(f"/survey/{practising.id}/task/0/")
    )
    intro = client.get(f"/survey/{practising.id}/task/0/").get_data(as_text=True)
    assert "<h1>Practice</h1>" in intro and "Start the practice" in intro
    pages = [answer_case(client, practising.id, 0, number) for number in (1, 2, 3)]
    assert "Practice <span" in pages[0] and "Case 1 of 3" in pages[0]
    assert "A practice case: your answer is not counted" in pages[0]
    assert re.search(r'<figure class="tile', pages[1])  # the same page: SE-CBIR's images
    assert "Save and finish Practice" in pages[2]
    task1 = client.get(f"/survey/{practising.id}/task/1/")
    assert task1.status_code == 200
    assert "Practice finished. The study&#39;s own cases start now" in task1.get_data(as_text=True)
    assert "Practice finished" not in client.get(f"/survey/{practising.id}/task/1/").get_data(
        as_text=True
    )
    # The practice pages are gone once done.
    assert client.get(f"/survey/{practising.id}/task/0/case/1").status_code == 302
    for task in (1, 2):
        for number in range(1, 7):
            answer_case(client, practising.id, task, number)
    with app.app_context():
        study = db.session.get_one(Study, practising.id)
        rows = response_rows(study)
        columns = analysis_columns(study)
    assert len(rows) == 12 and {row["task"] for row in rows} == {1, 2}
    assert len(columns["task"]) == 12 and set(columns["task"]) == {1, 2}


def test_a_study_without_practice_has_no_session_0(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, login: Callable
) -> None:
    login(client, reader)
    consent(client, study.id)
    assert all(row[0] >= 1 for row in assignments_of(app, reader))
    assert client.get(f"/survey/{study.id}/task/0/").status_code == 404


def test_practice_cases_are_drawn_outside_the_readers_own_and_repeat_for_a_seed() -> None:
    pool = list(range(20))
    chosen = [1, 4, 7, 9]
    first = sampling.practice_set(pool, chosen, 3, seed=11)
    assert len(first) == 3 and not set(first) & set(chosen)
    assert sampling.practice_set(pool, chosen, 3, seed=11) == first
    assert sampling.practice_set(pool, list(range(18)), 3, seed=11) in ([18, 19], [19, 18])
    assert sampling.practice_set(pool, pool, 3, seed=11) == []


def test_the_design_page_sets_practice_and_feedback_within_the_pool(
    app: Flask, client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    form = {
        "design": "sequential",
        "conditions-0-aid": "unaided",
        "conditions-1-aid": "se_cbir",
        "conditions-1-k": "6",
        "conditions-1-labelled": "y",
        "probe_share": "0",
        "practice": "y",
        "practice_cases": "21",
        "feedback": "y",
    }
    url = f"/admin/studies/{study.id}/design"
    assert client.post(url, data=form).status_code == 400  # at most 20
    # 30 cases, 10 per reader: 20 to spare.
    assert client.post(url, data={**form, "practice_cases": "20"}).status_code == 303
    with app.app_context():
        db.session.get_one(Study, study.id).cases_per_reader = 11
        db.session.commit()
    refused = client.post(url, data={**form, "practice_cases": "20"})
    assert refused.status_code == 400
    assert "the pool of 30 has 19 to spare, so at most 19 practice cases" in refused.get_data(
        as_text=True
    )
    assert client.post(url, data={**form, "practice_cases": "4"}).status_code == 303
    with app.app_context():
        record = db.session.get_one(Study, study.id)
        assert (record.practice_cases, record.feedback) == (4, True)
    page = client.get(url).get_data(as_text=True)
    assert "4 practice cases before Task 1, never analysed" in page
    assert client.post(url, data={**form, "practice": "", "feedback": ""}).status_code == 303
    with app.app_context():
        record = db.session.get_one(Study, study.id)
        assert (record.practice_cases, record.feedback) == (0, False)
