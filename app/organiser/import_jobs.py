"""Bundle imports in the background, each in a process of its own under the kernel's limits.

The upload's request claims a place for the import (an `ImportJob` row), saves the .zip to
IMPORT_UPLOADS in 1 MB chunks (never held in memory) and starts a process that does the
import (unpack, validate, re-encode, store) while the organiser's browser follows a progress
page. The progress and the outcome live in the job's row, so any worker can show them.
`flask study import` runs the same `import_bundle` in its own command.

Why a process and not a thread of the web worker: a progressive JPEG of 40,000 scans kept an
import thread decoding for over five minutes, beyond anyone's reach, while the readers served
by the same worker waited for the interpreter. A process of its own runs under limits that the
operating system enforces whatever the code is doing (see `limit_this_process`), at a lower
priority than the web workers, and its end is plain to see. It is a fresh interpreter
(subprocess, not fork: a gthread worker may hold locks and database connections in its other
threads at the moment of a fork), which inherits no database connection or listening socket,
opens its own, loads only the configuration and the database (create_app would load every
page, SciPy with the dashboard: 75 MB and a second of CPU more) and reads the settings it needs
from its stdin (the tests configure apps in code, not in the environment). No broker, no
extra service: SQLite and PostgreSQL alike.

The caps (one unfinished import per organiser, IMPORT_MAX_RUNNING on the deployment) are two
unique indexes over the unfinished jobs (app.models.ImportJob): a job is inserted holding a
numbered slot, and the database refuses a second unfinished job of one organiser or a slot
taken twice, whatever the timing. (A count before the insert let four simultaneous uploads
of one organiser start three jobs.)

A job is declared dead on facts, never on silence: a job decoding a bomb is silent yet alive,
and "no report for 5 minutes" once failed a job whose thread ran on and let its organiser
start a second one.

- The worker that started a process waits for it in a thread and, if it ended without an
  outcome, writes why: the CPU or time limit, a signal.
- Any look at the jobs (the progress page, an upload) on the process's host checks it by pid
  and command line: a job whose process is gone is failed, with the stage it had reached.
- A job older than IMPORT_WALL_SECONDS (and a grace) is dead wherever it ran: its own alarm
  ended it.

A job keeps its files in IMPORT_UPLOADS/job-<id>/ and its staged images in
STUDY_IMAGES/.import-job-<id>/; whoever ends it, or the next look, deletes those of jobs that
are over. Nothing of a failed job was stored: a study is written in one transaction at the
end, and its image folder is renamed into place only when complete.
"""

import contextlib
import json
import logging
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.auth import may_manage_study
from app.bundle import BundleError, extract_zip, import_bundle
from app.clock import now
from app.config import ROOT, configure
from app.extensions import db
from app.models import UNFINISHED, ImportJob, User
from app.organiser.team import add_member
from studybundle.validate import Progress

log = logging.getLogger(__name__)

REPORT_EVERY = 1.0  # seconds between two progress writes
CHUNK = 1 << 20
LEGACY_SCRATCH_AGE = timedelta(days=1)  # older `unpacked-*` folders: no import runs this long
START_GRACE = timedelta(minutes=5)  # a job queued this long without a process never started
WALL_GRACE = 60  # seconds past IMPORT_WALL_SECONDS after which a job's process surely ended
CPU_GRACE = 5  # seconds of CPU between the limit's SIGXCPU and the kernel's SIGKILL
HOST = socket.gethostname()
# The import process runs child_main. Its command line names this module and ends with the
# job's id: that is how a look tells it from another process that got the same pid later.
CHILD_CODE = "from app.organiser.import_jobs import child_main; child_main()"
CHILD_SETTINGS = (
    "SECRET_KEY",  # served image names are keyed by it
    "TESTING",
    "SQLALCHEMY_DATABASE_URI",
    "SQLALCHEMY_ENGINE_OPTIONS",
    "STUDY_IMAGES",
    "IMPORT_UPLOADS",
    "IMPORT_CPU_SECONDS",
    "IMPORT_MEMORY_MB",
    "IMPORT_WALL_SECONDS",
    "IMPORT_NICE",
)
# numpy's BLAS would start a thread per core at import, each mapping a stack and a malloc
# arena that count against RLIMIT_AS (80 MB on two cores), for an import that multiplies no
# matrices.
CHILD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

