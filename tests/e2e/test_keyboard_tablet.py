"""A reader does Task 1 with the keyboard only, on a tablet-sized window (820x1180).

No mouse at all: Tab moves the focus, Space ticks the consent box, arrow keys choose within a
radio group, digits and letters are the survey's shortcuts, Enter submits. The first case is
answered through the focus order alone (Tab into the class group, arrows, Tab into the
confidence group, arrows, Tab to the button); the others with the shortcuts. During the
wash-out, following the links by keyboard leads back to the locked page, never to Task 2.
"""

import re

import pytest
from sqlalchemy import select

from app.auth import create_invitation, create_user
from app.clock import now
from app.extensions import db
from app.models import Answer, Assignment, Role, Study
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import TABLET, new_page

pytestmark = pytest.mark.browser

PASSWORD = "keyboard passphrase"
EMAIL = "keys@example.org"


def add_reader(server: LiveServer) -> None:
    """A reader with a password who accepted an invitation to the study (not yet enrolled)."""
    with server.app.app_context():
        user = create_user(EMAIL, Role.READER, password=PASSWORD)
        db.session.flush()
        invitation, _ = create_invitation(db.session.get(Study, server.study_id), EMAIL)
        invitation.used_at = now()
        invitation.user_id = user.id
        db.session.commit()


def focused(page) -> str:
    """A short description of the focused element: tag, id, name, type and text."""
    return page.evaluate(
        """() => { const e = document.activeElement; if (!e) return '';
        return [e.tagName.toLowerCase(), e.id, e.getAttribute('name') || '',
                e.getAttribute('type') || '', (e.innerText || e.value || '').trim()].join('|'); }"""
    )


def tab_to(page, selector: str, limit: int = 30, backwards: bool = False) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"Tab never reached {selector}; the focus is on {focused(page)}")


def focus_is_visible(page) -> bool:
    """The focused element (or the label styled for it) shows a focus indicator."""
    return page.evaluate(
        """() => {
        const e = document.activeElement;
        const candidates = [e, e.labels && e.labels[0], e.closest('label')].filter(Boolean);
        return candidates.some(c => { const s = getComputedStyle(c);
            return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                || s.boxShadow !== 'none'; });
        }"""
    )


def stored(server: LiveServer) -> list[tuple[int, int, str, int]]:
    """(task, position, diagnosis, confidence) of every answer."""
    with server.app.app_context():
        rows = db.session.execute(
            select(Assignment.session, Assignment.position, Answer.diagnosis, Answer.confidence)
            .join(Answer, Answer.assignment_id == Assignment.id)
            .order_by(Assignment.session, Assignment.position)
        ).all()
        return [tuple(row) for row in rows]


def test_task1_by_keyboard_only_on_a_tablet(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    server = live_server
    add_reader(server)
    page = new_page(browser, pages, "keyboard-tablet", TABLET)
    keys = page.keyboard

    # Log in: type into the fields the focus reaches, submit with Enter.
    page.goto(f"{server.url}/login")
    tab_to(page, "input[name=email]")
    keys.type(EMAIL)
    keys.press("Tab")
    assert "password" in focused(page)
    keys.type(PASSWORD)
    keys.press("Enter")
    # The reader's only open study opens at once, at its welcome page; consent with Space.
    page.wait_for_url(re.compile(rf"/survey/{server.study_id}/$"))
    # The profile: arrows choose the role, digits go into the number fields.
    tab_to(page, "input[name=role]")
    keys.press("ArrowDown")  # the second role, checked by the arrow
    assert page.locator("input[name=role][value=resident]").is_checked()
    keys.press("Tab")
    assert "years" in focused(page)
    keys.type("12")
    keys.press("Tab")
    assert "exams_per_week" in focused(page)
    keys.type("60")
    tab_to(page, "input#consent")
    keys.press("Space")
    assert page.locator("input#consent").is_checked()
    keys.press("Tab")
    assert "start the study" in focused(page)
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/task/1/$"))
    tab_to(page, "a.button.primary")
    assert "Start Task 1" in focused(page)
    keys.press("Enter")

    # Case 1 through the focus order only: the groups, arrows inside them, the button.
    page.wait_for_url(re.compile(r"/task/1/case/1$"))
    tab_to(page, "input[type=radio][name=diagnosis]")
    assert focus_is_visible(page), focused(page)
    keys.press("ArrowDown")  # moves to (and checks) the second class
    keys.press("ArrowDown")
    tab_to(page, "input[type=radio][name=confidence]")
    keys.press("ArrowRight")
    keys.press("ArrowRight")
    keys.press("ArrowRight")
    tab_to(page, "form.answer button[type=submit]")
    assert focus_is_visible(page), focused(page)
    chosen = page.locator("input[name=diagnosis]:checked").get_attribute("value")
    level = page.locator("input[name=confidence]:checked").get_attribute("value")
    assert chosen and level, "the arrows chose nothing"
    page.screenshot(path=str(ARTIFACTS / "e2e-keyboard-tablet-case1.png"))
    keys.press("Enter")

    # Cases 2-4 with the shortcuts: a digit for the class, a letter for the confidence.
    shortcuts = (("1", "a"), ("5", "s"), ("7", "g"))
    for number, (digit, letter) in zip((2, 3, 4), shortcuts, strict=True):
        page.wait_for_url(re.compile(rf"/task/1/case/{number}$"))
        keys.press(digit)
        keys.press(letter)
        keys.press("Enter")

    page.wait_for_url(re.compile(r"/task/1/done$"))
    assert "Task 2 opens on" in page.content()
    answers = stored(server)
    assert [a[:2] for a in answers] == [(1, 0), (1, 1), (1, 2), (1, 3)]
    assert answers[0][2:] == (chosen, int(level))
    assert [a[2:] for a in answers[1:]] == [("akiec", 1), ("mel", 2), ("vasc", 5)]

    # During the wash-out the keyboard way back leads to the locked page, not to Task 2.
    tab_to(page, "main a[href$='/survey/']")
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/survey/$"))
    assert "Task 2 opens" in page.content()
    tab_to(page, f"main a[href*='/survey/{server.study_id}/']")
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/task/1/done$"))
    assert "Task 2 opens on" in page.content()
    assert len(stored(server)) == 4
    assert not page.errors, page.errors
