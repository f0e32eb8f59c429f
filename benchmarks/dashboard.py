"""Benchmark the results dashboard and the responses export on a full-size study.

`python benchmarks/dashboard.py [--readers 200] [--cases 200] [--pool 500] [--repeat 7]`

Builds a SQLite database directly with the models (200 readers x 200 cases x 2 sessions =
80,000 answers by default; building it takes about 20 s), logs an organiser in with the
Flask test client and times, as medians over several requests:

- the dashboard "cold": the first view after a new answer, so the analysis of every
  endpoint runs (each round first saves one more answer, by a late reader);
- the dashboard "warm": views of an answer set analysed before (`app.organiser.study_results`);
- the warm view with the "completed readers" filter, and the responses CSV export.

Each page is checked to hold the table of every endpoint. The machine is shared and noisy,
so the `/health` endpoint is timed in the same run as a baseline and the ratios are printed
beside the median milliseconds (wall and CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from app.analysis import CLASSES  # noqa: E402
from app.auth import create_user  # noqa: E402
from app.clock import system_now  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.models import (  # noqa: E402
    Answer,
    Assignment,
    Case,
    Enrolment,
    Role,
    Study,
    StudyMember,
    StudyStatus,
)

PASSWORD = "benchmark password"
# HAM10000's class shares, roughly: most lesions are naevi.
SHARES = (0.03, 0.05, 0.11, 0.01, 0.11, 0.67, 0.02)


def build_study(app: Flask, readers: int, cases: int, pool: int, seed: int = 0) -> int:
    """Create a study with `pool` cases and `readers` readers who answered `cases` in both tasks."""
    rng = np.random.default_rng(seed)
    start = system_now().replace(microsecond=0) - timedelta(days=10)
    with app.app_context():
        db.create_all()
        organiser = create_user(
            "organiser@example.org", Role.ORGANISER, name="Organiser", password=PASSWORD
        )
        study = Study(
            name="Benchmark study",
            status=StudyStatus.OPEN,
            cases_per_reader=cases,
            washout_hours=24.0,
            manifest={"format_version": 1, "classes": [], "likert": []},
            likert=[],
            bundle_digest="b" * 64,
            image_folder=str(Path(app.instance_path) / "images"),
        )
        db.session.add(study)
        # Organisers see only the studies they run.
        db.session.add(StudyMember(study=study, user=organiser, owner=True))
        truth = rng.choice(len(CLASSES), size=pool, p=SHARES)
        vote = np.where(rng.random(pool) < 0.8, truth, rng.integers(0, 7, pool))
        pool_cases = [
            Case(
                study=study,
                position=k,
                case_key=f"case-{k:05d}",
                image_id=f"ISIC_{k:07d}",
                lesion_id=f"HAM_{k:07d}",
                truth=CLASSES[truth[k]],
                majority_vote=CLASSES[vote[k]],
                image=f"{k:064x}.jpg",
                image_rotated=f"{k + pool:064x}.jpg",
            )
            for k in range(pool)
        ]
        db.session.add_all(pool_cases)
        db.session.flush()
        for j in range(readers):
            user = create_user(f"reader{j:03d}@example.org", Role.READER, password=None)
            enrolment = Enrolment(
                study=study,
                user=user,
                seed=j,
                consented_at=start,
                first_session_done_at=start + timedelta(hours=1),
                finished_at=start + timedelta(days=2),
            )
            db.session.add(enrolment)
            drawn = rng.choice(pool, size=cases, replace=False)
            skill = rng.uniform(0.45, 0.8)
            for task, p in ((1, skill), (2, min(skill + 0.1, 0.95))):
                order = rng.permutation(drawn)
                right = rng.random(cases) < p
                wrong = rng.integers(0, 7, cases)
                # Time on case as readers take it: 5-60 s, to the millisecond (each answer's
                # own value, as in a real study), and now and then a hidden tab.
                seconds = np.round(rng.lognormal(np.log(20), 0.5, cases), 3)
                hidden = np.where(rng.random(cases) < 0.05, np.round(seconds * 0.3, 3), 0.0)
                for position, k in enumerate(order):
                    shown = start + timedelta(days=task - 1, seconds=60 * position)
                    diagnosis = truth[k] if right[position] else wrong[position]
                    assignment = Assignment(
                        enrolment=enrolment,
                        case=pool_cases[k],
                        session=task,
                        condition=task - 1,  # the thesis's replay: unaided, then SE-CBIR
                        position=position,
                        rotation=180 if task == 2 else 0,
                        shown_at=shown,
                    )
                    assignment.answer = Answer(
                        diagnosis=CLASSES[diagnosis],
                        confidence=int(rng.integers(1, 6)),
                        shown_at=shown,
                        answered_at=shown + timedelta(seconds=float(seconds[position])),
                        seconds=float(seconds[position]),
                        hidden_seconds=float(hidden[position]),
                        neighbours_shown=[f"ISIC_9{n:06d}" for n in range(6)] if task == 2 else [],
                        rotation=180 if task == 2 else 0,
                    )
                    db.session.add(assignment)
            db.session.flush()
        db.session.commit()
        return study.id


def add_late_reader(app: Flask, study_id: int, cases: int) -> list[int]:
    """A reader enrolled late, with `cases` unanswered Task 1 assignments (their ids)."""
    with app.app_context():
        study = db.session.get(Study, study_id)
        assert study is not None
        user = create_user("late-reader@example.org", Role.READER, password=None)
        enrolment = Enrolment(study=study, user=user, seed=999, consented_at=system_now())
        db.session.add(enrolment)
        pool = study.cases[:cases]
        assignments = [
            Assignment(enrolment=enrolment, case=case, session=1, condition=0, position=k)
            for k, case in enumerate(pool)
        ]
        db.session.add_all(assignments)
        db.session.commit()
        return [a.id for a in assignments]


def answer_one(app: Flask, assignment_id: int) -> None:
    """Save one more answer (a new answer set: the next dashboard view analyses it anew)."""
    with app.app_context():
        moment = system_now()
        db.session.add(
            Answer(
                assignment_id=assignment_id,
                diagnosis=CLASSES[assignment_id % len(CLASSES)],
                confidence=3,
                shown_at=moment,
                answered_at=moment,
                seconds=20.0,
                neighbours_shown=[],
                rotation=0,
            )
        )
        db.session.commit()


def median_ms(
    client: FlaskClient,
    url: str,
    repeat: int,
    check: Callable[[bytes], bool],
    before: Callable[[int], None] | None = None,
) -> tuple[float, float]:
    """Median wall and CPU milliseconds of GET `url` (after one untimed warm-up request);
    `before(attempt)` runs untimed before each request.

    CPU time is printed too: on a shared machine it moves less than wall time.
    """
    wall, cpu = [], []
    for attempt in range(repeat + 1):
        if before is not None:
            before(attempt)
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        elapsed = (time.perf_counter() - began) * 1000
        elapsed_cpu = (time.process_time() - began_cpu) * 1000
        if response.status_code != 200 or not check(response.data):
            raise SystemExit(f"{url} answered {response.status_code}")
        if attempt:
            wall.append(elapsed)
            cpu.append(elapsed_cpu)
    return statistics.median(wall), statistics.median(cpu)


def every_endpoint(body: bytes) -> bool:
    """The dashboard with its reader table and the OR-Hillis result of every endpoint."""
    wanted = [b'id="reader-table"', b'id="endpoints"', b"balanced accuracy"]
    wanted += [f"sensitivity for {code}".encode() for code in CLASSES]
    text = body.lower()  # endpoint names are capitalised as headings
    return all(piece in text for piece in wanted) and b"not available" not in text


def main(argv: list[str] | None = None) -> int:
    """Build the database, time the pages, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--pool", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as scratch:
        app = create_app(
            TestConfig,
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{scratch}/bench.sqlite",
                "STUDY_IMAGES": f"{scratch}/images",
            },
        )
        began = time.perf_counter()
        study_id = build_study(app, args.readers, args.cases, args.pool)
        late = add_late_reader(app, study_id, args.repeat + 1)
        built = time.perf_counter() - began
        answers = args.readers * args.cases * 2
        print(
            f"database: {args.readers} readers x {args.cases} cases x 2 tasks = {answers} answers"
        )
        print(f"          built in {built:.1f} s (SQLite, {scratch})")

        client = app.test_client()
        login = client.post("/login", data={"email": "organiser@example.org", "password": PASSWORD})
        assert login.status_code == 302, "login failed"
        page_url = f"/dashboard/{study_id}/"

        health = median_ms(client, "/health", args.repeat, lambda body: b"ok" in body)
        cold = median_ms(
            client,
            page_url,
            args.repeat,
            every_endpoint,
            before=lambda attempt: answer_one(app, late[attempt]),
        )
        warm = median_ms(client, page_url, args.repeat, every_endpoint)
        filtered = median_ms(client, f"{page_url}?completed=1", args.repeat, every_endpoint)
        expected_lines = answers + len(late) + 1  # every answer and the header
        export = median_ms(
            client,
            f"{page_url}export/responses",
            args.repeat,
            lambda body: body.count(b"\n") == expected_lines,
        )
        print(f"median of {args.repeat} requests (after one warm-up), Flask test client:")
        print(f"  {'':34} {'wall ms':>9} {'/health':>8} {'CPU ms':>9} {'/health':>8}")
        for label, (wall, cpu) in (
            ("/health (baseline)", health),
            ("dashboard, cold (after an answer)", cold),
            ("dashboard, warm", warm),
            ("dashboard, completed only, warm", filtered),
            ("responses CSV export", export),
        ):
            print(
                f"  {label:34} {wall:9.1f} {wall / health[0]:8.0f}"
                f" {cpu:9.1f} {cpu / health[1]:8.0f}"
            )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
