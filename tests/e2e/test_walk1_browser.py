"""The second walk's fixes in a real Chromium (issue 24): time on case without idle time, the
design rows' options, correcting a reader's address, and axe-core with no violation and no
sideways scrolling at 390, 820 and 1366 px on every page these fixes changed or added,
the wash-out confirmation among them."""

import re
import time

import pytest
from sqlalchemy import select

from app.auth import create_invitation, create_user
from app.extensions import db
from app.models import (
    AddressChange,
    Answer,
    Enrolment,
    MailStatus,
    OutboxMessage,
    ReaderRole,
    Role,
    Study,
    User,
)
from app.organiser.team import add_member
from app.survey import enrol
from app.survey.enrolment import Profile
from tests.e2e.audit import SIZES, audit, session
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import DESKTOP, new_page
from tests.e2e.stages import PASSWORD, add_reader, log_in

pytestmark = pytest.mark.browser

ORGANISER = "walk-organiser@example.org"


def add_organiser(server: LiveServer) -> None:
    """The organiser who owns the server's study."""
    with server.app.app_context():
        user = create_user(ORGANISER, Role.ORGANISER, name="Org", password=PASSWORD)
        db.session.flush()
        add_member(db.session.get(Study, server.study_id), user, owner=True)
        db.session.commit()


def test_time_without_input_beyond_the_idle_limit_is_not_counted(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    live_server.app.config["CASE_IDLE_SECONDS"] = 1
    with live_server.app.app_context():
        reader = create_user("idle@example.org", Role.READER, password=PASSWORD)
        db.session.flush()
        enrol(db.session.get(Study, live_server.study_id), reader, Profile(ReaderRole.OTHER, 1, 2))
    page = new_page(browser, pages, "reader", DESKTOP)
    log_in(page, live_server, "idle@example.org")
    page.goto(f"{live_server.url}/survey/{live_server.study_id}/task/1/case/1")
    page.wait_for_url(re.compile(r"/case/1$"))
    time.sleep(3.5)  # in view, nobody at it: 1 s counts as a look, the rest as away
    live_server.clock.advance(seconds=60)
    page.locator("label[for=diagnosis-nv]").click()
    page.locator("label[for=confidence-3]").click()
    page.get_by_role("button", name=re.compile("Save")).click()
    page.wait_for_url(re.compile(r"/case/2$"))
    with live_server.app.app_context():
        (stored,) = db.session.scalars(select(Answer))
        assert stored.seconds == pytest.approx(60.0)
        assert 2.0 <= stored.hidden_seconds < 10, stored.hidden_seconds


def test_design_rows_show_only_their_aids_options(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    add_organiser(live_server)
    page = new_page(browser, pages, "organiser", DESKTOP)
    log_in(page, live_server, ORGANISER)
    page.goto(f"{live_server.url}/admin/studies/{live_server.study_id}/design")
    row = page.locator("fieldset.condition-row").first
    row.locator("select").first.select_option("unaided")
    assert row.locator("[data-applies]:visible").count() == 0  # "No aid": no options
    row.locator("select").first.select_option("se_cbir")
    visible = row.locator("[data-applies]:visible")
    assert visible.count() == 3  # how many images, with their classes, the saliency map
    assert row.get_by_label("Probabilities of").is_hidden()
    row.locator("select").first.select_option("probabilities")
    assert row.get_by_label("Probabilities of").is_visible()
    assert row.get_by_label("Similar images shown").is_hidden()
    assert page.errors == []


def test_an_organiser_corrects_a_readers_address(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    add_organiser(live_server)
    add_reader(live_server, "derm.c@clinic.example")
    with live_server.app.app_context():  # stored with the comma, as pasted addresses once were
        user = db.session.scalar(select(User).where(User.email == "derm.c@clinic.example"))
        user.email = "derm.c@clinic.example,"
        db.session.commit()
    page = new_page(browser, pages, "organiser", DESKTOP)
    log_in(page, live_server, ORGANISER)
    page.goto(f"{live_server.url}/admin/studies/{live_server.study_id}/readers")
    page.get_by_role("link", name="Correct address…").click()
    page.get_by_label("The correct e-mail address").fill("Derm C <derm.c@clinic.example>")
    page.get_by_role("button", name="Correct the address").click()
    page.wait_for_url(re.compile(r"/readers$"))
    flashes = page.locator(".flash").all_inner_texts()
    assert len(flashes) == 1 and "derm.c@clinic.example" in flashes[0]
    with live_server.app.app_context():
        assert db.session.scalar(select(AddressChange.new_email)) == "derm.c@clinic.example"
    reader = new_page(browser, pages, "reader", DESKTOP)
    log_in(reader, live_server, "derm.c@clinic.example")
    assert page.errors == [] and reader.errors == []


@pytest.fixture(scope="module")
def walked(module_server: LiveServer) -> dict[str, str]:
    """Readers at each stage, an organiser, an invitation whose mail failed: the pages' URLs."""
    server = module_server
    add_organiser(server)
    add_reader(server, "walk-locked@example.org", answered=(1,), hours_ago=1)
    add_reader(server, "walk-done@example.org", answered=(1, 2))
    with server.app.app_context():
        enrolment = db.session.scalar(select(Enrolment.id).order_by(Enrolment.id))
        invitation, _ = create_invitation(
            db.session.get(Study, server.study_id), "walk-invited@example.org"
        )
        db.session.flush()
        invitation_id = invitation.id
        db.session.add(
            OutboxMessage(
                recipient=invitation.email,
                subject="Invitation",
                body="Hello",
                kind="invitation",
                invitation_id=invitation.id,
                status=MailStatus.FAILED,
                attempts=1,
                last_error="SMTPRecipientsRefused: {'x': (550, b'5.1.1 No such user here')}",
            )
        )
        db.session.commit()
        assert db.session.scalar(select(User.id).where(User.email == ORGANISER))
    admin = f"/admin/studies/{server.study_id}"
    return {
        "settings": admin,
        "readers": f"{admin}/readers",
        "invitations": f"{admin}/invitations",
        "address": f"{admin}/readers/{enrolment}/address",
        "invitation_address": f"{admin}/invitations/{invitation_id}/address",
        "new": "/admin/studies/new",
        "design": f"{admin}/design",
        "done": f"/survey/{server.study_id}/",
    }


def confirm_washout(page) -> None:
    """Ask for a wash-out of 0: the confirmation lists the waiting reader (nothing saved)."""
    page.fill("#washout_hours", "0")
    page.click("button:has-text('Save settings')")
    page.locator("#washout-affected").wait_for()


@pytest.mark.parametrize("size", list(SIZES))
def test_the_changed_pages_pass_axe(
    module_server: LiveServer, walked: dict[str, str], browser: object, size: str
) -> None:
    server, base = module_server, module_server.url
    found: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    page = session(browser, SIZES[size], server, ORGANISER)
    try:
        for name, url in walked.items():
            if name != "done":
                audit(page, base + url, found, size)
        page.goto(base + walked["settings"])
        audit(page, "", found, size, action=confirm_washout)
        text = page.inner_text("#washout-affected")
        assert "Task 2 opens at once" in text and "What happens" in text
        assert not page.errors, page.errors
    finally:
        page.context.close()
    reader = session(browser, SIZES[size], server, "walk-done@example.org")
    try:
        audit(reader, base + walked["done"], found, size)
        assert "Continue the study" not in reader.content()
    finally:
        reader.context.close()
    assert not found, "\n".join(found)
    with server.app.app_context():
        assert db.session.get(Study, server.study_id).washout_hours == 24.0  # never confirmed
