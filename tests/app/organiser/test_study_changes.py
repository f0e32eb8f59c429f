"""Organiser safeguards: closing asks first, moving Task 2 for waiting readers asks first,
the consent text is versioned and each enrolment keeps the version agreed to."""

import re
from collections.abc import Callable

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models import ConsentVersion, Enrolment, Study, StudyStatus
from tests.app.conftest import FakeClock, StudyRef, UserRef
from tests.app.reading import SETTINGS, complete_task, consent


def study_row(app: Flask, study: StudyRef) -> Study:
    """The study as stored now."""
    with app.app_context():
        row = db.session.get(Study, study.id)
        assert row is not None
        db.session.expunge(row)
        return row


def test_closing_asks_first(
    app: Flask, study: StudyRef, organiser: UserRef, reader: UserRef, login: Callable
) -> None:
    staff = app.test_client()
    login(staff, organiser)
    settings = staff.get(f"/admin/studies/{study.id}").text
    assert f'href="/admin/studies/{study.id}/close/confirm"' in settings  # to the question
    reading = app.test_client()
    login(reading, reader)
    consent(reading, study.id)
    asked = staff.get(f"/admin/studies/{study.id}/close/confirm").text
    assert "1 reader has not finished yet" in asked
    assert study_row(app, study).status == StudyStatus.OPEN
    staff.post(f"/admin/studies/{study.id}/close")
    assert study_row(app, study).status == StudyStatus.CLOSED


def test_moving_task2_for_waiting_readers_asks_first(
    app: Flask,
    study: StudyRef,
    organiser: UserRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
) -> None:
    reading = app.test_client()
    login(reading, reader)
    consent(reading, study.id)
    complete_task(reading, study.id, 1)
    clock.advance(hours=2)
    staff = app.test_client()
    login(staff, organiser)
    asked = staff.post(f"/admin/studies/{study.id}", data={**SETTINGS, "washout_hours": "1"})
    assert asked.status_code == 200
    assert 'id="washout-affected"' in asked.text and reader.email not in asked.text
    assert "opens at once" in asked.text and "Save the new wash-out" in asked.text
    assert study_row(app, study).washout_hours == 24.0  # nothing saved yet
    assert reading.get(f"/survey/{study.id}/task/2/").text.count("not open yet") == 1
    confirmed = staff.post(
        f"/admin/studies/{study.id}",
        data={**SETTINGS, "washout_hours": "1", "confirm_washout": "1"},
    )
    assert confirmed.status_code == 302
    assert study_row(app, study).washout_hours == 1.0
    # Without waiting readers (or the same wash-out) nothing is asked.
    same = staff.post(f"/admin/studies/{study.id}", data={**SETTINGS, "washout_hours": "1"})
    assert same.status_code == 302


def test_the_consent_text_is_versioned_and_enrolments_keep_theirs(
    app: Flask,
    study: StudyRef,
    organiser: UserRef,
    reader: UserRef,
    make_user: Callable,
    login: Callable,
) -> None:
    from tests.app.conftest import join_study

    staff = app.test_client()
    login(staff, organiser)
    staff.post(f"/admin/studies/{study.id}", data={**SETTINGS, "information": "First text."})
    first = app.test_client()
    login(first, reader)
    consent(first, study.id)
    saved = staff.post(
        f"/admin/studies/{study.id}",
        data={**SETTINGS, "information": "Second text."},
        follow_redirects=True,
    )
    assert "now version 3" in saved.text, re.findall(
        r"class=\"(?:flash|error)[^>]*>[^<]*", saved.text
    )
    later = make_user("later@example.org")
    join_study(app, later, study)
    second = app.test_client()
    login(second, later)
    consent(second, study.id)
    staff.post(f"/admin/studies/{study.id}", data={**SETTINGS, "information": "Second text."})
    with app.app_context():
        versions = {
            row.version: row.text
            for row in db.session.scalars(
                select(ConsentVersion).where(ConsentVersion.study_id == study.id)
            )
        }
        agreed = {row.user_id: row.consent_version for row in db.session.scalars(select(Enrolment))}
    assert versions == {1: "", 2: "First text.", 3: "Second text."}
    assert agreed == {reader.id: 2, later.id: 3}
    page = staff.get(f"/admin/studies/{study.id}/readers").text
    assert "version 2" in page and "version 3" in page
