"""CI: run the built image as an admin would, on PostgreSQL on the host and on its SQLite volume.

For each database: start the container (host networking), wait until /health answers and
Docker calls it healthy, check that `flask db upgrade` ran at start and that every process runs
as the unprivileged user, import a small bundle with `flask demo` inside the container, answer
one reader's whole Task 1 over HTTP (login, consent and answers with their CSRF tokens, like a
browser), restart the container (on SQLite: replace it by a new one on the same volume) and
find every answer again, over HTTP with the same session and in the database.
Prints the image size and the start-to-healthy times.

    .venv/bin/python .ci/container_check.py --image secbir-app:ci
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._loadkit import (  # noqa: E402
    Database,
    Reader,
    Recorder,
    build_bundle,
    free_port,
    fresh_database,
    health_ok,
)

APP_UID = "10001"  # the Dockerfile's `app` user
CASES = 3  # cases per reader: Task 1 is three answers
START_LIMIT = 180.0  # seconds a start may take on a busy 2-core machine
# Inside the container: every stored answer with its reader, session and position, as JSON.
ANSWERS_SNIPPET = """
import json, os
from sqlalchemy import create_engine, text
from app.config import normalise_database_url
engine = create_engine(normalise_database_url(os.environ["DATABASE_URL"]))
with engine.connect() as connection:
    rows = connection.execute(text(
        'SELECT u.email, s.session, s.position, a.diagnosis, a.confidence FROM answer a '
        'JOIN assignment s ON s.id = a.assignment_id JOIN enrolment e ON e.id = s.enrolment_id '
        'JOIN "user" u ON u.id = e.user_id')).all()
