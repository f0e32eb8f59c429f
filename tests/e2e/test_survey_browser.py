"""A reader's whole way through a study in a real headless Chromium.

From the invitation link through the password, the consent, Task 1 (by mouse, then by
keyboard only, with a reload in the middle), Task 2 refused during the wash-out and open after
it, to the end page; the Task 2 layout is checked (and photographed) at 1366x768 and on a
tablet.
"""

import re

import pytest
from sqlalchemy import select

from app.auth import create_invitation
from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Study
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import DESKTOP, TABLET, new_page

pytestmark = pytest.mark.browser

PASSWORD = "a long enough passphrase"
BROWSER_WINDOW = {"width": 1366, "height": 650}


def invitation_url(server: LiveServer, email: str) -> str:
    """A fresh invitation link, made by the app's own function."""
    with server.app.app_context():
        _, token = create_invitation(db.session.get(Study, server.study_id), email)
        db.session.commit()
    return f"{server.url}/invite/{token}"


def stored_answers(server: LiveServer) -> list[tuple[int, int, str, int, int]]:
    """(task, position, diagnosis, confidence, rotation) of every answer, in order."""
    with server.app.app_context():
        rows = db.session.execute(
            select(
                Assignment.session,
                Assignment.position,
                Answer.diagnosis,
                Answer.confidence,
                Answer.rotation,
            )
            .join(Answer, Answer.assignment_id == Assignment.id)
            .order_by(Assignment.session, Assignment.position)
        ).all()
        return [tuple(row) for row in rows]


def fits(page, selector: str, viewport: dict) -> None:
    """The element is fully inside the viewport without scrolling."""
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= viewport["width"] + 1, (selector, box)
    assert box["y"] + box["height"] <= viewport["height"] + 1, (selector, box)


