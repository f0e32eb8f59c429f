"""The reader's profile at consent and the time on case without hidden time (SQLite, PostgreSQL)."""

import csv
import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Answer, Enrolment, ReaderRole
from tests.app.conftest import FakeClock, StudyRef, UserRef
from tests.app.reading import case_url, consent, token_of
from tests.app.world import CONSENT


def enrolments(app: Flask) -> list[Enrolment]:
    """Every enrolment (detached copies of the fields the tests read)."""
    with app.app_context():
        return list(db.session.scalars(select(Enrolment)))


def test_consent_stores_the_profile(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    login(client, reader)
    page = client.get(f"/survey/{study.id}/").get_data(as_text=True)
    for label in ("Board-certified dermatologist", "General practitioner", "Years of dermoscopy"):
        assert label in page
    form = {**CONSENT, "role": "general_practitioner", "years": "0", "exams_per_week": "3"}
    assert client.post(f"/survey/{study.id}/", data=form).status_code == 303
    (enrolment,) = enrolments(app)
    assert enrolment.profile_role == ReaderRole.GENERAL_PRACTITIONER
    assert (enrolment.profile_years, enrolment.profile_exams_per_week) == (0, 3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role", "", "Please choose your role."),
        ("role", "admin", "Not a valid choice"),
        ("years", "", "years of dermoscopy practice"),
        ("years", "-1", "from 0 to 70"),
        ("years", "71", "from 0 to 70"),
        ("years", "2.5", "Not a valid integer"),
        ("exams_per_week", "many", "Not a valid integer"),
        ("exams_per_week", "1001", "from 0 to 1000"),
    ],
)
def test_a_bad_profile_is_refused_and_nobody_is_enrolled(
    app: Flask,
    client: FlaskClient,
    reader: UserRef,
    study: StudyRef,
    login: Callable,
    field: str,
    value: str,
    message: str,
) -> None:
    login(client, reader)
    response = client.post(f"/survey/{study.id}/", data={**CONSENT, field: value})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert enrolments(app) == []


def post_answer(client: FlaskClient, study_id: int, hidden_ms: str) -> int:
    """Submit case 1 of Task 1 with the given hidden time; the status code."""
    url = case_url(study_id, 1, 1)
    page = client.get(url)
    data = {"diagnosis": "nv", "confidence": 3, "token": token_of(page), "hidden_ms": hidden_ms}
    return client.post(url, data=data).status_code


@pytest.fixture
def enrolled(client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable) -> StudyRef:
    """The reader logged in and enrolled."""
    login(client, reader)
    consent(client, study.id)
    return study


@pytest.mark.parametrize(
    ("hidden_ms", "expected"),
    [("", 0.0), ("0", 0.0), ("12500", 12.5), ("999999999", 40.0)],  # capped at the time open
)
def test_hidden_time_is_stored_and_never_exceeds_the_time_open(
    app: Flask,
    client: FlaskClient,
    enrolled: StudyRef,
    clock: FakeClock,
    hidden_ms: str,
    expected: float,
) -> None:
    client.get(case_url(enrolled.id, 1, 1))  # shown now
    clock.advance(seconds=40)
    assert post_answer(client, enrolled.id, hidden_ms) == 303
    with app.app_context():
        (stored,) = db.session.scalars(select(Answer))
        assert stored.seconds == pytest.approx(40.0)
        assert stored.hidden_seconds == pytest.approx(expected)


@pytest.mark.parametrize("hidden_ms", ["-5", "1e3", "12.5", "abc", "1" * 13])
def test_a_tampered_hidden_time_stores_nothing(
    app: Flask, client: FlaskClient, enrolled: StudyRef, hidden_ms: str
) -> None:
    assert post_answer(client, enrolled.id, hidden_ms) == 400
    with app.app_context():
        assert db.session.scalar(select(func.count(Answer.id))) == 0


def test_the_responses_export_carries_profile_and_hidden_time(
    app: Flask,
    client: FlaskClient,
    enrolled: StudyRef,
    clock: FakeClock,
    organiser: UserRef,
    login: Callable,
) -> None:
    client.get(case_url(enrolled.id, 1, 1))
    clock.advance(seconds=30)
    assert post_answer(client, enrolled.id, "10000") == 303
    client.post("/logout")
    login(client, organiser)
    response = client.get(f"/dashboard/{enrolled.id}/export/responses")
    assert response.status_code == 200, response.status_code
    (row,) = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["reader_role"] == "dermatologist"
    assert (row["reader_years"], row["reader_exams_per_week"]) == ("6", "40")
    assert (float(row["seconds"]), float(row["hidden_seconds"])) == (30.0, 10.0)
