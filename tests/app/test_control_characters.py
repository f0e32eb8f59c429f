"""Control characters in typed text are refused as form errors, never a server error.

PostgreSQL cannot store or compare a NUL (psycopg raises DataError): every form that queries
or stores text refuses control characters before the database sees them.
"""

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.auth import create_invitation
from app.extensions import db
from app.models import Invitation, Study, User
from tests.app.checks import dump
from tests.app.conftest import StudyRef, UserRef

SETTINGS = {"name": "Fine", "cases_per_reader": "5", "washout_hours": "1", "sampling": "random"}


@pytest.mark.parametrize(
    "email", ["a\x00b@example.org", "a\x1bb@example.org", "ab@exa\x7fmple.org"]
)
def test_a_control_character_in_the_login_email_is_a_form_error(
    app: Flask, organiser: UserRef, email: str
) -> None:
    before = dump(app)
    response = app.test_client().post("/login", data={"email": email, "password": "x" * 12})
    assert response.status_code == 200 and "control character" in response.text
    assert dump(app) == before  # not even counted as a failed login


@pytest.mark.parametrize(
    "field, value",
    [("name", "Bad\x00name"), ("information", "Consent\x00text"), ("name", "Bell\x07")],
)
def test_study_settings_refuse_control_characters(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable, field: str, value: str
) -> None:
    client = app.test_client()
    login(client, organiser)
    before = dump(app)
    response = client.post(f"/admin/studies/{study.id}", data={**SETTINGS, field: value})
    assert response.status_code == 400 and "control character" in response.text
    assert dump(app) == before


def test_study_information_keeps_tabs_and_line_ends(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    text = "Line one\r\n\tindented line two"
    response = client.post(f"/admin/studies/{study.id}", data={**SETTINGS, "information": text})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Study, study.id).information.replace("\r\n", "\n") == (
            text.replace("\r\n", "\n")
        )


def test_an_invitation_email_with_a_nul_is_refused(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    before = dump(app)
    response = client.post(
        f"/admin/studies/{study.id}/invitations", data={"email": "r\x00@example.org", "days": "7"}
    )
    assert response.status_code == 400
    assert dump(app) == before


def test_an_imported_study_name_with_a_nul_is_refused(
    app: Flask, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    before = dump(app)
    response = client.post("/admin/studies/import", data={"name": "Bad\x00"})
    assert response.status_code == 400
    assert dump(app) == before


def test_a_reader_name_with_a_nul_is_refused_on_the_invitation_page(
    app: Flask, study: StudyRef
) -> None:
    with app.app_context():
        _, token = create_invitation(db.session.get(Study, study.id), "new@example.org")
        db.session.commit()
    password = "a long enough password"
    response = app.test_client().post(
        f"/invite/{token}", data={"name": "Nul\x00", "password": password, "confirm": password}
    )
    assert response.status_code == 400 and "control character" in response.text
    with app.app_context():
        assert (
            db.session.scalar(select(func.count(User.id)).where(User.email == "new@example.org"))
            == 0
        )
        invitation = db.session.scalar(select(Invitation))
        assert invitation.used_at is None
