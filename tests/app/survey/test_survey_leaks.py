"""Nothing a reader receives reveals a query's truth, image id or lesion id.

Class names appear on every case page (the buttons), so "the truth's name is absent" proves
nothing. The checks instead show that a page cannot depend on the truth: every Task 1 page is
byte-identical to every other once the image name and the case number are masked, and every
Task 2 page likewise outside the neighbour tiles, whose labels are exactly the neighbours'
own. Ids are checked literally, everywhere, including headers and redirect targets.
"""

import re
from collections import Counter
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from app.extensions import db
from app.models import Assignment, Case, Enrolment, Study
from tests.app.conftest import StudyRef, UserRef
from tests.app.leaks import (
    NEIGHBOURS,
    Recorder,
    check_images_are_named_by_content_hash,
    check_no_ids_anywhere,
    check_no_inline_script_or_style,
    mask,
)
from tests.app.reading import case_url, consent, token_of


@pytest.fixture
def walk(
    app: Flask,
    client: FlaskClient,
    reader: UserRef,
    study: StudyRef,
    login: Callable,
    clock,
) -> dict:
    """A reader's whole way through both tasks, with every page kept (and some mistakes)."""
    login(client, reader)
    rec = Recorder(client)
    rec.get("/survey/")
    rec.get(f"/survey/{study.id}/")
    rec.post(f"/survey/{study.id}/", data={})  # consent forgotten
    consent(client, study.id)
    for url in ("/survey/", f"/survey/{study.id}/information", f"/survey/{study.id}/classes.css"):
        rec.get(url)
    pages: dict[int, list[str]] = {1: [], 2: []}
    for task in (1, 2):
        rec.get(f"/survey/{study.id}/continue")
        rec.get(f"/survey/{study.id}/task/{task}/")
        for number in range(1, 11):
            page = rec.get(case_url(study.id, task, number))
            assert page.status_code == 200
            pages[task].append(page.get_data(as_text=True))
            token = token_of(page)
            url = case_url(study.id, task, number)
            if number == 2:  # mistakes on the way: a bad class, a bad token
                rec.post(url, data={"diagnosis": "x", "confidence": 3, "token": token})
                rec.post(url, data={"diagnosis": "nv", "confidence": 3, "token": "f" * 40})
            saved = rec.post(url, data={"diagnosis": "nv", "confidence": 3, "token": token})
            assert saved.status_code == 303
            if number == 3:  # a double submission, and the back button
                rec.post(url, data={"diagnosis": "mel", "confidence": 1, "token": token})
                rec.get(url)
                rec.get(rec.responses[-1][1].headers["Location"])
        rec.get(f"/survey/{study.id}/task/{task}/done")
        if task == 1:
            rec.get(case_url(study.id, 2, 1))  # locked
            rec.get(f"/survey/{study.id}/task/2/")
            clock.advance(hours=24, seconds=1)
    rec.get("/survey/")
    return {"responses": rec.responses, "pages": pages}


def check_task1_pages_do_not_depend_on_the_case(app: Flask, walk: dict) -> None:
    """Task 1 pages are identical apart from the image and the case number."""
    pages = walk["pages"][1]
    with app.app_context():
        truths = db.session.scalars(
            select(Case.truth)
            .join(Assignment, Assignment.case_id == Case.id)
            .where(Assignment.session == 1)
            .order_by(Assignment.position)
        ).all()
    # The comparison is only meaningful between cases of different truth.
    assert len(set(truths[:9])) >= 2
    masked = [mask(page) for page in pages[:9]]  # the last one says "finish" instead of "next"
    assert all(page == masked[0] for page in masked)
    assert "Save and finish Task 1" in pages[9]


def check_task2_pages_differ_only_in_the_neighbours(
    app: Flask, study: StudyRef, walk: dict
) -> None:
    """Task 2 pages differ only in the neighbour tiles, which carry the neighbours' labels."""
    pages = walk["pages"][2]
    masked = [mask(NEIGHBOURS.sub("NEIGHBOURS", page)) for page in pages[:9]]
    assert all(page == masked[0] for page in masked)
    with app.app_context():
        names = {c["code"]: c["name"] for c in db.session.get(Study, study.id).manifest["classes"]}
        assignments = db.session.scalars(
            select(Assignment)
            .join(Enrolment)
            .where(Assignment.session == 2)
            .order_by(Assignment.position)
        ).all()
        labels = [[n.truth for n in a.case.neighbours] for a in assignments]
    for page, truths in zip(pages, labels, strict=True):
        section = NEIGHBOURS.search(page)
        assert section
        tiles = re.findall(r'<figure class="tile cls-(\w+)">', section.group(0))
        assert tiles == truths
        counts = Counter(truths)
        for code, name in names.items():
            # A neighbour's name appears in its caption, its alt text (twice: the image and
            # its <noscript> copy) and its enlarge label.
            assert section.group(0).count(escape(name)) == 4 * counts[code], (code, name)


def check_forms_are_accessible(walk: dict) -> None:
    """Fieldsets with legends, a label for every radio, shortcuts announced, alt texts."""
    page = walk["pages"][2][0]
    assert page.count("<fieldset") == 2 and page.count("<legend>") == 2
    for input_id in re.findall(r'<input type="radio" id="([^"]+)"', page):
        assert f'<label for="{input_id}">' in page
    assert len(re.findall(r'aria-keyshortcuts="', page)) == 12
    assert all(alt for alt in re.findall(r'<img[^>]*alt="([^"]*)"', page))


def test_a_readers_whole_way_reveals_nothing(
    app: Flask, study: StudyRef, walk: dict, client: FlaskClient
) -> None:
    # One walk (both tasks, with mistakes) checked in several ways: the walk is the slow part.
    check_no_ids_anywhere(app, study, walk)
    check_images_are_named_by_content_hash(app, walk, client)
    check_task1_pages_do_not_depend_on_the_case(app, walk)
    check_task2_pages_differ_only_in_the_neighbours(app, study, walk)
    check_no_inline_script_or_style(walk)
    check_forms_are_accessible(walk)
