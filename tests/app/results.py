"""Answering a study through the survey's pages and reading the dashboard's pages back (shared by
the dashboard, export and scale tests)."""

import re
from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.analysis import CLASSES
from app.extensions import db
from app.models import Assignment, Case, Enrolment, Role
from tests.app.conftest import StudyRef, UserRef, add_user, join_study
from tests.app.world import CONSENT

# Per reader: how many of their 10 cases (sorted by image id) they get right in each task.
PLAN = {"first": (5, 8), "second": (6, 6)}


@dataclass(frozen=True)
class Answered:
    """A study two readers have finished, with what they answered."""

    study: StudyRef
    readers: dict[str, UserRef]  # "first", "second"
    answers: list[tuple[str, str, int, str, str]]  # pseudonym, image id, task, truth, diagnosis


@dataclass(frozen=True)
class Shown:
    """An answered study on an app of its own, with its organiser (the `shown` fixture)."""

    app: Flask
    answered: Answered
    organiser: UserRef

    def client(self) -> FlaskClient:
        """A fresh client (no session)."""
        return self.app.test_client()


def wrong_for(truth: str) -> str:
    """A diagnosis that is not `truth` (the next class)."""
    return CLASSES[(CLASSES.index(truth) + 1) % len(CLASSES)]


def case_at(app: Flask, user: UserRef, study: StudyRef, task: int, number: int) -> Case:
    """The case behind a reader's case page (to know its truth; readers never see it)."""
    with app.app_context():
        case = db.session.scalar(
            select(Case)
            .join(Assignment, Assignment.case_id == Case.id)
            .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
            .where(
                Enrolment.user_id == user.id,
                Enrolment.study_id == study.id,
                Assignment.session == task,
                Assignment.position == number - 1,
            )
        )
        assert case is not None
        db.session.expunge(case)
        return case


def submit(client: FlaskClient, study: StudyRef, task: int, number: int, diagnosis: str) -> None:
    """Open a case page and answer it through its form."""
    url = f"/survey/{study.id}/task/{task}/case/{number}"
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code, page.headers.get("Location"))
    token = re.search(r'name="token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    if token is None:
        token = re.search(r'value="([^"]+)"[^>]*name="token"', page.get_data(as_text=True))
    assert token, "no token on the case page"
    confidence = 3 if task == 1 else 4
    response = client.post(
        url, data={"diagnosis": diagnosis, "confidence": confidence, "token": token.group(1)}
    )
    assert response.status_code == 303, response.get_data(as_text=True)


def read_study(
    app: Flask, client: FlaskClient, user: UserRef, study: StudyRef, right: tuple[int, int]
) -> list[tuple[str, str, int, str, str]]:
    """Log in as `user`, consent and answer both tasks, right on the first `right[t]` cases."""
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": user.password})
    assert response.status_code == 302
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 303
    given = []
    for task in (1, 2):
        if task == 2:
            app.config["CLOCK"].advance(hours=24)
        cases = [case_at(app, user, study, task, n) for n in range(1, 11)]
        ranked = sorted(c.image_id for c in cases)
        for number, case in enumerate(cases, start=1):
            correct = ranked.index(case.image_id) < right[task - 1]
            diagnosis = case.truth if correct else wrong_for(case.truth)
            submit(client, study, task, number, diagnosis)
            given.append((user.pseudonym, case.image_id, task, case.truth, diagnosis))
    client.post("/logout")
    return given


def answer_study(app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef) -> Answered:
    """Two readers (`reader` and a second one) complete both tasks of `study` as in PLAN."""
    second = add_user(app, "second.reader@example.org", Role.READER)
    join_study(app, second, study)
    readers = {"first": reader, "second": second}
    answers = []
    for key, user in readers.items():
        answers += read_study(app, client, user, study, PLAN[key])
    return Answered(study, readers, answers)


def page(client: FlaskClient, study: StudyRef, **args: str) -> str:
    """The dashboard page's HTML (asserting 200)."""
    response = client.get(f"/dashboard/{study.id}/", query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def heat_counts(html: str, table_id: str) -> list[list[int]]:
    """The counts of a heat-map table on the page, row by row."""
    table = re.search(rf'<table class="heat" id="{table_id}">(.*?)</table>', html, re.S)
    assert table, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)[1:]
    # Each cell prints its count and, below it, its share of the row (readable without hover).
    cell = r'<td class="heat-\d+"[^>]*>(\d+)<span class="share">[^<]+</span></td>'
    return [[int(n) for n in re.findall(cell, r)] for r in rows]
