"""Changing the wash-out (issue 24): the confirmation names what happens to each reader, a
started task is never closed, a task the change opens is announced by e-mail, and a queued
reminder says what holds when it is sent, not when it was queued."""

from collections.abc import Callable

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.mail import send_queued
from app.mail.reminders import reminder_key
from app.models import Enrolment, OutboxMessage
from app.survey.conditions import three_arm
from tests.app.conftest import FakeClock, StudyRef, UserRef
from tests.app.reading import SETTINGS, answer, complete_task, enrolment_id, finish_task1, set_study
from tests.app.smtp import SmtpServer


def test_cutting_the_washout_to_zero_announces_task2_and_rewrites_queued_reminders(
    app: Flask,
    study: StudyRef,
    reader: UserRef,
    organiser: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
) -> None:
    client = app.test_client()
    finish_task1(app, client, reader, study, login)
    staff = app.test_client()
    login(staff, organiser)
    enrolment = enrolment_id(app, reader)
    staff.post(f"/admin/studies/{study.id}/readers/{enrolment}/remind")  # queued, not sent
    with app.app_context():
        queued = db.session.scalars(select(OutboxMessage)).one()
        assert "opens" in queued.subject and "is open" not in queued.subject
    asked = staff.post(f"/admin/studies/{study.id}", data={**SETTINGS, "washout_hours": "0"})
    assert asked.status_code == 200 and "Task 2 opens at once" in asked.text
    assert "they get an e-mail that it is open" in asked.text
    done = staff.post(
        f"/admin/studies/{study.id}",
        data={**SETTINGS, "washout_hours": "0", "confirm_washout": "1"},
    )
    assert done.status_code == 302
    with app.app_context():
        row = db.session.get(Enrolment, enrolment)
        keys = list(db.session.scalars(select(OutboxMessage.dedupe_key)))
        assert reminder_key(row, 2, 0) in keys  # the opening's own reminder, queued once
        assert len(send_queued().sent) == 2
    subjects = [str(mail["Subject"]) for mail in smtp.sink.to(reader.email)]
    # Both say what holds now: the one queued before the change too, subject included.
    assert subjects == ["Task 2 of Test study is open"] * 2
    for mail in smtp.sink.to(reader.email):
        assert "opens on" not in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_lengthening_the_washout_never_closes_a_started_task_and_names_each_readers_task(
    app: Flask,
    study: StudyRef,
    organiser: UserRef,
    make_user: Callable,
    login: Callable,
    clock: FakeClock,
) -> None:
    from tests.app.conftest import join_study

    set_study(
        app,
        study,
        design="crossover",
        conditions=[c.to_json() for c in three_arm(6)],
        washout_hours=1.0,
    )
    middle, waiting = make_user("middle@example.org"), make_user("waiting@example.org")
    clients = {}
    for user in (middle, waiting):
        join_study(app, user, study)
        clients[user.email] = app.test_client()
        finish_task1(app, clients[user.email], user, study, login)
    clock.advance(hours=2)
    for number in range(1, 5):  # the walk's reader: case 4 of Task 2 answered, 5 next
        answer(clients[middle.email], study.id, 2, number)
    complete_task(clients[waiting.email], study.id, 2)  # Task 3 opens an hour later
    staff = app.test_client()
    login(staff, organiser)
    asked = staff.post(f"/admin/studies/{study.id}", data={**SETTINGS, "washout_hours": "48"})
    assert asked.status_code == 200
    text = asked.text
    assert "Task 2 is under way (case 5 of 10): it stays open" in text
    assert "the new wash-out applies before Task 3" in text
    assert "Task 3 opens" in text and "Task 2 closes again" not in text
    assert "Wash-out between one task and the next" in text
    assert '<th scope="col">What happens</th>' in text  # no empty column header
    staff.post(
        f"/admin/studies/{study.id}",
        data={**SETTINGS, "washout_hours": "48", "confirm_washout": "1"},
    )
    reading = clients[middle.email]
    assert reading.get(f"/survey/{study.id}/task/2/case/5").status_code == 200
    assert answer(reading, study.id, 2, 5).status_code == 303  # not "Task 2 is not open yet"
    waiting_page = clients[waiting.email].get(f"/survey/{study.id}/task/3/")
    assert "not open yet" in waiting_page.text  # Task 3 had not started: it moved


def test_an_untouched_consent_text_makes_no_new_version(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    from app.models import Study

    staff = app.test_client()
    login(staff, organiser)
    url = f"/admin/studies/{study.id}"
    staff.post(url, data={**SETTINGS, "information": "First line.\n\nSecond line."})
    with app.app_context():
        version = db.session.get(Study, study.id).consent_version
    # What a browser sends back for the same text: CR LF line ends, a stray space at an end.
    again = staff.post(
        url, data={**SETTINGS, "information": "First line. \r\n\r\nSecond line.\r\n"}
    )
    assert again.status_code == 302
    with app.app_context():
        assert db.session.get(Study, study.id).consent_version == version
    staff.post(url, data={**SETTINGS, "information": "First line.\r\n\r\nA new second line."})
    with app.app_context():
        assert db.session.get(Study, study.id).consent_version == version + 1