NOTHING = "Nothing was imported."
AGAIN = "Nothing was imported: please upload the bundle again."
YOURS = "Another import of yours is still running: wait until it has finished."
OTHERS = "Other imports are running: please try again in a few minutes."
ANOTHER_MEMBERS = (
    "This bundle was imported before, into a study you are not a member of: "
    "ask its owner or an admin to add you."
)


class Busy(Exception):
    """An import may not start now; the message says why (the form shows it with a 429)."""


@dataclass(frozen=True)
class Limits:
    """What one import process may use (the IMPORT_* settings; 0 means no limit)."""

    cpu_seconds: int
    memory_mb: int
    wall_seconds: int
    nice: int

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "Limits":
        """The limits an app's configuration sets."""
        return cls(
            cpu_seconds=int(config["IMPORT_CPU_SECONDS"]),
            memory_mb=int(config["IMPORT_MEMORY_MB"]),
            wall_seconds=int(config["IMPORT_WALL_SECONDS"]),
            nice=int(config["IMPORT_NICE"]),
        )


def uploads_folder() -> Path:
    """Where uploads wait and are unpacked (created on first use)."""
    folder = Path(current_app.config["IMPORT_UPLOADS"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def job_folder(job_id: int) -> Path:
    """A job's upload and unpacked files: one folder, deleted whole when the job is over."""
    return uploads_folder() / f"job-{job_id}"


def staging_name(job_id: int) -> str:
    """The folder in STUDY_IMAGES where a job's re-encoded images wait until complete."""
    return f".import-job-{job_id}"


# ---------------------------------------------------------------- starting an import


def start(user: User, name: str, upload: IO[bytes] | None, folder: Path | None) -> ImportJob:
    """Claim a place for the import, save the upload (or take the server folder), start it.

    Busy when the organiser has an unfinished import or every slot is taken: nothing is
    saved then. With IMPORT_IN_BACKGROUND off the import runs here, before this returns.
    """
    job = _claim(user, name, folder)
    if upload is not None:
        try:
            source = Path(job.source)
            source.parent.mkdir(parents=True, exist_ok=True)
            with source.open("wb") as sink:
                shutil.copyfileobj(upload, sink, CHUNK)
        except BaseException:
            db.session.rollback()
            _fail(job.id, f"The upload could not be saved on the server. {AGAIN}")
            raise
    if current_app.config["IMPORT_IN_BACKGROUND"]:
        _launch(job.id)
    else:
        run(job.id)
    return job


def _claim(user: User, name: str, folder: Path | None) -> ImportJob:
    """Insert the job in a free slot (committed): the unique indexes decide, not a count.

    The taken slots read first only spare inserts that would fail; two requests that read
    the same free slot both try it, and the database lets one of them have it.
    """
    settle()
    user_id = user.id
    mine = (
        select(ImportJob.id)
        .where(ImportJob.created_by_id == user_id, ImportJob.state.in_(UNFINISHED))
        .limit(1)
    )
    unfinished = select(ImportJob.slot).where(ImportJob.state.in_(UNFINISHED))
    taken = set(db.session.scalars(unfinished))
    for slot in range(1, int(current_app.config["IMPORT_MAX_RUNNING"]) + 1):
        if db.session.scalar(mine) is not None:
            raise Busy(YOURS)
        if slot in taken:
            continue
        job = ImportJob(
            created_by_id=user_id,
            name=name,
            source=str(folder or ""),
            uploaded=folder is None,
            slot=slot,
        )
        db.session.add(job)
        try:
            db.session.flush()
            if folder is None:
                job.source = str(job_folder(job.id) / "upload.zip")
            db.session.commit()
            return job
        except IntegrityError:
            db.session.rollback()
    if db.session.scalar(mine) is not None:
        raise Busy(YOURS)
    raise Busy(OTHERS)


def child_command(job_id: int) -> list[str]:
    """The command line of job `job_id`'s process (the tests wrap it to hold the process)."""
    return [sys.executable, "-c", CHILD_CODE, str(job_id)]


def _child_environment() -> dict[str, str]:
    """This process's environment, with this checkout importable and BLAS on one thread."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, **CHILD_ENVIRONMENT, "PYTHONPATH": os.pathsep.join(paths)}


def _launch(job_id: int) -> None:
    """Start the job's process, wait for it in a thread of this worker, and note its pid.

    The process gets none of this worker's file descriptors (the listening socket, database
    connections). Its settings come on its stdin: a command line is readable by every user of
    the host, and the tests' settings are not in the environment. It stays in the worker's
    session: Linux's autogroup scheduler weighs sessions against each other before niceness
    counts, so in a session of its own (setsid) an import at nice 10 took more CPU than two
    busy processes at nice 0 together; in the worker's, a tenth of one.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    limits = Limits.of(app.config)
    try:
        settings = json.dumps({key: app.config[key] for key in CHILD_SETTINGS}).encode()
        process = subprocess.Popen(
            child_command(job_id),
            stdin=subprocess.PIPE,
            env=_child_environment(),
        )
    except (OSError, TypeError, ValueError):
        log.exception("bundle import %s could not be started", job_id)
        _fail(job_id, f"The import could not be started on the server (it is logged). {AGAIN}")
        return
    if limits.nice:  # from its first instruction: its start-up costs a second of CPU
        with contextlib.suppress(OSError):  # gone already: the thread says why
            os.setpriority(
                os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + limits.nice
            )
    threading.Thread(
        target=_watch, args=(app, job_id, process, limits), name=f"import-{job_id}", daemon=True
    ).start()
    assert process.stdin is not None
    try:
        process.stdin.write(settings)
        process.stdin.close()
    except OSError:  # it ended already: the thread says why
        pass
    db.session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(pid=process.pid, host=HOST)
    )
    db.session.commit()


