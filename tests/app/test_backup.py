"""`flask db-backup` / `flask db-restore`: round trips on SQLite and on PostgreSQL.

Each test makes data (a study, readers, enrolments, answers), backs it up, wipes or changes the
database, restores, and compares row counts and values. PostgreSQL runs in a database of its
own, created and dropped here (pg_dump copies whole databases, not one test schema).
"""

import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import create_app
from app.auth import create_invitation, create_user
from app.backup import BackupError, file_kind, restore_database, row_counts
from app.bundle import import_bundle
from app.config import TestConfig, normalise_database_url
from app.extensions import db
from app.models import Answer, Role, Study, StudyStatus, User
from app.survey import enrol

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def make_app(url: str, tmp_path: Path) -> Flask:
    """The app on database `url`, with its tables created."""
    application = create_app(
        TestConfig,
        {"SQLALCHEMY_DATABASE_URI": url, "STUDY_IMAGES": str(tmp_path / "study-images")},
    )
    with application.app_context():
        db.create_all()
    return application


def fill(application: Flask, bundle: Path) -> None:
    """A study with three enrolled readers, each with a few answers."""
    with application.app_context():
        study, _ = import_bundle(bundle, "Backed-up study", application.config["STUDY_IMAGES"])
        study.status = StudyStatus.OPEN
        study.cases_per_reader = 5
        study.washout_hours = 0.0
        for number in range(3):
            user = create_user(f"reader{number}@example.org", Role.READER, password="x" * 12)
            db.session.flush()
            invitation, _ = create_invitation(study, user.email)
            invitation.user_id = user.id
            db.session.commit()
            enrolment = enrol(study, user)
            for assignment in enrolment.assignments[: 2 + number]:
                db.session.add(
                    Answer(
                        assignment_id=assignment.id,
                        diagnosis=("mel", "nv", "bcc")[number],
                        confidence=number + 2,
                        shown_at=enrolment.created_at,
                        seconds=1.5 * (number + 1),
                        neighbours_shown=["ISIC_a", "ISIC_b"] if assignment.session == 2 else [],
                        rotation=assignment.rotation,
                    )
                )
        db.session.commit()


def snapshot(application: Flask) -> dict[str, Any]:
    """Row counts per table and a few values that must survive a round trip."""
    with application.app_context():
        answers = db.session.execute(
            select(
                Answer.assignment_id,
                Answer.diagnosis,
                Answer.confidence,
                Answer.seconds,
                Answer.neighbours_shown,
            ).order_by(Answer.assignment_id)
        ).all()
        users = db.session.execute(
            select(User.email, User.pseudonym, User.password_hash).order_by(User.id)
        ).all()
        study = db.session.scalars(select(Study)).one()
        values = {
            "answers": [tuple(row) for row in answers],
            "users": [tuple(row) for row in users],
            "study": (study.name, study.manifest, study.bundle_digest, study.status),
        }
        url = application.config["SQLALCHEMY_DATABASE_URI"]
        db.session.remove()
        db.engine.dispose()
    return {"rows": row_counts(url), **values}


def wipe(application: Flask) -> None:
    """Drop every table: the disaster a backup is for."""
    with application.app_context():
        db.drop_all()
        db.session.remove()
        db.engine.dispose()


def invoke(application: Flask, *args: str) -> Any:
    """Run a `flask` sub-command against `application`."""
    return application.test_cli_runner().invoke(args=list(args))


def round_trip(application: Flask, bundle: Path, tmp_path: Path, kind: str) -> None:
    """Back up, refuse to restore over data, wipe, restore; then force a restore over changes."""
    fill(application, bundle)
    before = snapshot(application)
    assert before["rows"]["answer"] == 2 + 3 + 4
    assert before["rows"]["assignment"] == 3 * 2 * 5

    file = tmp_path / "backups" / "secbir.backup"
    result = invoke(application, "db-backup", str(file))
    assert result.exit_code == 0, result.output
    assert "answer 9" in result.output
    assert file_kind(file) == kind

    refused = invoke(application, "db-restore", str(file))
    assert refused.exit_code != 0
    assert "not empty" in refused.output and "--force" in refused.output

    wipe(application)
    assert row_counts(application.config["SQLALCHEMY_DATABASE_URI"]) == {}
    restored = invoke(application, "db-restore", str(file))
    assert restored.exit_code == 0, restored.output
    assert snapshot(application) == before

    # Changes after the backup disappear with a forced restore; the backup is unchanged.
    with application.app_context():
        create_user("late@example.org", Role.READER, password="y" * 12)
        db.session.execute(Answer.__table__.delete().where(Answer.confidence == 4))
        db.session.commit()
    changed = snapshot(application)
    assert changed["rows"]["user"] == before["rows"]["user"] + 1
    assert changed["rows"]["answer"] == before["rows"]["answer"] - 4
    forced = invoke(application, "db-restore", "--force", str(file))
    assert forced.exit_code == 0, forced.output
    assert snapshot(application) == before


