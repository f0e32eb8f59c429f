"""The outbox: e-mails are queued in the database and sent later by `flask mail send-queued`.

Queueing adds a row to the caller's transaction, so a message exists exactly when what caused
it was committed (a rolled-back reset request queues nothing).

Sending is claim-then-send-then-mark, one message at a time, safe with several senders (app
hosts running the cron line) on one PostgreSQL:

1. claim: in a short transaction, pick the oldest due PENDING row with SELECT ... FOR UPDATE
   SKIP LOCKED (another sender skips it instead of waiting) and turn it into SENDING with a
   conditional UPDATE (... WHERE status = 'pending'); commit. Only one sender can win that
   update, on SQLite too (whose writes are serialised and which has no row locks).
2. send it over SMTP with Flask-Mail, outside any transaction.
3. mark it SENT, or back to PENDING with an exponential back-off, or FAILED when the server
   refused this message for good (a 5xx for the recipient or its content).

A crash between 2 and 3 leaves the row in SENDING: the message may or may not have gone out,
and nothing tells which. We choose not to send it again by ourselves (a reader getting no
reminder is better than the same password link twice, and duplicates are what the outbox
promises never to make). `flask mail status` lists such rows after MAIL_STALE_MINUTES and
`flask mail requeue --stale` puts them back when an operator decides to. Claiming one message
right before sending it keeps that window to a single SMTP exchange.
"""

import os
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from flask import Flask, Response, current_app, g, has_request_context
from flask_mail import Connection, Message
from sqlalchemy import Boolean, Table, bindparam, insert, select, update

from app.clock import now
from app.extensions import db, mail
from app.models import MailStatus, OutboxMessage

MAX_BACKOFF = timedelta(hours=1)
STALE_AFTER = timedelta(minutes=15)  # a SENDING row older than this lost its sender


class MailOff(RuntimeError):
    """No MAIL_SERVER is configured: nothing can be sent."""


def mail_enabled() -> bool:
    """Whether e-mail is configured (MAIL_SERVER); without it links are passed on by hand."""
    return bool(current_app.config.get("MAIL_SERVER"))


@dataclass(frozen=True)
class About:
    """What a queued message concerns: an invitation, or a reader's enrolment (reminders)."""

    invitation_id: int | None = None
    enrolment_id: int | None = None


# Per kind of message, a function that writes a claimed message afresh just before it is sent
# (a reminder says what holds at sending, not what held when it was queued), or returns why
# it must not go out any more ("Not sent: ..."). Modules register theirs on import.
Refresher = Callable[[OutboxMessage], str | None]
REFRESHERS: dict[str, Refresher] = {}
NOT_SENT = "Not sent: "  # the start of every reason a refresher gives


@dataclass(frozen=True)
class Attachment:
    """A text attachment, such as a calendar file."""

    filename: str
    content_type: str
    data: str


def queue_mail(
    recipient: str,
    subject: str,
    body: str,
    kind: str,
    attachments: Sequence[Attachment] = (),
    dedupe_key: str | None = None,
    about: About | None = None,
) -> OutboxMessage:
    """Add a message to the caller's transaction (the caller commits; a rollback drops it).

    `about` ties it to the invitation or enrolment it concerns (its delivery status); the
    request that queues it sends it once its response is out (`send_after_request`).
    """
    message = OutboxMessage(**new_message(recipient, subject, body, kind, attachments, dedupe_key))
    if about is not None:
        message.invitation_id, message.enrolment_id = about.invitation_id, about.enrolment_id
    db.session.add(message)
    mark_queued()
    return message


def queue_mail_if(keep: bool, recipient: str, subject: str, body: str, kind: str) -> None:
    """Queue a message only when `keep`, by one INSERT ... SELECT ... WHERE <keep> (the caller
    commits). The database runs the same statement either way, so a request that queues
    nothing does the same work as one that does (the reset form must not tell by its timing
    which addresses have accounts)."""
    table = cast(Table, OutboxMessage.__table__)  # a model's is a Table (typed FromClause)
    values = new_message(recipient, subject, body, kind)
    chosen = select(
        *(bindparam(name, value, type_=table.c[name].type) for name, value in values.items())
    ).where(bindparam("keep", keep, type_=Boolean))
    db.session.execute(insert(table).from_select(list(values), chosen))
    mark_queued()  # either way: the request goes on the same, whether a row was written


