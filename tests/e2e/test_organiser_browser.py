"""The organiser's way in a real headless Chromium, at a desktop and at a tablet size.

Log in, open the study from the studies list, go to its results dashboard, download the
responses export and a confusion-matrix PNG, and check that both files parse (the CSV with
the analysis's own reader, the PNG with Pillow). The pages must raise no script error and no
CSP refusal, and must not scroll sideways.
"""

import re
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from app.analysis import read_responses
from app.auth import create_user
from app.clock import now
from app.extensions import db
from app.models import Answer, Role, Study
from app.organiser.team import add_member
from app.survey import enrol
from studybundle.taxonomy import HAM10000_CODES as CLASS_CODES
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import DESKTOP, TABLET, new_page

pytestmark = pytest.mark.browser

PASSWORD = "organiser passphrase"
READERS = 2


def seed_study(server: LiveServer) -> int:
    """An organiser, and two readers who answered both tasks; how many answers exist."""
    answers = 0
    with server.app.app_context():
        study = db.session.get(Study, server.study_id)
        organiser = create_user(
            "organiser@example.org", Role.ORGANISER, name="Org", password=PASSWORD
        )
        db.session.flush()
        add_member(study, organiser, owner=True)
        for index in range(READERS):
            reader = create_user(f"reader{index}@example.org", Role.READER, password=PASSWORD)
            db.session.flush()
            enrolment = enrol(study, reader)
            moment = now()
            for assignment in enrolment.assignments:
                db.session.add(
                    Answer(
                        assignment_id=assignment.id,
                        diagnosis=CLASS_CODES[(assignment.position + index) % len(CLASS_CODES)],
                        confidence=1 + (assignment.position + assignment.session) % 5,
                        shown_at=moment,
                        answered_at=moment + timedelta(seconds=20),
                        seconds=20.0,
                        neighbours_shown=[n.image_id for n in assignment.case.neighbours]
                        if assignment.session == 2
                        else [],
                        rotation=assignment.rotation,
                    )
                )
                answers += 1
            enrolment.first_session_done_at = moment
            enrolment.finished_at = moment
        db.session.commit()
        assert len(db.session.scalars(select(Answer)).all()) == answers
    return answers


def no_sideways_scrolling(page) -> None:
    """The page is not wider than the window (wide tables scroll inside their own box)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, (width, page.viewport_size)


def open_dashboard(server: LiveServer, browser: object, pages: dict, viewport: dict):
    """Log the organiser in and walk to the study's dashboard, as a person would."""
    size = f"{viewport['width']}x{viewport['height']}"
    page = new_page(browser, pages, f"organiser-{size}", viewport)
    page.goto(f"{server.url}/login")
    page.get_by_label("E-mail").fill("organiser@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    no_sideways_scrolling(page)
    page.get_by_role("link", name="Browser study").click()
    page.wait_for_url(re.compile(rf"/admin/studies/{server.study_id}$"))
    no_sideways_scrolling(page)
    page.get_by_role("link", name="Results").click()
    page.wait_for_url(re.compile(rf"/dashboard/{server.study_id}/$"))
    assert page.get_by_role("heading", level=1).first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-dashboard-{size}.png"))
    return page


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=["1366x768", "820x1180"])
def test_the_organiser_downloads_the_results(
    live_server: LiveServer, browser: object, pages: dict, viewport: dict, tmp_path
) -> None:
    server = live_server
    answers = seed_study(server)
    page = open_dashboard(server, browser, pages, viewport)

    # The responses export: the analysis reads it as it is, every answer once.
    link = page.get_by_role("link", name="Responses (CSV)")
    link.scroll_into_view_if_needed()
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"study-{server.study_id}-responses.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    responses = read_responses(saved)
    assert len(responses) == answers
    assert len(responses.readers) == READERS
    assert "@" not in saved.read_text()  # pseudonyms only unless staff ask for e-mails

    # A confusion matrix as PNG: a real image of a sensible size.
    png = page.get_by_role("link", name="PNG").first
    png.scroll_into_view_if_needed()
    with page.expect_download() as info:
        png.click()
    picture = tmp_path / info.value.suggested_filename
    info.value.save_as(picture)
    assert picture.suffix == ".png"
    with Image.open(picture) as image:
        image.verify()
    with Image.open(picture) as image:
        assert image.format == "PNG" and min(image.size) >= 200, image.size

    assert page.url.endswith(f"/dashboard/{server.study_id}/")  # downloads leave the page
    assert not page.errors, page.errors


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=["1366x768", "820x1180"])
def test_the_dashboard_fits_the_window_width(
    live_server: LiveServer, browser: object, pages: dict, viewport: dict
) -> None:
    seed_study(live_server)
    page = open_dashboard(live_server, browser, pages, viewport)
    no_sideways_scrolling(page)
    assert not page.errors, page.errors
