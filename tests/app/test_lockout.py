"""The per-e-mail lock: failed logins count per address string, whether an account has it or
not, so the lock works for real accounts and tells nobody which e-mails exist."""

from flask import Flask
from sqlalchemy import func, select

from app.auth import IP_MAX_FAILURES, MAX_FAILURES, email_key
from app.extensions import db
from app.models import LoginFailure
from tests.app.conftest import PASSWORD, FakeClock, UserRef

WRONG = {"password": "wrong guess"}


def attempt(app: Flask, email: str, password: str = "wrong guess", ip: str = "10.0.0.1") -> int:
    """The status of one login from `ip`."""
    client = app.test_client()
    response = client.post(
        "/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )
    return response.status_code


def test_an_unknown_address_locks_and_unlocks_like_an_account(
    app: Flask, organiser: UserRef, clock: FakeClock
) -> None:
    for email in (organiser.email, "nobody@example.org"):
        # A new network address per try: only the per-e-mail rule is at work.
        statuses = [attempt(app, email, ip=f"10.0.1.{n}") for n in range(MAX_FAILURES + 1)]
        assert statuses == [401] * MAX_FAILURES + [429], (email, statuses)
    clock.advance(minutes=14)
    assert attempt(app, organiser.email, PASSWORD) == 429
    assert attempt(app, "nobody@example.org") == 429
    clock.advance(minutes=2)
    assert attempt(app, organiser.email, PASSWORD) == 302
    assert attempt(app, "nobody@example.org") == 401


def test_the_lock_follows_the_normalised_address(app: Flask, organiser: UserRef) -> None:
    for _ in range(MAX_FAILURES):
        attempt(app, organiser.email.upper())
    assert attempt(app, f"  {organiser.email} ", PASSWORD) == 429
    assert attempt(app, "someone.else@example.org") == 401


def test_a_good_login_resets_the_address_but_not_the_network_count(
    app: Flask, organiser: UserRef
) -> None:
    for _ in range(MAX_FAILURES - 1):
        attempt(app, organiser.email)
    assert attempt(app, organiser.email, PASSWORD) == 302
    for _ in range(MAX_FAILURES - 1):
        assert attempt(app, organiser.email) == 401  # a fresh streak
    with app.app_context():
        rows = db.session.scalars(select(LoginFailure)).all()
        assert len(rows) == 2 * (MAX_FAILURES - 1)  # all still count against 10.0.0.1
        key = email_key(organiser.email)
        assert sum(row.email_hash == key for row in rows) == MAX_FAILURES - 1
    assert MAX_FAILURES * 2 < IP_MAX_FAILURES


def test_failures_name_no_e_mail_address(app: Flask, organiser: UserRef) -> None:
    attempt(app, organiser.email)
    attempt(app, "nobody@example.org")
    with app.app_context():
        hashes = db.session.scalars(select(LoginFailure.email_hash)).all()
        assert len(hashes) == 2 and all(len(h) == 64 and "@" not in h for h in hashes)
        assert db.session.scalar(select(func.count(LoginFailure.id))) == 2