print(json.dumps([list(row) for row in rows]))
"""
DEMO_STUDY_LINE = re.compile(r"^Demo study (\d+) ", re.MULTILINE)
DEMO_READER_LINE = re.compile(r"^\s+reader\s+(\S+)\s+(\S+)\s*$", re.MULTILINE)


class CheckFailed(Exception):
    """The image did not behave as it must."""


def docker(*args: str, check: bool = True) -> str:
    """Run one docker command; its stdout (a failure raises with docker's message)."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise CheckFailed(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def wait_healthy(container: str, port: int, started: float) -> tuple[float, float]:
    """Seconds from `started` until /health answered 200 and until Docker said healthy."""
    http = docker_healthy = None
    while time.monotonic() - started < START_LIMIT:
        state = json.loads(docker("inspect", "-f", "{{json .State}}", container))
        if state["Status"] in ("exited", "dead"):
            raise CheckFailed(f"{container} exited with {state['ExitCode']}:\n{logs(container)}")
        if http is None and health_ok(port):
            http = time.monotonic() - started
        if docker_healthy is None and state.get("Health", {}).get("Status") == "healthy":
            docker_healthy = time.monotonic() - started
        if http is not None and docker_healthy is not None:
            return http, docker_healthy
        time.sleep(0.1)
    raise CheckFailed(f"{container} not healthy within {START_LIMIT:.0f} s:\n{logs(container)}")


def logs(container: str, tail: str = "40") -> str:
    """The container's last log lines (stdout and stderr)."""
    done = subprocess.run(["docker", "logs", "--tail", tail, container], capture_output=True)
    return (done.stdout + done.stderr).decode(errors="replace")


def check_unprivileged(container: str) -> None:
    """Every process of the container (gunicorn master and workers) runs as the app user."""
    rows = docker("top", container, "-o", "uid,pid,comm").splitlines()[1:]
    uids = {row.split()[0] for row in rows}
    if not rows or uids != {APP_UID}:
        raise CheckFailed(f"processes not all run by uid {APP_UID}: {rows}")
    status = docker("exec", container, "cat", "/proc/1/status")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    if set(uid_line.split()[1:]) != {APP_UID} or "gunicorn" not in status.splitlines()[0]:
        raise CheckFailed(f"PID 1 is not gunicorn run by uid {APP_UID}: {uid_line}")


def stored_answers(container: str) -> set[tuple[str, int, int, str, int]]:
    """The answers in the container's database, read by the container itself."""
    rows = json.loads(docker("exec", container, "python", "-c", ANSWERS_SNIPPET))
    return {
        (email, task, position + 1, dx, confidence)
        for email, task, position, dx, confidence in rows
    }


class Run:
    """One container on one database: started, checked, restarted, removed."""

    def __init__(self, image: str, kind: str, database: Database | None, bundle: Path) -> None:
        self.image = image
        self.kind = kind
        self.name = f"secbir-ci-{kind}-{os.getpid()}"
        self.volume = self.name
        self.port = free_port()
        self.bundle = bundle
        self.env = {"SECRET_KEY": secrets.token_hex(32), "PORT": str(self.port)}
        # As an admin sets it: the public name only. The checks and Docker's HEALTHCHECK reach
        # the app on 127.0.0.1, which the app always answers.
        self.env["TRUSTED_HOSTS"] = "study.example.org"
        self.env["WEB_CONCURRENCY"] = "2"
        if database is not None:
            self.env["DATABASE_URL"] = database.url
        self.times: dict[str, tuple[float, float]] = {}

    def start(self, label: str) -> None:
        """`docker run` a new container on the volume; wait for it to be healthy."""
        env = [arg for key, value in self.env.items() for arg in ("-e", f"{key}={value}")]
        started = time.monotonic()
        docker(
            "run", "-d", "--name", self.name, "--network", "host", *env,
            "-v", f"{self.volume}:/data", "-v", f"{self.bundle}:/bundle:ro",
            "--health-interval", "1s", "--health-start-period", "60s",
            self.image,
        )  # fmt: skip
        self.times[label] = wait_healthy(self.name, self.port, started)

    def restart(self, label: str) -> None:
        """`docker restart` the container; wait for it to be healthy again."""
        started = time.monotonic()
        docker("restart", "-t", "30", self.name)
        self.times[label] = wait_healthy(self.name, self.port, started)

    def replace(self, label: str) -> None:
        """Remove the container and start a new one on the same volume."""
        docker("rm", "-f", self.name)
        self.start(label)

    def remove(self) -> None:
        """The container and its volume, gone."""
        docker("rm", "-f", "-v", self.name, check=False)
        docker("volume", "rm", "-f", self.volume, check=False)

    def check(self) -> str:
        """The whole scenario; one line of figures."""
        self.start("first start")
        if "Running upgrade" not in logs(self.name, tail="all"):
            raise CheckFailed("boot.sh did not run `flask db upgrade` on the empty database")
        current = docker("exec", self.name, "flask", "db", "current")
        if "(head)" not in current:
            raise CheckFailed(f"the schema is not at the head after start: {current!r}")
        check_unprivileged(self.name)

        output = docker(
            "exec", self.name, "flask", "demo", "--bundle", "/bundle", "--cases", str(CASES)
        )
        study = DEMO_STUDY_LINE.search(output)
        readers = DEMO_READER_LINE.findall(output)
        if study is None or not readers:
            raise CheckFailed(f"`flask demo` printed no study or readers:\n{output}")
        study_id = int(study.group(1))
        email, password = readers[0]

        recorder = Recorder()
        reader = Reader(email, study_id, self.port, recorder, seed=1, password=password)
        reader.log_in()
        page = reader.current()
        while page.kind == "case" and page.task == 1:
            reply = reader.post(page, reader.choose(page))
            if reply.status != 303:
                raise CheckFailed(f"answer to {page.path} refused: HTTP {reply.status}")
            page = reader.follow(reply.location)
        answered = set(recorder.acks)
        if len(answered) != CASES or {task for _, task, *_ in answered} != {1}:
            raise CheckFailed(f"Task 1 was not answered in full: {sorted(answered)}")
        self.expect(reader, study_id, answered)

        if self.kind == "sqlite":  # the database is in the volume: a new container must do
            self.replace("new container, same volume")
        else:
            self.restart("restart")
        self.expect(reader, study_id, answered)
        figures = ", ".join(
            f"{label} → /health {http:.1f} s, Docker healthy {healthy:.1f} s"
            for label, (http, healthy) in self.times.items()
        )
        return f"{self.kind}: Task 1 ({CASES} answers) kept; {figures}"

    def expect(self, reader: Reader, study_id: int, answered: set) -> None:
        """The answers are stored, and the reader's session sees Task 1 done, Task 2 next."""
        stored = stored_answers(self.name)
        if stored != answered:
            raise CheckFailed(f"stored answers {sorted(stored)} != answered {sorted(answered)}")
        reader.browser.close()  # the container may be a new one: a new connection
        done = reader.browser.request("GET", f"/survey/{study_id}/task/1/done")
        if done.status != 200:
            raise CheckFailed(f"Task 1 is not done for the reader: HTTP {done.status}")
        page = reader.current()
        if (page.kind, page.task, page.number) != ("case", 2, 1):
            raise CheckFailed(f"the reader does not resume at Task 2, case 1: {page.path}")


def main() -> int:
    """Check the image on both databases; 0 when everything held."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()

    size = int(docker("image", "inspect", "-f", "{{.Size}}", args.image))
    print(f"image {args.image}: {size / 1e6:.0f} MB ({size} bytes)", flush=True)
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    workdir = Path(tempfile.mkdtemp(prefix="secbir-container-"))
    failed = False
    try:
        bundle = build_bundle(workdir / "bundle", cases=8, size=64, pool=20)
        for path in [workdir, *workdir.rglob("*")]:  # readable by the container's app user
            path.chmod(0o755 if path.is_dir() else 0o644)
        for kind in kinds:
            database = None
            if kind == "postgresql":
                database = fresh_database("postgresql", workdir, f"secbir_ci_{os.getpid()}")
            run = Run(args.image, kind, database, bundle)
            started = time.monotonic()
            try:
                print(run.check(), f"({time.monotonic() - started:.0f} s in all)", flush=True)
            except Exception as problem:  # any failure fails the check and is reported
                failed = True
                traceback.print_exc()
                print(f"FAILED on {kind}: {problem}\n{logs(run.name)}", file=sys.stderr, flush=True)
            finally:
                run.remove()
                if database is not None:
                    with contextlib.suppress(Exception):
                        database.drop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