def _watch(app: Flask, job_id: int, process: subprocess.Popen[bytes], limits: Limits) -> None:
    """Wait for a job's process; if it ended without an outcome, write why, and tidy up.

    A plain wait (Popen.wait with a timeout would poll twenty times a second for the whole
    import, in a web worker): the process's own alarm ends it, and a look past its deadline
    kills one that was stopped.
    """
    status = process.wait()
    with app.app_context():
        try:
            job = db.session.get(ImportJob, job_id)
            if job is not None and job.state in UNFINISHED:
                _fail(job_id, ended_message(status, job, limits))
            _tidy()
        except Exception:
            log.exception("bundle import %s: could not record how its process ended", job_id)
        finally:
            db.session.remove()


# ---------------------------------------------------------------- what became of the jobs


def _seconds(count: int) -> str:
    """ "1 second", "1800 seconds"."""
    return f"{count} second{'' if count == 1 else 's'}"


def _where(job: ImportJob) -> str:
    """The stage a job had reached, for messages: 'at “Checking the images” (0 of 44)'."""
    count = f" ({job.done} of {job.total})" if job.total else ""
    return f"at “{job.stage}”{count}"


def ended_message(status: int, job: ImportJob, limits: Limits) -> str:
    """What the organiser is told when a job's process ended (Popen's returncode) unfinished."""
    where = _where(job)
    if status == -signal.SIGXCPU:
        return (
            f"The import was stopped {where}: it had used {_seconds(limits.cpu_seconds)} of "
            f"processor time, the most one import may use (IMPORT_CPU_SECONDS). {NOTHING} A "
            "bundle this slow to check is probably broken or crafted; if it is not, ask an "
            "admin to raise the limit."
        )
    if status == -signal.SIGALRM:
        return (
            f"The import was stopped {where}: it had run for {_seconds(limits.wall_seconds)}, "
            f"the longest one import may run (IMPORT_WALL_SECONDS). {NOTHING} If the server "
            "is not simply very busy, ask an admin to raise the limit."
        )
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return (
            f"The import's process was ended by {name} {where} (by the server's "
            f"out-of-memory killer, an administrator or a restart). {AGAIN}"
        )
    return (
        f"The import's process ended {where} without finishing (exit status {status}; the "
        f"server's log says why). {AGAIN}"
    )


def memory_message(job: ImportJob, limits: Limits) -> str:
    """What the organiser is told when the import ran out of the memory it may use."""
    return (
        f"The import was stopped {_where(job)}: it needed more than the {limits.memory_mb} MB "
        f"of memory one import may use (IMPORT_MEMORY_MB). {NOTHING} A bundle that needs this "
        "much is probably crafted; if it is not, ask an admin to raise the limit."
    )


