"""Withdrawal: a reader withdraws from their study page (after a confirmation), or an
organiser records that they did from the progress page. Their answers are kept and marked in
the export; no more cases are shown, and no reminder is queued, sent or offered."""

import csv
import io
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.mail import send_queued
from app.mail.reminders import queue_due_reminders
from app.models import Answer, Enrolment, MailStatus, OutboxMessage, Role
from tests.app.conftest import FakeClock, StudyRef, UserRef, add_user, join_study
from tests.app.reading import answer, case_url, consent, enrolment_id, finish_task1, token_of
from tests.app.smtp import SmtpServer

YES = {"confirm": "yes"}


def answers(app: Flask) -> int:
    """How many answers the database holds."""
    with app.app_context():
        return db.session.scalar(select(func.count(Answer.id))) or 0


def withdrawn(app: Flask, reader: UserRef) -> tuple[object, str | None]:
    """When the reader's enrolment was marked withdrawn, and by whom."""
    with app.app_context():
        row = db.session.scalars(select(Enrolment).filter_by(user_id=reader.id)).one()
        return row.withdrawn_at, row.withdrawn_by


def test_a_reader_withdraws_after_a_confirmation_and_is_asked_nothing_more(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, login: Callable
) -> None:
    login(client, reader)
    consent(client, study.id)
    answer(client, study.id, 1, 1)
    open_case = client.get(case_url(study.id, 1, 2))  # the next case, open in another tab
    welcome = client.get(f"/survey/{study.id}/").text
    assert f'href="/survey/{study.id}/withdraw"' in welcome
    page = client.get(f"/survey/{study.id}/withdraw").text
    assert "answers you have already given are kept" in page
    # A bare POST (no confirmation) withdraws nobody.
    assert client.post(f"/survey/{study.id}/withdraw", data={}).status_code == 400
    assert withdrawn(app, reader) == (None, None)

    done = client.post(f"/survey/{study.id}/withdraw", data=YES)
    assert done.status_code == 303 and done.location.endswith(f"/survey/{study.id}/")
    moment, by = withdrawn(app, reader)
    assert moment is not None and by == "reader"
    welcome = client.get(f"/survey/{study.id}/").text
    assert "You withdrew from this study" in welcome and "Continue the study" not in welcome
    # No more cases: the pages send the reader back, and an answer from the open tab is not kept.
    for url in (
        case_url(study.id, 1, 2),
        f"/survey/{study.id}/task/1/",
        f"/survey/{study.id}/continue",
    ):
        assert client.get(url).location.endswith(f"/survey/{study.id}/"), url
    late = client.post(
        case_url(study.id, 1, 2),
        data={"diagnosis": "nv", "confidence": 3, "token": token_of(open_case)},
    )
    assert late.status_code == 303 and answers(app) == 1  # the first answer is kept
    assert client.get(f"/survey/{study.id}/task2.ics").status_code == 404
    assert "Withdrawn on" in client.get("/survey/").text
    # Withdrawing twice changes nothing.
    client.post(f"/survey/{study.id}/withdraw", data=YES)
    assert withdrawn(app, reader) == (moment, "reader")


def test_reminders_skip_withdrawn_readers(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    organiser: UserRef,
    login: Callable,
    clock: FakeClock,
    smtp: SmtpServer,
) -> None:
    stayer = add_user(app, "stayer@example.org", Role.READER)
    join_study(app, stayer, study)
    finish_task1(app, client, reader, study, login)
    other = app.test_client()
    finish_task1(app, other, stayer, study, login)
    staff = app.test_client()
    login(staff, organiser)
    # A reminder sent by hand, still waiting in the outbox when the reader withdraws.
    reader_enrolment = enrolment_id(app, reader)
    staff.post(f"/admin/studies/{study.id}/readers/{reader_enrolment}/remind")
    client.post(f"/survey/{study.id}/withdraw", data=YES)
    clock.advance(hours=25)  # Task 2 opens for both
    with app.app_context():
        assert queue_due_reminders() == 1  # the reader who stayed only
        report = send_queued()
        assert len(report.sent) == 1
        dropped = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.recipient == reader.email)
        ).one()
        assert dropped.status == MailStatus.FAILED and "withdrew" in (dropped.last_error or "")
    assert smtp.sink.to(reader.email) == [] and len(smtp.sink.to(stayer.email)) == 1
    # The progress page offers no reminder to them, and a forced one queues nothing.
    page = staff.get(f"/admin/studies/{study.id}/readers").text
    row = page.split(f'<th scope="row">{reader.pseudonym}</th>', 1)[1].split("</tr>", 1)[0]
    assert "Remind</button>" not in row and "(by the reader)" in row
    refused = staff.post(
        f"/admin/studies/{study.id}/readers/{reader_enrolment}/remind", follow_redirects=True
    )
    assert "withdrawn" in refused.text
    with app.app_context():
        assert queue_due_reminders() == 0
        waiting = select(func.count(OutboxMessage.id)).where(
            OutboxMessage.recipient == reader.email, OutboxMessage.status == MailStatus.PENDING
        )
        assert db.session.scalar(waiting) == 0


def test_an_organiser_records_a_withdrawal_and_the_answers_stay_in_the_export(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    organiser: UserRef,
    login: Callable,
) -> None:
    login(client, reader)
    consent(client, study.id)
    answer(client, study.id, 1, 1)
    answer(client, study.id, 1, 2)
    staff = app.test_client()
    login(staff, organiser)
    enrolment = enrolment_id(app, reader)
    progress = staff.get(f"/admin/studies/{study.id}/readers").text
    address = f"/admin/studies/{study.id}/readers/{enrolment}/withdraw"
    assert f'href="{address}"' in progress
    confirm = staff.get(address).text
    assert f"Record that {reader.pseudonym} withdrew" in confirm
    assert staff.post(address, data={}).status_code == 400  # no "yes": nothing recorded
    assert withdrawn(app, reader) == (None, None)
    assert staff.post(address, data=YES).status_code == 303
    assert withdrawn(app, reader)[1] == "organiser"
    progress = staff.get(f"/admin/studies/{study.id}/readers").text
    assert "(by the organiser)" in progress and f'href="{address}"' not in progress
    assert "organisers recorded" in client.get(f"/survey/{study.id}/").text
    assert client.get(case_url(study.id, 1, 3)).status_code == 303

    dashboard = staff.get(f"/dashboard/{study.id}/").text
    assert "1 withdrawn (their answers are kept)" in dashboard and "(withdrew " in dashboard
    export = staff.get(f"/dashboard/{study.id}/export/responses")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == answers(app) == 2
    assert all(row["reader_withdrawn_at"].endswith("Z") for row in rows)


def test_requeueing_failed_mail_leaves_a_withdrawn_reader_alone(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    reader: UserRef,
    organiser: UserRef,
    login: Callable,
    smtp: SmtpServer,
    runner: object,
) -> None:
    finish_task1(app, client, reader, study, login)
    staff = app.test_client()
    login(staff, organiser)
    staff.post(f"/admin/studies/{study.id}/readers/{enrolment_id(app, reader)}/remind")
    client.post(f"/survey/{study.id}/withdraw", data=YES)
    result = runner.invoke(args=["mail", "requeue", "--failed"])  # type: ignore[attr-defined]
    assert "requeued 0" in result.output and "1 reminder(s) to withdrawn readers" in result.output
    runner.invoke(args=["mail", "send-queued"])  # type: ignore[attr-defined]
    assert smtp.sink.to(reader.email) == []
