"""Time on case in a real Chromium: the time a case page was away (closed, left for another
page) counts as hidden, so the time on case excludes it; static/js/activetime.js measures it."""

import re
import time

import pytest
from sqlalchemy import select

from app.auth import create_user
from app.extensions import db
from app.models import Answer, ReaderRole, Role, Study
from app.survey import enrol
from app.survey.enrolment import Profile
from tests.e2e.conftest import LiveServer
from tests.e2e.pages import DESKTOP, new_page

pytestmark = pytest.mark.browser

EMAIL = "timed@example.org"
PASSWORD = "a reader's passphrase"
AWAY_SECONDS = 1.5


def test_time_away_from_a_case_is_counted_as_hidden(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    with live_server.app.app_context():
        reader = create_user(EMAIL, Role.READER, password=PASSWORD)
        db.session.flush()
        enrol(db.session.get(Study, live_server.study_id), reader, Profile(ReaderRole.OTHER, 1, 2))
    page = new_page(browser, pages, "reader", DESKTOP)
    page.goto(f"{live_server.url}/login")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    case = f"{live_server.url}/survey/{live_server.study_id}/task/1/case/1"
    page.goto(case)
    page.wait_for_url(re.compile(r"/case/1$"))
    # The reader leaves the case for another page, then comes back to it.
    page.goto(f"{live_server.url}/survey/")
    time.sleep(AWAY_SECONDS)
    page.goto(case)
    live_server.clock.advance(seconds=90)  # the server saw the case open for 90 s in all
    page.locator("label[for=diagnosis-nv]").click()
    page.locator("label[for=confidence-3]").click()
    page.get_by_role("button", name=re.compile("Save")).click()
    page.wait_for_url(re.compile(r"/case/2$"))
    with live_server.app.app_context():
        (stored,) = db.session.scalars(select(Answer))
        assert stored.seconds == pytest.approx(90.0)
        assert AWAY_SECONDS - 0.2 <= stored.hidden_seconds < 30, stored.hidden_seconds
