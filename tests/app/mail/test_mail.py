"""The outbox and its sender, against a real SMTP server on loopback (aiosmtpd)."""

import re
import threading
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from app import create_app
from app.config import ConfigError, TestConfig
from app.extensions import db
from app.mail import Attachment, MailOff, queue_mail, send_queued
from app.mail.outbox import backoff, claim_next, stale_messages
from app.models import MailStatus, OutboxMessage
from tests.app.conftest import FakeClock
from tests.app.smtp import SmtpServer, free_port, smtp_server


def queued(app: Flask, count: int = 1, to: str = "reader{}@example.org") -> list[int]:
    """Queue `count` messages and commit; their ids."""
    with app.app_context():
        messages = [
            queue_mail(to.format(n), f"Subject {n}", f"Body {n}\n", kind="test")
            for n in range(count)
        ]
        db.session.commit()
        return [m.id for m in messages]


def row(app: Flask, message_id: int) -> OutboxMessage:
    """The message as stored now (detached copy of its values)."""
    with app.app_context():
        found = db.session.get(OutboxMessage, message_id)
        assert found is not None
        db.session.expunge(found)
        return found


def test_a_message_is_queued_only_with_the_transaction_that_caused_it(app: Flask) -> None:
    with app.app_context():
        queue_mail("a@example.org", "Rolled back", "x", kind="test")
        db.session.rollback()
        queue_mail("b@example.org", "Committed", "y", kind="test")
        db.session.commit()
        subjects = db.session.scalars(select(OutboxMessage.subject)).all()
    assert subjects == ["Committed"]


def test_sends_through_a_real_smtp_server_with_an_attachment(
    app: Flask, smtp: SmtpServer, clock: FakeClock
) -> None:
    with app.app_context():
        message = queue_mail(
            "reader@example.org",
            "Task 2 is open",
            "Your link: https://study.example.org/x\n",
            kind="test",
            attachments=[Attachment("task2.ics", "text/calendar", "BEGIN:VCALENDAR\r\n")],
        )
        db.session.commit()
        report = send_queued()
        assert report.sent == [message.id]
    [received] = smtp.sink.messages
    assert received["To"] == "reader@example.org"
    assert received["From"] == "study@example.org"
    assert received["Subject"] == "Task 2 is open"
    body = received.get_body(("plain",))
    assert body is not None and "https://study.example.org/x" in body.get_content()
    [attached] = list(received.iter_attachments())
    assert attached.get_filename() == "task2.ics"
    assert attached.get_content_type() == "text/calendar"
    stored = row(app, message.id)
    assert stored.status == MailStatus.SENT and stored.attempts == 1
    assert stored.sent_at == clock.current


def test_a_refused_message_is_retried_after_a_backoff_and_sent_once(
    app: Flask, smtp: SmtpServer, clock: FakeClock
) -> None:
    [message_id] = queued(app)
    smtp.sink.refuse = 1  # "451 try again later", then accepts
    with app.app_context():
        first = send_queued()
    assert first.retrying == [message_id] and not first.sent
    stored = row(app, message_id)
    assert stored.status == MailStatus.PENDING and stored.attempts == 1
    assert stored.next_attempt_at == clock.current + timedelta(seconds=60)
    assert "451" in (stored.last_error or "")
    with app.app_context():
        assert send_queued().sent == []  # not due yet: the server is not asked again
    clock.advance(seconds=61)
    with app.app_context():
        assert send_queued().sent == [message_id]
        assert send_queued().sent == []  # and never again
    assert smtp.sink.refused == 1
    assert len(smtp.sink.messages) == 1
    assert row(app, message_id).status == MailStatus.SENT


def test_an_outage_loses_nothing_and_sends_nothing_twice(app: Flask, clock: FakeClock) -> None:
    from app.extensions import mail

    port = free_port()  # nothing listens there yet: the SMTP server is "down"
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    mail.init_app(app)
    ids = queued(app, 3)
    with app.app_context():
        report = send_queued()
    # The first message met the outage; the run stopped instead of trying the rest.
    assert report.stopped_early and report.retrying == [ids[0]] and not report.sent
    assert [row(app, i).attempts for i in ids] == [1, 0, 0]
    with smtp_server(port) as server:
        with app.app_context():
            second = send_queued()
        assert sorted(second.sent) == ids[1:]  # the first waits for its back-off
        clock.advance(minutes=2)
        with app.app_context():
            assert send_queued().sent == [ids[0]]
            assert send_queued().sent == []
        received = sorted(str(m["To"]) for m in server.sink.messages)
    assert received == [f"reader{n}@example.org" for n in range(3)]