def test_a_reader_from_invitation_to_the_end(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    server = live_server
    page = new_page(browser, pages, "desktop", DESKTOP)

    # Invitation: set a password, arrive on the welcome page.
    page.goto(invitation_url(server, "reader@example.org"))
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the new password").fill(PASSWORD)
    page.get_by_role("button", name="Set password and continue").click()
    page.wait_for_url(re.compile(rf"/survey/{server.study_id}/$"))
    assert page.get_by_role("heading", name="Browser study").is_visible()
    assert "A study run by the end-to-end test." in page.content()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e-welcome.png"), full_page=True)

    # Consent: the checkbox is required by the browser, then enrols.
    page.get_by_role("button", name=re.compile("I agree")).click()
    assert page.url.endswith(f"/survey/{server.study_id}/")
    page.get_by_label("Resident in dermatology").check()
    page.get_by_label("Years of dermoscopy practice").fill("3")
    page.get_by_label("Dermoscopic examinations in a typical week").fill("25")
    page.get_by_label(re.compile("agree to take part")).check()
    page.get_by_role("button", name=re.compile("I agree")).click()
    page.wait_for_url(re.compile(r"/task/1/$"))
    page.get_by_role("link", name="Start Task 1").click()

    # Task 1, case 1 by mouse, with the zoom dialog.
    page.wait_for_url(re.compile(r"/task/1/case/1$"))
    assert page.get_by_role("heading", name=re.compile("Case 1 of 4")).is_visible()
    page.get_by_role("button", name="Enlarge the case image").click()
    dialog = page.locator("#viewer-dialog")
    assert dialog.is_visible()
    assert dialog.locator("img").bounding_box()["height"] > 500
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    with page.context.expect_page() as info:  # the help opens in a new tab; the case stays
        page.get_by_role("link", name=re.compile("General information")).click()
    help_page = info.value
    help_page.wait_for_load_state()
    assert "Class definitions" in help_page.content()
    help_page.close()
    page.get_by_text("Class definitions", exact=True).click()  # the <details> on the page
    assert page.get_by_text("A benign skin lesion, regarded either as").is_visible()
    page.get_by_text("Class definitions", exact=True).click()
    page.locator("label", has_text="Melanoma").click()
    page.locator("label[for=confidence-4]").click()
    assert page.locator("#confidence-4").is_checked()
    page.screenshot(path=str(ARTIFACTS / "e2e-task1-1366x768.png"))
    page.get_by_role("button", name="Save and next case").click()

    # Case 2 by mouse.
    page.wait_for_url(re.compile(r"/task/1/case/2$"))
    page.locator("label[for=diagnosis-nv]").click()
    page.locator("label[for=confidence-2]").click()
    page.get_by_role("button", name="Save and next case").click()

    # A reload in the middle and a fresh visit both resume at case 3.
    page.wait_for_url(re.compile(r"/task/1/case/3$"))
    page.reload()
    assert page.get_by_role("heading", name=re.compile("Case 3 of 4")).is_visible()
    page.goto(f"{server.url}/survey/{server.study_id}/continue")
    page.wait_for_url(re.compile(r"/task/1/case/3$"))

    # Cases 3 and 4 by keyboard only: 3 = the third class (bkl), D = confidence 3, Enter.
    for number in (3, 4):
        page.wait_for_url(re.compile(rf"/task/1/case/{number}$"))
        page.keyboard.press("3")
        page.keyboard.press("d")
        assert page.locator("#diagnosis-bkl").is_checked()
        assert page.locator("#confidence-3").is_checked()
        page.keyboard.press("Enter")

    # The end of Task 1 says when Task 2 opens, in UTC and in local time.
    page.wait_for_url(re.compile(r"/task/1/done$"))
    assert "Task 2 opens on" in page.content()
    assert page.locator(".local-time").count() == 1
    page.screenshot(path=str(ARTIFACTS / "e2e-task1-end.png"))
    answers = stored_answers(server)
    assert [a[2:4] for a in answers] == [("mel", 4), ("nv", 2), ("bkl", 3), ("bkl", 3)]

    # During the wash-out Task 2 is refused.
    page.goto(f"{server.url}/survey/{server.study_id}/task/2/case/1")
    page.wait_for_url(re.compile(r"/task/2/$"))
    assert "Task 2 is not open yet" in page.content()
    server.clock.advance(hours=23)
    page.reload()
    assert "Task 2 is not open yet" in page.content()

    # After it, Task 2 opens.
    server.clock.advance(hours=1, seconds=1)
    page.goto(f"{server.url}/survey/{server.study_id}/continue")
    page.wait_for_url(re.compile(r"/task/2/$"))
    page.get_by_role("link", name="Start Task 2").click()
    page.wait_for_url(re.compile(r"/task/2/case/1$"))
    check_task2_layout(page, DESKTOP, "e2e-task2-1366x768.png")
    # A 768-pixel screen leaves about 650 pixels to the page under the browser's bars.
    page.set_viewport_size(BROWSER_WINDOW)
    check_task2_layout(page, BROWSER_WINDOW, "e2e-task2-1366x650.png")
    page.set_viewport_size(DESKTOP)

    # The same case on a tablet (same login), photographed.
    tablet = new_page(browser, pages, "tablet", TABLET, state=page.context.storage_state())
    tablet.goto(page.url)
    check_task2_layout(tablet, TABLET, "e2e-task2-tablet-820x1180.png")
    tablet.context.close()
    del pages["tablet"]

    # Task 2: a double click on the button stores one answer.
    page.locator("label[for=diagnosis-vasc]").click()
    page.locator("label[for=confidence-5]").click()
    page.get_by_role("button", name="Save and next case").dblclick()
    page.wait_for_url(re.compile(r"/task/2/case/2$"))
    for number in (2, 3, 4):
        page.wait_for_url(re.compile(rf"/task/2/case/{number}$"))
        page.keyboard.press("6")
        page.keyboard.press("g")
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/task/2/done$"))
    assert "completed both tasks" in page.content()

    answers = stored_answers(server)
    assert len(answers) == 8
    assert [a[2:] for a in answers if a[0] == 2] == [("vasc", 5, 180)] + [("nv", 5, 180)] * 3
    with server.app.app_context():
        enrolment = db.session.scalars(select(Enrolment)).one()
        assert enrolment.finished_at is not None
    assert not page.errors, page.errors


def check_task2_layout(page, viewport: dict, screenshot: str) -> None:
    """Six framed neighbours beside the query, and the whole answer form on one screen."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_load_state("load")
    assert page.locator("figure.tile").count() == 6
    # Lazily loaded tiles may still be decoding after "load" on a busy machine: wait for them
    # (a tile that never loads still fails below, after the wait's time-out).
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.tile img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=15_000,
    )
    for index in range(6):
        tile = page.locator("figure.tile").nth(index)
        assert tile.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        assert tile.locator(".rank").inner_text() == f"#{index + 1}"
        border = tile.evaluate("el => getComputedStyle(el).borderTopColor")
        assert border not in ("rgb(89, 89, 89)", "rgba(0, 0, 0, 0)"), border  # a class colour
    query = page.locator("figure.query").bounding_box()
    first = page.locator("figure.tile").first.bounding_box()
    if viewport["width"] > 700:
        assert query["x"] > first["x"] + first["width"], "the query is right of the neighbours"
    for selector in ("figure.query", ".neighbours", "fieldset.classes", "fieldset.likert"):
        fits(page, selector, viewport)
    fits(page, "form.answer button[type=submit]", viewport)
    page.screenshot(path=str(ARTIFACTS / screenshot))
