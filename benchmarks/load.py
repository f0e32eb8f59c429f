"""Load benchmark of the reader survey under gunicorn, on SQLite (WAL) and on PostgreSQL.

`python benchmarks/load.py [--db sqlite|postgresql|both] [--readers 50] [--seconds 30]`

For each database: a fresh database (a SQLite file, or the PostgreSQL database `secbir_load`,
created and dropped here), the schema migrated as boot.sh does, a generated study imported
from a bundle (open, wash-out 0), `--readers` readers joined to it, and gunicorn started from
gunicorn.conf.py with `--workers` workers on a free 127.0.0.1 port. Then, in one run:

1. survey: every reader at once fetches its case page and POSTs an answer, again and again,
   through Task 1 and on into Task 2, for `--seconds` (each reader keeps its last case);
2. /health hammered by as many clients for a shorter time (the floor of what a request costs);
3. duplicates: each reader POSTs the answer to its open case twice at the same moment, then
   replays that answer twice more at once;
4. bytes of a Task 2 case page and its images, first view and repeat view (a browser cache
   that honours Cache-Control: fresh entries are not asked for, others are revalidated);
5. resident memory per gunicorn worker, and the database check: every acknowledged answer
   (the POST was answered with a redirect onwards) stored exactly once, none changed.

The client runs in this process on the same two shared cores as the server, so absolute
figures are pessimistic; the ratio to /health measured in the same run is the stable number.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _loadkit import (
    SUBRESOURCE,
    TABLE_HEAD,
    Browser,
    HTTPFailure,
    Page,
    Reader,
    Recorder,
    Server,
    fresh_database,
    integrity_lines,
    percentile,
    prepare_study,
    rss_kib,
    run_threads,
    summary_row,
    verify,
)

MESSAGE = re.compile(r"<p[^>]*>([^<]*(?:saved|answered)[^<]*)</p>")


def hammer_health(port: int, clients: int, seconds: float, recorder: Recorder) -> float:
    """`clients` keep-alive clients GET /health as fast as they can; the seconds it took."""
    deadline = time.monotonic() + seconds

    def client() -> None:
        browser = Browser(port, recorder)
        while time.monotonic() < deadline:
            try:
                browser.request("GET", "/health", kind="health")
            except HTTPFailure:
                time.sleep(0.05)
        browser.close()

    start = time.monotonic()
    run_threads([client] * clients, seconds + 35)
    return time.monotonic() - start


def duplicate_phase(readers: list[Reader], recorder: Recorder) -> dict:
    """Each reader POSTs its open case's answer twice at once, then replays it twice at once."""
    outcome: dict = {
        "readers": 0,
        "race": Counter(),
        "replay": Counter(),
        "keys": [],
        "messages": Counter(),
    }
    lock = threading.Lock()

    def pair(reader: Reader, page: Page, fields: dict[str, str]) -> tuple[int, ...]:
        """Two browsers of the same reader send the same POST together; their statuses."""
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def send() -> None:
            browser = Browser(reader.browser.port, recorder, cookies=dict(reader.browser.cookies))
            barrier.wait(timeout=10)
            try:
                reply = reader.post(page, fields, browser)
            except HTTPFailure:
                statuses.append(0)
            else:
                statuses.append(reply.status)
                said = MESSAGE.search(reply.text) if reply.status != 303 else None
                if said:
                    with lock:
                        outcome["messages"][f"{reply.status} {said.group(1).strip()}"] += 1
            browser.close()

        run_threads([send, send], 40)
        return tuple(sorted(statuses))

    def one(reader: Reader) -> None:
        try:
            page = reader.current()
        except HTTPFailure:
            return
        if page.kind != "case":
            return
        fields = reader.choose(page)
        race = pair(reader, page, fields)
        replay = pair(reader, page, fields)
        with lock:
            outcome["readers"] += 1
            outcome["race"][race] += 1
            outcome["replay"][replay] += 1
            outcome["keys"].append((reader.email, page.task, page.number))

    run_threads([lambda r=r: one(r) for r in readers], 90)
    return outcome


def cache_fresh(headers: dict[str, str]) -> bool:
    """Whether a browser may reuse this response without asking (max-age > 0, no no-cache)."""
    directives = [d.strip().lower() for d in headers.get("cache-control", "").split(",")]
    if "no-cache" in directives or "no-store" in directives:
        return False
    return any(d.startswith("max-age=") and int(d.split("=", 1)[1] or 0) > 0 for d in directives)


