"""Shared machinery of benchmarks/load.py and benchmarks/faults.py.

A fresh database (a SQLite file in WAL mode, or a PostgreSQL database created and dropped
here), a study imported from a generated bundle with readers joined to it, gunicorn started
from the project's own gunicorn.conf.py on 127.0.0.1, and simulated readers: one keep-alive
HTTP connection and one cookie jar each, CSRF tokens read from the forms, answers posted like
a browser would. Everything is bounded in time; nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.app.bundle_factory import (  # noqa: E402
    CLASSES,
    encode,
    manifest,
    picture,
    write_image,
)
from tests.app.world import CONSENT  # noqa: E402

VENV_BIN = Path(sys.executable).parent
PG_SERVER = os.environ.get("SECBIR_LOAD_PG", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "load-test-password"
LOCAL_HOSTS = "127.0.0.1"  # TRUSTED_HOSTS: every benchmark talks to the app on loopback
HTTP_TIMEOUT = 30.0  # seconds a reader waits for one response

INPUT_TAG = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
ATTRIBUTE = re.compile(r'(\w[\w-]*)="([^"]*)"')
CASE_PATH = re.compile(r"/survey/(\d+)/task/([12])/case/(\d+)$")
CASE_LINK = re.compile(r'href="(/survey/\d+/task/[12]/case/\d+)"')
TASK2_LINK = re.compile(r'href="(/survey/\d+/task/2/)"')
CASE_TITLE = re.compile(r"<title>Task (\d), case (\d+) of (\d+)")
SUBRESOURCE = re.compile(
    r'<(?:link[^>]*\brel="stylesheet"[^>]*\bhref|script[^>]*\bsrc|img[^>]*\bsrc)="([^"]+)"'
)


# ---------------------------------------------------------------- numbers


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Sample:
    """One timed request."""

    kind: str  # "case", "answer", "nav", "health", "login"
    seconds: float
    status: int  # 0 for a connection error
    started: float  # time.monotonic() when it was sent


class Recorder:
    """Thread-safe store of samples and acknowledgements."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[Sample] = []
        self.acks: list[tuple[str, int, int, str, int]] = []  # email, task, number, dx, conf
        self.transparent_retries = 0

    def sample(self, item: Sample) -> None:
        """Keep one timed request."""
        with self.lock:
            self.samples.append(item)

    def ack(self, email: str, task: int, number: int, diagnosis: str, confidence: int) -> None:
        """Keep one acknowledged answer (the POST got its redirect)."""
        with self.lock:
            self.acks.append((email, task, number, diagnosis, confidence))

    def of(self, kind: str, since: float = 0.0, until: float = float("inf")) -> list[Sample]:
        """The samples of one kind sent within [since, until)."""
        with self.lock:
            return [s for s in self.samples if s.kind == kind and since <= s.started < until]


def summary_row(name: str, samples: list[Sample], seconds: float) -> str:
    """One line of the latency table: count, rate, percentiles in ms, errors."""
    good = [s.seconds * 1000 for s in samples if 200 <= s.status < 400]
    errors = sum(1 for s in samples if not 200 <= s.status < 400)
    rate = len(samples) / seconds if seconds > 0 else float("nan")
    return (
        f"{name:<18}{len(samples):>9}{rate:>9.1f}{percentile(good, 50):>9.1f}"
        f"{percentile(good, 95):>9.1f}{percentile(good, 99):>9.1f}{errors:>8}"
    )


TABLE_HEAD = f"{'endpoint':<18}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
TABLE_HEAD += f"{'p99 ms':>9}{'errors':>8}"


# ---------------------------------------------------------------- databases


@dataclass
class Database:
    """A fresh database for one run and how to get rid of it."""

    kind: str
    url: str
    drop: Callable[[], None]


