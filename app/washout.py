"""What a change of a study's wash-out does to each reader, and what it sends them.

The wash-out is the pause between the end of one task ("session") and the opening of the
next. Changing it moves the opening of the next task for every reader who is between two
tasks; it never closes a task a reader has started (app.survey.enrolment.standing keeps a
started task open), so a reader in the middle of Task 2 goes on, and the new pause applies
before their following task. The organiser's confirmation names, per reader, which task
moves and how; a task that opens at once because of the change is announced by e-mail, as
the lock page promised.
"""

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.clock import now
from app.extensions import db
from app.mail import mail_enabled
from app.mail.reminders import queue_reminder, reminder_key
from app.models import Enrolment, OutboxMessage, Study
from app.survey.enrolment import session_end, sessions_of, standing, task_size


class Effect(enum.StrEnum):
    """What the change does to one reader's next task."""

    OPENS_NOW = "opens_now"  # was still closed, opens at once
    CLOSES_AGAIN = "closes_again"  # was open (not started), closes until the new opening
    MOVES = "moves"  # still closed, opens at another time
    UNCHANGED = "unchanged"  # open before and after (not started), or closed before and after
    UNDER_WAY = "under_way"  # started: stays open; the new pause comes before the next task


@dataclass(frozen=True)
class ReaderEffect:
    """One reader's next task under the old and the new wash-out, and what that means."""

    enrolment_id: int
    pseudonym: str
    task: int  # the task the reader reads next (or is reading)
    old: datetime  # when it opens (opened) under the old wash-out
    new: datetime  # ... under the new one
    effect: Effect
    words: str  # the effect in a sentence, for the confirmation

    @property
    def moves(self) -> bool:
        """Whether the change moves this reader's next opening (the organiser must confirm)."""
        return self.effect in (Effect.OPENS_NOW, Effect.CLOSES_AGAIN, Effect.MOVES)


def stamp(moment: datetime) -> str:
    """A moment as the organisers' pages write it (UTC)."""
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def effect_of(enrolment: Enrolment, hours: float, moment: datetime) -> ReaderEffect | None:
    """What a wash-out of `hours` does to one reader; None for a reader in Task 1, finished
    or withdrawn (the change reaches them only after their current task)."""
    if enrolment.withdrawn_at is not None or enrolment.finished_at is not None:
        return None
    current = standing(enrolment).current
    if current is None or current.session == 1:
        return None
    ended = session_end(enrolment, current.session - 1)
    if ended is None:
        return None
    study = enrolment.study
    task = current.session
    old, new = ended + study.washout, ended + timedelta(hours=hours)
    pseudonym = enrolment.user.pseudonym
    if current.position > 0 or current.shown_at is not None:
        size = task_size(enrolment, task)
        after = (
            f"the new wash-out applies before Task {task + 1}"
            if task < sessions_of(study)
            else "it is their last task"
        )
        words = (
            f"Task {task} is under way (case {current.position + 1} of {size}): "
            f"it stays open; {after}."
        )
        return ReaderEffect(enrolment.id, pseudonym, task, old, new, Effect.UNDER_WAY, words)
    was_open, is_open = old <= moment, new <= moment
    if is_open and not was_open:
        effect = Effect.OPENS_NOW
        words = f"Task {task} opens at once (it was to open {stamp(old)})"
        words += "; they get an e-mail that it is open." if mail_enabled() else "."
    elif was_open and not is_open:
        effect = Effect.CLOSES_AGAIN
        words = (
            f"Task {task} has been open since {stamp(old)} but is not started: "
            f"it closes again until {stamp(new)}."
        )
    elif not is_open and old != new:
        effect = Effect.MOVES
        words = f"Task {task} opens {stamp(new)} instead of {stamp(old)}."
    else:
        effect = Effect.UNCHANGED
        words = f"Task {task} is open and stays open." if is_open else "No change."
    return ReaderEffect(enrolment.id, pseudonym, task, old, new, effect, words)


def washout_effects(study: Study, hours: float) -> list[ReaderEffect]:
    """What changing the study's wash-out to `hours` does to each reader between tasks or in
    a later task, earliest first; [] when the wash-out stays as it is."""
    if hours == study.washout_hours:
        return []
    moment = now()
    enrolments = db.session.scalars(
        select(Enrolment)
        .where(
            Enrolment.study_id == study.id,
            Enrolment.first_session_done_at.is_not(None),
            Enrolment.finished_at.is_(None),
            Enrolment.withdrawn_at.is_(None),
        )
        .order_by(Enrolment.first_session_done_at, Enrolment.id)
    ).all()
    found = (effect_of(enrolment, hours, moment) for enrolment in enrolments)
    return [item for item in found if item is not None]


def announce_openings(study: Study, effects: list[ReaderEffect]) -> int:
    """Queue "Task N is open" for each reader whose next task the change opened at once (the
    caller commits); how many. Each is the opening reminder of its task, so the cron run
    that would queue it later finds it queued."""
    if not mail_enabled():
        return 0
    queued = 0
    for item in effects:
        if item.effect != Effect.OPENS_NOW:
            continue
        enrolment = db.session.get(Enrolment, item.enrolment_id)
        if enrolment is None:
            continue
        key = reminder_key(enrolment, item.task, 0)
        if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
            continue
        queue_reminder(enrolment, dedupe_key=key, number=0)
        queued += 1
    return queued
