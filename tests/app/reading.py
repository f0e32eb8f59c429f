"""A reader's way through a study by the Flask test client: consent, case pages, answers, designs
and task openings (shared by the survey, organiser and mail tests)."""

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.extensions import db
from app.models import (
    Assignment,
    Enrolment,
    Study,
)
from app.survey.conditions import Condition
from tests.app.conftest import StudyRef, UserRef
from tests.app.world import CONSENT


def token_of(page: TestResponse) -> str:
    """The opaque case token in a case page's form."""
    html = page.get_data(as_text=True)
    match = re.search(r'<input[^>]*name="token"[^>]*>', html)
    assert match, "no token field on the page"
    value = re.search(r'value="([^"]+)"', match.group(0))
    assert value
    return value.group(1)


def consent(client: FlaskClient, study_id: int) -> TestResponse:
    """Give consent on the welcome page (enrols the reader)."""
    response = client.post(f"/survey/{study_id}/", data=CONSENT)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def case_url(study_id: int, task: int, number: int) -> str:
    """The URL of case `number` (1-based) of `task`."""
    return f"/survey/{study_id}/task/{task}/case/{number}"


def answer(
    client: FlaskClient,
    study_id: int,
    task: int,
    number: int,
    diagnosis: str = "nv",
    confidence: object = 3,
) -> TestResponse:
    """Open a case page and submit an answer through its form."""
    page = client.get(case_url(study_id, task, number))
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    return client.post(
        case_url(study_id, task, number),
        data={"diagnosis": diagnosis, "confidence": confidence, "token": token_of(page)},
    )


def complete_task(client: FlaskClient, study_id: int, task: int, size: int = 10) -> None:
    """Answer every case of a task in order."""
    for number in range(1, size + 1):
        response = answer(client, study_id, task, number, diagnosis="bcc", confidence=4)
        assert response.status_code == 303


def set_design(
    app: Flask, study: StudyRef, design: str, listed: list[dict], **extra: object
) -> None:
    """Give the study a design directly (the design page is tested on its own below)."""
    with app.app_context():
        record = db.session.get(Study, study.id)
        record.design = design
        record.conditions = listed
        for key, value in extra.items():
            setattr(record, key, value)
        db.session.commit()


def assignments_of(app: Flask, user: UserRef) -> list[tuple[int, int, int, int, bool]]:
    """(task, position, case id, condition, probe) of the reader's assignments, in order."""
    with app.app_context():
        rows = db.session.execute(
            select(
                Assignment.session,
                Assignment.position,
                Assignment.case_id,
                Assignment.condition,
                Assignment.probe,
            )
            .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
            .where(Enrolment.user_id == user.id)
            .order_by(Assignment.session, Assignment.position)
        ).all()
        return [tuple(row) for row in rows]


def answer_case(
    client: FlaskClient, study_id: int, task: int, number: int, code: str = "nv"
) -> str:
    """Answer one case through its form; the page's HTML before answering."""
    url = case_url(study_id, task, number)
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code, page.headers.get("Location"))
    html = page.get_data(as_text=True)
    response = client.post(url, data={"diagnosis": code, "confidence": 3, "token": token_of(page)})
    assert response.status_code == 303, response.get_data(as_text=True)
    return html


def tiles(html: str) -> int:
    """How many similar images a case page shows."""
    return len(re.findall(r'<figure class="tile', html))


def enrol(client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable) -> None:
    """The reader logs in and consents."""
    login(client, reader)
    consent(client, study.id)


def finish_task1(
    app: Flask, client: FlaskClient, reader: UserRef, study: StudyRef, login: Callable
) -> None:
    """The reader consents and answers every Task 1 case."""
    enrol(client, reader, study, login)
    complete_task(client, study.id, 1)


def enrolment_id(app: Flask, reader: UserRef) -> int:
    """The id of the reader's (only) enrolment."""
    with app.app_context():
        return db.session.scalars(select(Enrolment.id).filter_by(user_id=reader.id)).one()


def set_study(app: Flask, study: StudyRef, **values: object) -> None:
    """Change study settings directly."""
    with app.app_context():
        row = db.session.get(Study, study.id)
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


CONDITIONS = [
    Condition(),
    Condition("cbir", 4, labelled=False),
    Condition("probabilities", classifier="rgb"),
    Condition("se_cbir", 6, saliency=True),
    Condition(saliency=True),
]


def stem(name: str) -> str:
    """A served image's URL part."""
    return name.removesuffix(".jpg")


def shown_images(html: str) -> list[str]:
    """The served names of the similar images a page shows, in rank order."""
    return re.findall(r'<figure class="tile[^"]*">\s*<a [^>]*href="/images/(\w+)', html)


UNAIDED = {"aid": "unaided", "k": 0, "labelled": True, "classifier": "", "saliency": False}


SE6 = {"aid": "se_cbir", "k": 6, "labelled": True, "classifier": "", "saliency": False}


SETTINGS = {
    "name": "Test study",
    "washout_hours": "24",
    "information": "",
    "reminder_days": "0",
    # Only read while nobody has enrolled (then these settings lock).
    "cases_per_reader": "10",
    "sampling": "random",
    "reshuffle_later_sessions": "y",
}