def page_bytes(reader: Reader, page: Page, recorder: Recorder) -> dict:
    """Bytes of `page` and its subresources, first view (empty cache) and repeat view."""
    browser = Browser(reader.browser.port, recorder, cookies=dict(reader.browser.cookies))
    first = browser.request("GET", page.path, kind="bytes")
    urls = [html.unescape(u) for u in SUBRESOURCE.findall(first.text)]
    cache = {}
    result = {"html_first": len(first.body), "images_first": 0, "images": 0, "static_first": 0}
    for url in urls:
        reply = browser.request("GET", url, kind="bytes")
        cache[url] = reply.headers
        if url.startswith("/images/"):
            result["images_first"] += len(reply.body)
            result["images"] += 1
        else:
            result["static_first"] += len(reply.body)
    again = browser.request("GET", page.path, kind="bytes")
    result.update(html_repeat=len(again.body), revalidated=0, revalidated_bytes=0, reused=0)
    for url in urls:
        headers = cache[url]
        if cache_fresh(headers):
            result["reused"] += 1
            continue
        conditions = {}
        if "etag" in headers:
            conditions["If-None-Match"] = headers["etag"]
        if "last-modified" in headers:
            conditions["If-Modified-Since"] = headers["last-modified"]
        reply = browser.request("GET", url, kind="bytes", extra=conditions)
        result["revalidated"] += 1
        result["revalidated_bytes"] += len(reply.body)
    browser.close()
    return result


def probe_to_task2(probe: Reader, seconds: float) -> Page:
    """The probe reader answers Task 1 alone, to stand on Task 2's first case."""
    deadline = time.monotonic() + seconds
    page = probe.current()
    while page.kind == "case" and page.task == 1 and time.monotonic() < deadline:
        reply = probe.post(page, probe.choose(page))
        page = probe.follow(reply.location) if reply.status == 303 else probe.current()
    return page


def statuses(pairs: Counter) -> str:
    """{(303, 303): 40, (303, 400): 10} as "303+303 x40, 303+400 x10"."""
    return ", ".join(f"{'+'.join(map(str, k))} x{n}" for k, n in sorted(pairs.items())) or "-"