def new_message(
    recipient: str,
    subject: str,
    body: str,
    kind: str,
    attachments: Sequence[Attachment] = (),
    dedupe_key: str | None = None,
) -> dict[str, object]:
    """The column values of a message due now."""
    return {
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "kind": kind,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "data": a.data}
            for a in attachments
        ],
        "dedupe_key": dedupe_key,
        "status": MailStatus.PENDING,
        "attempts": 0,
        "created_at": now(),
        "next_attempt_at": now(),
    }


@dataclass
class SendReport:
    """What one run of the sender did."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    not_sent: list[int] = field(default_factory=list)  # no longer wanted (see REFRESHERS)
    errors: list[str] = field(default_factory=list)
    stopped_early: bool = False  # the server could not be reached: the rest waits


def worker_name() -> str:
    """Who claimed a message: host, process and thread (shown by `flask mail status`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:120]


def claim_next(worker: str, only: Sequence[int] | None = None) -> OutboxMessage | None:
    """Claim the oldest due pending message for this sender (step 1), or None when none is due."""
    while True:
        moment = now()
        query = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == MailStatus.PENDING,
                OutboxMessage.next_attempt_at <= moment,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writes instead
        )
        if only is not None:
            query = query.where(OutboxMessage.id.in_(list(only)))
        message_id = db.session.scalar(query)
        if message_id is None:
            db.session.rollback()
            return None
        claimed = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == MailStatus.PENDING)
            .values(
                status=MailStatus.SENDING,
                claimed_at=moment,
                claimed_by=worker,
                attempts=OutboxMessage.attempts + 1,
            )
        )
        db.session.commit()
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return db.session.get(OutboxMessage, message_id)
        # Another sender won this row between our read and our update (SQLite): next one.


def as_flask_mail(message: OutboxMessage) -> Message:
    """The Flask-Mail message for a queued row."""
    built = Message(
        subject=message.subject,
        recipients=[message.recipient],
        body=message.body,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
    )
    for item in message.attachments or []:
        built.attach(item["filename"], item["content_type"], item["data"])
    return built


def is_permanent(error: Exception) -> bool:
    """Whether the server refused this very message for good (retrying cannot help)."""
    if not isinstance(error, OSError):  # e.g. a header Flask-Mail refuses to write
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def is_unreachable(error: Exception) -> bool:
    """Whether the server could not be used at all (down, refused the login): stop the run."""
    if isinstance(
        error,
        smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError | smtplib.SMTPAuthenticationError,
    ):
        return True
    # smtplib's errors are OSErrors too; the others are the network's (refused, timed out).
    return isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)


def backoff(attempts: int) -> timedelta:
    """The wait before attempt `attempts + 1`: MAIL_RETRY_SECONDS doubled each time, capped."""
    base = float(current_app.config.get("MAIL_RETRY_SECONDS", 60))
    return min(timedelta(seconds=base * 2 ** max(0, attempts - 1)), MAX_BACKOFF)


def mark_sent(message: OutboxMessage) -> None:
    """Step 3 after success."""
    message.status = MailStatus.SENT
    message.sent_at = now()
    message.last_error = None
    db.session.commit()


def refresh(message: OutboxMessage) -> str | None:
    """Write a claimed message afresh with its kind's refresher; why it must not go out, if so.

    A refresher that fails leaves the message as it was queued (it is still worth sending).
    """
    refresher = REFRESHERS.get(message.kind)
    if refresher is None:
        return None
    try:
        return refresher(message)
    except Exception:  # the queued text is still a valid message
        current_app.logger.exception("could not write message %s afresh", message.id)
        db.session.rollback()
        return None


def mark_not_sent(message: OutboxMessage, reason: str) -> None:
    """Give up a message that is no longer wanted (its reader finished, its link was replaced)."""
    message.status = MailStatus.FAILED
    message.last_error = reason
    db.session.commit()


def mark_failed_attempt(message: OutboxMessage, error: Exception) -> bool:
    """Step 3 after an error: retry later, or give up; whether it will be retried."""
    message.last_error = f"{type(error).__name__}: {error}"[:2000]
    limit = int(current_app.config.get("MAIL_MAX_ATTEMPTS", 8))
    if is_permanent(error) or message.attempts >= limit:
        message.status = MailStatus.FAILED
        retried = False
    else:
        message.status = MailStatus.PENDING
        message.next_attempt_at = now() + backoff(message.attempts)
        retried = True
    db.session.commit()
    return retried


