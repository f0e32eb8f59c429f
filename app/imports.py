"""Bundle imports in the background, with their progress in the database.

An upload is saved to IMPORT_UPLOADS in 1 MB chunks (never held in memory), an `ImportJob`
row is written, and a thread started by the request does the import (unpack, validate,
re-encode, store) while the organiser's browser reloads a progress page. Why a thread: it
needs no broker or extra service, works under gunicorn's sync workers with SQLite and
PostgreSQL alike, and `flask study import` runs the same `import_bundle`. The progress and
the outcome live in the job's row, so any worker (any process) can show them.

A job that stops without finishing (its worker was restarted or killed) reports nothing any
more: after STALE without a report it is marked failed, its upload deleted, and the organiser
is asked to upload again. Nothing of it was stored: a study is written in one transaction at
the end, and its image folder is renamed into place only when complete.
"""

import logging
import secrets
import shutil
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import IO

from flask import Flask, current_app
from sqlalchemy import func, select, update

from app.auth import may_manage_study
from app.bundle import BundleError, extract_zip, import_bundle
from app.clock import now
from app.extensions import db
from app.models import ImportJob, User
from app.team import add_member
from studybundle.validate import Progress

log = logging.getLogger(__name__)

UNFINISHED = ("queued", "running")
STALE = timedelta(minutes=5)  # the longest silence of a live job is a few seconds
LEFTOVER = timedelta(days=1)  # no import runs this long: an unpacked folder this old is left
MAX_RUNNING = 2  # imports at once on the whole deployment: the machine's cores
REPORT_EVERY = 1.0  # seconds between two progress writes
CHUNK = 1 << 20
STOPPED = (
    "The import stopped without finishing (the server was probably restarted). Nothing was "
    "imported: please upload the bundle again."
)
ANOTHER_MEMBERS = (
    "This bundle was imported before, into a study you are not a member of: "
    "ask its owner or an admin to add you."
)


def uploads_folder() -> Path:
    """Where uploads wait and are unpacked (created on first use)."""
    folder = Path(current_app.config["IMPORT_UPLOADS"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def settle_stale() -> None:
    """Mark jobs that stopped reporting as failed and delete their uploads."""
    stale = db.session.scalars(
        select(ImportJob).where(
            ImportJob.state.in_(UNFINISHED), ImportJob.updated_at < now() - STALE
        )
    ).all()
    for job in stale:
        job.state, job.errors, job.updated_at = "failed", STOPPED, now()
        if job.uploaded:
            Path(job.source).unlink(missing_ok=True)
    if stale:
        db.session.commit()


def remove_leftover_scratch() -> None:
    """Delete the `unpacked-*` folders in IMPORT_UPLOADS that no import can still be using.

    A worker that dies mid-import (killed, out of memory) leaves its unpacked bundle, up to
    2 GB, behind. A folder older than STALE goes while no import is unfinished anywhere (the
    jobs are shared by every host; each host has its own folder, so this errs on keeping);
    one older than LEFTOVER goes in any case.
    """
    folder = Path(current_app.config["IMPORT_UPLOADS"])
    if not folder.is_dir():
        return
    unfinished = select(func.count(ImportJob.id)).where(ImportJob.state.in_(UNFINISHED))
    cutoff = time.time() - (LEFTOVER if db.session.scalar(unfinished) else STALE).total_seconds()
    for path in folder.glob("unpacked-*"):
        try:
            leftover = path.is_dir() and not path.is_symlink() and path.stat().st_mtime < cutoff
        except OSError:  # removed meanwhile by its own import's end
            continue
        if leftover:
            log.warning("removing %s, left by an import that stopped", path)
            shutil.rmtree(path, ignore_errors=True)


def refusal(user: User) -> str | None:
    """Why `user` may not start an import now, if they may not."""
    settle_stale()
    remove_leftover_scratch()
    unfinished = select(func.count(ImportJob.id)).where(ImportJob.state.in_(UNFINISHED))
    if db.session.scalar(unfinished.where(ImportJob.created_by_id == user.id)):
        return "Another import of yours is still running: wait until it has finished."
    if (db.session.scalar(unfinished) or 0) >= MAX_RUNNING:
        return "Other imports are running: please try again in a few minutes."
    return None


def start(user: User, name: str, upload: IO[bytes] | None, folder: Path | None) -> ImportJob:
    """Save the upload (or take the server folder), write the job and start it."""
    uploaded = upload is not None
    if upload is not None:
        source = uploads_folder() / f"{secrets.token_hex(16)}.zip"
        with source.open("wb") as sink:
            shutil.copyfileobj(upload, sink, CHUNK)
    else:
        assert folder is not None
        source = folder
    job = ImportJob(created_by_id=user.id, name=name, source=str(source), uploaded=uploaded)
    db.session.add(job)
    db.session.commit()
    if current_app.config["IMPORT_IN_BACKGROUND"]:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        worker = threading.Thread(
            target=_run_in_thread, args=(app, job.id), name=f"import-{job.id}", daemon=True
        )
        worker.start()
    else:
        run(job.id)
    return job


def _run_in_thread(app: Flask, job_id: int) -> None:
    """The thread's body: the import in its own application context and session."""
    with app.app_context():
        try:
            run(job_id)
        finally:
            db.session.remove()


def _report(job_id: int, **values: object) -> None:
    """Write a job's progress or outcome (committed, so other workers see it)."""
    db.session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(updated_at=now(), **values)
    )
    db.session.commit()


def _reporter(job_id: int) -> Progress:
    """A progress callback that writes at most once every REPORT_EVERY seconds."""
    last = {"at": 0.0, "stage": ""}

    def progress(stage: str, done: int, total: int) -> None:
        moment = time.monotonic()
        if stage != last["stage"] or moment - float(last["at"]) >= REPORT_EVERY:
            last["at"], last["stage"] = moment, stage
            _report(job_id, stage=stage, done=done, total=total)

    return progress


def run(job_id: int) -> None:
    """Do an import job: its outcome ends up in its row, whatever happens."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.state != "queued":
        return
    source, uploaded, name = Path(job.source), job.uploaded, job.name
    user = db.session.get(User, job.created_by_id)
    assert user is not None
    _report(job_id, state="running", stage="Unpacking the .zip" if uploaded else "Starting")
    try:
        with tempfile.TemporaryDirectory(prefix="unpacked-", dir=uploads_folder()) as scratch:
            folder = source
            if uploaded:
                with source.open("rb") as archive:
                    folder = extract_zip(archive, Path(scratch))
            study, created = import_bundle(
                folder, name, current_app.config["STUDY_IMAGES"], user, _reporter(job_id)
            )
            if created:
                add_member(study, user, owner=True)
                db.session.commit()
            elif not may_manage_study(user, study.id):
                _report(job_id, state="conflict", errors=ANOTHER_MEMBERS)
                return
            _report(job_id, state="done", study_id=study.id, created_study=created, stage="Done")
    except BundleError as problem:
        db.session.rollback()
        _report(job_id, state="failed", errors=f"The bundle was not imported: {problem}")
    except Exception:
        db.session.rollback()
        log.exception("bundle import %s failed", job_id)
        _report(
            job_id,
            state="failed",
            errors="The import failed with an error on the server (it is logged); nothing "
            "was imported.",
        )
    finally:
        if uploaded:
            source.unlink(missing_ok=True)
