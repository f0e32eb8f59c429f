"""Accounts: login, throttling, logout, password change, open redirects, invitations, CSRF."""

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.auth import PAIR_MAX, create_invitation, hash_token, is_safe_next
from app.extensions import db
from app.models import AttemptCounter, Invitation, Role, Study, StudyStatus, User
from tests.app.conftest import PASSWORD, join_study


def logged_in_as(client: FlaskClient) -> str | None:
    """The e-mail in the page header, or None when nobody is logged in."""
    page = client.get("/password")
    if page.status_code != 200:
        return None
    match = re.search(r"\(([^)@\s]+@[^)\s]+)\)", page.text)
    return match.group(1) if match else None


def test_login_sends_staff_to_studies_and_readers_to_the_survey(
    client: FlaskClient, organiser, reader, study, login
) -> None:
    assert login(client, organiser).headers["Location"] == "/admin/"
    assert logged_in_as(client) == organiser.email
    client.post("/logout")
    # A reader of one open study goes straight back to it; that page knows where they were.
    assert login(client, reader).headers["Location"] == f"/survey/{study.id}/continue"


def test_login_sends_a_reader_home_unless_exactly_one_study_is_open(
    app: Flask, client: FlaskClient, reader, study, other_study, login
) -> None:
    join_study(app, reader, other_study)
    assert login(client, reader).headers["Location"] == "/survey/"  # two open studies
    client.post("/logout")
    with app.app_context():
        for ref in (study, other_study):
            db.session.get(Study, ref.id).status = StudyStatus.CLOSED
        db.session.commit()
    assert login(client, reader).headers["Location"] == "/survey/"  # none open


def test_index_redirects_by_role(client: FlaskClient, reader, login) -> None:
    assert client.get("/").headers["Location"] == "/login"
    login(client, reader)
    assert client.get("/").headers["Location"] == "/survey/"