def process_running(pid: int, job_id: int) -> bool:
    """Whether process `pid` of this host is still job `job_id`'s import.

    Its command line tells it from a process that got the same pid later. A process that has
    ended but was not collected yet counts as running: the worker that started it is about to
    write why it ended, which says more than "it is gone". Without /proc (not Linux), only
    whether the pid exists.
    """
    if not Path("/proc/self").is_dir():
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    if state == "Z":
        return True
    words = [word for word in argv if word]
    return (
        bool(words)
        and words[-1] == str(job_id).encode()
        and any(CHILD_CODE.encode() in w for w in words)
    )


def _why_dead(job: ImportJob, moment: datetime, limits: Limits) -> str | None:
    """Why an unfinished job is known to have stopped, or None while it may still run.

    Past its deadline, a process of this host that still exists can only be stopped (its
    alarm would have ended it): `settle` kills it once the reason is written.
    """
    if limits.wall_seconds and job.created_at < moment - timedelta(
        seconds=limits.wall_seconds + WALL_GRACE
    ):
        return (
            f"The import was stopped {_where(job)}: it had run for "
            f"{_seconds(limits.wall_seconds)}, the longest one import may run "
            f"(IMPORT_WALL_SECONDS), or its server was restarted. {AGAIN}"
        )
    if job.pid is None:
        if job.state == "queued" and job.created_at < moment - START_GRACE:
            return f"The import never started (the server was probably restarted). {AGAIN}"
        return None
    if job.host == HOST and not process_running(job.pid, job.id):
        return (
            f"The import's process ended {_where(job)} without finishing (a limit or a "
            f"restart of the server ended it). {AGAIN}"
        )
    return None


def settle() -> None:
    """Fail the unfinished jobs known to have stopped, saying why; delete ended jobs' files."""
    limits = Limits.of(current_app.config)
    moment = now()
    jobs = db.session.scalars(select(ImportJob).where(ImportJob.state.in_(UNFINISHED))).all()
    for job in jobs:
        reason = _why_dead(job, moment, limits)
        if reason is not None:
            job_id, pid, host = job.id, job.pid, job.host
            # The reason first, then the kill: the thread that waits for the process finds
            # the job failed already and leaves this reason, not "ended by SIGKILL".
            _fail(job_id, reason)
            if pid is not None and host == HOST and process_running(pid, job_id):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    _tidy()


def _fail(job_id: int, message: str) -> None:
    """Mark a job failed with `message`, unless it has an outcome already."""
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.state.in_(UNFINISHED))
        .values(state="failed", errors=message, updated_at=now())
    )
    db.session.commit()


def _tidy() -> None:
    """Delete the files of jobs that are over: upload folders (this host's) and staged images.

    Whoever looks next does it, so that the files of a process that was killed, or of a
    worker that went with its thread, do not stay behind.
    """
    _remove_old_scratch()
    places = (
        (uploads_folder(), "job-"),
        (Path(current_app.config["STUDY_IMAGES"]), ".import-job-"),
    )
    found: dict[int, list[Path]] = {}
    for folder, prefix in places:
        for path in folder.glob(f"{prefix}*") if folder.is_dir() else ():
            number = path.name.removeprefix(prefix)
            if number.isdigit():
                found.setdefault(int(number), []).append(path)
    if not found:
        return
    running = set(
        db.session.scalars(
            select(ImportJob.id).where(ImportJob.id.in_(found), ImportJob.state.in_(UNFINISHED))
        )
    )
    for job_id, paths in found.items():
        if job_id not in running:
            for path in paths:
                shutil.rmtree(path, ignore_errors=True)


def _remove_old_scratch() -> None:
    """Delete `unpacked-*` folders older than LEGACY_SCRATCH_AGE: the scratch folders of
    imports before they ran in a process of their own (and kept their files in `job-<id>`),
    which a worker that died mid-import left behind. No import runs for a day."""
    cutoff = time.time() - LEGACY_SCRATCH_AGE.total_seconds()
    for path in uploads_folder().glob("unpacked-*"):
        try:
            old = path.is_dir() and not path.is_symlink() and path.stat().st_mtime < cutoff
        except OSError:
            continue
        if old:
            log.warning("removing %s, left by an import that stopped", path)
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- the import process


