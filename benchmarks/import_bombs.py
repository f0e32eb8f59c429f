"""Import bombs: readers' page times and the web workers' memory while bundles are imported.

`python benchmarks/import_bombs.py [--db sqlite|postgresql] [--against REF|none] [--readers 8]
[--seconds 20] [--bomb-seconds 60] [--workers 2] [--heavy 8] [--cpu-seconds N]
[--max-requests N]`

The code of this checkout and that of git commit REF (exported with `git archive`; default
dcb1866, the last whose imports ran in a thread of the web worker; `none` runs this checkout
alone) are run one after the other, each on a fresh database with a study of `--readers`
readers, under gunicorn from gunicorn.conf.py with `--workers` workers. The readers keep
fetching their case page (with a pause of `--think` seconds) while two organisers upload a
bundle each (the import form), in three phases of the same run:

1. baseline: no import, `--seconds` long;
2. heavy: a bundle of 44 images, `--heavy` of them 2048 x 2048 progressive JPEGs of 100 scans:
   within every per-image bound, about half a second of CPU each to check and re-encode. From
   the upload until the import has ended (at most `--limit` seconds);
3. bomb: the reported bundle, 44 images, one a 2048 x 2048 progressive JPEG whose 16-byte scan
   is repeated 40,000 times (677 KB); until its job has ended, at most `--bomb-seconds`, then
   what its job page says.

`--cpu-seconds N` sets IMPORT_CPU_SECONDS for both servers (the old code ignores it), to see
the limit end the heavy import. Workers are not recycled unless `--max-requests N` says so:
these readers ask far more often than real ones, and gunicorn.conf.py's 2000 requests would
replace a worker every half minute, its cold start blurring the latencies (and ending the old
code's import thread with it: its job was declared stopped 5 minutes later).

Printed side by side: the readers' case-page p50 and p95 in each phase, with the ratio to the
baseline of the same run (the machine is shared; the ratio is the stable figure); the largest
resident memory (VmRSS) of a web worker in each phase and its ratio to the baseline; the web
workers' CPU seconds per second (the old code's imports ran inside them); the memory, CPU and
niceness of the import's own process (this checkout); the workers gunicorn replaced during
each import (`max_requests`: an import in a worker's thread dies with its worker); how long
each import took and how it ended. Everything listens on 127.0.0.1 only and ends with the run.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import http.client
import io
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from _loadkit import (
    LOCAL_HOSTS,
    PASSWORD,
    ROOT,
    Browser,
    HTTPFailure,
    Reader,
    Recorder,
    Server,
    build_bundle,
    export,
    fresh_database,
    input_value,
    percentile,
    prepare_study,
    rss_kib,
)

from tests.app.bundle_factory import many_scans_jpeg, read_queries, replace_neighbour_images

BEFORE = "dcb1866"  # the last commit whose imports ran in a thread of the web worker
ORGANISERS = {"heavy": "heavy@load.test", "bomb": "bomb@load.test"}  # one upload each
STATUS = re.compile(r"data-import-status>(.*?)</p>", re.S)
ERROR = re.compile(r'<p class="error" id="upload-error">(.*?)</p>', re.S)


# ---------------------------------------------------------------- the bundles


def zipped(folder: Path) -> bytes:
    """A bundle folder as .zip bytes, inside a top folder as `zip -r` makes it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, "bundle/" + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def bundles(workdir: Path, heavy: int) -> dict[str, bytes]:
    """The heavy bundle and the bomb, 44 images each (12 cases: 24 query images, 20 others)."""
    made = {}
    for name, seed in (("heavy", 11), ("bomb", 12)):
        folder = build_bundle(workdir / name, cases=12, size=450, pool=20, seed=seed)
        used = {item["image"] for query in read_queries(folder) for item in query["neighbours"]}
        if name == "heavy":
            images = [many_scans_jpeg(100, seed=n) for n in range(min(heavy, len(used)))]
        else:
            images = [many_scans_jpeg(40000)]
        replace_neighbour_images(folder, images)
        made[name] = zipped(folder)
    return made


# ---------------------------------------------------------------- the organiser