def run_one(kind: str, args: argparse.Namespace) -> dict:
    """The whole benchmark on one database; prints its table and returns the figures."""
    workdir = Path(tempfile.mkdtemp(prefix=f"secbir-load-{kind}-"))
    database = fresh_database(kind, workdir, "secbir_load")
    server = None
    try:
        started = time.monotonic()
        setup = prepare_study(
            database, workdir, args.readers + 1, args.cases, args.pool, args.image_size
        )
        server = Server(database, setup, workdir, args.workers)
        recorder = Recorder()
        readers = [
            Reader(email, setup.study_id, server.port, recorder, seed=number)
            for number, email in enumerate(setup.emails)
        ]
        probe = readers.pop()
        with ThreadPoolExecutor(8) as pool:  # scrypt logins: a few at a time
            list(pool.map(lambda r: r.log_in(), [*readers, probe]))
        idle = {pid: rss_kib(pid) for pid in server.worker_pids()}
        print(f"[{kind}] set-up {time.monotonic() - started:.1f} s; survey phase ...", flush=True)

        # 1. the survey
        survey_start = time.monotonic()
        deadline = survey_start + args.seconds
        pages = run_threads(
            [
                lambda r=r: r.run(lambda: time.monotonic() < deadline, stop_before_last=True)
                for r in readers
            ],
            args.seconds + 40,
        )
        survey_seconds = time.monotonic() - survey_start
        busy = {pid: rss_kib(pid) for pid in server.worker_pids()}

        # 2. /health, the same way
        health_start = time.monotonic()
        health_seconds = hammer_health(server.port, args.readers, args.health_seconds, recorder)

        # 3. duplicate submissions
        duplicates = duplicate_phase(readers, recorder)

        # 4. bytes of a Task 2 page
        page = probe_to_task2(probe, 60)
        sizes = page_bytes(probe, page, recorder) if page.task == 2 else None

        # 5. the database check
        check = verify(database, setup.study_id, recorder.acks)
        after = {pid: rss_kib(pid) for pid in server.worker_pids()}
        master = rss_kib(server.process.pid)
        errors_logged = server.error_lines()
    finally:
        if server is not None:
            server.stop()
            if args.log_dir:
                Path(args.log_dir).mkdir(parents=True, exist_ok=True)
                shutil.copy(server.log, Path(args.log_dir) / f"load-{kind}-gunicorn.log")
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)

    survey_until = survey_start + survey_seconds
    cases = recorder.of("case", survey_start, survey_until)
    answers = recorder.of("answer", survey_start, survey_until)
    navigation = recorder.of("nav", survey_start, survey_until)
    health = recorder.of("health", health_start)
    survey_all = cases + answers + navigation
    reached_task2 = sum(1 for p in pages if isinstance(p, Page) and p.task == 2)
    print()
    print(
        f"== {kind}: gunicorn {args.workers} workers (gunicorn.conf.py threads), "
        f"{args.readers} readers, {args.cases} cases/reader/task, "
        f"survey {survey_seconds:.1f} s, /health {health_seconds:.1f} s"
    )
    print(TABLE_HEAD)
    print(summary_row("case page GET", cases, survey_seconds))
    print(summary_row("answer POST", answers, survey_seconds))
    print(summary_row("other survey GET", navigation, survey_seconds))
    print(summary_row("all survey", survey_all, survey_seconds))
    print(summary_row("/health", health, health_seconds))

    def p50(samples: list) -> float:
        return percentile([s.seconds for s in samples if 200 <= s.status < 400], 50)

    survey_rate = len(survey_all) / survey_seconds
    health_rate = len(health) / health_seconds
    print(
        f"ratios to /health: case GET p50 x{p50(cases) / p50(health):.1f}, "
        f"answer POST p50 x{p50(answers) / p50(health):.1f}, "
        f"throughput {survey_rate / health_rate:.2f} of /health's"
    )
    print(
        f"readers that reached Task 2: {reached_task2}/{len(readers)}; reader-side errors: "
        f"{sum(r.errors for r in readers)}; keep-alive resends: {recorder.transparent_retries}; "
        f"error lines in the server log: {len(errors_logged)}"
    )
    print(
        f"duplicates: {duplicates['readers']} readers; statuses of two simultaneous POSTs of an "
        f"open case: {statuses(duplicates['race'])}; of two replays of the answered case: "
        f"{statuses(duplicates['replay'])}"
    )
    for message, count in duplicates["messages"].items():
        print(f"  refused duplicate said: {message} (x{count})")
    for line in integrity_lines(check):
        print("  " + line)
    print(
        "memory (VmRSS, MiB): master "
        f"{master / 1024:.0f}; workers idle "
        + ", ".join(f"{v / 1024:.0f}" for v in idle.values())
        + "; after survey "
        + ", ".join(f"{v / 1024:.0f}" for v in busy.values())
        + "; at the end "
        + ", ".join(f"{v / 1024:.0f}" for v in after.values())
    )
    if sizes is not None:
        first = sizes["html_first"] + sizes["images_first"] + sizes["static_first"]
        repeat = sizes["html_repeat"] + sizes["revalidated_bytes"]
        print(
            f"Task 2 case page, bytes of bodies: first view {first:,} = HTML "
            f"{sizes['html_first']:,} + {sizes['images']} images {sizes['images_first']:,} + "
            f"CSS/JS {sizes['static_first']:,}; repeat view {repeat:,} = HTML "
            f"{sizes['html_repeat']:,} + {sizes['revalidated_bytes']:,} revalidated "
            f"({sizes['reused']} reused from cache unasked, {sizes['revalidated']} revalidated)"
        )
    if errors_logged:
        print("first server log errors:", *errors_logged[:5], sep="\n  ")
    dup_keys = set(duplicates["keys"])
    stored_ok = check["lost"] == 0 and check["duplicated"] == 0 and check["changed"] == 0
    print("RESULT:", "OK" if stored_ok and dup_keys else "PROBLEM")
    return {"kind": kind, "check": check, "duplicates": duplicates, "sizes": sizes}


def main() -> None:
    """Parse the options and run the benchmark on the chosen databases."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the survey phase")
    parser.add_argument("--health-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cases", type=int, default=10, help="cases per reader in each task")
    parser.add_argument("--pool", type=int, default=40, help="cases in the study's bundle")
    parser.add_argument("--image-size", type=int, default=450, help="web_image_size in px")
    parser.add_argument("--log-dir", help="keep gunicorn's log of each run in this folder")
    args = parser.parse_args()
    if not 1 <= args.readers <= 200 or not 1 <= args.seconds <= 240:
        parser.error("keep the run small: 1-200 readers, 1-240 seconds")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        run_one(kind, args)


if __name__ == "__main__":
    main()