class SmtpSession:
    """One SMTP connection through Flask-Mail, opened at the first message, reused after."""

    def __init__(self) -> None:
        self.connection: Connection | None = None

    def send(self, message: Message) -> None:
        """Send one message (opens the connection first if needed)."""
        if self.connection is None:
            connection = mail.connect()
            connection.__enter__()  # connects, STARTTLS and logs in as configured
            self.connection = connection
        self.connection.send(message)

    def drop(self) -> None:
        """Close the connection; errors on the way out change nothing already sent."""
        connection, self.connection = self.connection, None
        if connection is not None and connection.host is not None:
            try:
                connection.host.quit()
            except (smtplib.SMTPException, OSError):
                connection.host.close()


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """A timeout for every SMTP operation (smtplib uses the socket default)."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def send_queued(
    limit: int | None = None, only: Sequence[int] | None = None, timeout: float | None = None
) -> SendReport:
    """Send the due messages (at most `limit`), one claim at a time; see the module docstring.
    Each SMTP operation waits at most MAIL_TIMEOUT seconds (or `timeout`, if shorter)."""
    if not mail_enabled():
        raise MailOff("MAIL_SERVER is not set: no e-mail can be sent.")
    report = SendReport()
    worker = worker_name()
    session = SmtpSession()
    seconds = float(current_app.config.get("MAIL_TIMEOUT", 30))
    with socket_timeout(seconds if timeout is None else min(seconds, timeout)):
        try:
            while limit is None or len(report.sent) + len(report.failed) < limit:
                message = claim_next(worker, only)
                if message is None:
                    break
                reason = refresh(message)
                if reason is not None:
                    mark_not_sent(message, reason)
                    report.not_sent.append(message.id)
                    continue
                try:
                    session.send(as_flask_mail(message))
                except Exception as error:  # marked, never left in SENDING by a known error
                    session.drop()
                    report.errors.append(f"message {message.id}: {type(error).__name__}: {error}")
                    retried = mark_failed_attempt(message, error)
                    (report.retrying if retried else report.failed).append(message.id)
                    if is_unreachable(error):
                        report.stopped_early = True
                        break
                else:
                    mark_sent(message)
                    report.sent.append(message.id)
        finally:
            session.drop()
    return report


def stale_messages() -> list[OutboxMessage]:
    """Messages claimed so long ago that their sender must have died (sent or not: unknown)."""
    minutes = float(current_app.config.get("MAIL_STALE_MINUTES", STALE_AFTER.total_seconds() / 60))
    since = now() - timedelta(minutes=minutes)
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == MailStatus.SENDING, OutboxMessage.claimed_at < since)
            .order_by(OutboxMessage.id)
        )
    )


def requeue(messages: Sequence[OutboxMessage]) -> int:
    """Put messages back to PENDING, due now (an operator's decision; the caller commits)."""
    for message in messages:
        message.status = MailStatus.PENDING
        message.next_attempt_at = now()
    return len(messages)


def mark_queued() -> None:
    """Note that this request queued mail, to be sent once its response is out."""
    if has_request_context():
        g.mail_queued = True


def send_now(message: OutboxMessage) -> SendReport:
    """Send one message at once (an organiser's "send now"): back to the queue if it failed or
    waits for a retry, then this message alone. Raises MailOff without MAIL_SERVER."""
    if message.status in (MailStatus.FAILED, MailStatus.PENDING):
        message.status = MailStatus.PENDING
        message.next_attempt_at = now()
        db.session.commit()
    return send_queued(only=[message.id])


def send_after_request(app: Flask) -> None:
    """Send what is due, after a response that queued mail has gone out (MAIL_SEND_AFTER_REQUEST).

    A short timeout, so that a server that does not answer holds the worker only briefly;
    whatever is not sent stays queued for the next try and for `flask mail send-queued`.
    """
    with app.app_context():
        try:
            report = send_queued(
                limit=int(app.config.get("MAIL_AFTER_REQUEST_LIMIT", 50)),
                timeout=float(app.config.get("MAIL_AFTER_REQUEST_TIMEOUT", 10)),
            )
            for line in report.errors:
                app.logger.warning("mail after the request: %s", line)
        except Exception:  # after the response: nobody to tell but the log
            app.logger.exception("mail after the request failed; it stays queued")
            db.session.rollback()


def register(app: Flask) -> None:
    """Send the mail a request queued right after its response (the outbox and the cron line
    of `flask mail send-queued` stay the safety net)."""

    @app.after_request
    def send_queued_mail_later(response: Response) -> Response:
        """Once the response is out, send what this request queued."""
        if (
            g.get("mail_queued")
            and app.config.get("MAIL_SEND_AFTER_REQUEST", True)
            and mail_enabled()
        ):
            response.call_on_close(lambda: send_after_request(app))
        return response
