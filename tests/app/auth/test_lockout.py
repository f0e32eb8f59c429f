"""Password guessing, slowed: the per-e-mail lock (for accounts and unknown addresses alike),
the per-network limit that slows a guesser without locking out the readers who share the
address, limits that hold under simultaneous requests, and one hash on every path."""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import select, update

import app.auth.throttle as throttle_module
import app.models as models_module
from app.auth import IP_MAX_FAILURES, MAX_FAILURES, PAIR_MAX, email_key
from app.auth.throttle import ip_counter_of
from app.extensions import db
from app.models import AttemptCounter, Role, User
from tests.app.conftest import PASSWORD, FakeClock, StudyRef, UserRef, add_user, join_study

HOSPITAL = "10.20.30.40"  # the proxy every reader of one hospital comes through


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
        assert ip_counter_of("10.0.0.1") == 2 * (MAX_FAILURES - 1)
        row = db.session.get(AttemptCounter, f"e:{email_key(organiser.email)}")
        assert row is not None and row.hits == MAX_FAILURES - 1
    assert MAX_FAILURES * 2 < IP_MAX_FAILURES


def test_counters_name_no_e_mail_address(app: Flask, organiser: UserRef) -> None:
    attempt(app, organiser.email)
    attempt(app, "nobody@example.org")
    with app.app_context():
        keys = db.session.scalars(select(AttemptCounter.key)).all()
        assert len(keys) == 3 and not any("@" in key for key in keys), keys


# ---------------------------------------------------------------- one hospital, one address


def test_one_guessing_reader_does_not_lock_out_the_hospital(
    app: Flask, study: StudyRef, clock: FakeClock
) -> None:
    readers = [add_user(app, f"reader{n}@hospital.org", Role.READER) for n in range(30)]
    for reader in readers:
        join_study(app, reader, study)
    victims, colleagues = readers[:10], readers[10:]
    checks = 0  # wrong passwords the guesser got checked (401), not refused (429)
    for victim in victims:
        statuses = [attempt(app, victim.email, ip=HOSPITAL) for _ in range(MAX_FAILURES + 2)]
        assert set(statuses) == {401, 429}, statuses
        checks += statuses.count(401)
    # Four accounts at five guesses filled the network's allowance; then two per account.
    assert IP_MAX_FAILURES == 4 * MAX_FAILURES
    assert checks == 4 * MAX_FAILURES + 6 * PAIR_MAX
    # Every colleague behind the same address logs in with the right password, one of them
    # after a typo; the guessed accounts stay locked for the owner too, as they should.
    assert attempt(app, colleagues[0].email, "a typo here", ip=HOSPITAL) == 401
    for reader in colleagues:
        assert attempt(app, reader.email, PASSWORD, ip=HOSPITAL) == 302, reader.email
    assert attempt(app, victims[0].email, PASSWORD, ip=HOSPITAL) == 429
    clock.advance(minutes=16)
    assert attempt(app, victims[0].email, PASSWORD, ip=HOSPITAL) == 302


def test_past_the_network_limit_each_address_gets_few_tries_from_it(
    app: Flask, organiser: UserRef
) -> None:
    for number in range(IP_MAX_FAILURES):
        assert attempt(app, f"u{number}@example.org") == 401
    statuses = [attempt(app, "u99@example.org") for _ in range(PAIR_MAX + 1)]
    assert statuses == [401] * PAIR_MAX + [429]
    # From elsewhere the address is only counted per e-mail: not slowed.
    assert attempt(app, "u99@example.org", ip="10.9.9.9") == 401
    assert attempt(app, organiser.email, PASSWORD) == 302


# ---------------------------------------------------------------- simultaneous guesses


@pytest.fixture
def slow_hash(app: Flask) -> Iterator[None]:
    """Password checks that take tens of milliseconds, so that racing requests overlap."""
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:150000"
    yield
    throttle_module._dummy_hashes.clear()


def at_once(count: int, send: Callable[[int], int]) -> list[int]:
    """Run `send(n)` for n in range(count) in threads released together; their results."""
    barrier = threading.Barrier(count)

    def one(number: int) -> int:
        barrier.wait()
        return send(number)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_simultaneous_guesses_get_no_more_than_the_limit(app: Flask, slow_hash: None) -> None:
    statuses = at_once(12, lambda n: attempt(app, "target@example.org", ip=f"10.3.0.{n}"))
    assert statuses.count(401) == MAX_FAILURES, statuses
    assert statuses.count(429) == 12 - MAX_FAILURES


def test_simultaneous_guesses_past_the_network_limit_get_two_each(
    app: Flask, slow_hash: None
) -> None:
    for number in range(IP_MAX_FAILURES):
        attempt(app, f"u{number}@example.org", ip=HOSPITAL)
    statuses = at_once(8, lambda n: attempt(app, "target@example.org", ip=HOSPITAL))
    assert statuses.count(401) == PAIR_MAX, statuses


# ---------------------------------------------------------------- the other password forms


