"""axe-core over every page a reader and an organiser reach, at a phone, a tablet and a laptop
width: zero violations, and no page wider than the window (WCAG 1.4.10 reflow: 390 px is also
a 1366 px screen at about 350 % zoom, 820 px one at 167 %).

axe-core is the vendored, pinned build (tests/e2e/vendor/README.md), injected as an init
script (the app's CSP does not apply to it). One server for the module; each width logs the
same people in once and walks the pages.
"""

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app.auth import create_invitation, create_user
from app.auth.reset import reset_token
from app.extensions import db
from app.models import Enrolment, ImportJob, Role, Study
from app.organiser.team import add_member
from tests.e2e.audit import SIZES, audit, session
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import DESKTOP
from tests.e2e.stages import PASSWORD, add_reader

pytestmark = pytest.mark.browser

ORGANISER = "a11y-organiser@example.org"
LONG_NAME = "Dermatoscopy" * 6 + "-reader-study-without-spaces"


@dataclass
class People:
    """Who stands where in the study (e-mails), and a valid invitation link's path."""

    invitation: str
    reset: str  # a valid password-reset link's path
    new: str  # invited, not enrolled: the consent form
    task1: str  # in Task 1
    locked: str  # finished Task 1 just now: Task 2 is locked
    task2: str  # in Task 2
    done: str  # finished both tasks
    import_job: str  # an import of the organiser's, still running


@pytest.fixture(scope="module")
def people(module_server: LiveServer) -> People:
    """Readers at every stage, an organiser who owns the study, an unused invitation."""
    server = module_server
    add_reader(server, "a11y-task1@example.org")
    add_reader(server, "a11y-locked@example.org", answered=(1,), hours_ago=1)
    add_reader(server, "a11y-task2@example.org", answered=(1,))
    add_reader(server, "a11y-done@example.org", answered=(1, 2))
    with server.app.app_context():
        study = db.session.get(Study, server.study_id)
        study.name = LONG_NAME  # every page that names the study must wrap it
        organiser = create_user(ORGANISER, Role.ORGANISER, name="Org", password=PASSWORD)
        db.session.flush()
        add_member(study, organiser, owner=True)
        new = create_user("a11y-new@example.org", Role.READER, password=PASSWORD)
        db.session.flush()
        invitation, _ = create_invitation(study, "a11y-new@example.org")
        invitation.used_at = invitation.created_at
        invitation.user_id = new.id
        _, token = create_invitation(study, "a11y-invited@example.org")
        job = ImportJob(
            created_by_id=organiser.id,
            name="A running import",
            source="(a bundle folder)",
            state="running",
            stage="Checking the images",
            done=40,
            total=120,
        )
        db.session.add(job)
        db.session.commit()
        job_url = f"/admin/imports/{job.id}"
        reset = f"/password/reset/{reset_token(new)}"
    return People(
        invitation=f"/invite/{token}",
        reset=reset,
        new="a11y-new@example.org",
        task1="a11y-task1@example.org",
        locked="a11y-locked@example.org",
        task2="a11y-task2@example.org",
        done="a11y-done@example.org",
        import_job=job_url,
    )


def open_compare(page) -> None:
    """Enlarge the first similar image and compare it with the case."""
    page.locator("figure.tile a").first.click()
    page.get_by_role("button", name="Compare with the case").click()
    page.locator("#viewer-dialog figure.pane").nth(1).wait_for()


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_passes_axe(
    module_server: LiveServer, people: People, browser: object, size: str
) -> None:
    server, viewport = module_server, SIZES[size]
    base, study = server.url, f"{server.url}/survey/{server.study_id}"
    admin = f"{server.url}/admin/studies/{server.study_id}"
    found: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with server.app.app_context():
        enrolment = db.session.scalar(select(Enrolment.id).order_by(Enrolment.id))
    walks = {
        None: [
            f"{base}/login",
            base + people.invitation,
            f"{base}/invite/not-a-token",
            f"{base}/password/forgot",
            base + people.reset,
            f"{base}/no-such-page",
        ],
        people.new: [f"{study}/"],
        people.task1: [
            f"{base}/survey/",
            f"{study}/information",
            f"{study}/task/1/",
            f"{study}/task/1/case/1",
            f"{study}/withdraw",  # the confirmation page (withdraws nobody)
            f"{base}/password",
        ],
        people.locked: [f"{study}/task/1/done", f"{study}/task/2/"],
        people.task2: [f"{study}/task/2/", f"{study}/task/2/case/1"],
        people.done: [f"{study}/task/2/done"],
        ORGANISER: [
            f"{base}/admin/",
            admin,
            f"{base}/admin/studies/import",
            base + people.import_job,  # the progress page of an import
            f"{admin}/design",
            f"{admin}/invitations",
            f"{admin}/readers",
            f"{admin}/readers/{enrolment}/withdraw",  # the confirmation page
            f"{study}/preview/",
            f"{study}/preview/case/1",
            f"{study}/preview/case/2",
            f"{admin}/team",
            f"{base}/dashboard/{server.study_id}/",
        ],
    }
    for email, urls in walks.items():
        page = session(browser, viewport, server, email)
        try:
            for url in urls:
                audit(page, url, found, size)
            if email == people.task2:
                audit(page, "", found, size, action=open_compare)
            if email == ORGANISER:
                page.screenshot(path=str(ARTIFACTS / f"a11y-dashboard-{size}.png"), full_page=True)
            assert not page.errors, page.errors
        finally:
            page.context.close()
    assert not found, "\n".join(found)


def test_the_audit_finds_a_violation(module_server: LiveServer, browser: object) -> None:
    """The check can fail: an image without a text alternative is reported."""
    page = session(browser, DESKTOP, module_server, None)
    try:
        page.goto(f"{module_server.url}/login")
        page.evaluate("document.querySelector('main').append(document.createElement('img'))")
        result = page.evaluate("async () => await axe.run(document)")
        assert "image-alt" in {v["id"] for v in result["violations"]}
        assert re.match(r"4\.14\.1", page.evaluate("axe.version"))
    finally:
        page.context.close()
