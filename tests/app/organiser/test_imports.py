"""Bundle imports in the background (app/organiser/import_jobs.py, issue 15 and the import-bomb
report):
the upload's request returns at once, each import runs in a process of its own under the
kernel's CPU, memory and time limits, a progress page that any worker can serve follows the
job in the database, and the job ends on the new study or on why it stopped. The caps on
imports at once hold under simultaneous uploads; a job is declared dead on facts (its process
is gone, its time is up), never because it was silent."""

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.auth import create_user
from app.bundle import BundleError
from app.clock import now
from app.config import TestConfig
from app.extensions import db
from app.models import ImportJob, Role, Study, StudyMember
from app.organiser import import_jobs
from tests.app.bundle_factory import jpeg_bytes, many_scans_jpeg, replace_neighbour_images
from tests.app.checks import zip_of
from tests.app.conftest import PASSWORD, UserRef

SHARED = ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "STUDY_IMAGES", "IMPORT_UPLOADS")
HOLD = 'while [ ! -e "$0" ]; do sleep 0.05; done; exec "$@"'


class Gate:
    """A file whose appearance lets the held import processes start."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        """Let every held import process (and those started later) go on."""
        self.path.touch()


@pytest.fixture
def background(app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Gate]:
    """Imports in their own processes, each held before its interpreter starts until the gate
    opens: a shell that waits for the gate file, then becomes the import's command."""
    app.config["IMPORT_IN_BACKGROUND"] = True
    gate = Gate(tmp_path / "gate")
    command = import_jobs.child_command

    def held(job_id: int) -> list[str]:
        return ["sh", "-c", HOLD, str(gate.path), *command(job_id)]

    monkeypatch.setattr(import_jobs, "child_command", held)
    yield gate
    # A test that failed may leave processes held: end them, not let them loose on the next
    # test's database, and wait for the threads that collect them.
    with app.app_context():
        for job_id, pid in db.session.execute(
            select(ImportJob.id, ImportJob.pid).where(ImportJob.pid.is_not(None))
        ):
            if import_jobs.process_running(pid, job_id):
                os.kill(pid, signal.SIGKILL)
        db.session.remove()
    for thread in threading.enumerate():
        if thread.name.startswith("import-"):
            thread.join(30)


@pytest.fixture
def in_background(app: Flask) -> None:
    """Imports in their own processes, not held."""
    app.config["IMPORT_IN_BACKGROUND"] = True


def finish(job_id: int) -> None:
    """Wait for the thread that collects job `job_id`'s process (it ends after the process)."""
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


def started(response: Any) -> int:
    """The job id of an upload that was accepted for the background."""
    assert response.status_code == 303, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def leftovers(app: Flask) -> list[Path]:
    """Files of imports left on the disk: uploads, unpacked bundles, staged images."""
    uploads = Path(app.config["IMPORT_UPLOADS"])
    images = Path(app.config["STUDY_IMAGES"])
    return [
        *(uploads.iterdir() if uploads.is_dir() else ()),
        *(images.glob(".import-*") if images.is_dir() else ()),
    ]


# ---------------------------------------------------------------- the import process


