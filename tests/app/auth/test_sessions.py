"""Sessions end for good: a session cookie captured before a logout or a password change
(e.g. copied off a shared computer) no longer authenticates anyone."""

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import select

from app.auth import create_user
from app.extensions import db
from app.limits import SEEN
from app.models import Role, User
from tests.app.conftest import PASSWORD, FakeClock, UserRef

NEW_PASSWORD = "a brand new passphrase"


def logged_in(client: FlaskClient) -> bool:
    """Whether `client`'s session is logged in (the password page needs a login)."""
    return client.get("/password").status_code == 200


def replay(app: Flask, cookie: str) -> FlaskClient:
    """A fresh client that presents a captured session cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client


def test_the_session_id_carries_the_version(app: Flask, organiser: UserRef) -> None:
    with app.app_context():
        user = db.session.get(User, organiser.id)
        assert user.session_version == 0
        assert user.get_id() == f"{organiser.id}:0"


def test_a_cookie_captured_before_logout_no_longer_authenticates(
    app: Flask, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    captured = client.get_cookie("session").value
    assert logged_in(replay(app, captured))  # a copy works while the session lasts
    assert client.post("/logout").status_code == 302
    assert not logged_in(client)
    assert not logged_in(replay(app, captured))
    assert replay(app, captured).get("/admin/").status_code == 302  # to the login page


def test_logout_ends_the_sessions_on_every_device(
    app: Flask, reader: UserRef, login: Callable
) -> None:
    laptop, tablet = app.test_client(), app.test_client()
    login(laptop, reader)
    login(tablet, reader)
    laptop.post("/logout")
    assert not logged_in(tablet)
    login(tablet, reader)  # logging in again works as ever
    assert logged_in(tablet)


def test_a_cookie_captured_before_a_password_change_no_longer_authenticates(
    app: Flask, organiser: UserRef, login: Callable
) -> None:
    client, elsewhere = app.test_client(), app.test_client()
    login(client, organiser)
    login(elsewhere, organiser)
    captured = client.get_cookie("session").value
    response = client.post(
        "/password",
        data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert logged_in(client)  # the session that changed it goes on
    assert not logged_in(elsewhere)
    assert not logged_in(replay(app, captured))
    with app.app_context():
        assert db.session.get(User, organiser.id).session_version == 1


def test_a_wrong_current_password_changes_no_session(
    app: Flask, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    captured = client.get_cookie("session").value
    response = client.post(
        "/password",
        data={"current": "not it at all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert logged_in(replay(app, captured))


def test_a_session_without_a_version_or_with_a_forged_one_is_anonymous(
    app: Flask, organiser: UserRef
) -> None:
    for forged in (str(organiser.id), f"{organiser.id}:7", f"{organiser.id}:x", f"{2**40}:0"):
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = forged
            session["_fresh"] = True
        assert not logged_in(client), forged


def test_the_cookie_set_at_login_is_logged_out_when_idle(
    app: Flask, organiser: UserRef, login: Callable, clock: FakeClock
) -> None:
    """The finding: SESSION_IDLE_MINUTES=1, and still 200 after 145 s without use (the cookie
    of the login itself carried no time of use)."""
    app.config["SESSION_IDLE_MINUTES"] = 1
    client = app.test_client()
    login(client, organiser)
    clock.advance(seconds=145)
    response = client.get("/password")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "without activity" in client.get(response.headers["Location"]).text


def test_a_session_in_use_stays_and_ends_after_the_idle_time(
    app: Flask, organiser: UserRef, login: Callable, clock: FakeClock
) -> None:
    app.config["SESSION_IDLE_MINUTES"] = 1
    client = app.test_client()
    login(client, organiser)
    for _ in range(6):  # five minutes in all, never a minute without a page
        clock.advance(seconds=50)
        assert logged_in(client)
    clock.advance(seconds=61)
    assert not logged_in(client)


def test_a_session_without_a_time_of_use_is_logged_out(
    app: Flask, organiser: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, organiser)
    with client.session_transaction() as session:
        del session[SEEN]  # as in a cookie issued before logins recorded it: its age is unknown
    assert not logged_in(client)


def test_migration_0003_gives_existing_users_version_0(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade(revision="0002")
        create_user("before@example.org", Role.READER, password=PASSWORD)
        db.session.commit()
        db.session.remove()
        upgrade()  # through 0003, and whatever follows
        user = db.session.scalar(select(User).where(User.email == "before@example.org"))
        assert user.session_version == 0 and user.get_id() == f"{user.id}:0"
        db.session.remove()
    client = empty_app.test_client()
    response = client.post("/login", data={"email": "before@example.org", "password": PASSWORD})
    assert response.status_code == 302 and logged_in(client)


def test_a_password_set_from_the_command_line_ends_the_sessions(
    app: Flask, reader: UserRef, login: Callable, tmp_path
) -> None:
    tablet = app.test_client()
    login(tablet, reader)
    secret = tmp_path / "pw"
    secret.write_text(NEW_PASSWORD + "\n")
    runner = app.test_cli_runner()
    args = ["users", "set-password", "--email", reader.email.upper(), "--password-file"]
    result = runner.invoke(args=[*args, str(secret)])
    assert result.exit_code == 0, result.output
    assert not logged_in(tablet)
    with app.app_context():
        user = db.session.get(User, reader.id)
        assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)
    unknown = runner.invoke(args=["users", "set-password", "--email", "nobody@example.org"])
    assert unknown.exit_code == 1 and "no user with the e-mail" in unknown.output