def test_guessing_the_current_password_is_throttled(app: Flask, organiser: UserRef, login) -> None:
    client = app.test_client()
    login(client, organiser)
    form = {"password": "a new password 1", "confirm": "a new password 1"}
    statuses = [
        client.post("/password", data={**form, "current": f"guess {n}"}).status_code
        for n in range(MAX_FAILURES + 2)
    ]
    assert statuses == [400] * MAX_FAILURES + [429] * 2, statuses
    refused = client.post("/password", data={**form, "current": PASSWORD})
    assert refused.status_code == 429 and "15 minutes" in refused.text
    with app.app_context():
        assert db.session.get(User, organiser.id).check_password(PASSWORD)


def test_joining_by_invitation_counts_against_the_network(
    app: Flask, study: StudyRef, other_study: StudyRef, make_user
) -> None:
    # An account with a password joins another study by typing it: the same limits apply.
    user = make_user("joiner@example.org")
    join_study(app, user, other_study)
    for number in range(IP_MAX_FAILURES):
        attempt(app, f"u{number}@example.org", ip=HOSPITAL)
    with app.app_context():
        from app.auth import create_invitation
        from app.models import Study

        _, token = create_invitation(db.session.get(Study, study.id), user.email)
        db.session.commit()
    client = app.test_client()
    statuses = [
        client.post(
            f"/invite/{token}", data={"current": "wrong"}, environ_base={"REMOTE_ADDR": HOSPITAL}
        ).status_code
        for _ in range(PAIR_MAX + 1)
    ]
    assert statuses == [401] * PAIR_MAX + [429]
    with app.app_context():
        assert ip_counter_of(HOSPITAL) == IP_MAX_FAILURES + PAIR_MAX


def test_the_invitation_form_counts_against_the_address_from_any_network(
    app: Flask, study: StudyRef, other_study: StudyRef, make_user
) -> None:
    # Guesses spread over many client addresses still get five checks per e-mail address.
    user = make_user("spread@example.org")
    join_study(app, user, other_study)
    with app.app_context():
        from app.auth import create_invitation
        from app.models import Study

        _, token = create_invitation(db.session.get(Study, study.id), user.email)
        db.session.commit()
    client = app.test_client()
    statuses = [
        client.post(
            f"/invite/{token}",
            data={"current": "wrong" if n < MAX_FAILURES else PASSWORD},
            environ_base={"REMOTE_ADDR": f"10.77.0.{n}"},
        ).status_code
        for n in range(MAX_FAILURES + 1)
    ]
    assert statuses == [401] * MAX_FAILURES + [429], statuses  # even the right password


# ---------------------------------------------------------------- timing


@pytest.fixture
def hash_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hash verified, by where it was called from."""
    calls: list[str] = []
    for module in (models_module, throttle_module):
        real = module.check_password_hash

        def counted(stored: str, password: str, real=real, name=module.__name__) -> bool:
            calls.append(name)
            return real(stored, password)

        monkeypatch.setattr(module, "check_password_hash", counted)
    return calls


def test_every_login_costs_one_hash_whether_the_account_exists_or_not(
    app: Flask, make_user, hash_checks: list[str]
) -> None:
    make_user("active@example.org")
    make_user("nopassword@example.org", password=None)
    make_user("gone@example.org")
    with app.app_context():
        db.session.execute(
            update(User).where(User.email == "gone@example.org").values(active=False)
        )
        db.session.commit()
    cases = [
        ("nobody@example.org", "whatever 1", 401),
        ("nopassword@example.org", "whatever 1", 401),
        ("gone@example.org", PASSWORD, 401),
        ("gone@example.org", "whatever 1", 401),
        ("active@example.org", "whatever 1", 401),
        ("active@example.org", PASSWORD, 302),
    ]
    for number, (email, password, status) in enumerate(cases):
        hash_checks.clear()
        assert attempt(app, email, password, ip=f"10.4.0.{number}") == status, email
        assert len(hash_checks) == 1, (email, hash_checks)


# ---------------------------------------------------------------- invitations to staff


@pytest.mark.parametrize("role", [Role.ORGANISER, Role.ADMIN])
def test_an_invitation_cannot_set_a_staff_accounts_first_password(
    app: Flask, study: StudyRef, role: Role
) -> None:
    add_user(app, "staff.nopassword@example.org", role, password=None)
    with app.app_context():
        from app.auth import create_invitation
        from app.models import Study

        _, token = create_invitation(
            db.session.get(Study, study.id), "staff.nopassword@example.org"
        )
        db.session.commit()
    client = app.test_client()
    assert client.get(f"/invite/{token}").status_code == 403
    new = "a password of mine"
    response = client.post(f"/invite/{token}", data={"password": new, "confirm": new})
    assert response.status_code == 403
    assert client.get("/admin/").status_code == 302  # no staff session
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email="staff.nopassword@example.org"))
        assert user.password_hash is None


def test_an_invitation_does_not_revive_a_deactivated_reader(app: Flask, study: StudyRef) -> None:
    add_user(app, "left@example.org", Role.READER, password=None)
    with app.app_context():
        from app.auth import create_invitation
        from app.models import Study

        db.session.execute(update(User).values(active=False))
        _, token = create_invitation(db.session.get(Study, study.id), "left@example.org")
        db.session.commit()
    new = "a password of mine"
    response = app.test_client().post(f"/invite/{token}", data={"password": new, "confirm": new})
    assert response.status_code == 403