def test_a_permanent_refusal_is_not_retried(app: Flask, smtp: SmtpServer, clock: FakeClock) -> None:
    [message_id] = queued(app)
    smtp.sink.refuse, smtp.sink.reply = 1, "550 5.1.1 No such mailbox"
    with app.app_context():
        assert send_queued().failed == [message_id]
    clock.advance(hours=2)
    with app.app_context():
        assert send_queued().sent == []
    stored = row(app, message_id)
    assert stored.status == MailStatus.FAILED and "550" in (stored.last_error or "")


def test_too_many_attempts_give_up(app: Flask, smtp: SmtpServer, clock: FakeClock) -> None:
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    [message_id] = queued(app)
    smtp.sink.refuse = 10
    for _ in range(3):
        with app.app_context():
            send_queued()
        clock.advance(hours=1)
    stored = row(app, message_id)
    assert stored.status == MailStatus.FAILED and stored.attempts == 3
    assert smtp.sink.refused == 3


def test_the_backoff_doubles_up_to_an_hour(app: Flask) -> None:
    with app.app_context():
        waits = [backoff(n).total_seconds() for n in (1, 2, 3, 4, 10)]
    assert waits == [60, 120, 240, 480, 3600]


def test_a_message_left_sending_by_a_dead_sender_is_not_sent_again_by_itself(
    app: Flask, smtp: SmtpServer, clock: FakeClock, runner: object
) -> None:
    [message_id] = queued(app)
    with app.app_context():
        claimed = claim_next("dead-host:1:1")  # claimed, then the sender "crashed"
        assert claimed is not None and claimed.id == message_id
    clock.advance(hours=1)
    with app.app_context():
        assert send_queued().sent == []
        assert [m.id for m in stale_messages()] == [message_id]
    status = runner.invoke(args=["mail", "status"])  # type: ignore[attr-defined]
    assert "uncertain: message" in status.output and "dead-host:1:1" in status.output
    requeued = runner.invoke(args=["mail", "requeue", "--stale"])  # type: ignore[attr-defined]
    assert "requeued 1" in requeued.output
    with app.app_context():
        assert send_queued().sent == [message_id]
    assert len(smtp.sink.messages) == 1


def test_two_senders_at_once_send_every_message_exactly_once(app: Flask, smtp: SmtpServer) -> None:
    ids = queued(app, 24)
    smtp.sink.delay = 0.01  # both senders are busy at the same time
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            with app.app_context():
                results.append(send_queued().sent)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(results[0] + results[1]) == ids  # every message, by exactly one sender
    assert all(results), "both senders should have sent some messages"
    assert sorted(str(m["Subject"]) for m in smtp.sink.messages) == sorted(
        f"Subject {n}" for n in range(24)
    )


@pytest.mark.postgres
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)  # row locks are PostgreSQL's
def test_a_row_locked_by_another_sender_is_skipped_not_waited_for(app: Flask) -> None:
    ids = queued(app, 2)
    with app.app_context():
        options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], **options)
    with other.connect() as connection:
        # Another host's sender holds the first row (between its SELECT and its COMMIT).
        connection.execute(text("SET lock_timeout = '5s'"))
        connection.execute(
            text("SELECT id FROM outbox_message WHERE id = :id FOR UPDATE"), {"id": ids[0]}
        )
        with app.app_context():
            db.session.execute(text("SET lock_timeout = '2s'"))
            claimed = claim_next("this-host")
            assert claimed is not None and claimed.id == ids[1]
            assert claim_next("this-host") is None  # the locked one is skipped, not awaited
        connection.rollback()
    other.dispose()
    with app.app_context():
        pending = db.session.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "PENDING")
        )
    assert pending == 1


def test_without_mail_server_nothing_can_be_sent(app: Flask, runner: object) -> None:
    with app.app_context(), pytest.raises(MailOff):
        send_queued()
    result = runner.invoke(args=["mail", "send-queued"])  # type: ignore[attr-defined]
    assert result.exit_code != 0 and "MAIL_SERVER is not set" in result.output


