"""Fault benchmark: readers keep answering while a worker and then the database go down.

`python benchmarks/faults.py [--db sqlite|postgresql|both] [--readers 50] [--seconds 150]
[--outage 5] [--shared-cluster]`

Set-up as benchmarks/load.py (fresh database, study from a bundle, wash-out 0, gunicorn from
gunicorn.conf.py on 127.0.0.1). Every reader answers both tasks to the end. A failed request
(a connection error or a 5xx) is not an acknowledgement: the reader backs off briefly, fetches
where it stands again and carries on. Two faults, triggered by progress:

1. at a quarter of all answers, one gunicorn worker is killed with SIGKILL (the master
   respawns it);
2. at 55 %, the database "restarts": PostgreSQL is stopped (fast: every session is ended),
   kept down for `--outage` seconds (default 5) and started again; SQLite by SIGKILL to all
   workers at once (the database is a file: the processes die mid-write). PostgreSQL runs in
   a throwaway cluster of its own (initdb in a temporary folder, another port, as the
   `postgres` user), so the restart disturbs nobody else; `--shared-cluster` restarts the
   local cluster with `pg_ctlcluster ... restart` instead (brief, but felt by everyone).

"error pages readers saw" counts the survey requests that got a 5xx or no answer at all.

At the end: every acknowledged answer stored exactly once and unchanged, every reader at the
end of Task 2, the errors each fault caused and how long until answers were taken again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _loadkit
from _loadkit import (
    Page,
    Reader,
    Recorder,
    Sample,
    Server,
    fresh_database,
    health_ok,
    integrity_lines,
    kill_quietly,
    prepare_study,
    run_threads,
    verify,
)

SURVEY_KINDS = ("case", "answer", "nav")


def postgres_cluster() -> tuple[str, str]:
    """The (version, name) of the local PostgreSQL cluster, from /etc/postgresql."""
    versions = sorted(
        (p.name for p in Path("/etc/postgresql").iterdir() if p.name.isdigit()), key=int
    )
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    clusters = sorted(p.name for p in (Path("/etc/postgresql") / versions[-1]).iterdir())
    return versions[-1], "main" if "main" in clusters else clusters[0]


class ThrowawayCluster:
    """A PostgreSQL cluster of its own in a temporary folder, started on a free port."""

    def __init__(self) -> None:
        version, _ = postgres_cluster()
        self.bin = Path("/usr/lib/postgresql") / version / "bin"
        # Its own folder, owned by `postgres` (the benchmark's work folder is private to root).
        self.folder = Path(tempfile.mkdtemp(prefix="secbir-faults-pg-"))
        shutil.chown(self.folder, "postgres")
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self._as_postgres(
            [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        )
        self.start()

    def _as_postgres(self, command: list[str]) -> None:
        """Run a PostgreSQL program as the `postgres` user (initdb refuses root)."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            [
                *(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options),
                *("-l", str(self.folder / "server.log"), "-w", "start"),
            ]
        )

    def stop(self) -> None:
        """Stop the server at once (fast mode: every session is ended, as in a restart)."""
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"])

    def remove(self) -> None:
        """Stop it if running and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        """The libpq URL of its `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], limit: float, step: float = 0.05) -> float | None:
    """Poll `condition` until it holds; the seconds it took, or None after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if condition():
            return time.monotonic() - start
        time.sleep(step)
    return None


class HealthMonitor(threading.Thread):
    """Polls /health every 100 ms on a fresh connection and remembers the failures."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stopped = threading.Event()
        self.failures: list[float] = []

    def run(self) -> None:
        """Poll until stopped."""
        while not self.stopped.is_set():
            moment = time.monotonic()
            if not health_ok(self.port):
                self.failures.append(moment)
            self.stopped.wait(0.1)


def is_error(sample: Sample) -> bool:
    """A request that got no usable answer: no response at all, or a 5xx."""
    return sample.status == 0 or sample.status >= 500


def fault_report(name: str, at: float, until: float, recorder: Recorder, extra: str) -> str:
    """Errors of the survey requests sent in [at, until) and the time to the next answer."""
    window = [s for kind in SURVEY_KINDS for s in recorder.of(kind, at - 30, until) if is_error(s)]
    # Requests in flight when the fault struck count too: they ended after it.
    window = [s for s in window if at <= s.started + s.seconds < until]
    causes = Counter("no response" if s.status == 0 else f"HTTP {s.status}" for s in window)
    last_error = max((s.started + s.seconds for s in window), default=at)
    answered = [
        s.started + s.seconds
        for s in recorder.of("answer", at - 30, until)
        if s.status == 303 and s.started >= last_error - 0.001 and s.started + s.seconds > at
    ]
    spread = f"{max(0.0, last_error - at):.2f} s after the fault" if window else "-"
    listed = ", ".join(f"{cause} x{count}" for cause, count in causes.items()) or "none"
    recovered = (
        f"answers taken again after {min(answered) - at:.2f} s"
        if answered
        else "NO answer taken after it (had the readers finished?)"
    )
    return (
        f"{name:<26} errors {len(window):>4} ({listed}); last error {spread}; {recovered}; {extra}"
    )


def run_one(kind: str, args: argparse.Namespace) -> dict:
    """The fault run on one database; prints its report and returns the figures."""
    workdir = Path(tempfile.mkdtemp(prefix=f"secbir-faults-{kind}-"))
    cluster = None
    if kind == "postgresql" and not args.shared_cluster:
        cluster = ThrowawayCluster()
        _loadkit.PG_SERVER = cluster.url
    database = fresh_database(kind, workdir, "secbir_faults")
    server = None
    monitor = None
    try:
        setup = prepare_study(database, workdir, args.readers, args.cases, args.pool, 64)
        server = Server(database, setup, workdir, args.workers)
        recorder = Recorder()
        readers = [
            Reader(email, setup.study_id, server.port, recorder, number, resend_on_stale=False)
            for number, email in enumerate(setup.emails)
        ]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda r: r.log_in(), readers))
        total = args.readers * args.cases * 2
        print(
            f"[{kind}] {args.readers} readers x {2 * args.cases} answers; running ...", flush=True
        )

        monitor = HealthMonitor(server.port)
        monitor.start()
        start = time.monotonic()
        deadline = start + args.seconds
        finished: list[Page | None] = []
        runner = threading.Thread(
            target=lambda: finished.extend(
                run_threads(
                    [lambda r=r: r.run(lambda: time.monotonic() < deadline) for r in readers],
                    args.seconds + 40,
                )
            ),
            daemon=True,
        )
        runner.start()

        def answered_share() -> float:
            return len({a[:3] for a in recorder.acks}) / total

        def progress(share: float) -> bool:
            return answered_share() >= share

        # Fault 1: one worker killed mid-run.
        wait_for(lambda: progress(0.25), args.seconds)
        victim = server.worker_pids()[0]
        kill_at = time.monotonic()
        shares = [answered_share()]
        kill_quietly(victim, signal.SIGKILL)
        respawn = wait_for(
            lambda: len(server.worker_pids()) == args.workers
            and victim not in server.worker_pids(),
            30,
        )

        # Fault 2: the database restarts.
        wait_for(lambda: progress(0.55), args.seconds)
        # Keep the two faults apart, so that each one's errors and recovery can be told apart.
        time.sleep(max(0.0, kill_at + args.gap - time.monotonic()))
        restart_at = time.monotonic()
        shares.append(answered_share())
        if cluster is not None:
            cluster.stop()
            time.sleep(args.outage)
            cluster.start()
            what = f"PostgreSQL stopped, down {args.outage:g} s, started"
        elif kind == "postgresql":
            version, name = postgres_cluster()
            command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"]
            subprocess.run(command, check=True, capture_output=True, timeout=120)
            what = "PostgreSQL restarted: " + " ".join(command)
        else:
            for pid in server.worker_pids():
                kill_quietly(pid, signal.SIGKILL)
            what = f"all {args.workers} workers killed at once"
        restart_took = time.monotonic() - restart_at
        healthy = wait_for(lambda: health_ok(server.port), 60)
        after_restart = time.monotonic() - restart_at

        runner.join(args.seconds + 45)
        end = time.monotonic()
        monitor.stopped.set()
        check = verify(database, setup.study_id, recorder.acks)
        log_errors = server.error_lines()
    finally:
        if monitor is not None:
            monitor.stopped.set()
        if server is not None:
            server.stop()
            if args.log_dir:
                Path(args.log_dir).mkdir(parents=True, exist_ok=True)
                shutil.copy(server.log, Path(args.log_dir) / f"faults-{kind}-gunicorn.log")
        database.drop()
        if cluster is not None:
            cluster.remove()
        shutil.rmtree(workdir, ignore_errors=True)

    done = sum(1 for page in finished if isinstance(page, Page) and page.kind == "done")
    print()
    print(f"== {kind}: {args.readers} readers, {args.workers} workers, {end - start:.1f} s")
    print(
        fault_report(
            "1. SIGKILL one worker",
            kill_at,
            restart_at,
            recorder,
            f"respawned in {respawn if respawn is not None else float('nan'):.2f} s; "
            f"struck at {shares[0]:.0%} of the answers",
        )
    )
    print(
        fault_report(
            f"2. {'database restart' if kind == 'postgresql' else 'kill all workers'}",
            restart_at,
            end,
            recorder,
            f"{what} ({restart_took:.2f} s); /health 200 again "
            f"{after_restart if healthy is not None else float('nan'):.2f} s after the fault; "
            f"struck at {shares[1]:.0%} of the answers",
        )
    )
    seen = [
        s
        for kind_ in SURVEY_KINDS
        for s in recorder.of(kind_, restart_at - 30, end)
        if is_error(s) and s.started + s.seconds >= restart_at
    ]
    print(f"error pages readers saw from the database fault on: {len(seen)}")
    late = [
        s
        for kind_ in SURVEY_KINDS
        for s in recorder.of(kind_, restart_at + after_restart + 5, end)
        if is_error(s)
    ]
    print(
        f"errors later than 5 s after /health recovered: {len(late)}; /health failures seen by "
        f"the monitor: {len(monitor.failures)}; keep-alive resends: {recorder.transparent_retries}"
    )
    print(
        f"readers at the end of Task 2: {done}/{len(readers)} (database: "
        f"{check['enrolled'] - check['unfinished']}/{check['enrolled']} enrolments complete); "
        f"reader-side errors and refusals: {sum(r.errors for r in readers)}; "
        f"error lines in the server log: {len(log_errors)}"
    )
    for line in integrity_lines(check):
        print("  " + line)
    if log_errors:
        print("server log errors (first 8):", *log_errors[:8], sep="\n  ")
    good = (
        check["lost"] == 0
        and check["duplicated"] == 0
        and check["changed"] == 0
        and check["unfinished"] == 0
        and done == len(readers)
    )
    print("RESULT:", "OK" if good else "PROBLEM")
    return {"kind": kind, "check": check, "done": done}


def main() -> None:
    """Parse the options and run the fault benchmark on the chosen databases."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=150.0, help="hard limit of the run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cases", type=int, default=15, help="cases per reader in each task")
    parser.add_argument("--gap", type=float, default=10.0, help="min. seconds between faults")
    parser.add_argument("--pool", type=int, default=40, help="cases in the study's bundle")
    parser.add_argument("--log-dir", help="keep gunicorn's log of each run in this folder")
    parser.add_argument(
        "--outage", type=float, default=5.0, help="seconds PostgreSQL stays down (own cluster)"
    )
    parser.add_argument(
        "--shared-cluster",
        action="store_true",
        help="restart the local cluster (pg_ctlcluster) instead of a throwaway one",
    )
    args = parser.parse_args()
    if not 1 <= args.readers <= 200 or not 10 <= args.seconds <= 240:
        parser.error("keep the run small: 1-200 readers, 10-240 seconds")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        run_one(kind, args)


if __name__ == "__main__":
    main()