def log_in(browser: Browser, email: str) -> None:
    """Log in through the form."""
    page = browser.request("GET", "/login")
    fields = {"csrf_token": input_value(page.text, "csrf_token"), "email": email}
    reply = browser.request("POST", "/login", {**fields, "password": PASSWORD}, kind="login")
    if reply.status != 302:
        raise RuntimeError(f"{email} could not log in: HTTP {reply.status}")


def upload(browser: Browser, archive: bytes, name: str) -> str:
    """POST `archive` through the import form (multipart, as a browser does); the job's page."""
    form = browser.request("GET", "/admin/studies/import")
    boundary = secrets.token_hex(16)
    fields = {"csrf_token": input_value(form.text, "csrf_token"), "name": name, "server_path": ""}
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="upload"; filename="b.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n".encode()
        + archive
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection("127.0.0.1", browser.port, timeout=60)
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie}
    connection.request("POST", "/admin/studies/import", b"".join(parts), headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 303:
        raise RuntimeError(f"the upload of {name} was not accepted: HTTP {response.status}")
    return response.getheader("Location", "")


def job_state(browser: Browser, path: str) -> tuple[bool, str]:
    """Whether the import still runs, and what its page says (stage, or outcome)."""
    reply = browser.request("GET", path)
    if reply.status == 200:
        found = STATUS.search(reply.text)
        return True, " ".join(html.unescape(found.group(1)).split()) if found else "?"
    if reply.status == 302:
        return False, "imported"
    found = ERROR.search(reply.text)
    return False, " ".join(html.unescape(found.group(1)).split()) if found else str(reply.status)


# ---------------------------------------------------------------- measuring


@dataclass
class Phase:
    """One phase's window and what was seen in it."""

    name: str
    start: float
    end: float = 0.0
    worker_kib: int = 0  # the largest VmRSS of one web worker
    import_kib: int = 0  # the largest VmRSS of an import process (a worker's child)
    import_nice: int | None = None  # its niceness
    outcome: str = ""
    seconds: float = 0.0
    p50: float = float("nan")  # readers' case page, ms
    p95: float = float("nan")
    failed: list[int] = field(default_factory=list)  # statuses of failed case pages (0: none)
    restarts: int = 0  # workers gunicorn replaced during the phase (max_requests)
    # Cumulative CPU seconds of each process seen: web workers (at the start and at the last
    # sample) and import processes (they start at 0).
    worker_cpu_start: dict[int, float] = field(default_factory=dict)
    earlier: set[int] = field(default_factory=set)  # import processes of an earlier phase
    worker_cpu: dict[int, float] = field(default_factory=dict)
    import_cpu: dict[int, float] = field(default_factory=dict)

    def worker_seconds(self) -> float:
        """CPU seconds the web workers spent in this phase (requests, and old imports)."""
        return sum(
            cpu - self.worker_cpu_start.get(pid, 0.0) for pid, cpu in self.worker_cpu.items()
        )


@dataclass
class Sampler:
    """Samples the workers' and their children's memory and CPU into the current phase."""

    server: Server
    phase: Phase | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def begin(self, phase: Phase) -> None:
        """Measure into `phase` from now on."""
        workers = self.server.worker_pids()
        phase.worker_cpu_start = {pid: cpu_seconds(pid) for pid in workers}
        phase.earlier = {child for pid in workers for child in children(pid)}
        self.phase = phase

    def run(self) -> None:
        """Every quarter second until stopped."""
        while not self.stop.wait(0.25):
            phase = self.phase
            if phase is None:
                continue
            for pid in self.server.worker_pids():
                phase.worker_kib = max(phase.worker_kib, rss_kib(pid))
                phase.worker_cpu[pid] = cpu_seconds(pid) or phase.worker_cpu.get(pid, 0.0)
                for child in set(children(pid)) - phase.earlier:
                    phase.import_kib = max(phase.import_kib, rss_kib(child))
                    cpu = cpu_seconds(child)
                    phase.import_cpu[child] = max(cpu, phase.import_cpu.get(child, 0.0))
                    with contextlib.suppress(OSError):
                        phase.import_nice = os.getpriority(os.PRIO_PROCESS, child)


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The child processes of `pid`, whichever of its threads started them."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(value) for value in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def booted(server: Server) -> int:
    """How many workers gunicorn has started so far (its log says each)."""
    return server.log.read_text(errors="replace").count("Booting worker with pid")


def browse(reader: Reader, stop: threading.Event, think: float) -> None:
    """Fetch the reader's case page again and again until stopped."""
    while not stop.is_set():
        try:
            reader.current()
        except HTTPFailure:
            time.sleep(0.2)
        stop.wait(think)


def run_code(name: str, root: Path, args: argparse.Namespace, archives: dict[str, bytes]) -> list:
    """Set up a study, start gunicorn on the code in `root`, and measure the three phases."""
    from app.auth import create_user
    from app.extensions import db
    from app.factory import create_app
    from app.models import Role

    workdir = Path(tempfile.mkdtemp(prefix=f"import-bombs-{name}-"))
    database = fresh_database(args.db, workdir, f"secbir_bombs_{os.getpid()}")
    server = None
    stop = threading.Event()
    try:
        setup = prepare_study(database, workdir, args.readers, 10, 20, 450)
        app = create_app(
            {
                "SECRET_KEY": setup.secret,
                "SQLALCHEMY_DATABASE_URI": database.url,
                "TRUSTED_HOSTS": LOCAL_HOSTS,
            }
        )
        with app.app_context():
            for email in ORGANISERS.values():
                create_user(email, Role.ORGANISER, name=email, password=PASSWORD)
            db.session.commit()
            db.engine.dispose()
        server = Server(database, setup, workdir, args.workers, root=root)
        recorder = Recorder()
        readers = [
            Reader(email, setup.study_id, server.port, recorder, seed=number)
            for number, email in enumerate(setup.emails)
        ]
        for reader in readers:
            reader.log_in()
        organisers = {kind: Browser(server.port, Recorder()) for kind in ORGANISERS}
        for kind, browser in organisers.items():
            log_in(browser, ORGANISERS[kind])
        sampler = Sampler(server)
        threads = [threading.Thread(target=sampler.run, daemon=True)]
        threads += [
            threading.Thread(target=browse, args=(r, stop, args.think), daemon=True)
            for r in readers
        ]
        for thread in threads:
            thread.start()
        time.sleep(2)  # every reader under way
        phases = [Phase("no import", time.monotonic())]
        sampler.begin(phases[-1])
        time.sleep(args.seconds)
        phases[-1].end = time.monotonic()
        for kind in ("heavy", "bomb"):
            phase = Phase(kind, time.monotonic(), restarts=-booted(server))
            sampler.begin(phase)
            phases.append(phase)
            organiser = organisers[kind]
            job = upload(organiser, archives[kind], f"The {kind} bundle")
            window = args.limit if kind == "heavy" else args.bomb_seconds
            running = True
            while running and time.monotonic() - phase.start < window:
                time.sleep(0.5)
                running, phase.outcome = job_state(organiser, job)
                phase.seconds = time.monotonic() - phase.start
            if kind == "bomb":  # the readers' figures over at least the baseline's length
                time.sleep(max(0.0, phase.start + args.seconds - time.monotonic()))
            phase.end = time.monotonic()
            phase.restarts += booted(server)
            if running:
                phase.outcome = f"still running after {phase.seconds:.0f} s: {phase.outcome}"
            print(f"[{name}] {kind}: {phase.outcome[:100]}", flush=True)
        sampler.phase = None
        sampler.stop.set()
        for phase in phases:
            cases = recorder.of("case", phase.start, phase.end)
            good = [s.seconds * 1000 for s in cases if 200 <= s.status < 400]
            phase.p50, phase.p95 = percentile(good, 50), percentile(good, 95)
            phase.failed = [s.status for s in cases if not 200 <= s.status < 400]
        return phases
    except Exception:
        if server is not None:  # what the server said is usually the reason
            print(f"[{name}] server log, errors:", *server.error_lines()[-40:], sep="\n")
        raise
    finally:
        stop.set()
        if server is not None:
            server.stop()
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: dict[str, list], args: argparse.Namespace) -> None:
    """The phases side by side: values and ratios to the baseline of the same run."""
    names = list(results)
    width = 30
    print()
    print(
        f"{args.readers} readers fetching case pages (pause {args.think:g} s), gunicorn "
        f"{args.workers} workers, {args.db}; {os.cpu_count()} CPUs, load "
        + " ".join(f"{v:.1f}" for v in os.getloadavg())
    )
    print(f"{'':<34}" + "".join(f"{n:>{width}}" for n in names))

    def row(label: str, cell) -> None:
        print(f"{label:<34}" + "".join(f"{cell(results[n]):>{width}}" for n in names))

    def ratio(value: float, base: float, unit: str, digits: int = 1) -> str:
        shown = f"{value:.{digits}f} {unit}".rstrip()
        return f"{shown} (x{value / base:.2f})" if base else "-"

    for key in ("p50", "p95"):
        row(f"case page {key}, no import", lambda p, k=key: f"{getattr(p[0], k):.1f} ms")
        for index in (1, 2):
            row(
                f"  during the {results[names[0]][index].name} import",
                lambda p, k=key, i=index: ratio(getattr(p[i], k), getattr(p[0], k), "ms"),
            )
    row("web worker VmRSS max, no import", lambda p: f"{p[0].worker_kib / 1024:.0f} MiB")
    for index in (1, 2):
        row(
            f"  during the {results[names[0]][index].name} import",
            lambda p, i=index: ratio(p[i].worker_kib / 1024, p[0].worker_kib / 1024, "MiB", 0),
        )
        row(
            "  import process VmRSS max, nice",
            lambda p, i=index: (
                f"{p[i].import_kib / 1024:.0f} MiB, {p[i].import_nice}" if p[i].import_kib else "-"
            ),
        )
    row(
        "web workers' CPU s/s, no import",
        lambda p: f"{p[0].worker_seconds() / (p[0].end - p[0].start):.2f}",
    )
    for index in (1, 2):
        row(
            f"  during the {results[names[0]][index].name} import",
            lambda p, i=index: ratio(
                p[i].worker_seconds() / (p[i].end - p[i].start),
                p[0].worker_seconds() / (p[0].end - p[0].start),
                "",
                2,
            ),
        )
        row(
            "  import process CPU s",
            lambda p, i=index: f"{sum(p[i].import_cpu.values()):.1f}" if p[i].import_cpu else "-",
        )
    for index in (1, 2):
        row(
            f"workers replaced, {results[names[0]][index].name} import",
            lambda p, i=index: str(p[i].restarts),
        )
    row(
        "case pages failed (HTTP status)",
        lambda p: ", ".join(str(status) for x in p for status in x.failed) or "none",
    )
    for index in (1, 2):
        for name in names:
            phase = results[name][index]
            print(f"{phase.name} import, {name}: after {phase.seconds:.1f} s: {phase.outcome}")


