"""Readers put at a stage of the study directly in the database, and logged in by a browser.

The reader's own way through the pages is tested in test_survey_browser.py; the viewer and
accessibility tests only need a reader who stands somewhere (in Task 1, in Task 2, done).
"""

import re
from datetime import timedelta

from app.auth import create_invitation, create_user
from app.clock import now
from app.extensions import db
from app.models import Answer, Role, Study
from app.survey import enrol
from studybundle.taxonomy import HAM10000_CODES as CLASS_CODES
from tests.e2e.conftest import LiveServer

PASSWORD = "a long enough passphrase"


def add_reader(
    server: LiveServer, email: str, answered: tuple[int, ...] = (), hours_ago: float = 30
) -> None:
    """An enrolled reader who answered every case of the tasks in `answered`, `hours_ago`
    (by default more than the 24-hour wash-out ago, so Task 2 is open)."""
    with server.app.app_context():
        study = db.session.get(Study, server.study_id)
        user = create_user(email, Role.READER, password=PASSWORD)
        db.session.flush()
        invitation, _ = create_invitation(study, email)
        invitation.used_at = now()
        invitation.user_id = user.id
        enrolment = enrol(study, user)
        moment = now() - timedelta(hours=hours_ago)
        for assignment in enrolment.assignments:
            if assignment.session not in answered:
                continue
            db.session.add(
                Answer(
                    assignment_id=assignment.id,
                    diagnosis=CLASS_CODES[assignment.position % len(CLASS_CODES)],
                    confidence=3,
                    shown_at=moment,
                    answered_at=moment + timedelta(seconds=20),
                    seconds=20.0,
                    neighbours_shown=[n.image_id for n in assignment.case.neighbours]
                    if assignment.session == 2
                    else [],
                    rotation=assignment.rotation,
                )
            )
        if 1 in answered:
            enrolment.first_session_done_at = moment
        if 2 in answered:
            enrolment.finished_at = moment
        db.session.commit()


def log_in(page, server: LiveServer, email: str, password: str = PASSWORD) -> None:
    """Log in through the login form and wait until the app has moved on."""
    page.goto(f"{server.url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/(survey|admin)/"))
