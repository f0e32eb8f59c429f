"""Reminders that bring readers back: when Task 2 opens after the wash-out, and again every
`Study.reminder_days` days while they have not finished (at most MAX_REPEATS times).

`flask mail send-queued` calls `queue_due_reminders` before it sends, so the cron line that
sends mail also queues what fell due. Each reminder has a dedupe key (its enrolment and its
number): queueing it twice, by two hosts at once or by a run after a crash, inserts it once.
Nothing is sent to readers who finished, who withdrew from the study (reminders still queued
are dropped when they withdraw), whose account was deactivated, or whose study is not open.
"""

import secrets
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.clock import now
from app.extensions import db
from app.mail.messages import public_url, render
from app.mail.outbox import NOT_SENT, REFRESHERS, About, Attachment, queue_mail
from app.models import (
    Answer,
    Assignment,
    Enrolment,
    MailStatus,
    OutboxMessage,
    Study,
    StudyStatus,
    User,
)
from app.survey.enrolment import next_opening

MAX_REPEATS = 3  # reminders after the first, at most
# The outbox's note on a reminder given up because its reader withdrew: never requeued.
WITHDREW = NOT_SENT + "the reader withdrew from the study."


def calendar_file(enrolment: Enrolment, opens_at: datetime, link: str, session: int = 2) -> str:
    """An iCalendar file with one event: Task `session` of the study opens (an hour blocked)."""
    calendar = Calendar()
    calendar.add("prodid", "-//SE-CBIR reader study//reminders//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"task{session}-{enrolment.study_id}-{enrolment.id}@secbir-reader-study")
    event.add("dtstamp", now().replace(tzinfo=UTC))
    event.add("dtstart", opens_at.replace(tzinfo=UTC))
    event.add("dtend", (opens_at + timedelta(hours=1)).replace(tzinfo=UTC))
    event.add("summary", f"Task {session} of {enrolment.study.name} opens")
    event.add("description", f"Task {session} of the reader study is open from now on: {link}")
    event.add("url", link)
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical.decode()


def last_activity(enrolment_ids: list[int]) -> dict[int, datetime]:
    """Each enrolment's latest answer time (enrolments without answers are left out)."""
    if not enrolment_ids:
        return {}
    rows = db.session.execute(
        select(Assignment.enrolment_id, func.max(Answer.answered_at))
        .join(Answer, Answer.assignment_id == Assignment.id)
        .where(Assignment.enrolment_id.in_(enrolment_ids))
        .group_by(Assignment.enrolment_id)
    )
    return {enrolment_id: moment for enrolment_id, moment in rows}


def may_remind(enrolment: Enrolment) -> bool:
    """Whether a reminder may go to this reader: not finished, not withdrawn, account active,
    study open."""
    return why_not_remind(enrolment) is None


def reminder_content(enrolment: Enrolment, number: int) -> tuple[str, str, list[Attachment]]:
    """A reminder's subject, body and attachments as things stand now: the link, and the .ics
    while the next session has still to open or has just opened."""
    study = enrolment.study
    link = public_url("survey.resume", study_id=study.id)
    session, opens_at = next_item(enrolment)
    attachments = []
    if opens_at is not None:
        ics = calendar_file(enrolment, opens_at, link, session)
        attachments.append(Attachment(f"task{session}.ics", "text/calendar", ics))
    subject, body = render(
        "reminder",
        study=study,
        link=link,
        opens_at=opens_at,
        is_open=opens_at is not None and opens_at <= now(),
        task1_done=enrolment.first_session_done_at is not None,
        session=session,
        number=number,
    )
    return subject, body, attachments


def queue_reminder(
    enrolment: Enrolment, dedupe_key: str | None = None, number: int = 0
) -> OutboxMessage:
    """Queue a reminder for `enrolment` (the caller commits). It is written again from the
    state of the study when it is sent (`refresh_reminder`)."""
    subject, body, attachments = reminder_content(enrolment, number)
    return queue_mail(
        enrolment.user.email,
        subject,
        body,
        kind="reminder",
        attachments=attachments,
        dedupe_key=dedupe_key,
        about=About(enrolment_id=enrolment.id),
    )


def reminder_enrolment(message: OutboxMessage) -> Enrolment | None:
    """The enrolment a queued reminder is for (reminders queued before `enrolment_id` existed
    name it in their dedupe key, "reminder:<enrolment id>:...")."""
    enrolment_id = message.enrolment_id
    if enrolment_id is None and message.dedupe_key:
        part = message.dedupe_key.split(":")[1:2]
        enrolment_id = int(part[0]) if part and part[0].isdigit() else None
    return db.session.get(Enrolment, enrolment_id) if enrolment_id is not None else None


def reminder_number(message: OutboxMessage) -> int:
    """Which reminder a queued one is (0: the opening, k: the k-th repeat), from its key."""
    last = (message.dedupe_key or "").rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else 0


def why_not_remind(enrolment: Enrolment | None) -> str | None:
    """Why no reminder may go to this reader now, in the outbox's words; None if one may."""
    if enrolment is None:
        return NOT_SENT + "the reader's enrolment no longer exists."
    if enrolment.withdrawn_at is not None:
        return WITHDREW
    if enrolment.finished_at is not None:
        return NOT_SENT + "the reader has finished the study."
    if not enrolment.user.active:
        return NOT_SENT + "the reader's account is deactivated."
    if enrolment.study.status != StudyStatus.OPEN:
        return NOT_SENT + "the study is not open."
    return None


def refresh_reminder(message: OutboxMessage) -> str | None:
    """Write a reminder afresh just before it is sent (the wash-out or the reader's progress
    may have changed since it was queued), or say why it must not go out."""
    enrolment = reminder_enrolment(message)
    reason = why_not_remind(enrolment)
    if reason is not None:
        return reason
    assert enrolment is not None
    subject, body, attachments = reminder_content(enrolment, reminder_number(message))
    message.recipient = enrolment.user.email
    message.subject, message.body = subject, body
    message.attachments = [
        {"filename": a.filename, "content_type": a.content_type, "data": a.data}
        for a in attachments
    ]
    db.session.commit()
    return None


REFRESHERS["reminder"] = refresh_reminder


def next_opens_at(enrolment: Enrolment) -> datetime | None:
    """When the reader's next session (after the first) opens or opened; None in session 1
    and once every session is answered."""
    return next_item(enrolment)[1]


def next_item(enrolment: Enrolment) -> tuple[int, datetime | None]:
    """The reader's next session and when it opens (session 1 and finished readers: None)."""
    found = next_opening(enrolment)
    return found if found is not None else (1, None)


def manual_key(enrolment: Enrolment) -> str:
    """The dedupe key of a reminder an organiser sends by hand: unique, and findable by its
    enrolment (see `drop_queued`)."""
    return f"reminder:{enrolment.id}:manual:{secrets.token_hex(6)}"


def drop_queued(enrolment: Enrolment) -> int:
    """Give up the reminders to `enrolment` that wait in the outbox (the caller commits); how
    many. One being sent right now by another host may still go out."""
    waiting = db.session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == "reminder",
            OutboxMessage.status == MailStatus.PENDING,
            OutboxMessage.dedupe_key.like(f"reminder:{enrolment.id}:%"),
        )
    ).all()
    for message in waiting:
        message.status = MailStatus.FAILED
        message.last_error = WITHDREW
    return len(waiting)


