"""The reader's way through a study, through the Flask test client (SQLite and PostgreSQL)."""

import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select

from app import survey
from app.extensions import db
from app.models import (
    Answer,
    Assignment,
    Case,
    Enrolment,
    Sampling,
    Study,
    StudyClass,
    StudyStatus,
    User,
)
from app.survey import answers, sampling
from tests.app.conftest import StudyRef, UserRef, join_study
from tests.app.reading import answer, case_url, complete_task, consent, token_of
from tests.app.world import CONSENT

# ---------------------------------------------------------------- helpers


def enrolment_row(user_id: int, study_id: int) -> Enrolment | None:
    """The enrolment (inside an app context)."""
    return db.session.scalar(
        select(Enrolment).where(Enrolment.user_id == user_id, Enrolment.study_id == study_id)
    )


def answer_count(app: Flask) -> int:
    """How many answers the database holds."""
    with app.app_context():
        return db.session.scalar(select(func.count(Answer.id))) or 0


def assignments(app: Flask, user: UserRef, study: StudyRef, task: int) -> list[tuple[int, int]]:
    """(case position, rotation) of a reader's assignments of one task, in task order."""
    with app.app_context():
        enrolment = enrolment_row(user.id, study.id)
        assert enrolment is not None
        rows = db.session.execute(
            select(Case.position, Assignment.rotation)
            .join(Case, Case.id == Assignment.case_id)
            .where(Assignment.enrolment_id == enrolment.id, Assignment.session == task)
            .order_by(Assignment.position)
        ).all()
        return [(position, rotation) for position, rotation in rows]


@pytest.fixture
def reading(client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable) -> FlaskClient:
    """The reader logged in and enrolled (consent given)."""
    login(client, reader)
    consent(client, study.id)
    return client


# ---------------------------------------------------------------- access by role

SHORTCUTS = "/survey/preferences/shortcuts"


STUDY_ROUTES = (
    "/survey/{id}/",
    "/survey/{id}/information",
    "/survey/{id}/classes.css",
    "/survey/{id}/continue",
    "/survey/{id}/task/1/",
    "/survey/{id}/task/2/",
    "/survey/{id}/task/1/done",
    "/survey/{id}/task/2/done",
    "/survey/{id}/task/1/case/1",
    "/survey/{id}/task/2/case/1",
)


def test_anonymous_visitors_are_sent_to_the_login(client: FlaskClient, study: StudyRef) -> None:
    for route in ("/survey/", *STUDY_ROUTES):
        response = client.get(route.format(id=study.id))
        assert response.status_code == 302, route
        assert "/login" in response.headers["Location"], route
    response = client.post(case_url(study.id, 1, 1), data={"diagnosis": "nv", "confidence": 3})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# What the organisers' "preview as a reader" shows them of the readers' pages.
SHOWN_TO_STAFF = ("/survey/{id}/information", "/survey/{id}/classes.css")


def test_organisers_do_not_take_part(
    app: Flask, client: FlaskClient, organiser: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, organiser)
    assert client.get("/survey/").status_code == 200
    for route in STUDY_ROUTES:
        expected = 200 if route in SHOWN_TO_STAFF else 403
        assert client.get(route.format(id=study.id)).status_code == expected, route
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(Enrolment.id))) == 0


def test_a_reader_of_another_study_sees_nothing(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    other_reader: UserRef,
    other_study: StudyRef,
    login: Callable,
) -> None:
    login(client, other_reader)
    for route in STUDY_ROUTES:
        response = client.get(route.format(id=study.id))
        assert response.status_code == 404, route
        assert "Test study" not in response.get_data(as_text=True)
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 404
    assert client.get("/survey/99999/").status_code == 404
    home = client.get("/survey/").get_data(as_text=True)
    assert "Other study" in home and "Test study" not in home
    with app.app_context():
        assert enrolment_row(other_reader.id, study.id) is None


