"""Preview as a reader, in a real headless Chromium: the organiser opens it from the study's
page, goes through the consent page and the sample case of each condition with the readers'
own controls (keys, buttons, the enlarged view), and nothing is stored."""

import re

import pytest
from sqlalchemy import func, select

from app.auth import create_user
from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Role, Study
from app.organiser.team import add_member
from tests.e2e.conftest import LiveServer
from tests.e2e.kept import PASSWORD, log_in
from tests.e2e.pages import DESKTOP, new_page

pytestmark = pytest.mark.browser


def stored(server: LiveServer) -> tuple[int, int, int]:
    """How many enrolments, assignments and answers the database holds."""
    with server.app.app_context():
        return tuple(  # type: ignore[return-value]
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Enrolment, Assignment, Answer)
        )


def test_the_organiser_previews_the_reader_pages_and_nothing_is_stored(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    with live_server.app.app_context():
        study = db.session.get(Study, live_server.study_id)
        organiser = create_user("org@example.org", Role.ORGANISER, password=PASSWORD)
        db.session.flush()
        add_member(study, organiser, owner=True)
        db.session.commit()
    page = new_page(browser, pages, "preview", DESKTOP)
    page.goto(live_server.url + "/login")
    log_in(page, "org@example.org")
    page.goto(f"{live_server.url}/admin/studies/{live_server.study_id}")
    page.click("text=Preview as a reader")
    page.wait_for_url(re.compile(r"/preview/$"))
    assert "Nothing you do here is saved" in page.inner_text(".preview-banner")
    assert "About this study" in page.content()

    page.check("input[name=role][value=dermatologist]")
    page.fill("#years", "5")
    page.fill("#exams_per_week", "30")
    page.check("#consent")
    page.click("button:has-text('I agree')")
    page.wait_for_url(re.compile(r"/preview/case/1$"))
    assert "Preview: nothing was saved." in page.content()
    assert page.locator("figure.tile").count() == 0  # Task 1 of the thesis: unaided
    page.click("label[for=diagnosis-mel]")
    page.keyboard.press("d")  # the readers' confidence key works here too
    assert page.is_checked("#confidence-3")
    page.click("form.answer button[type=submit]")

    page.wait_for_url(re.compile(r"/preview/case/2$"))
    assert page.locator("figure.tile").count() == 6  # Task 2: six labelled SE-CBIR images
    assert "turned by 180" in page.inner_text("figure.query")
    page.click("figure.tile >> nth=0 >> a.zoom")
    assert page.is_visible("#viewer-dialog")
    page.keyboard.press("Escape")
    page.click("label[for=diagnosis-nv]")
    page.click("label[for=confidence-2]")
    page.click("form.answer button[type=submit]")
    page.wait_for_url(re.compile(r"/preview/$"))  # after the last sample: back to the start
    page.click("text=Back to the study's settings")
    page.wait_for_url(re.compile(rf"/admin/studies/{live_server.study_id}$"))

    assert stored(live_server) == (0, 0, 0)
    assert page.errors == []
