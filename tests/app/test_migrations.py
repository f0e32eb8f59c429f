"""The Alembic migrations: they build the models' schema from nothing, and upgrade a database
that already holds data without losing it (SQLite, and PostgreSQL when configured)."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from app import create_app, normalise_database_url
from app.auth import create_invitation, create_user
from app.bundle import import_bundle, served_name
from app.config import TestConfig
from app.extensions import db
from app.models import Role, Study, User
from tests.app.conftest import POSTGRES_URL


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


def schema_differences() -> list:
    """What autogenerate would change to make the database match the models."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_build_the_models_schema(empty_app: Flask) -> None:
    with empty_app.app_context():
        assert inspect(db.engine).get_table_names() == []
        upgrade()
        assert schema_differences() == []
        tables = set(inspect(db.engine).get_table_names())
        assert {table.name for table in db.metadata.sorted_tables} <= tables
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_upgrade_keeps_existing_data(empty_app: Flask, bundle_cache: dict[int, Path]) -> None:
    with empty_app.app_context():
        upgrade(revision="0001")
        assert "attempt_counter" not in inspect(db.engine).get_table_names()
        create_user("kept@example.org", Role.ORGANISER, password="kept password")
        db.session.commit()
        import_bundle(bundle_cache[0], "Kept study", empty_app.config["STUDY_IMAGES"])
        db.session.remove()
    result = empty_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with empty_app.app_context():
        tables = inspect(db.engine).get_table_names()
        assert "attempt_counter" in tables and "login_failure" not in tables
        assert schema_differences() == []
        user = db.session.scalar(select(User))
        assert user.email == "kept@example.org" and user.check_password("kept password")
        study = db.session.scalar(select(Study))
        assert study.name == "Kept study" and len(study.cases) == 30
        assert len(study.cases[0].neighbours) == 6
    again = empty_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert again.exit_code == 0


def test_upgrade_gives_existing_studies_to_the_organisers_who_ran_them(
    empty_app: Flask, bundle_cache: dict[int, Path]
) -> None:
    with empty_app.app_context():
        upgrade(revision="0007")
        importer = create_user("importer@example.org", Role.ORGANISER)
        inviter = create_user("inviter@example.org", Role.ORGANISER)
        create_user("bystander@example.org", Role.ORGANISER)
        db.session.commit()
        images = empty_app.config["STUDY_IMAGES"]
        run, _ = import_bundle(bundle_cache[0], "Run by two", images, created_by=importer)
        import_bundle(bundle_cache[1], "Imported on the command line", images)
        create_invitation(run, "reader@example.org", created_by=inviter)
        create_invitation(run, "again@example.org", created_by=importer)
        db.session.commit()
        db.session.remove()
        upgrade()
        rows = db.session.execute(
            text(
                'SELECT study.name, "user".email, study_member.owner FROM study_member '
                'JOIN study ON study.id = study_member.study_id JOIN "user" ON "user".id = '
                'study_member.user_id ORDER BY study.name, "user".email'
            )
        ).all()
        assert [(name, email, bool(owner)) for name, email, owner in rows] == [
            ("Run by two", "importer@example.org", True),
            ("Run by two", "inviter@example.org", False),
        ]


def test_upgrade_renames_study_images_to_keyed_names(
    empty_app: Flask, bundle_cache: dict[int, Path]
) -> None:
    with empty_app.app_context():
        upgrade(revision="i15b")
        study, _ = import_bundle(bundle_cache[0], "Old names", empty_app.config["STUDY_IMAGES"])
        # As before i15c: rows and files under the bundle's content-hash names.
        original = {served_name(p.name): p.name for p in (bundle_cache[0] / "images").iterdir()}
        folder = Path(study.image_folder)
        for keyed, name in original.items():
            (folder / keyed).rename(folder / name)
        for case in study.cases:
            case.image, case.image_rotated = original[case.image], original[case.image_rotated]
            for neighbour in case.neighbours:
                neighbour.image = original[neighbour.image]
        db.session.commit()
        db.session.remove()
        upgrade()
        study = db.session.scalar(select(Study))
        names = {c.image for c in study.cases} | {
            n.image for c in study.cases for n in c.neighbours
        }
        assert names and names <= set(original)
        assert all((folder / name).is_file() for name in names)
        assert not any((folder / name).exists() for name in original.values())
