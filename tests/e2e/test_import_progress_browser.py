"""The import progress page in a real Chromium: the stage changes in place, then the study.

The page asks the server again every two seconds (static/js/importprogress.js) instead of
reloading itself (a self-refreshing page fails WCAG 2.2.1): the stage and the bar change in
the same document, and when the import has finished the page opens the new study with its
message.
"""

import re

import pytest

from app.auth import create_user
from app.extensions import db
from app.models import ImportJob, Role, Study
from app.organiser.team import add_member
from tests.e2e.conftest import LiveServer
from tests.e2e.pages import DESKTOP, new_page
from tests.e2e.stages import PASSWORD, log_in

pytestmark = pytest.mark.browser

ORGANISER = "importer@example.org"


def set_job(server: LiveServer, job_id: int, **values: object) -> None:
    """Change the import's row, as the background thread would."""
    with server.app.app_context():
        job = db.session.get(ImportJob, job_id)
        for key, value in values.items():
            setattr(job, key, value)
        db.session.commit()


def test_the_progress_page_follows_the_import_and_opens_the_study(
    live_server: LiveServer, browser: object, pages: dict
) -> None:
    server = live_server
    with server.app.app_context():
        organiser = create_user(ORGANISER, Role.ORGANISER, name="Importer", password=PASSWORD)
        db.session.flush()
        add_member(db.session.get(Study, server.study_id), organiser, owner=True)
        job = ImportJob(
            created_by_id=organiser.id,
            name="Browser import",
            source="(a bundle folder)",
            state="running",
            stage="Checking the images",
            done=10,
            total=100,
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    page = new_page(browser, pages, "import", DESKTOP)
    log_in(page, server, ORGANISER)
    page.goto(f"{server.url}/admin/imports/{job_id}")
    status = page.locator("[data-import-status]")
    assert status.inner_text() == "Checking the images: 10 of 100…"
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    set_job(server, job_id, stage="Re-encoding the images", done=60)
    page.wait_for_function(
        "() => document.querySelector('[data-import-status]').textContent.includes('60 of 100')"
    )
    assert page.evaluate("window.sameDocument") is True
    assert page.locator("[data-import-bar]").evaluate("bar => bar.value") == 60
    assert page.locator("meta[http-equiv]").count() == 0

    set_job(server, job_id, state="done", stage="Done", study_id=server.study_id)
    page.wait_for_url(re.compile(rf"/admin/studies/{server.study_id}$"))
    assert "This bundle was imported before" in page.content()  # the message, shown once
    assert page.errors == []
