"""Issue 24's reader additions in a real Chromium: the practice set before Task 1 on the same
page, the patient's age, sex and body site beside the case where the organiser shows it, and
feedback at the end (own score per condition, own probes); then axe-core over every page they
change, at a phone, a tablet and a desktop width.

One server for the module with a second study: a format-2 bundle with the `context`
extension, the thesis's two conditions both with the patient context, 3 cases per reader,
2 practice cases, misleading-aid probes in half the aided readings, feedback allowed.
"""

import re

import pytest
from sqlalchemy import select

from app.auth import create_invitation, create_user
from app.bundle import import_bundle
from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Role, Study, StudyStatus, User
from app.organiser.team import add_member
from app.survey.conditions import Condition
from tests.app.bundle_factory import make_bundle_v2
from tests.e2e.audit import SIZES, audit, session
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import new_page
from tests.e2e.stages import PASSWORD, log_in

pytestmark = pytest.mark.browser

ORGANISER = "walk2-organiser@example.org"
INFORMATION = (
    "A study of the end-to-end tests. Some of the AI's help shown in this study is"
    " deliberately misleading; you will be told at the end."
)


@pytest.fixture(scope="module")
def study_id(module_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The second study (see the module's docstring), owned by ORGANISER."""
    folder = tmp_path_factory.mktemp("walk2") / "bundle"
    bundle = make_bundle_v2(folder, cases=12, seed=7, aids=("se_cbir",), context=True)
    app = module_server.app
    with app.app_context():
        study, _ = import_bundle(bundle, "Practice and context", app.config["STUDY_IMAGES"])
        study.status = StudyStatus.OPEN
        study.cases_per_reader = 3
        study.washout_hours = 0.0
        study.practice_cases = 2
        study.feedback = True
        study.probe_share = 0.5
        study.information = INFORMATION
        study.design = "sequential"
        study.conditions = [
            Condition(context=True).to_json(),
            Condition("se_cbir", 6, context=True).to_json(),
        ]
        organiser = create_user(ORGANISER, Role.ORGANISER, password=PASSWORD)
        db.session.flush()
        add_member(study, organiser, owner=True)
        db.session.commit()
        return study.id


def invite(server: LiveServer, study_id: int, email: str) -> None:
    """A reader with an account in the study, not yet enrolled."""
    with server.app.app_context():
        study = db.session.get_one(Study, study_id)
        user = create_user(email, Role.READER, password=PASSWORD)
        db.session.flush()
        invitation, _ = create_invitation(study, email)
        invitation.used_at = invitation.created_at
        invitation.user_id = user.id
        db.session.commit()


def answer_cases(page, count: int, first: str, session: str) -> list[str]:
    """Answer `count` cases by mouse from the page the reader is on; each page's patient
    context text (empty where none is shown)."""
    shown = []
    for number in range(1, count + 1):
        page.wait_for_url(re.compile(rf"/task/{first}/case/{number}$"))
        heading = page.get_by_role("heading", level=1).inner_text()
        assert heading.startswith(session) and f"Case {number} of {count}" in heading
        patient = page.locator("section.patient")
        shown.append(patient.inner_text() if patient.count() else "")
        page.locator("label[for=diagnosis-nv]").click()
        page.locator("label[for=confidence-3]").click()
        name = f"Save and finish {session}" if number == count else "Save and next case"
        page.get_by_role("button", name=name).click()
    return shown


def test_a_reader_practises_sees_the_patient_and_gets_feedback(
    module_server: LiveServer, study_id: int, browser: object, pages: dict
) -> None:
    server = module_server
    email = "walk2-reader@example.org"
    invite(server, study_id, email)
    page = new_page(browser, pages, "walk2-phone", SIZES["390x844"], touch=True)
    log_in(page, server, email)
    page.goto(f"{server.url}/survey/{study_id}/")
    assert "Practice:" in page.locator("ul.how").inner_text()
    page.get_by_label("Resident in dermatology").check()
    page.get_by_label("Years of dermoscopy practice").fill("3")
    page.get_by_label("Dermoscopic examinations in a typical week").fill("25")
    page.get_by_label(re.compile("agree to take part")).check()
    page.get_by_role("button", name=re.compile("I agree")).click()

    page.wait_for_url(re.compile(r"/task/0/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Practice"
    page.get_by_role("link", name="Start the practice").click()
    practice = answer_cases(page, 2, "0", "Practice")
    assert all("Age" in text and "Body site" in text for text in practice)
    page.wait_for_url(re.compile(r"/task/1/$"))
    assert "Practice finished" in page.locator("body").inner_text()
    page.get_by_role("link", name="Start Task 1").click()
    task1 = answer_cases(page, 3, "1", "Task 1")
    page.wait_for_url(re.compile(r"/task/1/done$"))
    page.get_by_role("link", name="Go to Task 2").click()
    page.get_by_role("link", name="Start Task 2").click()
    task2 = answer_cases(page, 3, "2", "Task 2")
    page.wait_for_url(re.compile(r"/task/2/done$"))

    with server.app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        rows = db.session.execute(
            select(Assignment.session, Answer.context, Assignment.case_id, Assignment.probe)
            .join(Answer, Answer.assignment_id == Assignment.id)
            .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
            .where(Enrolment.user_id == user.id)
            .order_by(Assignment.session, Assignment.position)
        ).all()
        probes = sum(1 for row in rows if row.probe)
    assert [row.session for row in rows] == [0, 0, 1, 1, 1, 2, 2, 2]
    assert all(row.context is not None for row in rows)
    for text, row in zip(practice + task1 + task2, rows, strict=True):
        age = row.context["age"]
        assert ("not recorded" if age is None else f"{age} years") in text
    # The end: the reader's own figures, by what they were shown, and their probes.
    results = page.locator("section.feedback")
    assert results.get_by_role("heading", name="Your results").is_visible()
    table = results.locator("table.scores tbody tr").all_inner_texts()
    assert len(table) == 2 and table[0].startswith("Without the AI's help, with the patient")
    assert results.locator("ul.probe-list li").count() == probes
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e-feedback-390x844.png"), full_page=True)
    assert not page.errors, page.errors


def field(html: str, name: str) -> str:
    """The value of a form's hidden field `name` on a page."""
    found = re.search(rf'name="{name}"[^>]*value="([^"]+)"', html) or re.search(
        rf'value="([^"]+)"[^>]*name="{name}"', html
    )
    assert found, name
    return found[1]


def stage_reader(server: LiveServer, study_id: int, email: str, upto: int) -> None:
    """A reader who answered every case of the sessions before `upto` (0: none), through the
    app's own forms (a test client), so that what each answer showed is recorded."""
    invite(server, study_id, email)
    client = server.app.test_client()

    def post(url: str, data: dict) -> None:
        token = field(client.get(url).get_data(as_text=True), "csrf_token")
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code in (302, 303), (url, response.status_code)

    post("/login", {"email": email, "password": PASSWORD})
    consent = {"role": "resident", "years": "2", "exams_per_week": "10", "consent": "y"}
    post(f"/survey/{study_id}/", consent)
    for task, count in ((0, 2), (1, 3), (2, 3)):
        if task >= upto:
            break
        for number in range(1, count + 1):
            url = f"/survey/{study_id}/task/{task}/case/{number}"
            html = client.get(url).get_data(as_text=True)
            token = field(html, "token")
            post(url, {"diagnosis": "mel", "confidence": 2, "token": token})


def open_full_screen(page) -> None:
    """Enlarge the case image and switch to full screen."""
    page.get_by_role("button", name="Enlarge the case image").click()
    page.get_by_role("button", name="Full screen").click()
    page.wait_for_function(
        "() => document.querySelector('[data-fullscreen]').getAttribute('aria-pressed') === 'true'"
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_the_changed_pages_pass_axe(
    module_server: LiveServer, study_id: int, browser: object, size: str
) -> None:
    server, viewport = module_server, SIZES[size]
    base = f"{server.url}/survey/{study_id}"
    practising, reading, done = (f"walk2-{stage}-{size}@example.org" for stage in "pcd")
    stage_reader(server, study_id, practising, 0)
    stage_reader(server, study_id, reading, 2)
    stage_reader(server, study_id, done, 3)
    walks = {
        practising: [f"{base}/", f"{base}/task/0/", f"{base}/task/0/case/1"],
        reading: [f"{base}/task/2/", f"{base}/task/2/case/1"],
        done: [f"{base}/task/2/done"],
        ORGANISER: [f"{server.url}/admin/studies/{study_id}/design"],
    }
    found: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    for email, urls in walks.items():
        page = session(browser, viewport, server, email)
        try:
            for url in urls:
                audit(page, url, found, size)
            if email == reading:
                audit(page, "", found, size, action=open_full_screen)
            if email == done:
                assert page.locator("section.feedback").count() == 1
            assert not page.errors, page.errors
        finally:
            page.context.close()
    assert not found, "\n".join(found)
