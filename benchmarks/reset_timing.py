"""Time the password-reset form for addresses with and without an account.

`python benchmarks/reset_timing.py [--database sqlite|postgresql] [--requests 200]`

The form answers the same page for every address; this measures whether it also takes the
same time (issue: medians 19.6 against 15.1 ms on PostgreSQL, AUC 0.85 over 40 + 40
requests, before both paths did the same work). The app runs in this process with e-mail
on (messages are queued, nothing is sent); each request names a new address (an account's,
or one without) from a new client address, so no limit applies, in a shuffled order.
PostgreSQL is a new database on SECBIR_LOAD_PG (default postgres@127.0.0.1:5432), dropped
at the end.

Prints the median milliseconds of both kinds, their ratio, and the AUC: the chance that a
request for an account took longer than one for no account (0.5: timing tells nothing).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _loadkit import fresh_database  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.auth import create_user  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.models import OutboxMessage, Role  # noqa: E402

WARM_UP = 20  # requests before the timed ones (connections, templates, caches)


def auc(slower: list[float], faster: list[float]) -> float:
    """The chance that a value of `slower` exceeds one of `faster` (ties count half)."""
    wins = sum((a > b) + 0.5 * (a == b) for a in slower for b in faster)
    return wins / (len(slower) * len(faster))


def measure(database_url: str, requests: int, workdir: Path, seed: int) -> dict[str, list[float]]:
    """Milliseconds of each request, by kind ("account", "none"), in a shuffled order."""
    app = create_app(
        TestConfig,
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "STUDY_IMAGES": str(workdir / "images"),
            "MAIL_SERVER": "smtp.invalid",  # e-mail on: messages are queued, never sent here
            "PUBLIC_URL": "https://study.example.org",
        },
    )
    with app.app_context():
        db.create_all()
        for number in range(requests + WARM_UP):
            create_user(f"reader{number}@example.org", Role.READER)
        db.session.commit()
    plan = [("account", f"reader{n}@example.org") for n in range(requests)]
    plan += [("none", f"nobody{n}@example.org") for n in range(requests)]
    random.Random(seed).shuffle(plan)
    warm_up = [("warm", f"reader{requests + n}@example.org") for n in range(WARM_UP)]
    client = app.test_client()
    times: dict[str, list[float]] = {"account": [], "none": [], "warm": []}
    for number, (kind, email) in enumerate(warm_up + plan):
        address = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
        began = time.perf_counter()
        response = client.post(
            "/password/forgot", data={"email": email}, environ_base={"REMOTE_ADDR": address}
        )
        times[kind].append((time.perf_counter() - began) * 1000)
        if response.status_code != 302:
            raise SystemExit(f"request {number} for {email} answered {response.status_code}")
    with app.app_context():
        queued = db.session.scalar(select(func.count(OutboxMessage.id)))
        db.session.remove()
        db.engine.dispose()
    if queued != requests + WARM_UP:
        raise SystemExit(f"{queued} messages queued for {requests + WARM_UP} account requests")
    return times


def main(argv: list[str] | None = None) -> None:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=200, help="of each kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reset-timing-") as folder:
        workdir = Path(folder)
        database = fresh_database(args.database, workdir, "reset_timing")
        try:
            times = measure(database.url, args.requests, workdir, args.seed)
        finally:
            database.drop()
    account = statistics.median(times["account"])
    none = statistics.median(times["none"])
    print(f"{args.database}, {args.requests} + {args.requests} requests (shuffled):")
    print(f"  median with an account    {account:7.2f} ms")
    print(f"  median without an account {none:6.2f} ms")
    print(f"  ratio {account / none:.3f}, AUC {auc(times['account'], times['none']):.2f}")


if __name__ == "__main__":
    main()