# ---------------------------------------------------------------- SQLite


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Flask]:
    """The app on a SQLite file of its own (WAL mode, as in production)."""
    application = make_app(f"sqlite:///{tmp_path / 'live.sqlite'}", tmp_path)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def test_sqlite_round_trip(
    sqlite_app: Flask, bundle_cache: dict[int, Path], tmp_path: Path
) -> None:
    round_trip(sqlite_app, bundle_cache[1], tmp_path, "sqlite")
    live = tmp_path / "live.sqlite"
    with sqlite3.connect(live) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_backup_is_one_consistent_file_while_a_writer_is_busy(
    sqlite_app: Flask, bundle_cache: dict[int, Path], tmp_path: Path
) -> None:
    fill(sqlite_app, bundle_cache[1])
    answers = snapshot(sqlite_app)["rows"]["answer"]
    writer = sqlite3.connect(tmp_path / "live.sqlite", timeout=1)
    try:
        # An uncommitted write holds the write lock; WAL lets the backup read meanwhile.
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM answer")
        file = tmp_path / "during-write.sqlite"
        result = invoke(sqlite_app, "db-backup", str(file))
        assert result.exit_code == 0, result.output
    finally:
        writer.rollback()
        writer.close()
    assert not Path(f"{file}-wal").exists()
    with sqlite3.connect(file) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT count(*) FROM answer").fetchone()[0] == answers
    assert not list(tmp_path.glob(".during-write*"))  # no partial file left behind


def test_restore_refuses_a_file_that_is_not_a_backup(sqlite_app: Flask, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database")
    result = invoke(sqlite_app, "db-restore", "--force", str(bogus))
    assert result.exit_code != 0
    assert "neither a SQLite database nor a pg_dump" in result.output


def test_restore_refuses_a_backup_of_the_other_database_kind(tmp_path: Path) -> None:
    dump = tmp_path / "postgres.dump"
    dump.write_bytes(b"PGDMP\x01\x0e\x00")
    with pytest.raises(BackupError, match="is a postgresql backup; this database is sqlite"):
        restore_database(f"sqlite:///{tmp_path / 'x.sqlite'}", dump, force=True)


def test_restore_into_a_new_sqlite_file(
    sqlite_app: Flask, bundle_cache: dict[int, Path], tmp_path: Path
) -> None:
    fill(sqlite_app, bundle_cache[1])
    file = tmp_path / "copy.sqlite"
    assert invoke(sqlite_app, "db-backup", str(file)).exit_code == 0
    fresh = f"sqlite:///{tmp_path / 'elsewhere' / 'new.sqlite'}"
    outcome = restore_database(fresh, file)
    assert outcome.rows == row_counts(sqlite_app.config["SQLALCHEMY_DATABASE_URI"])


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def postgres_app(tmp_path: Path) -> Iterator[Flask]:
    """The app on a PostgreSQL database created for this test and dropped after it."""
    if not POSTGRES_URL:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL backup test is skipped")
    server = make_url(normalise_database_url(POSTGRES_URL))
    name = f"secbir_backup_{os.getpid()}_{secrets.token_hex(3)}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    application = make_app(
        server.set(database=name).render_as_string(hide_password=False), tmp_path
    )
    try:
        yield application
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgresql_round_trip(
    postgres_app: Flask, bundle_cache: dict[int, Path], tmp_path: Path
) -> None:
    round_trip(postgres_app, bundle_cache[1], tmp_path, "postgresql")