def test_the_upload_returns_at_once_and_another_worker_shows_the_progress(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: Gate,
) -> None:
    login(client, organiser)
    response = upload(client, zip_of(bundle_dir))
    # The import's process is held before it starts: the request did not wait for it.
    job_id = started(response)
    assert response.headers["Location"] == f"/admin/imports/{job_id}"
    job = job_of(app, job_id)
    assert job.state == "queued" and job.pid is not None and job.host == import_jobs.HOST
    assert import_jobs.process_running(job.pid, job_id)  # a process of its own, not this one
    assert job.pid != os.getpid()
    # Below the web workers' priority from its start (nice 19 at most), in their session:
    # niceness counts only within a session under Linux's autogroup scheduling.
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + app.config["IMPORT_NICE"])
    assert os.getpriority(os.PRIO_PROCESS, job.pid) == niceness
    assert os.getsid(job.pid) == os.getsid(0)
    # Another process (another gunicorn worker) on the same database shows the progress.
    shared = {key: app.config[key] for key in SHARED}
    other = create_app(TestConfig, {**shared, "IMPORT_IN_BACKGROUND": True})
    other_client = other.test_client()
    login(other_client, organiser)
    page = other_client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 200
    assert "js/importprogress.js" in page.text and "http-equiv" not in page.text
    assert "Waiting to start" in page.text and "<script>" not in page.text
    assert "1800 seconds of processor time and 1024 MB of memory" in page.text
    background.open()
    finish(job_id)
    done = other_client.get(f"/admin/imports/{job_id}")
    assert done.status_code == 302 and done.headers["Location"].startswith("/admin/studies/")
    with app.app_context():
        study = db.session.scalar(select(Study).where(Study.name == "In the background"))
        assert study is not None and len(study.cases) == 30
        owner = db.session.scalar(select(StudyMember).where(StudyMember.study_id == study.id))
        assert owner is not None and owner.user_id == organiser.id and owner.owner
    assert "Imported" in other_client.get(done.headers["Location"]).text
    assert leftovers(app) == []  # upload and unpacked bundle gone
    with other.app_context():
        db.engine.dispose()


def test_a_refused_bundle_ends_on_its_reasons_and_writes_nothing(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: Gate,
) -> None:
    (bundle_dir / "queries.json").write_text("[]")
    login(client, organiser)
    job_id = started(upload(client, zip_of(bundle_dir)))
    background.open()
    finish(job_id)
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400 and "The bundle was not imported" in page.text
    with app.app_context():
        assert db.session.scalar(select(Study.id)) is None
    assert leftovers(app) == []


def test_a_bomb_is_refused_naming_the_image_within_seconds(
    app: Flask, client: FlaskClient, organiser: UserRef, bundle_dir: Path, login: Callable
) -> None:
    # 2048 x 2048 pixels, 5000 scans of 16 bytes (80 KB): decoding it took 12 s, and the
    # import decodes each image twice. The scan count refuses it before decoding.
    (bomb,) = replace_neighbour_images(bundle_dir, [many_scans_jpeg(5000)])
    archive = zip_of(bundle_dir)
    login(client, organiser)
    began = time.monotonic()
    response = upload(client, archive, name="Bomb")
    seconds = time.monotonic() - began
    assert response.status_code == 400
    assert f"{bomb} has 5000 scans; a bundle image may have at most 100" in response.text
    assert seconds < 5, f"the import took {seconds:.1f} s to refuse the bomb"
    with app.app_context():
        assert db.session.scalar(select(Study.id)) is None


def test_an_import_over_its_cpu_time_is_stopped_and_the_page_says_so(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    in_background: None,
) -> None:
    # Eight images of 2048 x 2048 pixels and 100 scans each, within every per-image bound:
    # checking and re-encoding them takes about 4 s of CPU, more than the 1 s allowed here.
    replace_neighbour_images(bundle_dir, [many_scans_jpeg(100, seed=n) for n in range(8)])
    app.config["IMPORT_CPU_SECONDS"] = 1
    login(client, organiser)
    job_id = started(upload(client, zip_of(bundle_dir), name="Slow"))
    finish(job_id)
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400
    assert "The import was stopped at “" in page.text
    assert "it had used 1 second of processor time" in page.text
    assert "IMPORT_CPU_SECONDS" in page.text and "Nothing was imported" in page.text
    with app.app_context():
        assert db.session.scalar(select(Study.id)) is None
    assert leftovers(app) == []  # the killed process's upload and staged images too
    # Its organiser may import again at once: the job is over, and so is its process.
    assert upload(client, zip_of(bundle_dir), name="Again").status_code == 303