def reminder_key(enrolment: Enrolment, session: int, number: int) -> str:
    """The outbox's dedupe key of reminder `number` for `session` (session 2 keeps the key of
    the two-task studies, so a reminder sent before an upgrade is not sent again)."""
    if session == 2:
        return f"reminder:{enrolment.id}:{number}"
    return f"reminder:{enrolment.id}:s{session}:{number}"


def due_number(enrolment: Enrolment, last: datetime | None) -> int | None:
    """Which reminder is due now: 0 when the next session just opened, k after
    k * reminder_days days without activity; None when none is."""
    opens_at = next_opens_at(enrolment)
    moment = now()
    if opens_at is None or moment < opens_at:
        return None
    study = enrolment.study
    started = last is not None and last >= opens_at
    days = study.reminder_days or 0
    if days > 0:
        period = timedelta(days=days)
        number = min(int((moment - opens_at) / period), MAX_REPEATS)
        quiet = last is None or moment - last >= period
        if number >= 1 and quiet:
            return number
    if study.washout_hours > 0 and not started:
        return 0
    return None


def queue_due_reminders() -> int:
    """Queue every reminder that is due and not queued yet; how many were queued."""
    enrolments = db.session.scalars(
        select(Enrolment)
        .join(Study, Study.id == Enrolment.study_id)
        .join(User, User.id == Enrolment.user_id)
        .where(
            Study.status == StudyStatus.OPEN,
            Enrolment.first_session_done_at.is_not(None),
            Enrolment.finished_at.is_(None),
            Enrolment.withdrawn_at.is_(None),
            User.active.is_(True),
        )
    ).all()
    activity = last_activity([enrolment.id for enrolment in enrolments])
    wanted = []
    for enrolment in enrolments:
        number = due_number(enrolment, activity.get(enrolment.id))
        if number is not None:
            session, _ = next_item(enrolment)
            wanted.append((enrolment.id, number, reminder_key(enrolment, session, number)))
    keys = [key for _, _, key in wanted]
    known = (
        set(
            db.session.scalars(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))
            )
        )
        if keys
        else set()
    )
    queued = 0
    for enrolment_id, number, key in wanted:
        if key in known:
            continue
        reminded = db.session.get(Enrolment, enrolment_id)
        if reminded is None:
            continue
        queue_reminder(reminded, dedupe_key=key, number=number)
        try:
            db.session.commit()
        except IntegrityError:  # another host queued the same reminder a moment ago
            db.session.rollback()
            continue
        queued += 1
    return queued