def child_main() -> None:
    """The import process: settings from stdin, the limits, then the job (argv's last word).

    It exits 0 whatever the import's outcome, which is in the job's row. Under Docker the
    gunicorn master is process 1 and adopts an import whose worker has gone; it halts the
    whole server on a child's exit status 3 or 4, which it takes for a worker that failed to
    boot.
    """
    job_id = int(sys.argv[-1])
    # Its stderr is the worker's: the server's log, where a line should say whose it is.
    logging.basicConfig(format=f"%(asctime)s [import {job_id}] %(levelname)s %(message)s")
    settings = json.loads(sys.stdin.buffer.read())
    app = Flask(__name__)
    configure(app, None, settings)
    db.init_app(app)
    limit_this_process(Limits.of(app.config))
    with app.app_context():
        try:
            run(job_id)
        except Exception:
            log.exception("bundle import %s failed outside the import", job_id)
        finally:
            db.session.remove()
            db.engine.dispose()
    sys.exit(0)


def _lower(which: int, soft: int, hard: int) -> None:
    """Set a resource limit, never above the hard limit this process already has."""
    _, current = resource.getrlimit(which)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def limit_this_process(limits: Limits) -> None:
    """Put this process under `limits`, which the kernel enforces whatever the code is doing.

    - CPU (RLIMIT_CPU), counted from now, not from the interpreter's start: at the soft limit
      the kernel sends SIGXCPU, whose default action ends the process (its watcher reads that
      from the exit status); CPU_GRACE seconds later, SIGKILL.
    - Memory (RLIMIT_AS): the address space, on top of what is mapped now. An allocation
      beyond it fails, as a MemoryError, which the import reports. (RLIMIT_RSS is not
      enforced by Linux; a cgroup would be, but needs privileges or systemd.)
    - Wall clock: alarm(), whose SIGALRM ends the process even while a decoder holds the
      interpreter, so that a process waiting on a lock cannot hold a slot for ever either.
    - No core file (RLIMIT_CORE 0): it would hold the secret key and the database password.

    (Its niceness, IMPORT_NICE, is set by the worker that starts it, as it starts.)
    """
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    _lower(resource.RLIMIT_CORE, 0, 0)
    if limits.cpu_seconds:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds
        _lower(resource.RLIMIT_CPU, soft, soft + CPU_GRACE)
    if limits.memory_mb:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[0])
        except OSError:
            log.warning("no /proc/self/statm: imports run without a memory limit")
        else:
            size = pages * resource.getpagesize() + (limits.memory_mb << 20)
            _lower(resource.RLIMIT_AS, size, size)
    if limits.wall_seconds:
        signal.alarm(limits.wall_seconds)


def _report(job_id: int, **values: object) -> None:
    """Write an unfinished job's progress or outcome (committed, so other workers see it)."""
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.state.in_(UNFINISHED))
        .values(updated_at=now(), **values)
    )
    db.session.commit()


def _reporter(job_id: int) -> Progress:
    """A progress callback that writes at most once every REPORT_EVERY seconds."""
    last: dict[str, Any] = {"at": 0.0, "stage": ""}

    def progress(stage: str, done: int, total: int) -> None:
        moment = time.monotonic()
        if stage != last["stage"] or moment - float(last["at"]) >= REPORT_EVERY:
            last["at"], last["stage"] = moment, stage
            _report(job_id, stage=stage, done=done, total=total)

    return progress


def run(job_id: int) -> None:
    """Do an import job: its outcome ends up in its row, whatever happens short of a kill."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.state != "queued":
        return
    source, uploaded, name = Path(job.source), job.uploaded, job.name
    user = db.session.get(User, job.created_by_id)
    assert user is not None
    _report(job_id, state="running", stage="Unpacking the .zip" if uploaded else "Starting")
    try:
        folder = source
        if uploaded:
            with source.open("rb") as archive:
                folder = extract_zip(archive, job_folder(job_id) / "unpacked")
        study, created = import_bundle(
            folder,
            name,
            current_app.config["STUDY_IMAGES"],
            user,
            _reporter(job_id),
            staging_name=staging_name(job_id),
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
        _fail(job_id, f"The bundle was not imported: {problem}")
    except MemoryError:
        db.session.rollback()
        job = db.session.get(ImportJob, job_id)
        assert job is not None
        _fail(job_id, memory_message(job, Limits.of(current_app.config)))
    except Exception:
        db.session.rollback()
        log.exception("bundle import %s failed", job_id)
        _fail(
            job_id,
            "The import failed with an error on the server (it is logged); nothing was imported.",
        )
    finally:
        if uploaded:
            shutil.rmtree(job_folder(job_id), ignore_errors=True)