def main() -> None:
    """Parse the options, run both codes one after the other, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--against", metavar="REF", default=BEFORE)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--think", type=float, default=0.1, help="seconds between two pages")
    parser.add_argument("--seconds", type=float, default=20.0, help="baseline phase")
    parser.add_argument(
        "--bomb-seconds", type=float, default=60.0, help="longest bomb phase (at least --seconds)"
    )
    parser.add_argument("--limit", type=float, default=600.0, help="longest heavy phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--heavy", type=int, default=8, help="100-scan images, at most 20")
    parser.add_argument(
        "--cpu-seconds", type=int, help="IMPORT_CPU_SECONDS for both servers (default: unset)"
    )
    parser.add_argument(
        "--max-requests", type=int, default=0, help="GUNICORN_MAX_REQUESTS (0: no recycling)"
    )
    args = parser.parse_args()
    if args.cpu_seconds is not None:
        os.environ["IMPORT_CPU_SECONDS"] = str(args.cpu_seconds)  # gunicorn's environment
    os.environ["GUNICORN_MAX_REQUESTS"] = str(args.max_requests)
    if not 1 <= args.readers <= 50 or not 1 <= args.seconds <= 120:
        parser.error("keep the run small: 1-50 readers, 1-120 seconds")
    with tempfile.TemporaryDirectory(prefix="import-bombs-") as folder:
        workdir = Path(folder)
        archives = bundles(workdir, args.heavy)
        roots = {"this checkout": ROOT}
        if args.against != "none":
            roots = {args.against: export(args.against, workdir / "before"), **roots}
        results = {name: run_code(name, root, args, archives) for name, root in roots.items()}
    report(results, args)


if __name__ == "__main__":
    main()
