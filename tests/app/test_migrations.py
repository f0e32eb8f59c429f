"""The Alembic migrations: they build the models' schema from nothing, and upgrade a database
that already holds data without losing it (SQLite, and PostgreSQL when configured)."""

import ast
import json
import secrets
import shutil
from datetime import datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection

from app.auth import create_user
from app.bundle import served_name
from app.extensions import db
from app.models import Answer, ImportJob, Role, Study, User
from studybundle.taxonomy import HAM10000_CODES, LIKERT


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


THESIS_CONDITIONS = [
    {"aid": "unaided", "k": 0, "labelled": True, "classifier": "", "saliency": False},
    {"aid": "se_cbir", "k": 6, "labelled": True, "classifier": "", "saliency": False},
]


def reflected_insert(connection: Connection, tables: MetaData, table: str, **values: object) -> int:
    """Insert one row into a reflected table; its primary key."""
    return connection.execute(tables.tables[table].insert().values(**values)).inserted_primary_key[
        0
    ]


def insert_two_task_study(
    bundle: Path,
    name: str = "Kept study",
    created_by_id: int | None = None,
    image_folder: str = "/nowhere",
) -> int:
    """A study as the two-task schema held it (SQL on the reflected tables: today's models
    describe a later schema), with a reader's Task 2 answer. Its id."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    queries = json.loads((bundle / "queries.json").read_text())
    tables = MetaData()
    tables.reflect(db.engine)
    moment = datetime(2026, 1, 1)
    with db.engine.begin() as connection:

        def insert(table: str, **values: object) -> int:
            return reflected_insert(connection, tables, table, **values)

        study_id = insert(
            "study",
            name=name,
            status="OPEN",
            cases_per_reader=10,
            washout_hours=0.0,
            sampling="RANDOM",
            reshuffle_task2=True,
            information="",
            manifest=manifest,
            bundle_digest=secrets.token_hex(32),
            image_folder=image_folder,
            created_at=moment,
            created_by_id=created_by_id,
            # After migration 0006a a study has conditions: the thesis's two.
            **(
                {"conditions": THESIS_CONDITIONS}
                if "conditions" in tables.tables["study"].c
                else {}
            ),
        )
        for position, query in enumerate(queries):
            case_id = insert(
                "case",
                study_id=study_id,
                position=position,
                image=query["image"][7:],
                image_rotated=query["image_rotated"][7:],
                **{
                    k: query[k]
                    for k in ("case_key", "image_id", "lesion_id", "truth", "majority_vote")
                },
            )
            for n in query["neighbours"]:
                insert(
                    "neighbour",
                    case_id=case_id,
                    image=n["image"][7:],
                    **{k: n[k] for k in ("rank", "image_id", "lesion_id", "truth", "similarity")},
                )
        user_id = insert(
            "user",
            email=f"reader.{study_id}@example.org",
            name="",
            pseudonym=f"R-{study_id}",
            role="READER",
            active=True,
            failed_logins=0,
            created_at=moment,
        )
        enrolment_id = insert(
            "enrolment", study_id=study_id, user_id=user_id, seed=1, created_at=moment
        )
        for task in (1, 2):
            assignment_id = insert(
                "assignment",
                enrolment_id=enrolment_id,
                case_id=case_id,
                task=task,
                position=0,
                rotation=0 if task == 1 else 180,
            )
        insert(
            "answer",
            assignment_id=assignment_id,
            diagnosis="mel",
            confidence=5,
            shown_at=moment,
            answered_at=moment,
            seconds=3.0,
            neighbours_shown=["x"],
            rotation=180,
            **({"shown": {}} if "shown" in tables.tables["answer"].c else {}),
        )
    return study_id


def test_upgrade_keeps_existing_data(empty_app: Flask, bundle_cache: dict[int, Path]) -> None:
    with empty_app.app_context():
        upgrade(revision="0001")
        assert "attempt_counter" not in inspect(db.engine).get_table_names()
        create_user("kept@example.org", Role.ORGANISER, password="kept password")
        db.session.commit()
        insert_two_task_study(bundle_cache[0])
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
        # Migration i10a: the study's own taxonomy, labels and k, from its format-1 manifest.
        assert [c.code for c in study.classes] == list(HAM10000_CODES)
        assert [c.code for c in study.classes if c.malignant] == ["akiec", "bcc", "mel"]
        assert study.likert == list(LIKERT) and study.neighbours_shown == 6
        assert {n.aid for n in study.cases[0].neighbours} == {"se_cbir"}
        assert study.cases[0].votes == {"se_cbir": {"6": study.cases[0].majority_vote}}
        # The study replays the thesis: Task 1 unaided, Task 2 with six SE-CBIR neighbours.
        assert [c["aid"] for c in study.conditions] == ["unaided", "se_cbir"]
        assert study.design == "sequential" and study.conditions[1]["k"] == 6
        tasks = {a.session: a.condition for e in study.enrolments for a in e.assignments}
        assert tasks == {1: 0, 2: 1}
        answer = db.session.scalar(select(Answer))
        assert answer.shown == {} and answer.neighbours_shown == ["x"]
        assert answer.hidden_seconds == 0.0
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
        importer_id, inviter_id = importer.id, inviter.id
        db.session.remove()
        run = insert_two_task_study(bundle_cache[0], "Run by two", created_by_id=importer_id)
        insert_two_task_study(bundle_cache[1], "Imported on the command line")
        tables = MetaData()
        tables.reflect(db.engine)
        with db.engine.begin() as connection:
            for email, by in (
                ("reader@example.org", inviter_id),
                ("again@example.org", importer_id),
            ):
                reflected_insert(
                    connection,
                    tables,
                    "invitation",
                    study_id=run,
                    email=email,
                    token_hash=secrets.token_hex(32),
                    created_at=datetime(2026, 1, 1),
                    expires_at=datetime(2026, 1, 1),
                    created_by_id=by,
                )
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
        # As before i15c: rows and files under the bundle's content-hash names.
        folder = Path(empty_app.config["STUDY_IMAGES"]) / "old"
        shutil.copytree(bundle_cache[0] / "images", folder)
        insert_two_task_study(bundle_cache[0], "Old names", image_folder=str(folder))
        original = {served_name(p.name): p.name for p in (bundle_cache[0] / "images").iterdir()}
        upgrade()
        study = db.session.scalar(select(Study))
        names = {c.image for c in study.cases} | {
            n.image for c in study.cases for n in c.neighbours
        }
        assert names and names <= set(original)
        assert all((folder / name).is_file() for name in names)
        assert not any((folder / name).exists() for name in original.values())


def test_upgrade_fails_the_imports_of_the_old_threads_and_caps_the_rest(
    empty_app: Flask,
) -> None:
    with empty_app.app_context():
        upgrade(revision="i15d")
        tables = MetaData()
        tables.reflect(db.engine)
        moment = datetime(2026, 1, 1)
        with db.engine.begin() as connection:
            user = reflected_insert(
                connection,
                tables,
                "user",
                email="organiser@example.org",
                name="",
                pseudonym="O-1",
                role="ORGANISER",
                active=True,
                failed_logins=0,
                created_at=moment,
            )
            for state in ("running", "queued", "done"):
                reflected_insert(
                    connection,
                    tables,
                    "import_job",
                    created_by_id=user,
                    name=state,
                    source="/nowhere",
                    uploaded=False,
                    state=state,
                    stage="Checking the images",
                    done=0,
                    total=0,
                    created_study=False,
                    created_at=moment,
                    updated_at=moment,
                )
        # Two unfinished jobs of one organiser, as the old threads allowed: they ran in the
        # workers that the upgrade's restart ended.
        upgrade()
        jobs = {job.name: job for job in db.session.scalars(select(ImportJob))}
        assert {name: job.state for name, job in jobs.items()} == {
            "running": "failed",
            "queued": "failed",
            "done": "done",
        }
        assert "the server was upgraded" in (jobs["running"].errors or "")
        names = {index["name"] for index in inspect(db.engine).get_indexes("import_job")}
        assert {"uq_import_job_unfinished_created_by_id", "uq_import_job_unfinished_slot"} <= names


def test_upgrade_repairs_addresses_stored_with_a_list_separator(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade(revision="sec_import")
        tables = MetaData()
        tables.reflect(db.engine)
        moment = datetime(2026, 1, 1)
        with db.engine.begin() as connection:
            for number, email in enumerate(
                ("derm.c@clinic.example,", "a@example.org;", "a@example.org", "fine@example.org")
            ):
                reflected_insert(
                    connection,
                    tables,
                    "user",
                    email=email,
                    name="",
                    pseudonym=f"R-{number}",
                    role="READER",
                    active=True,
                    failed_logins=0,
                    created_at=moment,
                )
        upgrade()
        emails = set(db.session.scalars(select(User.email)))
        # The comma goes; "a@example.org;" stays: another account has the address it would take.
        assert emails == {
            "derm.c@clinic.example",
            "a@example.org;",
            "a@example.org",
            "fine@example.org",
        }
        from app.models import AddressChange

        changes = db.session.execute(select(AddressChange.old_email, AddressChange.new_email)).all()
        assert changes == [("derm.c@clinic.example,", "derm.c@clinic.example")]


def test_no_migration_imports_the_projects_own_packages() -> None:
    """A migration runs as it was written, whatever app code becomes: it copies what it needs."""
    own = {"app", "studybundle", "training"}
    versions = Path(__file__).parents[2] / "migrations" / "versions"
    found = []
    for path in sorted(versions.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [(path.name, name) for name in names if name.split(".")[0] in own]
    assert found == []
