"""Reminders when Task 2 opens and again after N days, with a calendar file; the lock page's
wait in days and hours; the organiser's last activity and "remind" action."""

from collections.abc import Callable
from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select

from app.clock import describe_wait
from app.extensions import db
from app.mail import send_queued
from app.mail.reminders import queue_due_reminders
from app.models import Enrolment, OutboxMessage, StudyStatus, User
from app.survey.conditions import Condition
from tests.app.conftest import FakeClock, StudyRef, UserRef
from tests.app.reading import (
    answer,
    complete_task,
    enrol,
    enrolment_id,
    finish_task1,
    set_study,
)
from tests.app.smtp import SmtpServer


def reminder_keys(app: Flask) -> list[str | None]:
    """The dedupe keys of the queued reminders, oldest first."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(OutboxMessage.dedupe_key)
                .where(OutboxMessage.kind == "reminder")
                .order_by(OutboxMessage.id)
            )
        )


def test_describe_wait_in_days_and_hours() -> None:
    start = datetime(2026, 1, 1, 12, 0)
    assert describe_wait(datetime(2026, 1, 15, 12, 0), start) == "14 days"
    assert describe_wait(datetime(2026, 1, 15, 11, 0), start) == "13 days and 23 hours"
    assert describe_wait(datetime(2026, 1, 1, 14, 20), start) == "3 hours"
    assert describe_wait(datetime(2026, 1, 1, 12, 40), start) == "40 minutes"
    assert describe_wait(datetime(2026, 1, 2, 12, 0), start) == "1 day"
    assert describe_wait(datetime(2026, 1, 1, 11, 0), start) == "now"


def test_the_lock_page_gives_days_and_hours_and_a_calendar_file(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
) -> None:
    set_study(app, study, washout_hours=336.0)
    finish_task1(app, client, reader, study, login)
    page = client.get(f"/survey/{study.id}/task/1/done").text
    assert "in 14 days" in page and "336" not in page
    clock.advance(hours=1)
    assert "in 13 days and 23 hours" in client.get(f"/survey/{study.id}/task/2/").text
    ics = client.get(f"/survey/{study.id}/task2.ics")
    assert ics.status_code == 200 and ics.mimetype == "text/calendar"
    event = next(iter(Calendar.from_ical(ics.data).walk("VEVENT")))
    with app.app_context():
        opens = db.session.scalar(select(Enrolment)).second_session_opens_at
    assert event.decoded("dtstart").replace(tzinfo=None) == opens
    assert f"/survey/{study.id}/continue" in str(event.get("url"))


def test_a_reminder_when_task2_opens_then_after_n_days_never_twice(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
) -> None:
    set_study(app, study, reminder_days=3)
    finish_task1(app, client, reader, study, login)
    with app.app_context():
        assert queue_due_reminders() == 0  # still locked: nothing yet
    clock.advance(hours=24)
    with app.app_context():
        assert queue_due_reminders() == 1
        assert queue_due_reminders() == 0  # idempotent: the same reminder is not queued again
        assert send_queued().sent
    [mail] = smtp.sink.to(reader.email)
    assert "Task 2 of Test study is open" in str(mail["Subject"])
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"http://localhost/survey/{study.id}/continue" in text  # PUBLIC_URL in a command
    [calendar] = list(mail.iter_attachments())
    assert calendar.get_filename() == "task2.ics"
    clock.advance(days=2)
    with app.app_context():
        assert queue_due_reminders() == 0  # not 3 days yet
    clock.advance(days=1, minutes=1)
    with app.app_context():
        assert queue_due_reminders() == 1
    assert reminder_keys(app)[-1].endswith(":1")
    answer(client, study.id, 2, 1)  # the reader came back
    clock.advance(days=2, hours=23)
    with app.app_context():
        assert queue_due_reminders() == 0  # active within the last 3 days: no nagging
    clock.advance(hours=1)
    with app.app_context():
        assert queue_due_reminders() == 1  # quiet for 3 days again


def test_no_reminder_to_finished_withdrawn_or_closed(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
) -> None:
    finish_task1(app, client, reader, study, login)
    clock.advance(hours=25)
    set_study(app, study, status=StudyStatus.CLOSED)
    with app.app_context():
        assert queue_due_reminders() == 0
    set_study(app, study, status=StudyStatus.OPEN)
    with app.app_context():
        user = db.session.get(User, reader.id)
        user.active = False  # withdrawn: the account was deactivated
        db.session.commit()
        assert queue_due_reminders() == 0
        user = db.session.get(User, reader.id)
        user.active = True
        db.session.commit()
    complete_task(client, study.id, 2)
    with app.app_context():
        assert queue_due_reminders() == 0
    assert reminder_keys(app) == []


def test_the_cron_command_queues_and_sends_reminders(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
    runner: object,
) -> None:
    finish_task1(app, client, reader, study, login)
    clock.advance(hours=24)
    result = runner.invoke(args=["mail", "send-queued"])  # type: ignore[attr-defined]
    assert "queued 1 reminder(s)" in result.output and "sent 1" in result.output
    again = runner.invoke(args=["mail", "send-queued"])  # type: ignore[attr-defined]
    assert "queued" not in again.output and "sent 0" in again.output
    assert len(smtp.sink.to(reader.email)) == 1


def test_the_progress_page_shows_last_activity_and_reminds(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    organiser: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
) -> None:
    enrol(client, reader, study, login)
    answer(client, study.id, 1, 1)
    staff = app.test_client()
    login(staff, organiser)
    page = staff.get(f"/admin/studies/{study.id}/readers").text
    assert "Last activity" in page and clock.current.strftime("%Y-%m-%d %H:%M") in page
    with app.app_context():
        enrolment_id = db.session.scalar(select(Enrolment.id))
    done = staff.post(f"/admin/studies/{study.id}/readers/{enrolment_id}/remind")
    assert done.status_code == 302
    with app.app_context():
        send_queued()
    [mail] = smtp.sink.to(reader.email)
    assert "Please continue Test study" in str(mail["Subject"])
    assert f"http://localhost/survey/{study.id}/continue" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for number in range(2, 11):
        answer(client, study.id, 1, number)
    clock.advance(hours=25)
    complete_task(client, study.id, 2)
    staff.post(f"/admin/studies/{study.id}/readers/{enrolment_id}/remind")
    with app.app_context():
        assert send_queued().sent == []  # finished: nothing was queued
    assert "Remind</button>" not in staff.get(f"/admin/studies/{study.id}/readers").text


def test_a_three_task_study_reminds_when_task3_opens_with_its_own_calendar_file(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
) -> None:
    listed = [Condition(), Condition("se_cbir", 3, labelled=False), Condition("se_cbir", 6)]
    set_study(app, study, design="crossover", conditions=[c.to_json() for c in listed])
    finish_task1(app, client, reader, study, login)
    clock.advance(hours=24)
    complete_task(client, study.id, 2)
    with app.app_context():
        assert queue_due_reminders() == 0  # Task 2 done; Task 3 opens 24 h after it
    clock.advance(hours=24)
    with app.app_context():
        assert queue_due_reminders() == 1
        assert queue_due_reminders() == 0  # never twice
        assert len(send_queued().sent) == 1
    assert reminder_keys(app) == [f"reminder:{enrolment_id(app, reader)}:s3:0"]
    mail = smtp.sink.to(reader.email)[-1]
    assert "Task 3 of Test study is open" in str(mail["Subject"])
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "task3.ics"
    event = Calendar.from_ical(attached.get_content()).walk("VEVENT")[0]
    assert "Task 3" in str(event["summary"])
    page = client.get(f"/survey/{study.id}/task2.ics")
    assert page.status_code == 200 and 'filename="task3.ics"' in page.headers["Content-Disposition"]
    complete_task(client, study.id, 3)
    clock.advance(days=30)
    with app.app_context():
        assert queue_due_reminders() == 0  # finished: nothing more
