"""Readers kept across the wash-out, in a real headless Chromium: a password reset through
the e-mailed link, the reminder's link back to Task 2, an answer whose session ended mid-case
(back on the same case with the choice still selected), and the organiser's confirmations.
The e-mails go through a real SMTP server on loopback (aiosmtpd)."""

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.auth import create_invitation, create_user
from app.clock import now
from app.extensions import db, mail
from app.mail import send_queued
from app.mail.reminders import queue_due_reminders
from app.models import Answer, Enrolment, Role, Study, StudyStatus
from app.organiser.team import add_member
from app.survey import enrol
from tests.app.smtp import SmtpServer, smtp_server
from tests.e2e.conftest import LiveServer
from tests.e2e.kept import EMAIL, PASSWORD, log_in
from tests.e2e.pages import DESKTOP, new_page

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a fresh passphrase 2"


@pytest.fixture
def smtp(live_server: LiveServer) -> Iterator[SmtpServer]:
    """A loopback SMTP server that the live app sends through; links point at the server."""
    with smtp_server() as server:
        app = live_server.app
        app.config.update(
            MAIL_SERVER=server.host, MAIL_PORT=server.port, PUBLIC_URL=live_server.url
        )
        mail.init_app(app)
        yield server


def add_reader(server: LiveServer, enrolled: bool = True, task1_done: bool = False) -> None:
    """A reader of the study (enrolled, and optionally with Task 1 answered)."""
    with server.app.app_context():
        study = db.session.get(Study, server.study_id)
        reader = create_user(EMAIL, Role.READER, password=PASSWORD)
        db.session.flush()
        invitation, _ = create_invitation(study, EMAIL)
        invitation.used_at, invitation.user_id = now(), reader.id
        db.session.commit()
        if not enrolled:
            return
        enrolment = enrol(study, reader)
        if task1_done:
            for assignment in enrolment.assignments:
                if assignment.session == 1:
                    db.session.add(
                        Answer(
                            assignment_id=assignment.id,
                            diagnosis="nv",
                            confidence=3,
                            shown_at=now(),
                            answered_at=now(),
                            seconds=5.0,
                            neighbours_shown=[],
                            rotation=0,
                        )
                    )
            enrolment.first_session_done_at = now()
        db.session.commit()


