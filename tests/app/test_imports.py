"""Bundle imports in the background (app/imports.py, issue 15): the upload's request returns
at once, a progress page that any worker can serve follows the job in the database, and the
job ends on the new study or the reasons it was refused; a job that stopped does not block."""

import io
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app, imports
from app.clock import now
from app.config import TestConfig
from app.extensions import db
from app.models import ImportJob, Study, StudyMember
from tests.app.conftest import UserRef
from tests.app.test_security import zip_of

SHARED = ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "STUDY_IMAGES", "IMPORT_UPLOADS")


@pytest.fixture
def background(app: Flask, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Imports in a thread, held at the start of unpacking until the returned event is set."""
    app.config["IMPORT_IN_BACKGROUND"] = True
    gate = threading.Event()
    unpack = imports.extract_zip

    def held(archive: Any, into: Path) -> Path:
        assert gate.wait(30), "the test never let the import go on"
        return unpack(archive, into)

    monkeypatch.setattr(imports, "extract_zip", held)
    return gate


def finish(job_id: int) -> None:
    """Wait for the import thread of `job_id`."""
    for thread in threading.enumerate():
        if thread.name == f"import-{job_id}":
            thread.join(60)
            assert not thread.is_alive()


def job_of(app: Flask, job_id: int) -> ImportJob:
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job is not None
        db.session.expunge(job)
        return job


def upload(client: FlaskClient, data: bytes, name: str = "In the background") -> Any:
    return client.post(
        "/admin/studies/import", data={"name": name, "upload": (io.BytesIO(data), "b.zip")}
    )


def test_the_upload_returns_at_once_and_another_worker_shows_the_progress(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: threading.Event,
) -> None:
    login(client, organiser)
    response = upload(client, zip_of(bundle_dir))
    # The import is held before unpacking: the request did not wait for it.
    assert response.status_code == 303
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert response.headers["Location"] == f"/admin/imports/{job_id}"
    deadline = time.monotonic() + 30
    while job_of(app, job_id).state != "running":  # the thread has started, and waits
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not list(Path(app.config["IMPORT_UPLOADS"]).glob("unpacked-*/*"))
    # Another process (another gunicorn worker) on the same database shows the progress.
    other = create_app(TestConfig, {key: app.config[key] for key in SHARED})
    other_client = other.test_client()
    login(other_client, organiser)
    page = other_client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 200
    assert "js/importprogress.js" in page.text and "http-equiv" not in page.text
    assert "Unpacking the .zip" in page.text and "<script>" not in page.text
    background.set()
    finish(job_id)
    done = other_client.get(f"/admin/imports/{job_id}")
    assert done.status_code == 302 and done.headers["Location"].startswith("/admin/studies/")
    with app.app_context():
        study = db.session.scalar(select(Study).where(Study.name == "In the background"))
        assert study is not None and len(study.cases) == 30
        owner = db.session.scalar(select(StudyMember).where(StudyMember.study_id == study.id))
        assert owner is not None and owner.user_id == organiser.id and owner.owner
    assert "Imported" in other_client.get(done.headers["Location"]).text
    assert not any(Path(app.config["IMPORT_UPLOADS"]).iterdir())  # upload and scratch gone
    with other.app_context():
        db.engine.dispose()


def test_a_refused_bundle_ends_on_its_reasons_and_writes_nothing(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: threading.Event,
) -> None:
    (bundle_dir / "queries.json").write_text("[]")
    login(client, organiser)
    response = upload(client, zip_of(bundle_dir))
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    background.set()
    finish(job_id)
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400 and "The bundle was not imported" in page.text
    with app.app_context():
        assert db.session.scalar(select(Study.id)) is None
    assert not any(Path(app.config["IMPORT_UPLOADS"]).iterdir())


def test_a_job_that_stopped_is_marked_failed_and_blocks_nothing(
    app: Flask, client: FlaskClient, organiser: UserRef, bundle_dir: Path, login: Callable
) -> None:
    folder = Path(app.config["IMPORT_UPLOADS"])
    folder.mkdir(parents=True)
    left = folder / "left-behind.zip"
    left.write_bytes(zip_of(bundle_dir))
    with app.app_context():
        job = ImportJob(created_by_id=organiser.id, name="Crashed", source=str(left), uploaded=True)
        job.state, job.updated_at = "running", now() - imports.STALE - timedelta(seconds=1)
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    login(client, organiser)
    # While it seemed to run, a second import of the same organiser would be refused ...
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400 and "stopped without finishing" in page.text
    assert not left.exists()
    # ... once it is known to have stopped, a new one goes ahead.
    response = upload(client, zip_of(bundle_dir), name="Again")
    assert response.status_code == 302  # (inline in the tests) straight to the new study


def test_one_import_at_a_time_per_organiser(
    app: Flask, client: FlaskClient, organiser: UserRef, bundle_dir: Path, login: Callable
) -> None:
    with app.app_context():
        db.session.add(
            ImportJob(created_by_id=organiser.id, name="Busy", source="/nowhere", state="running")
        )
        db.session.commit()
    login(client, organiser)
    response = upload(client, zip_of(bundle_dir))
    assert response.status_code == 429 and "still running" in response.text
    assert not any(Path(app.config["IMPORT_UPLOADS"]).glob("*.zip"))


def test_only_its_organiser_or_an_admin_sees_a_job(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    other_organiser: UserRef,
    admin: UserRef,
    bundle_dir: Path,
    login: Callable,
) -> None:
    login(client, organiser)
    assert upload(client, zip_of(bundle_dir)).status_code == 302
    with app.app_context():
        job_id = db.session.scalar(select(ImportJob.id))
    for user, status in ((other_organiser, 404), (admin, 302), (organiser, 302)):
        visitor = app.test_client()
        login(visitor, user)
        assert visitor.get(f"/admin/imports/{job_id}").status_code == status, user.email