def test_a_reader_of_this_study_gets_every_page(
    client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, reader)
    home = client.get("/survey/")
    assert home.status_code == 200 and "Test study" in home.get_data(as_text=True)
    welcome = client.get(f"/survey/{study.id}/")
    assert welcome.status_code == 200
    assert 'type="checkbox"' in welcome.get_data(as_text=True)
    # Before consent every task page leads back to the welcome page.
    response = client.get(case_url(study.id, 1, 1))
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/survey/{study.id}/"
    )
    consent(client, study.id)
    for route in STUDY_ROUTES:
        response = client.get(route.format(id=study.id))
        assert response.status_code in (200, 302), route
    assert client.get(case_url(study.id, 3, 1)).status_code == 404
    assert client.get(case_url(study.id, 1, 11)).status_code == 404


def test_draft_studies_are_invisible_to_readers(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    with app.app_context():
        db.session.get(Study, study.id).status = StudyStatus.DRAFT
        db.session.commit()
    login(client, reader)
    assert client.get(f"/survey/{study.id}/").status_code == 404
    assert "Test study" not in client.get("/survey/").get_data(as_text=True)


# ---------------------------------------------------------------- enrolment and the draw


def test_consent_is_required(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, reader)
    response = client.post(f"/survey/{study.id}/", data={})
    assert response.status_code == 400
    assert "tick the box" in response.get_data(as_text=True)
    with app.app_context():
        assert enrolment_row(reader.id, study.id) is None


def test_consent_draws_the_same_lesions_for_both_tasks(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef
) -> None:
    task1 = assignments(app, reader, study, 1)
    task2 = assignments(app, reader, study, 2)
    assert len(task1) == len(task2) == 10
    assert sorted(p for p, _ in task1) == sorted(p for p, _ in task2)
    assert {r for _, r in task1} == {0} and {r for _, r in task2} == {180}
    with app.app_context():
        enrolment = enrolment_row(reader.id, study.id)
        assert enrolment is not None and enrolment.consented_at is not None
        seed = enrolment.seed
        pool = dict(db.session.execute(select(Case.position, Case.truth)).all())
    # Reproducible: the stored seed and the pool give back exactly this draw and both orders.
    redraw = sampling.draw(pool, 10, seed, "random", reshuffle_later_sessions=True)
    assert list(redraw.task1) == [p for p, _ in task1]
    assert list(redraw.task2) == [p for p, _ in task2]


def test_a_second_consent_changes_nothing(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef
) -> None:
    before = assignments(app, reader, study, 1)
    response = reading.post(f"/survey/{study.id}/", data=CONSENT)
    assert response.status_code == 303
    assert assignments(app, reader, study, 1) == before
    with app.app_context():
        assert db.session.scalar(select(func.count(Enrolment.id))) == 1
        assert db.session.scalar(select(func.count(Assignment.id))) == 20


def test_a_concurrent_enrolment_keeps_the_first_draw(
    app: Flask, reader: UserRef, study: StudyRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        first = survey.enrol(db.session.get(Study, study.id), db.session.get(User, reader.id))
        first_id, first_seed = first.id, first.seed
        db.session.expunge_all()
        # The second request looked before the first committed: it saw no enrolment.
        real = survey.enrolment_of
        calls = {"n": 0}

        def stale_lookup(study_id: int, user_id: int) -> Enrolment | None:
            calls["n"] += 1
            return None if calls["n"] == 1 else real(study_id, user_id)

        # Patched where `enrol` looks it up (the package only re-exports it).
        monkeypatch.setattr("app.survey.enrolment.enrolment_of", stale_lookup)
        second = survey.enrol(db.session.get(Study, study.id), db.session.get(User, reader.id))
        assert (second.id, second.seed) == (first_id, first_seed)
        assert db.session.scalar(select(func.count(Enrolment.id))) == 1
        assert db.session.scalar(select(func.count(Assignment.id))) == 20


def test_different_readers_get_different_draws(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    make_user: Callable,
    login: Callable,
) -> None:
    draws = []
    for index in range(3):
        user = make_user(f"r{index}@example.org")
        join_study(app, user, study)
        reader_client = app.test_client()
        login(reader_client, user)
        consent(reader_client, study.id)
        draws.append(tuple(p for p, _ in assignments(app, user, study, 1)))
    # Three random draws of 10 of 30 cases (in random order) coincide with negligible odds.
    assert len(set(draws)) == 3


def test_stratified_sampling_is_proportional(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    with app.app_context():
        db.session.get(Study, study.id).sampling = Sampling.STRATIFIED
        db.session.commit()
        pool = dict(db.session.execute(select(Case.position, Case.truth)).all())
    login(client, reader)
    consent(client, study.id)
    drawn = Counter(pool[p] for p, _ in assignments(app, reader, study, 1))
    shares = Counter(pool.values())
    assert drawn == Counter(sampling.allocate(dict(shares), 10))
    for code, count in shares.items():
        assert abs(drawn[code] - 10 * count / len(pool)) < 1


def test_task2_order_follows_task1_without_reshuffle(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    with app.app_context():
        db.session.get(Study, study.id).reshuffle_later_sessions = False
        db.session.commit()
    login(client, reader)
    consent(client, study.id)
    task1 = [p for p, _ in assignments(app, reader, study, 1)]
    assert task1 == [p for p, _ in assignments(app, reader, study, 2)]


def test_a_small_pool_gives_every_case(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    with app.app_context():
        db.session.get(Study, study.id).cases_per_reader = 500
        db.session.commit()
    login(client, reader)
    consent(client, study.id)
    assert len(assignments(app, reader, study, 1)) == study.cases


# ---------------------------------------------------------------- the tasks


def test_task1_case_page_and_stored_answer(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef, clock
) -> None:
    assert (
        reading.get(f"/survey/{study.id}/continue")
        .headers["Location"]
        .endswith(f"/survey/{study.id}/task/1/")
    )
    page = reading.get(case_url(study.id, 1, 1))
    html = page.get_data(as_text=True)
    assert "Case 1 of 10" in html
    assert html.count('name="diagnosis"') == 7 and html.count('name="confidence"') == 5
    assert "<legend>Your diagnosis" in html and "<legend>Your confidence" in html
    assert f"/survey/{study.id}/information" in html and 'target="_blank"' in html
    assert "survey.js" in html
    clock.advance(seconds=42)
    response = reading.post(
        case_url(study.id, 1, 1),
        data={"diagnosis": "mel", "confidence": "5", "token": token_of(page)},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(case_url(study.id, 1, 2))
    with app.app_context():
        stored = db.session.scalars(select(Answer)).one()
        assert (stored.diagnosis, stored.confidence, stored.rotation) == ("mel", 5, 0)
        assert stored.neighbours_shown == []
        assert stored.seconds == pytest.approx(42.0)
        assert stored.shown_at == stored.assignment.shown_at
        assert stored.answered_at == clock()
    assert "Case 2 of 10" in reading.get(case_url(study.id, 1, 2)).get_data(as_text=True)


def test_the_reader_turns_the_single_key_shortcuts_off_and_on(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef
) -> None:
    url = case_url(study.id, 1, 1)
    html = reading.get(url).get_data(as_text=True)
    assert html.count("aria-keyshortcuts=") == 12 and 'data-shortcuts="on"' in html
    assert "Turn single-key shortcuts off" in html

    # Without script: a plain form, then back to the case page.
    response = reading.post(SHORTCUTS, data={"enabled": "0", "next": url})
    assert response.status_code == 303 and response.headers["Location"].endswith(url)
    html = reading.get(url).get_data(as_text=True)
    assert "aria-keyshortcuts=" not in html and 'data-shortcuts="off"' in html
    assert "no-shortcuts" in html and "Turn single-key shortcuts on" in html
    with app.app_context():
        assert db.session.get(User, reader.id).shortcuts_enabled is False

    # With script: JSON, the page stays. Remembered for the account, not the session.
    response = reading.post(
        SHORTCUTS, data={"enabled": "1"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200 and response.get_json() == {"shortcuts": True}
    reading.post("/logout")
    with app.app_context():
        assert db.session.get(User, reader.id).shortcuts_enabled is True


def test_a_bad_shortcut_setting_is_refused(
    app: Flask, reading: FlaskClient, reader: UserRef
) -> None:
    assert reading.post(SHORTCUTS, data={"enabled": "maybe"}).status_code == 400
    refused = reading.post(SHORTCUTS, data={"enabled": "x"}, headers={"Accept": "application/json"})
    assert refused.status_code == 400 and "error" in refused.get_json()
    # Somewhere else than this site: the survey home instead.
    response = reading.post(SHORTCUTS, data={"enabled": "0", "next": "https://evil.example/"})
    assert response.headers["Location"].endswith("/survey/")
    with app.app_context():
        assert db.session.get(User, reader.id).shortcuts_enabled is False


def test_shown_at_is_the_first_serving(
    app: Flask, reading: FlaskClient, study: StudyRef, clock
) -> None:
    reading.get(case_url(study.id, 1, 1))
    first = clock()
    clock.advance(minutes=5)
    page = reading.get(case_url(study.id, 1, 1))  # a reload
    reading.post(
        case_url(study.id, 1, 1), data={"diagnosis": "nv", "confidence": 2, "token": token_of(page)}
    )
    with app.app_context():
        stored = db.session.scalars(select(Answer)).one()
        assert stored.shown_at == first and stored.seconds == pytest.approx(300.0)


def test_washout_locks_task2_until_it_has_passed(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef, clock
) -> None:
    complete_task(reading, study.id, 1)
    finished = clock()
    end = reading.get(f"/survey/{study.id}/continue")
    assert end.headers["Location"].endswith(f"/survey/{study.id}/task/1/done")
    html = reading.get(end.headers["Location"]).get_data(as_text=True)
    opens = finished + timedelta(hours=24)
    assert "Task 2 opens on" in html
    assert opens.strftime("%Y-%m-%dT%H:%M:%SZ") in html
    assert opens.strftime("%d %B %Y, %H:%M") + " UTC" in html

    # During the wash-out: the case page redirects to the locked task page; posting stores nothing.
    clock.advance(hours=23, minutes=59)
    response = reading.get(case_url(study.id, 2, 1))
    assert response.status_code == 302
    locked = reading.get(response.headers["Location"]).get_data(as_text=True)
    assert "Task 2 is not open yet" in locked and opens.strftime("%H:%M") in locked
    with app.app_context():
        task2_first = db.session.scalar(
            select(Assignment).where(Assignment.session == 2, Assignment.position == 0)
        )
        token = survey.case_token(task2_first)
    refused = reading.post(
        case_url(study.id, 2, 1), data={"diagnosis": "nv", "confidence": 3, "token": token}
    )
    assert refused.status_code == 403
    assert answer_count(app) == 10

    clock.advance(minutes=1)
    assert (
        reading.get(f"/survey/{study.id}/continue")
        .headers["Location"]
        .endswith(f"/survey/{study.id}/task/2/")
    )
    assert "Start Task 2" in reading.get(f"/survey/{study.id}/task/2/").get_data(as_text=True)
    assert answer(reading, study.id, 2, 1).status_code == 303
    assert answer_count(app) == 11


def test_task2_shows_the_rotated_query_and_six_labelled_neighbours(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef, clock
) -> None:
    complete_task(reading, study.id, 1)
    clock.advance(hours=25)
    page = reading.get(case_url(study.id, 2, 1))
    html = page.get_data(as_text=True)
    with app.app_context():
        assignment = db.session.scalar(
            select(Assignment).where(Assignment.session == 2, Assignment.position == 0)
        )
        case = assignment.case
        neighbours = [(n.rank, n.truth, n.image, n.image_id) for n in case.neighbours]
        rotated, upright = case.image_rotated, case.image
        names = {c["code"]: c["name"] for c in db.session.get(Study, study.id).manifest["classes"]}
    assert rotated.removesuffix(".jpg") in html and upright.removesuffix(".jpg") not in html
    tiles = re.findall(r'<figure class="tile cls-(\w+)">(.*?)</figure>', html, re.S)
    assert len(tiles) == 6
    for (rank, truth, image, _), (code, tile) in zip(neighbours, tiles, strict=True):
        assert code == truth
        assert (
            f"#{rank}" in tile
            and escape(names[truth]) in tile
            and image.removesuffix(".jpg") in tile
        )
    response = reading.post(
        case_url(study.id, 2, 1), data={"diagnosis": "df", "confidence": 1, "token": token_of(page)}
    )
    assert response.status_code == 303
    with app.app_context():
        stored = db.session.scalars(
            select(Answer).join(Assignment).where(Assignment.session == 2)
        ).one()
        assert stored.rotation == 180
        assert stored.neighbours_shown == [image_id for *_, image_id in neighbours]


def test_the_whole_way_through(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef, clock
) -> None:
    complete_task(reading, study.id, 1)
    with app.app_context():
        assert enrolment_row(reader.id, study.id).first_session_done_at == clock()
    clock.advance(hours=24)
    end1 = reading.get(f"/survey/{study.id}/task/1/done").get_data(as_text=True)
    assert "Go to Task 2" in end1
    complete_task(reading, study.id, 2)
    done = reading.get(f"/survey/{study.id}/continue")
    assert done.headers["Location"].endswith(f"/survey/{study.id}/task/2/done")
    assert "completed both tasks" in reading.get(done.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        enrolment = enrolment_row(reader.id, study.id)
        assert enrolment.finished_at == clock()
        assert db.session.scalar(select(func.count(Answer.id))) == 20
    assert "Both tasks completed" in reading.get("/survey/").get_data(as_text=True)
    # Nothing is left to answer: every case address now leads to the end page.
    response = reading.get(case_url(study.id, 2, 3))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/survey/{study.id}/task/2/done")


def test_zero_washout_opens_task2_at_once(
    app: Flask, reading: FlaskClient, study: StudyRef, clock
) -> None:
    with app.app_context():
        db.session.get(Study, study.id).washout_hours = 0
        db.session.commit()
    for number in range(1, 10):
        answer(reading, study.id, 1, number)
    last = answer(reading, study.id, 1, 10)
    assert last.headers["Location"].endswith(f"/survey/{study.id}/task/1/done")
    end = reading.get(last.headers["Location"]).get_data(as_text=True)
    assert "Task 1 completed" in end and "Go to Task 2" in end
    assert reading.get(f"/survey/{study.id}/continue").headers["Location"].endswith("/task/2/")
    assert answer(reading, study.id, 2, 1).status_code == 303


def test_resume_after_logout(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    for number in (1, 2, 3):
        answer(reading, study.id, 1, number)
    reading.get(case_url(study.id, 1, 4))
    reading.post("/logout")
    assert reading.get(f"/survey/{study.id}/continue").status_code == 302
    fresh = app.test_client()  # a closed browser: no cookies at all
    login(fresh, reader)
    response = fresh.get(f"/survey/{study.id}/continue")
    assert response.headers["Location"].endswith(case_url(study.id, 1, 4))
    # The back button to an answered case leads to the current one, with a notice.
    back = fresh.get(case_url(study.id, 1, 2), follow_redirects=True)
    assert back.request.path == case_url(study.id, 1, 4)
    assert "answers are final" in back.get_data(as_text=True)
    # A case further on is not reachable by editing the URL.
    ahead = fresh.get(case_url(study.id, 1, 7))
    assert ahead.headers["Location"].endswith(case_url(study.id, 1, 4))


# ---------------------------------------------------------------- once, and only good answers


def test_a_double_submission_stores_one_answer(
    app: Flask, reading: FlaskClient, study: StudyRef
) -> None:
    page = reading.get(case_url(study.id, 1, 1))
    form = {"diagnosis": "akiec", "confidence": 2, "token": token_of(page)}
    first = reading.post(case_url(study.id, 1, 1), data=form)
    second = reading.post(case_url(study.id, 1, 1), data=form)
    changed = reading.post(case_url(study.id, 1, 1), data={**form, "diagnosis": "mel"})
    assert first.status_code == second.status_code == changed.status_code == 303
    assert changed.headers["Location"].endswith(case_url(study.id, 1, 2))
    followed = reading.get(changed.headers["Location"]).get_data(as_text=True)
    assert "already answered" in followed
    with app.app_context():
        stored = db.session.scalars(select(Answer)).one()
        assert (stored.diagnosis, stored.confidence) == ("akiec", 2)


def test_a_racing_duplicate_insert_is_treated_as_answered(
    app: Flask, reading: FlaskClient, study: StudyRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = reading.get(case_url(study.id, 1, 1))
    form = {"diagnosis": "bkl", "confidence": 4, "token": token_of(page)}
    assert reading.post(case_url(study.id, 1, 1), data=form).status_code == 303
    # The second request read the assignment before the first committed its answer.
    real = answers.standing

    def before_the_first(enrolment: Enrolment) -> survey.Standing:
        first = db.session.scalar(
            select(Assignment).where(
                Assignment.enrolment_id == enrolment.id,
                Assignment.session == 1,
                Assignment.position == 0,
            )
        )
        return survey.Standing(first, None, False)

    monkeypatch.setattr(answers, "standing", before_the_first)
    monkeypatch.setattr(Assignment, "answer", None)
    response = reading.post(case_url(study.id, 1, 1), data={**form, "diagnosis": "vasc"})
    monkeypatch.undo()
    assert real is answers.standing
    assert response.status_code == 303
    with app.app_context():
        stored = db.session.scalars(select(Answer)).one()
        assert stored.diagnosis == "bkl"


def test_a_duplicate_committed_between_reads_is_treated_as_answered(
    app: Flask, reading: FlaskClient, study: StudyRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second request saw no answer, then the first committed and moved the reader on:
    # it must still say "already answered", not "not your current case".
    page = reading.get(case_url(study.id, 1, 1))
    form = {"diagnosis": "df", "confidence": 5, "token": token_of(page)}
    assert reading.post(case_url(study.id, 1, 1), data=form).status_code == 303
    monkeypatch.setattr(Assignment, "answer", None)
    response = reading.post(case_url(study.id, 1, 1), data={**form, "diagnosis": "mel"})
    monkeypatch.undo()
    assert response.status_code == 303
    assert response.headers["Location"].endswith(case_url(study.id, 1, 2))
    with app.app_context():
        stored = db.session.scalars(select(Answer)).one()
        assert (stored.diagnosis, stored.confidence) == ("df", 5)


@pytest.mark.parametrize(
    ("diagnosis", "confidence"),
    [
        ("melanoma", 3),
        ("", 3),
        ("NV", 3),
        ("nv", 0),
        ("nv", 6),
        ("nv", "x"),
        ("nv", ""),
        ("nv", "3.0"),
        ("nv", "-1"),
        ("nv", "0003"),
        ("nv", "3" * 4301),  # int() of over 4300 digits raised: a server error
    ],
)
def test_bad_answers_are_refused(
    app: Flask, reading: FlaskClient, study: StudyRef, diagnosis: str, confidence: object
) -> None:
    page = reading.get(case_url(study.id, 1, 1))
    response = reading.post(
        case_url(study.id, 1, 1),
        data={"diagnosis": diagnosis, "confidence": confidence, "token": token_of(page)},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Nothing was saved" in html
    assert "Case 1 of 10" in html  # the same case again, to correct
    assert answer_count(app) == 0


def test_missing_fields_are_refused(app: Flask, reading: FlaskClient, study: StudyRef) -> None:
    page = reading.get(case_url(study.id, 1, 1))
    token = token_of(page)
    for data in ({"token": token}, {"diagnosis": "nv", "token": token}, {"confidence": 3}):
        assert reading.post(case_url(study.id, 1, 1), data=data).status_code == 400
    assert answer_count(app) == 0


def test_wrong_stale_and_foreign_tokens_are_refused(
    app: Flask,
    reading: FlaskClient,
    study: StudyRef,
    make_user: Callable,
    login: Callable,
) -> None:
    first_token = token_of(reading.get(case_url(study.id, 1, 1)))
    post = lambda number, token: reading.post(  # noqa: E731
        case_url(study.id, 1, number), data={"diagnosis": "nv", "confidence": 3, "token": token}
    )
    assert post(1, "0" * 40).status_code == 400
    assert post(1, "").status_code == 400
    # A token for case 1 sent to case 2's address.
    assert post(2, first_token).status_code == 400
    assert answer_count(app) == 0

    # Another reader's token for their own first case.
    other = make_user("second@example.org")
    join_study(app, other, study)
    other_client = app.test_client()
    login(other_client, other)
    consent(other_client, study.id)
    foreign = token_of(other_client.get(case_url(study.id, 1, 1)))
    assert foreign != first_token
    assert post(1, foreign).status_code == 400
    assert answer_count(app) == 0

    # A stale token: case 1 answered, then its form sent again for case 2.
    assert post(1, first_token).status_code == 303
    assert post(2, first_token).status_code == 400
    assert answer_count(app) == 1


def test_a_case_that_is_not_the_current_one_is_refused(
    app: Flask, reading: FlaskClient, reader: UserRef, study: StudyRef
) -> None:
    with app.app_context():
        enrolment = enrolment_row(reader.id, study.id)
        later = db.session.scalar(
            select(Assignment).where(
                Assignment.enrolment_id == enrolment.id,
                Assignment.session == 1,
                Assignment.position == 4,
            )
        )
        token = survey.case_token(later)
    response = reading.post(
        case_url(study.id, 1, 5), data={"diagnosis": "nv", "confidence": 3, "token": token}
    )
    assert response.status_code == 400
    assert "not your current case" in response.get_data(as_text=True)
    assert answer_count(app) == 0


def test_csrf_is_enforced_when_enabled(app: Flask, reading: FlaskClient, study: StudyRef) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    page = reading.get(case_url(study.id, 1, 1))
    html = page.get_data(as_text=True)
    assert 'name="csrf_token"' in html
    form = {"diagnosis": "nv", "confidence": 3, "token": token_of(page)}
    response = reading.post(case_url(study.id, 1, 1), data=form)
    assert response.status_code == 400
    assert answer_count(app) == 0
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert csrf
    response = reading.post(case_url(study.id, 1, 1), data={**form, "csrf_token": csrf.group(1)})
    assert response.status_code == 303
    assert answer_count(app) == 1


def test_csrf_protects_the_consent_form(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, reader)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 400
    with app.app_context():
        assert enrolment_row(reader.id, study.id) is None


def test_a_closed_study_takes_no_answers(app: Flask, reading: FlaskClient, study: StudyRef) -> None:
    page = reading.get(case_url(study.id, 1, 1))
    with app.app_context():
        db.session.get(Study, study.id).status = StudyStatus.CLOSED
        db.session.commit()
    response = reading.post(
        case_url(study.id, 1, 1), data={"diagnosis": "nv", "confidence": 3, "token": token_of(page)}
    )
    assert response.status_code == 403
    assert reading.get(case_url(study.id, 1, 1)).status_code == 403
    assert answer_count(app) == 0


def test_class_colours_stylesheet(app: Flask, reading: FlaskClient, study: StudyRef) -> None:
    response = reading.get(f"/survey/{study.id}/classes.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    css = response.get_data(as_text=True)
    with app.app_context():
        classes = db.session.get(Study, study.id).manifest["classes"]
    assert len(classes) == 7
    for item in classes:
        text = item.get("text_colour") or survey.readable_text_colour(item["colour"])
        rule = f".cls-{item['code']} {{ --class-colour: {item['colour']}; --class-text: {text}; }}"
        assert rule in css


def test_colours_are_sanitised() -> None:
    assert survey.readable_text_colour("#000000") == "#FFFFFF"
    assert survey.readable_text_colour("#FFFFFF") == "#000000"
    assert survey.readable_text_colour("#E69F00") == "#000000"
    assert survey.readable_text_colour("#0072B2") == "#FFFFFF"
    study = Study(
        classes=[
            StudyClass(
                code="nv",
                name="Nevus",
                colour="red;} body{x:1",
                text_colour="#FFF",
                definition="",
                malignant=False,
            ),
            StudyClass(
                code="SCC",
                name="Squamous cell carcinoma",
                colour="#123456",
                text_colour="#FFFFFF",
                definition="",
                malignant=True,
            ),
        ]
    )
    classes = survey.classes_of(study)
    assert [c["code"] for c in classes] == ["nv", "SCC"]  # the study's own taxonomy
    assert classes[0]["colour"] == survey.FALLBACK_COLOUR
    assert classes[0]["text_colour"] == survey.readable_text_colour(survey.FALLBACK_COLOUR)
    assert classes[1]["colour"] == "#123456" and classes[1]["malignant"]
