"""Fixtures for the web app's tests (shared by every tests/app module).

Every test that uses `app` runs on SQLite (a file in tmp_path) and, when TEST_DATABASE_URL is
set, again on PostgreSQL (one schema per test session, emptied before each test).

User and study fixtures return small frozen records (`UserRef`, `StudyRef`), not ORM objects:
those would be detached once the fixture's app context ends. Load the row again inside
`with app.app_context():` when a test needs it, e.g. `db.session.get(Study, study.id)`.
"""

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse

from app import create_app
from app.auth import create_invitation, create_user
from app.clock import system_now
from app.config import TestConfig, normalise_database_url
from app.extensions import db, mail
from app.models import Role, Study, StudyStatus, User
from app.organiser.team import add_member
from tests.app.bundle_factory import make_bundle
from tests.app.keyed_images import import_study
from tests.app.smtp import SmtpServer, smtp_server
from tests.app.world import World, build_world

PASSWORD = "correct horse battery staple"
ORGANISER_EMAIL = "organiser@example.org"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


@dataclass(frozen=True)
class UserRef:
    """A user created by a fixture: what tests need to log in and to look the row up."""

    id: int
    email: str
    password: str
    role: Role
    pseudonym: str


@dataclass(frozen=True)
class StudyRef:
    """A study created by a fixture."""

    id: int
    name: str
    bundle_digest: str
    image_folder: str
    cases: int


class FakeClock:
    """A clock that stands still until a test moves it (install as app.config["CLOCK"])."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or system_now().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta's keyword arguments, e.g. `advance(hours=24)`."""
        self.current += timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (naive UTC)."""
        self.current = moment


# ---------------------------------------------------------------- databases


@contextmanager
def new_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped when the block ends (skips without a server)."""
    if not POSTGRES_URL:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL variant of this test is skipped")
    name = f"test_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_engine(normalise_database_url(POSTGRES_URL))
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield name
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def on_schema(schema: str) -> dict[str, Any]:
    """The app settings that put its tables in PostgreSQL schema `schema`."""
    return {
        "SQLALCHEMY_DATABASE_URI": POSTGRES_URL,
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": True,
            "connect_args": {"options": f"-csearch_path={schema}"},
        },
    }


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test session, dropped at its end."""
    with new_schema() as name:
        state["postgres_tables_created"] = False
        yield name


state: dict[str, Any] = {}


def _prepare_postgres() -> None:
    """Create the tables once per session, then empty them before each test (fast)."""
    if not state.get("postgres_tables_created"):
        db.create_all()
        state["postgres_tables_created"] = True
        return
    tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file holding the models' empty tables, made once per test process.

    Each SQLite test starts on a copy: the copy takes half a millisecond of CPU, `db.create_all()`
    25 ms and a commit to disk, for each of some 700 tests.
    """
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.sqlite"
    application = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "STUDY_IMAGES": str(folder / "images")},
    )
    with application.app_context():
        db.create_all()
        db.session.remove()
        db.engine.dispose()  # the last connection's close folds the WAL into the file
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The application on a fresh database (SQLite, or PostgreSQL when configured)."""
    overrides: dict[str, Any] = {"STUDY_IMAGES": str(tmp_path / "study-images")}
    if request.param == "postgresql":
        overrides.update(on_schema(request.getfixturevalue("postgres_schema")))
    else:
        database = tmp_path / "test.sqlite"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), database)
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
    application = create_app(TestConfig, overrides)
    if request.param == "postgresql":
        with application.app_context():
            _prepare_postgres()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def app_of_its_own(request: pytest.FixtureRequest, folder: Path) -> Iterator[Flask]:
    """The app on a database of its own, for a fixture broader than one test (`request.param`
    says which: an SQLite copy of the empty template, or a PostgreSQL schema made for it)."""
    overrides: dict[str, Any] = {"STUDY_IMAGES": str(folder / "study-images")}
    with ExitStack() as stack:
        if request.param == "postgresql":
            overrides.update(on_schema(stack.enter_context(new_schema())))
        else:
            database = folder / "test.sqlite"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), database)
            overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database}"
        application = create_app(TestConfig, overrides)
        if request.param == "postgresql":
            with application.app_context():
                db.create_all()
        try:
            yield application
        finally:
            with application.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on an empty database with no tables at all (a throw-away PostgreSQL database)."""
    overrides = {"STUDY_IMAGES": str(tmp_path / "images")}
    admin_engine = None
    name = ""
    if request.param == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL migration test is skipped")
        base = make_url(normalise_database_url(POSTGRES_URL))
        name = f"migrations_{secrets.token_hex(4)}"
        admin_engine = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        overrides["SQLALCHEMY_DATABASE_URI"] = base.set(database=name).render_as_string(
            hide_password=False
        )
    else:
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    app = create_app(TestConfig, overrides)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if admin_engine is not None:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client (CSRF is off in TestConfig; see test_security for a test with it on)."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Runs `flask` commands against `app`."""
    return app.test_cli_runner()


@pytest.fixture
def clock(app: Flask) -> FakeClock:
    """A fake clock installed as the app's "now"; move it with `clock.advance(hours=...)`."""
    fake = FakeClock()
    app.config["CLOCK"] = fake
    return fake


@pytest.fixture
def smtp(app: Flask) -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, with the app's MAIL_* settings pointing at it."""
    with smtp_server() as server:
        app.config.update(MAIL_SERVER=server.host, MAIL_PORT=server.port)
        mail.init_app(app)  # Flask-Mail reads its settings once: again, after the change
        yield server


# ---------------------------------------------------------------- bundles and studies