def fresh_database(kind: str, workdir: Path, name: str) -> Database:
    """A new empty database: a SQLite file in `workdir`, or PostgreSQL database `name`."""
    if kind == "sqlite":
        path = workdir / f"{name}.sqlite"
        return Database(kind, f"sqlite:///{path}", lambda: None)
    import psycopg

    def drop() -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()  # left over from an interrupted run
    with psycopg.connect(PG_SERVER, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = PG_SERVER.replace("postgresql://", "postgresql+psycopg://", 1)
    url = url.rsplit("/", 1)[0] + f"/{name}"
    return Database(kind, url, drop)


# ---------------------------------------------------------------- the study


def build_bundle(folder: Path, cases: int, size: int, pool: int = 60, seed: int = 7) -> Path:
    """A valid bundle like tests/app/bundle_factory's, with images of `size` px (web size)."""
    rng = random.Random(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    neighbour_pool = [
        {
            "image_id": f"ISIC_L{index:07d}",
            "lesion_id": f"HAM_L{index:07d}",
            "truth": CLASSES[index % len(CLASSES)],
            "image": write_image(images, encode(picture(seed * 10**6 + 50000 + index, size))),
        }
        for index in range(pool)
    ]
    queries = []
    for index in range(cases):
        upright = picture(seed * 10**6 + index, size)
        picked = rng.sample(neighbour_pool, 6)
        similarities = sorted((rng.uniform(0.5, 1.0) for _ in range(6)), reverse=True)
        queries.append(
            {
                "case_key": secrets.token_hex(12),
                "image_id": f"ISIC_Q{index:07d}",
                "lesion_id": f"HAM_Q{index:07d}",
                "truth": CLASSES[index % len(CLASSES)],
                "majority_vote": CLASSES[index % len(CLASSES)],
                "image": write_image(images, encode(upright)),
                "image_rotated": write_image(images, encode(upright.rotate(180))),
                "neighbours": [
                    {**item, "rank": rank, "similarity": round(similarity, 4)}
                    for rank, (item, similarity) in enumerate(
                        zip(picked, similarities, strict=True), 1
                    )
                ],
            }
        )
    described = manifest(cases)
    described["web_image_size"] = size
    described["counts"]["images"] = len(list(images.iterdir()))
    (folder / "manifest.json").write_text(json.dumps(described, indent=2))
    (folder / "queries.json").write_text(json.dumps(queries, indent=2))
    return folder


@dataclass
class Setup:
    """What the server and the readers need to know about the prepared study."""

    study_id: int
    emails: list[str]
    images: Path
    secret: str


def prepare_study(
    database: Database,
    workdir: Path,
    readers: int,
    cases_per_reader: int,
    pool_cases: int,
    image_size: int,
) -> Setup:
    """Migrate the schema, import a bundle as an open study (wash-out 0), add joined readers."""
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from app.auth import create_invitation, create_user
    from app.bundle import import_bundle
    from app.clock import now
    from app.extensions import db
    from app.factory import create_app
    from app.models import Role, StudyStatus

    secret = secrets.token_hex(32)
    images = workdir / "study-images"
    app = create_app(
        {
            "SECRET_KEY": secret,
            "SQLALCHEMY_DATABASE_URI": database.url,
            "STUDY_IMAGES": images,
            "TRUSTED_HOSTS": LOCAL_HOSTS,
        }
    )
    bundle = build_bundle(workdir / "bundle", pool_cases, image_size)
    with app.app_context():
        upgrade()  # the schema exactly as boot.sh makes it
        study, _ = import_bundle(bundle, "Load study", app.config["STUDY_IMAGES"])
        study.status = StudyStatus.OPEN
        study.washout_hours = 0.0
        study.cases_per_reader = cases_per_reader
        # One scrypt hash for everybody: the same password, and set-up stays quick.
        shared_hash = generate_password_hash(PASSWORD, method="scrypt")
        emails = []
        for number in range(readers):
            user = create_user(f"reader{number:03d}@load.test", Role.READER)
            user.password_hash = shared_hash
            db.session.flush()
            invitation, _ = create_invitation(study, user.email)
            invitation.used_at = now()
            invitation.user_id = user.id
            emails.append(user.email)
        db.session.commit()
        study_id = study.id
        db.session.remove()
        db.engine.dispose()
    return Setup(study_id, emails, images, secret)


def export(ref: str, folder: Path) -> Path:
    """The project's files at git `ref`, unpacked into `folder` (the code to compare with)."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# ---------------------------------------------------------------- gunicorn


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn with the project's gunicorn.conf.py, on 127.0.0.1, started and stopped here."""

    def __init__(
        self, database: Database, setup: Setup, workdir: Path, workers: int, root: Path = ROOT
    ) -> None:
        """Start gunicorn on the code in `root` (by default this checkout)."""
        self.port = free_port()
        self.workers = workers
        self.log = workdir / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if k not in ("FLASK_DEBUG", "SECBIR_DEV")}
        env.update(
            SECRET_KEY=setup.secret,
            DATABASE_URL=database.url,
            STUDY_IMAGES=str(setup.images),
            WEB_CONCURRENCY=str(workers),
            HOST="127.0.0.1",
            PORT=str(self.port),
            TRUSTED_HOSTS=LOCAL_HOSTS,
            GUNICORN_ACCESS_LOG=str(workdir / "access.log"),
            GUNICORN_ERROR_LOG="-",
            PYTHONUNBUFFERED="1",
        )
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()

    def wait_ready(self, limit: float = 60.0) -> float:
        """Wait until /health answers 200 and every worker is up; the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < limit:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            if len(self.worker_pids()) == self.workers and health_ok(self.port):
                return time.monotonic() - start
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn was not ready within {limit:.0f} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        """The master's children: the workers."""
        pid = self.process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(value) for value in text.split()]

    def stop(self) -> None:
        """Stop gunicorn gracefully (SIGTERM to the master), then by force if need be."""
        if self.process.poll() is None:
            workers = self.worker_pids()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                for pid in [*workers, self.process.pid]:
                    kill_quietly(pid)
                self.process.wait(timeout=10)

    def error_lines(self) -> list[str]:
        """Lines of the server log that report an error or a traceback."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        keys = ("Traceback", "[ERROR]", "ERROR in", "WORKER TIMEOUT")
        return [line for line in text.splitlines() if any(key in line for key in keys)]


def kill_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to one process we started; gone already is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (VmRSS), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def health_ok(port: int) -> bool:
    """Whether /health answers 200 within two seconds."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/health")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