def test_wrong_password_and_unknown_email_look_alike(client: FlaskClient, reader) -> None:
    wrong = client.post("/login", data={"email": reader.email, "password": "nope nope nope"})
    unknown = client.post("/login", data={"email": "x@example.org", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong e-mail or password." in wrong.text and "Wrong e-mail or password." in unknown.text


def test_email_is_case_insensitive(client: FlaskClient, reader) -> None:
    response = client.post("/login", data={"email": reader.email.upper(), "password": PASSWORD})
    assert response.status_code == 302


def test_five_failures_lock_the_account_for_15_minutes(
    client: FlaskClient, app: Flask, reader, clock
) -> None:
    for _ in range(5):
        client.post("/login", data={"email": reader.email, "password": "wrong password"})
    locked = client.post("/login", data={"email": reader.email, "password": PASSWORD})
    assert locked.status_code == 429 and "locked" in locked.text
    clock.advance(minutes=14)
    assert (
        client.post("/login", data={"email": reader.email, "password": PASSWORD}).status_code == 429
    )
    clock.advance(minutes=2)
    assert (
        client.post("/login", data={"email": reader.email, "password": PASSWORD}).status_code == 302
    )
    with app.app_context():
        user = db.session.get(User, reader.id)
        assert user.failed_logins == 0 and user.locked_until is None


def test_one_address_is_slowed_across_accounts(client: FlaskClient, app: Flask, clock) -> None:
    for number in range(20):
        client.post("/login", data={"email": f"u{number}@example.org", "password": "whatever1"})
    for _ in range(PAIR_MAX):
        answer = client.post("/login", data={"email": "u99@example.org", "password": "whatever1"})
        assert answer.status_code == 401
    slowed = client.post("/login", data={"email": "u99@example.org", "password": "whatever1"})
    assert slowed.status_code == 429 and "Other accounts can still log in" in slowed.text
    other_ip = app.test_client()
    response = other_ip.post(
        "/login",
        data={"email": "u98@example.org", "password": "whatever1"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 401
    clock.advance(minutes=16)
    assert (
        client.post("/login", data={"email": "u1@example.org", "password": "x" * 10}).status_code
        == 401
    )
    with app.app_context():  # old counters are pruned: only the newest two remain
        assert db.session.scalar(select(db.func.count()).select_from(AttemptCounter)) == 2


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/\r\nSet-Cookie: x=1",
        "",
    ],
)
def test_next_never_leaves_the_site(client: FlaskClient, organiser, target: str) -> None:
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": organiser.email, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_next_to_a_local_path_is_followed(client: FlaskClient, organiser) -> None:
    response = client.post(
        "/login",
        query_string={"next": "/admin/studies/import"},
        data={"email": organiser.email, "password": PASSWORD},
    )
    assert response.headers["Location"] == "/admin/studies/import"
    assert is_safe_next("/survey/1/?a=b") and not is_safe_next("/\tevil")


def test_login_required_pages_send_anonymous_users_to_login(client: FlaskClient) -> None:
    response = client.get("/admin/studies/import")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_logout_needs_post(client: FlaskClient, reader, login) -> None:
    login(client, reader)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").headers["Location"] == "/login"
    assert logged_in_as(client) is None


def test_inactive_users_cannot_log_in(client: FlaskClient, app: Flask, reader) -> None:
    with app.app_context():
        db.session.get(User, reader.id).active = False
        db.session.commit()
    response = client.post("/login", data={"email": reader.email, "password": PASSWORD})
    assert response.status_code == 401


def test_password_change(client: FlaskClient, app: Flask, reader, login) -> None:
    login(client, reader)
    bad = client.post(
        "/password",
        data={"current": "not it at all", "password": "a new secret!", "confirm": "a new secret!"},
    )
    assert bad.status_code == 400 and "not your current password" in bad.text
    mismatch = client.post(
        "/password",
        data={"current": PASSWORD, "password": "a new secret!", "confirm": "other one!"},
    )
    assert "The passwords differ." in mismatch.text
    short = client.post(
        "/password", data={"current": PASSWORD, "password": "short", "confirm": "short"}
    )
    assert "at least 10 characters" in short.text
    ok = client.post(
        "/password",
        data={"current": PASSWORD, "password": "a new secret!", "confirm": "a new secret!"},
    )
    assert ok.status_code == 302
    client.post("/logout")
    assert (
        client.post("/login", data={"email": reader.email, "password": PASSWORD}).status_code == 401
    )
    assert (
        client.post("/login", data={"email": reader.email, "password": "a new secret!"}).status_code
        == 302
    )
    with app.app_context():
        stored = db.session.get(User, reader.id).password_hash
        assert stored.startswith("pbkdf2:sha256:1000$") and "a new secret" not in stored


# ---------------------------------------------------------------- CSRF on


@pytest.fixture
def csrf_client(app: Flask) -> FlaskClient:
    """A client of the app with CSRF protection on, as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    return app.test_client()


def csrf_token(page: str) -> str:
    """The CSRF token of the first form in `page`."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_login_without_csrf_token_is_refused(csrf_client: FlaskClient, organiser) -> None:
    response = csrf_client.post("/login", data={"email": organiser.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "security token" in response.text


def test_login_and_logout_with_csrf_token(csrf_client: FlaskClient, organiser) -> None:
    token = csrf_token(csrf_client.get("/login").text)
    response = csrf_client.post(
        "/login", data={"email": organiser.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    page = csrf_client.get("/admin/").text
    assert csrf_client.post("/logout").status_code == 400  # no token: still logged in
    assert logged_in_as(csrf_client) == organiser.email
    assert csrf_client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert logged_in_as(csrf_client) is None


# ---------------------------------------------------------------- invitations


def invite(app: Flask, study_id: int, email: str, days: int = 14) -> str:
    """Create an invitation and return its path."""
    with app.app_context():
        _, token = create_invitation(db.session.get(Study, study_id), email, days=days)
        db.session.commit()
    return f"/invite/{token}"


NEW_READER = {"name": "Dr New", "password": "a fine password", "confirm": "a fine password"}


def test_invitation_sets_a_password_logs_in_and_opens_the_welcome(
    client: FlaskClient, app: Flask, study
) -> None:
    path = invite(app, study.id, "New.Reader@Example.org")
    page = client.get(path)
    assert page.status_code == 200 and "new.reader@example.org" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    response = client.post(path, data=NEW_READER)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/survey/{study.id}/"
    assert logged_in_as(client) == "new.reader@example.org"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "new.reader@example.org"))
        assert user.role == Role.READER and user.name == "Dr New"
        assert re.fullmatch(r"R-[0-9A-F]{6}", user.pseudonym)
        invitation = db.session.scalar(select(Invitation).where(Invitation.user_id == user.id))
        assert invitation.used_at is not None
        token = path.rsplit("/", 1)[1]
        assert invitation.token_hash == hash_token(token) and token not in invitation.token_hash


def test_invitation_is_single_use(client: FlaskClient, app: Flask, study) -> None:
    path = invite(app, study.id, "once@example.org")
    assert client.post(path, data=NEW_READER).status_code == 302
    client.post("/logout")
    again = app.test_client().get(path)
    assert again.status_code == 410 and "already been used" in again.text
    assert app.test_client().post(path, data=NEW_READER).status_code == 410


def test_invitation_expires(client: FlaskClient, app: Flask, study, clock) -> None:
    path = invite(app, study.id, "late@example.org", days=2)
    clock.advance(days=1, hours=23)
    assert client.get(path).status_code == 200
    clock.advance(hours=2)
    expired = client.post(path, data=NEW_READER)
    assert expired.status_code == 410 and "expired" in expired.text
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "late@example.org")) is None


def test_wrong_token_is_404(client: FlaskClient, app: Flask, study) -> None:
    path = invite(app, study.id, "someone@example.org")
    assert client.get(path + "x").status_code == 404
    assert client.post("/invite/" + "A" * 43, data=NEW_READER).status_code == 404
    assert "not valid" in client.get("/invite/nope").text


def test_invitation_to_a_closed_study_is_refused(client: FlaskClient, app: Flask, study) -> None:
    path = invite(app, study.id, "closed@example.org")
    with app.app_context():
        db.session.get(Study, study.id).status = StudyStatus.CLOSED
        db.session.commit()
    assert client.get(path).status_code == 410


def test_invitation_form_errors_keep_the_link_usable(
    client: FlaskClient, app: Flask, study
) -> None:
    path = invite(app, study.id, "typo@example.org")
    bad = client.post(path, data={"password": "a fine password", "confirm": "another one!"})
    assert bad.status_code == 200 and "The passwords differ." in bad.text
    assert client.post(path, data=NEW_READER).status_code == 302


def test_existing_reader_joins_another_study_with_their_password(
    client: FlaskClient, app: Flask, reader, other_study
) -> None:
    path = invite(app, other_study.id, reader.email)
    page = client.get(path)
    assert "already have an account" in page.text
    assert client.post(path, data={"current": "wrong password"}).status_code == 401
    response = client.post(path, data={"current": PASSWORD})
    assert response.headers["Location"] == f"/survey/{other_study.id}/"
    with app.app_context():
        users = db.session.scalars(select(User).where(User.email == reader.email)).all()
        assert len(users) == 1


def test_invitation_uses_the_clock_for_its_times(app: Flask, study, clock) -> None:
    with app.app_context():
        invitation, _ = create_invitation(db.session.get(Study, study.id), "t@example.org", days=3)
        assert invitation.expires_at - invitation.created_at == timedelta(days=3)
        assert invitation.created_at == clock()