def test_an_import_over_its_memory_is_stopped_and_the_page_says_so(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    in_background: None,
) -> None:
    # A plain 2048 x 2048 JPEG needs 16 MB to decode; the import may add 12 MB here.
    replace_neighbour_images(bundle_dir, [jpeg_bytes(5, size=2048)])
    app.config["IMPORT_MEMORY_MB"] = 12
    login(client, organiser)
    job_id = started(upload(client, zip_of(bundle_dir), name="Big"))
    finish(job_id)
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400
    assert "it needed more than the 12 MB of memory one import may use" in page.text
    assert "IMPORT_MEMORY_MB" in page.text
    assert leftovers(app) == []


def test_a_process_that_was_killed_ends_its_job_with_the_signal_and_its_stage(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: Gate,
) -> None:
    login(client, organiser)
    job_id = started(upload(client, zip_of(bundle_dir)))
    pid = job_of(app, job_id).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    finish(job_id)
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400
    assert "The import&#39;s process was ended by SIGKILL at “Waiting to start”" in page.text
    assert leftovers(app) == []


# ---------------------------------------------------------------- dead or alive


def dead_pid() -> int:
    """The pid of a process that has ended (and been collected)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_job_whose_process_is_gone_is_failed_with_its_stage_on_the_next_look(
    app: Flask, client: FlaskClient, organiser: UserRef, bundle_dir: Path, login: Callable
) -> None:
    # Its worker went too (a restart), so nobody collected the process: the look finds it gone.
    with app.app_context():
        job = ImportJob(created_by_id=organiser.id, name="Orphan", source="", uploaded=True, slot=1)
        job.state, job.stage, job.total = "running", "Checking the images", 44
        job.pid, job.host = dead_pid(), import_jobs.HOST
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    left = Path(app.config["IMPORT_UPLOADS"]) / f"job-{job_id}"
    left.mkdir(parents=True)
    (left / "upload.zip").write_bytes(b"left behind")
    staged = Path(app.config["STUDY_IMAGES"]) / f".import-job-{job_id}"
    staged.mkdir(parents=True)
    login(client, organiser)
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400
    assert "process ended at “Checking the images” (0 of 44) without finishing" in page.text
    assert not left.exists() and not staged.exists()
    response = upload(client, zip_of(bundle_dir), name="Again")
    assert response.status_code == 302  # (inline in the tests) straight to the new study


def test_a_silent_job_whose_process_runs_is_not_declared_dead_nor_joined_by_another(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: Gate,
) -> None:
    # A process decoding a bomb reports nothing for minutes; 312 s of silence once made the
    # page say "stopped ... nothing was imported" while it ran on, and a second upload start.
    login(client, organiser)
    job_id = started(upload(client, zip_of(bundle_dir)))
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job is not None
        job.updated_at = now() - timedelta(minutes=20)
        db.session.commit()
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 200 and "Waiting to start" in page.text
    second = upload(client, zip_of(bundle_dir), name="Second")
    assert second.status_code == 429 and "still running" in second.text
    assert job_of(app, job_id).state == "queued"


def test_a_job_past_its_time_limit_is_failed_and_blocks_nothing(
    app: Flask, client: FlaskClient, organiser: UserRef, bundle_dir: Path, login: Callable
) -> None:
    # It ran on another host (no pid to check here): its own alarm has ended it by now.
    limit = timedelta(seconds=app.config["IMPORT_WALL_SECONDS"] + import_jobs.WALL_GRACE)
    with app.app_context():
        job = ImportJob(created_by_id=organiser.id, name="Long", source="", uploaded=True, slot=1)
        job.state, job.pid, job.host = "running", 12345, "another-host"
        job.created_at = job.updated_at = now() - limit - timedelta(seconds=1)
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    login(client, organiser)
    # While it seemed to run, a second import of the same organiser would be refused ...
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400 and "the longest one import may run" in page.text
    # ... once it is known to have stopped, a new one goes ahead.
    response = upload(client, zip_of(bundle_dir), name="Again")
    assert response.status_code == 302  # (inline in the tests) straight to the new study


def test_a_process_past_its_deadline_is_killed_and_its_job_failed_by_the_next_look(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    background: Gate,
) -> None:
    # Its alarm would have ended it: still there, it can only be stopped (held, here).
    login(client, organiser)
    job_id = started(upload(client, zip_of(bundle_dir)))
    limit = timedelta(seconds=app.config["IMPORT_WALL_SECONDS"] + import_jobs.WALL_GRACE)
    with app.app_context():
        job = db.session.get(ImportJob, job_id)
        assert job is not None and job.pid is not None
        job.created_at = now() - limit - timedelta(seconds=1)
        db.session.commit()
        pid = job.pid
    page = client.get(f"/admin/imports/{job_id}")
    assert page.status_code == 400 and "the longest one import may run" in page.text
    finish(job_id)
    assert not import_jobs.process_running(pid, job_id)
    assert leftovers(app) == []


# ---------------------------------------------------------------- caps, held atomically


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
    assert not any(Path(app.config["IMPORT_UPLOADS"]).rglob("*.zip"))


def simultaneous_uploads(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    clients: list[FlaskClient],
    archive: bytes,
) -> tuple[list[int], int]:
    """Post `archive` from every client at once; the statuses, and the unfinished jobs seen.

    Every request waits for the others inside the import code, just before it claims a place
    (its first look at the uploads folder), so that all of them decide at the same moment. The
    imports that start are held until every request has either been refused or is held, then
    refused as broken, so that none finishes while another is deciding.
    """
    arrived = threading.Barrier(len(clients))
    release = threading.Event()
    held = threading.Semaphore(0)
    seen = threading.local()
    folder = import_jobs.uploads_folder

    def together() -> Path:
        if not getattr(seen, "arrived", False):
            seen.arrived = True
            with contextlib.suppress(threading.BrokenBarrierError):
                arrived.wait(10)
        return folder()

    def hold(*args: Any, **kwargs: Any) -> Any:
        held.release()
        release.wait(30)
        raise BundleError("held by the test")

    monkeypatch.setattr(import_jobs, "uploads_folder", together)
    monkeypatch.setattr(import_jobs, "import_bundle", hold)
    statuses: list[int] = []
    lock = threading.Lock()

    def post(client: FlaskClient) -> None:
        response = upload(client, archive, name="At once")
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    starts = 0
    while starts + len(statuses) < len(clients) and time.monotonic() < deadline:
        if held.acquire(timeout=0.05):
            starts += 1
    with app.app_context():
        unfinished = db.session.scalar(
            select(func.count(ImportJob.id)).where(ImportJob.state.in_(import_jobs.UNFINISHED))
        )
        db.session.remove()
    release.set()
    for thread in threads:
        thread.join(30)
    return sorted(statuses), unfinished or 0


def test_simultaneous_uploads_of_one_organiser_start_one_import(
    app: Flask,
    organiser: UserRef,
    bundle_dir: Path,
    login: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients = [app.test_client() for _ in range(4)]
    for client in clients:
        login(client, organiser)
    statuses, unfinished = simultaneous_uploads(app, monkeypatch, clients, zip_of(bundle_dir))
    assert unfinished == 1
    assert statuses == [400, 429, 429, 429]  # one started (then refused as held), three busy


def test_simultaneous_uploads_of_many_organisers_start_at_most_the_cap(
    app: Flask, bundle_dir: Path, login: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.config["IMPORT_MAX_RUNNING"] == 2
    clients = []
    for number in range(4):
        email = f"organiser{number}@example.org"
        with app.app_context():
            user = create_user(email, Role.ORGANISER, name=email, password=PASSWORD)
            db.session.commit()
            ref = UserRef(user.id, email, PASSWORD, Role.ORGANISER, "")
        client = app.test_client()
        login(client, ref)
        clients.append(client)
    statuses, unfinished = simultaneous_uploads(app, monkeypatch, clients, zip_of(bundle_dir))
    assert unfinished == 2
    assert statuses == [400, 400, 429, 429]
    assert not any(Path(app.config["IMPORT_UPLOADS"]).rglob("*.zip"))


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