# ---------------------------------------------------------------- a browser


class HTTPFailure(Exception):
    """A request that got no usable answer: a connection error or a 5xx."""


@dataclass
class Reply:
    """A response: status, headers (lower-case names), body, where it was asked from."""

    status: int
    headers: dict[str, str]
    body: bytes
    path: str

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        """The redirect target as a path on this host."""
        parts = urlsplit(self.headers.get("location", ""))
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Browser:
    """One keep-alive connection and one cookie jar, like one browser tab."""

    port: int
    recorder: Recorder
    cookies: dict[str, str] = field(default_factory=dict)
    connection: http.client.HTTPConnection | None = None
    # Resend once when a kept-alive connection turns out closed, as browsers do; the fault
    # benchmark turns this off so that every dropped connection counts as an error.
    resend_on_stale: bool = True

    def close(self) -> None:
        """Drop the connection (the cookies stay)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _send(
        self, method: str, path: str, body: str | None, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """One exchange on the kept-alive connection (a fresh one if there is none)."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=HTTP_TIMEOUT
            )
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        return response, response.read()

    def request(
        self,
        method: str,
        path: str,
        fields: dict[str, str] | None = None,
        kind: str = "nav",
        extra: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request and time it; connection errors and 5xx raise HTTPFailure."""
        headers = {"Accept": "text/html", **(extra or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.monotonic()
        reused = self.connection is not None
        try:
            try:
                response, data = self._send(method, path, body, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not (reused and self.resend_on_stale):
                    raise
                # A kept-alive connection the server had closed: browsers resend once.
                self.close()
                with self.recorder.lock:
                    self.recorder.transparent_retries += 1
                response, data = self._send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as problem:
            self.close()
            self.recorder.sample(Sample(kind, time.monotonic() - started, 0, started))
            raise HTTPFailure(f"{method} {path}: {problem!r}") from None
        seconds = time.monotonic() - started
        self.recorder.sample(Sample(kind, seconds, response.status, started))
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or (not morsel.value and morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if response.will_close:
            self.close()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data, path)
        if reply.status >= 500:
            raise HTTPFailure(f"{method} {path}: HTTP {reply.status}")
        return reply


def input_value(html: str, name: str) -> str:
    """The value of the <input name=NAME> in a page ('' if absent)."""
    for tag in INPUT_TAG.findall(html):
        attributes = dict(ATTRIBUTE.findall(tag))
        if attributes.get("name") == name:
            return attributes.get("value", "")
    return ""


def radio_values(html: str, name: str) -> list[str]:
    """The values offered by the radio buttons called NAME."""
    values = []
    for tag in INPUT_TAG.findall(html):
        attributes = dict(ATTRIBUTE.findall(tag))
        if attributes.get("name") == name and attributes.get("type") == "radio":
            values.append(attributes.get("value", ""))
    return values


# ---------------------------------------------------------------- a reader


@dataclass
class Page:
    """Where a reader stands: a case page (task, number of size) or the end of the study."""

    kind: str  # "case" or "done"
    path: str = ""
    html: str = ""
    task: int = 0
    number: int = 0
    size: int = 0


class Reader:
    """A simulated reader: logs in, consents, and answers case after case."""

    def __init__(
        self,
        email: str,
        study_id: int,
        port: int,
        recorder: Recorder,
        seed: int,
        resend_on_stale: bool = True,
        password: str = PASSWORD,
    ) -> None:
        self.email = email
        self.password = password
        self.study_id = study_id
        self.recorder = recorder
        self.browser = Browser(port, recorder, resend_on_stale=resend_on_stale)
        self.rng = random.Random(seed)
        self.errors = 0

    def log_in(self) -> None:
        """Log in through the form (CSRF token from the page), then consent (enrols)."""
        page = self.browser.request("GET", "/login")
        fields = {
            "csrf_token": input_value(page.text, "csrf_token"),
            "email": self.email,
            "password": self.password,
        }
        reply = self.browser.request("POST", "/login", fields, kind="login")
        if reply.status != 302:
            raise RuntimeError(f"{self.email} could not log in: HTTP {reply.status}")
        welcome = self.browser.request("GET", f"/survey/{self.study_id}/")
        token = input_value(welcome.text, "csrf_token")
        fields = {"csrf_token": token, **CONSENT}
        reply = self.browser.request("POST", f"/survey/{self.study_id}/", fields)
        if reply.status != 303:
            raise RuntimeError(f"{self.email} could not consent: HTTP {reply.status}")
        # The others are still logging in: start afresh rather than on an idle connection.
        self.browser.close()

    def follow(self, path: str) -> Page:
        """GET `path`, following redirects and task pages, to the next case or the end."""
        for _ in range(8):
            kind = "case" if CASE_PATH.search(path) else "nav"
            reply = self.browser.request("GET", path, kind=kind)
            if reply.status in (301, 302, 303):
                path = reply.location
                continue
            if reply.status != 200:
                raise HTTPFailure(f"GET {path}: HTTP {reply.status}")
            html = reply.text
            found = CASE_PATH.search(path)
            if found:
                title = CASE_TITLE.search(html)
                size = int(title.group(3)) if title else 0
                return Page("case", path, html, int(found.group(2)), int(found.group(3)), size)
            link = CASE_LINK.search(html) or TASK2_LINK.search(html)
            if link:
                path = link.group(1)
                continue
            if path.endswith("/task/2/done"):
                return Page("done", path)
            raise HTTPFailure(f"GET {path}: a page without a way on")
        raise HTTPFailure(f"GET {path}: too many redirects")

    def current(self) -> Page:
        """Re-fetch where the reader stands (after an error, or at the start)."""
        return self.follow(f"/survey/{self.study_id}/continue")

    def choose(self, page: Page) -> dict[str, str]:
        """An answer to the case on `page`: a diagnosis and a confidence, CSRF and case token."""
        return {
            "csrf_token": input_value(page.html, "csrf_token"),
            "token": input_value(page.html, "token"),
            "diagnosis": self.rng.choice(radio_values(page.html, "diagnosis") or list(CLASSES)),
            "confidence": str(self.rng.randint(1, 5)),
        }

    def post(self, page: Page, fields: dict[str, str], browser: Browser | None = None) -> Reply:
        """POST an answer; a redirect away from the case is an acknowledgement (recorded)."""
        reply = (browser or self.browser).request("POST", page.path, fields, kind="answer")
        if reply.status == 303 and reply.location != page.path:
            self.recorder.ack(
                self.email, page.task, page.number, fields["diagnosis"], int(fields["confidence"])
            )
        return reply

    def run(
        self,
        keep_going: Callable[[], bool],
        stop_before_last: bool = False,
        on_error: Callable[[str], None] | None = None,
    ) -> Page:
        """Answer cases until the end or until `keep_going()` says stop; errors are retried."""
        page = Page("none")
        while keep_going():
            try:
                if page.kind != "case":
                    page = self.current()
                if page.kind == "done":
                    return page
                if stop_before_last and page.task == 2 and page.number == page.size:
                    return page
                reply = self.post(page, self.choose(page))
                if reply.status == 303:
                    page = self.follow(reply.location)
                else:  # refused (stale page): look again where we stand
                    self.errors += 1
                    page = Page("none")
            except HTTPFailure as problem:
                self.errors += 1
                if on_error is not None:
                    on_error(str(problem))
                page = Page("none")
                time.sleep(min(1.0, 0.05 * 2 ** min(self.errors, 5)))  # back off a little
        return page


def run_threads(targets: Iterable[Callable[[], Any]], limit: float) -> list[Any]:
    """Run each callable in its own thread, all at once; their results (None if unfinished)."""
    results: list[Any] = []
    threads = []
    for index, target in enumerate(targets):
        results.append(None)

        def work(i: int = index, call: Callable[[], Any] = target) -> None:
            results[i] = call()

        thread = threading.Thread(target=work, daemon=True)
        threads.append(thread)
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return results


# ---------------------------------------------------------------- checking the database


def verify(database: Database, study_id: int, acks: list[tuple[str, int, int, str, int]]) -> dict:
    """Compare acknowledged answers with the stored ones: lost, duplicated, changed, extra."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT u.email, s.session, s.position, a.diagnosis, a.confidence, s.id "
                    "FROM answer a JOIN assignment s ON s.id = a.assignment_id "
                    'JOIN enrolment e ON e.id = s.enrolment_id JOIN "user" u ON u.id = e.user_id '
                    "WHERE e.study_id = :study"
                ),
                {"study": study_id},
            ).all()
            duplicated = connection.execute(
                text(
                    "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM answer "
                    "GROUP BY assignment_id HAVING count(*) > 1) AS twice"
                )
            ).scalar_one()
            unfinished = connection.execute(
                text(
                    "SELECT count(*) FROM enrolment e WHERE e.study_id = :study AND "
                    "(e.finished_at IS NULL OR EXISTS (SELECT 1 FROM assignment s "
                    "LEFT JOIN answer a ON a.assignment_id = s.id "
                    "WHERE s.enrolment_id = e.id AND a.id IS NULL))"
                ),
                {"study": study_id},
            ).scalar_one()
            enrolled = connection.execute(
                text("SELECT count(*) FROM enrolment WHERE study_id = :study"), {"study": study_id}
            ).scalar_one()
    finally:
        engine.dispose()
    stored = {(r[0], r[1], r[2] + 1): (r[3], r[4]) for r in rows}
    acknowledged = {(e, t, n): (d, c) for e, t, n, d, c in acks}
    lost = [key for key in acknowledged if key not in stored]
    changed = [key for key, value in acknowledged.items() if key in stored and stored[key] != value]
    return {
        "acknowledged": len(acknowledged),
        "ack_messages": len(acks),
        "stored": len(rows),
        "lost": len(lost),
        "changed": len(changed),
        "duplicated": int(duplicated),
        "stored_without_ack": len(set(stored) - set(acknowledged)),
        "enrolled": enrolled,
        "unfinished": unfinished,
        "lost_examples": lost[:5],
        "changed_examples": changed[:5],
    }


def integrity_lines(result: dict) -> list[str]:
    """The database check, in a few printed lines."""
    return [
        f"acknowledged answers      {result['acknowledged']:>7}  "
        f"(redirects received: {result['ack_messages']})",
        f"stored answers            {result['stored']:>7}",
        f"lost (acked, not stored)  {result['lost']:>7}  {result['lost_examples'] or ''}",
        f"duplicated (per assignment){result['duplicated']:>6}",
        f"changed (stored != acked) {result['changed']:>7}  {result['changed_examples'] or ''}",
        f"stored without an ack     {result['stored_without_ack']:>7}  (answer saved, reply lost)",
    ]