def test_flask_mail_test_sends_through_the_server(
    app: Flask, smtp: SmtpServer, runner: object
) -> None:
    result = runner.invoke(args=["mail", "test", "me@example.org"])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert "Sent a test message to me@example.org" in result.output
    assert [str(m["To"]) for m in smtp.sink.messages] == ["me@example.org"]
    smtp.sink.refuse = 1
    failed = runner.invoke(args=["mail", "test", "me@example.org"])  # type: ignore[attr-defined]
    assert failed.exit_code != 0 and "451" in failed.output


def test_send_queued_command_reports_what_it_did(
    app: Flask, smtp: SmtpServer, runner: object
) -> None:
    queued(app, 2)
    result = runner.invoke(args=["mail", "send-queued"])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert "sent 2, to retry 0, failed 0" in result.output
    assert len(smtp.sink.messages) == 2


def test_mail_settings_are_checked_at_start_up() -> None:
    with pytest.raises(ConfigError, match="MAIL_DEFAULT_SENDER"):
        create_app(TestConfig, {"MAIL_SERVER": "smtp.example.org", "MAIL_DEFAULT_SENDER": None})
    with pytest.raises(ConfigError, match="not both"):
        create_app(
            TestConfig,
            {"MAIL_SERVER": "smtp.example.org", "MAIL_USE_TLS": True, "MAIL_USE_SSL": True},
        )


def test_mail_needs_the_public_address_at_start_up() -> None:
    # Every link in an e-mail starts there, never at the request's Host header.
    settings = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "MAIL_SERVER": "smtp.example.org"}
    with pytest.raises(ConfigError, match=r"^MAIL_SERVER is set but PUBLIC_URL is not") as caught:
        create_app(TestConfig, {**settings, "PUBLIC_URL": None})
    assert "\n" not in str(caught.value)
    for wrong in ("study.hospital.org", "ftp://study.hospital.org", "https://h.org/?a=1"):
        with pytest.raises(ConfigError, match="PUBLIC_URL is not a web address"):
            create_app(TestConfig, {**settings, "PUBLIC_URL": wrong})
    assert create_app(TestConfig, {**settings, "PUBLIC_URL": "https://h.org/study"})


def test_invitation_links_start_with_the_public_address_whatever_the_host(
    app: Flask, smtp: SmtpServer, study: object, organiser: object
) -> None:
    app.config["PUBLIC_URL"] = "https://study.hospital.org/reader-study/"
    client = app.test_client()
    forged = {"base_url": "http://evil.example"}
    credentials = {"email": organiser.email, "password": organiser.password}  # type: ignore[attr-defined]
    assert client.post("/login", data=credentials, **forged).status_code == 302
    url = f"/admin/studies/{study.id}/invitations"  # type: ignore[attr-defined]
    made = client.post(url, data={"email": "a@example.org", "days": 7, "send": "y"}, **forged)
    shown = re.findall(r'value="([^"]+/invite/[^"]+)"', made.text)
    with app.app_context():
        [body] = db.session.scalars(select(OutboxMessage.body))
    [mailed] = re.findall(r"\S+/invite/\S+", body)
    assert shown == [mailed]
    assert mailed.startswith("https://study.hospital.org/reader-study/invite/")


def test_organiser_pages_say_links_go_by_hand_without_mail(
    app: Flask, study: object, organiser: object, login: object
) -> None:
    client = app.test_client()
    login(client, organiser)  # type: ignore[operator]
    url = f"/admin/studies/{study.id}/invitations"  # type: ignore[attr-defined]
    assert "pass each invitation link on" in client.get(url).get_data(as_text=True)
    with smtp_server() as server:
        from app.extensions import mail

        app.config.update(MAIL_SERVER=server.host, MAIL_PORT=server.port)
        mail.init_app(app)
        assert "pass each invitation link on" not in client.get(url).get_data(as_text=True)


def test_invitations_are_e_mailed_with_their_links(
    app: Flask, smtp: SmtpServer, study: object, organiser: object, login: object
) -> None:
    client = app.test_client()
    login(client, organiser)  # type: ignore[operator]
    url = f"/admin/studies/{study.id}/invitations"  # type: ignore[attr-defined]
    made = client.post(url, data={"email": "a@example.org\nb@example.org", "days": 7, "send": "y"})
    links = set(re.findall(r'value="(http://localhost/invite/[^"]+)"', made.text))
    with app.app_context():
        assert len(send_queued().sent) == 2
    mailed = {
        re.search(r"http://localhost/invite/\S+", m.get_body(("plain",)).get_content()).group(0)  # type: ignore[union-attr]
        for m in smtp.sink.messages
    }
    assert mailed == links and len(links) == 2