def mailed_link(server: LiveServer, smtp: SmtpServer) -> str:
    """Send the queue; the link in the last message to the reader."""
    with server.app.app_context():
        send_queued()
    body = smtp.sink.to(EMAIL)[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(re.escape(server.url) + r"/\S+", body)
    assert found, body
    return found.group(0)


def test_password_reset_from_the_login_page(
    live_server: LiveServer, smtp: SmtpServer, browser: object, pages: dict
) -> None:
    add_reader(live_server, enrolled=False)
    page = new_page(browser, pages, "reset", DESKTOP)
    page.goto(live_server.url + "/login")
    page.click("text=Forgotten your password?")
    page.fill("#email", EMAIL)
    page.click("button[type=submit]")
    page.wait_for_selector("text=If an account has this address")  # after the navigation
    page.goto(mailed_link(live_server, smtp))
    page.fill("#password", NEW_PASSWORD)
    page.fill("#confirm", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your new password is set")
    page.click("text=Log out")
    page.goto(live_server.url + "/login")
    log_in(page, password=NEW_PASSWORD)
    assert "/login" not in page.url
    assert page.errors == []


def test_the_reminder_link_leads_back_to_task2(
    live_server: LiveServer, smtp: SmtpServer, browser: object, pages: dict
) -> None:
    add_reader(live_server, task1_done=True)
    page = new_page(browser, pages, "reminder", DESKTOP)
    live_server.clock.advance(hours=24, minutes=1)
    with live_server.app.app_context():
        assert queue_due_reminders() == 1
    link = mailed_link(live_server, smtp)
    assert link == f"{live_server.url}/survey/{live_server.study_id}/continue"
    page.goto(link)
    assert "/login" in page.url  # not logged in on this device: log in, then straight there
    log_in(page)
    page.wait_for_url(re.compile(r"/task/2/"))
    assert "Task 2" in page.content()
    assert page.errors == []


def test_an_answer_after_the_session_ended_is_kept_in_the_page(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    add_reader(live_server)
    page = new_page(browser, pages, "lost", DESKTOP)
    page.goto(live_server.url + "/login")
    log_in(page)
    case_url = f"{live_server.url}/survey/{live_server.study_id}/task/1/case/1"
    page.goto(case_url)
    page.click("label[for=diagnosis-mel]")
    page.click("label[for=confidence-4]")
    page.context.clear_cookies()  # the session ends while the reader looks at the case
    page.click("form.answer button[type=submit]")
    page.wait_for_url(re.compile(r"/login"))
    assert "your answer was not saved yet" in page.content()
    with live_server.app.app_context():
        assert db.session.scalar(select(Answer.id)) is None
    log_in(page)
    page.wait_for_url(case_url)
    assert page.is_checked("#diagnosis-mel") and page.is_checked("#confidence-4")
    assert "Nothing was saved yet" in page.inner_text(".restored-choice")
    page.click("form.answer button[type=submit]")
    page.wait_for_url(re.compile(r"/case/2"))
    with live_server.app.app_context():
        stored = db.session.scalar(select(Answer))
        assert stored is not None and (stored.diagnosis, stored.confidence) == ("mel", 4)
    assert not page.is_checked("#diagnosis-mel")  # the next case starts empty
    assert [e for e in page.errors if "400" not in e] == []


def test_the_organiser_is_asked_before_losing_edits_or_closing(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    with live_server.app.app_context():
        study = db.session.get(Study, live_server.study_id)
        study.status = StudyStatus.DRAFT
        organiser = create_user("org@example.org", Role.ORGANISER, password=PASSWORD)
        db.session.flush()
        add_member(study, organiser, owner=True)
        db.session.commit()
    page = new_page(browser, pages, "organiser", DESKTOP)
    page.goto(live_server.url + "/login")
    log_in(page, "org@example.org")
    settings = f"{live_server.url}/admin/studies/{live_server.study_id}"
    page.goto(settings)
    page.fill("#name", "Renamed but not saved")
    questions: list[str] = []

    def refuse(dialog: object) -> None:
        questions.append(dialog.type)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", refuse)
    page.click("text=Open the study")
    assert questions == ["confirm"]
    with live_server.app.app_context():
        assert db.session.get(Study, live_server.study_id).status == StudyStatus.DRAFT
    page.click("nav.subnav >> text=Invitations")
    page.wait_for_timeout(300)
    assert questions == ["confirm", "beforeunload"] and page.url == settings
    page.remove_listener("dialog", refuse)
    page.on("dialog", lambda dialog: dialog.accept())
    # Each click below loads a new page: wait for it, or content() may read a page mid-way.
    for selector in ("button:has-text('Save settings')", "text=Open the study"):
        with page.expect_navigation():
            page.click(selector)  # nothing unsaved after saving: no question
    assert "The study is open" in page.content()
    with page.expect_navigation():
        page.click("text=Close the study…")
    assert "Close “Renamed but not saved”?" in page.content()
    with live_server.app.app_context():
        assert db.session.get(Study, live_server.study_id).status == StudyStatus.OPEN
    with page.expect_navigation():
        page.click("button:has-text('Close the study')")
    assert "The study is closed" in page.content()
    assert page.errors == []


def test_a_reader_withdraws_after_a_confirmation(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    add_reader(live_server)
    page = new_page(browser, pages, "withdraw", DESKTOP)
    page.goto(live_server.url + "/login")
    log_in(page)
    page.goto(f"{live_server.url}/survey/{live_server.study_id}/")
    with page.expect_navigation():  # content() must not read the page mid-way
        page.click("text=Withdraw from this study…")
    assert "answers you have already given are kept" in page.content()
    with page.expect_navigation():
        page.click("text=Stay in the study")  # changing one's mind changes nothing
    with page.expect_navigation():
        page.click("text=Withdraw from this study…")
    page.click("button:has-text('Withdraw from the study')")
    page.wait_for_url(re.compile(rf"/survey/{live_server.study_id}/$"))
    assert "You withdrew from this study" in page.inner_text("#withdrawn")
    page.goto(f"{live_server.url}/survey/{live_server.study_id}/task/1/case/1")
    assert page.url.endswith(f"/survey/{live_server.study_id}/")
    with live_server.app.app_context():
        assert db.session.scalar(select(Enrolment.withdrawn_by)) == "reader"
    assert page.errors == []


def test_moving_task2_of_a_waiting_reader_is_asked_first(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    add_reader(live_server, task1_done=True)  # Task 2 opens in 24 hours
    with live_server.app.app_context():
        study = db.session.get(Study, live_server.study_id)
        organiser = create_user("org@example.org", Role.ORGANISER, password=PASSWORD)
        db.session.flush()
        add_member(study, organiser, owner=True)
        db.session.commit()
    page = new_page(browser, pages, "washout", DESKTOP)
    page.goto(live_server.url + "/login")
    log_in(page, "org@example.org")
    page.goto(f"{live_server.url}/admin/studies/{live_server.study_id}")
    page.fill("#washout_hours", "1")
    page.click("button:has-text('Save settings')")
    warning = page.inner_text("#washout-affected")
    assert "moves the next task of 1 reader" in warning and "It would open at" in warning
    with live_server.app.app_context():
        assert db.session.get(Study, live_server.study_id).washout_hours == 24.0
    page.click("button:has-text('Save the new wash-out')")
    page.wait_for_load_state("load")
    assert page.locator("#washout-affected").count() == 0
    with live_server.app.app_context():
        assert db.session.get(Study, live_server.study_id).washout_hours == 1.0
    assert page.errors == []