@pytest.fixture(scope="session")
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Bundles built once per session (seed 0: 30 cases; seed 1: 20 cases). Do not modify."""
    root = tmp_path_factory.mktemp("bundles")
    return {
        0: make_bundle(root / "seed0", cases=30, seed=0),
        1: make_bundle(root / "seed1", cases=20, seed=1),
    }


@pytest.fixture
def bundle_dir(bundle_cache: dict[int, Path], tmp_path: Path) -> Path:
    """A fresh copy of a small valid bundle (30 cases), safe to break on purpose."""
    return Path(shutil.copytree(bundle_cache[0], tmp_path / "bundle"))


def add_study(app: Flask, folder: Path, name: str, **settings: Any) -> StudyRef:
    """Import the bundle in `folder` and apply `settings` (status, cases_per_reader, ...).

    The `organiser` fixture's account, once it exists, owns it (see that fixture).
    """
    with app.app_context():
        study = import_study(folder, name)
        for key, value in settings.items():
            setattr(study, key, value)
        organiser = db.session.scalar(select(User).where(User.email == ORGANISER_EMAIL))
        if organiser is not None:
            add_member(study, organiser, owner=True)
        db.session.commit()
        return StudyRef(
            study.id, study.name, study.bundle_digest, study.image_folder, len(study.cases)
        )


def add_test_study(app: Flask, bundle_cache: dict[int, Path]) -> StudyRef:
    """The `study` fixture's study."""
    return add_study(
        app,
        bundle_cache[0],
        "Test study",
        status=StudyStatus.OPEN,
        cases_per_reader=10,
        washout_hours=24.0,
    )


@pytest.fixture
def study(app: Flask, bundle_cache: dict[int, Path]) -> StudyRef:
    """The 30-case bundle imported, open, 10 cases per reader, 24 h wash-out."""
    return add_test_study(app, bundle_cache)


@pytest.fixture
def other_study(app: Flask, bundle_cache: dict[int, Path]) -> StudyRef:
    """A second, unrelated open study (20 cases), for isolation tests."""
    return add_study(
        app,
        bundle_cache[1],
        "Other study",
        status=StudyStatus.OPEN,
        cases_per_reader=10,
        washout_hours=24.0,
    )


# ---------------------------------------------------------------- users


def add_user(app: Flask, email: str, role: Role, password: str | None = PASSWORD) -> UserRef:
    """Create a user with `password` (None: no password yet)."""
    with app.app_context():
        user = create_user(email, role, name=email.split("@")[0], password=password)
        db.session.commit()
        return UserRef(user.id, user.email, password or "", user.role, user.pseudonym)


def join_study(app: Flask, user: UserRef, study: StudyRef) -> None:
    """Make `user` a reader of `study` as an accepted invitation would (not yet enrolled)."""
    with app.app_context():
        invitation, _ = create_invitation(db.session.get(Study, study.id), user.email)
        invitation.used_at = system_now()
        invitation.user_id = user.id
        db.session.commit()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., UserRef]:
    """Factory: `make_user("x@example.org", Role.READER, password=...)`."""
    return lambda email, role=Role.READER, password=PASSWORD: add_user(app, email, role, password)


@pytest.fixture
def admin(app: Flask) -> UserRef:
    """An administrator."""
    return add_user(app, "admin@example.org", Role.ADMIN)


def add_organiser(app: Flask) -> UserRef:
    """The `organiser` fixture's account, made owner of every study there is."""
    user = add_user(app, ORGANISER_EMAIL, Role.ORGANISER)
    with app.app_context():
        account = db.session.get(User, user.id)
        for study in db.session.scalars(select(Study)):
            add_member(study, account, owner=True)
        db.session.commit()
    return user


@pytest.fixture
def organiser(app: Flask) -> UserRef:
    """The organiser who owns every study the fixtures import (before or after this one)."""
    return add_organiser(app)


@pytest.fixture
def other_organiser(app: Flask) -> UserRef:
    """An organiser who runs none of the fixtures' studies."""
    return add_user(app, "other.organiser@example.org", Role.ORGANISER)


def add_reader(app: Flask, study: StudyRef) -> UserRef:
    """The `reader` fixture's account."""
    user = add_user(app, "reader@example.org", Role.READER)
    join_study(app, user, study)
    return user


@pytest.fixture
def reader(app: Flask, study: StudyRef) -> UserRef:
    """A reader who accepted an invitation to `study` (enrolment happens in the survey)."""
    return add_reader(app, study)


@pytest.fixture
def other_reader(app: Flask, other_study: StudyRef) -> UserRef:
    """A reader of `other_study` only."""
    user = add_user(app, "other.reader@example.org", Role.READER)
    join_study(app, user, other_study)
    return user


@pytest.fixture
def login() -> Callable[[FlaskClient, UserRef], TestResponse]:
    """`login(client, user)`: log in through the login form; asserts that it worked."""

    def do_login(client: FlaskClient, user: UserRef) -> TestResponse:
        response = client.post("/login", data={"email": user.email, "password": user.password})
        assert response.status_code == 302, f"login of {user.email} failed: {response.status}"
        return response

    return do_login


# ---------------------------------------------------------------- every role at once


@pytest.fixture
def world(
    app: Flask,
    study: StudyRef,
    other_study: StudyRef,
    reader: UserRef,
    other_reader: UserRef,
    organiser: UserRef,
    other_organiser: UserRef,
    admin: UserRef,
    login: Callable,
) -> World:
    """Every role with a session (both readers consented to their own study), on two studies.

    The organiser owns both studies; the other organiser collaborates on `other_study` only.
    """
    with app.app_context():
        add_member(db.session.get(Study, other_study.id), db.session.get(User, other_organiser.id))
        db.session.commit()
    users = {
        "reader": reader,
        "other_reader": other_reader,
        "organiser": organiser,
        "other_organiser": other_organiser,
        "admin": admin,
    }
    return build_world(app, study, other_study, users, login)
