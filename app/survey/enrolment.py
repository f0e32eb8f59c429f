"""A reader's enrolment and position: drawing their cases, where they stand, where to go next."""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.clock import now
from app.consent import record_current
from app.extensions import db
from app.models import Answer, Assignment, Case, Enrolment, ReaderRole, Study, User
from app.survey import sampling

ROTATION = {1: 0, 2: 180}  # Task 2 shows the query turned by 180 degrees (thesis 3.4)


def enrolment_of(study_id: int, user_id: int) -> Enrolment | None:
    """The user's enrolment in the study, if they have consented already."""
    return db.session.scalar(
        select(Enrolment).where(Enrolment.study_id == study_id, Enrolment.user_id == user_id)
    )


@dataclass(frozen=True)
class Profile:
    """What a reader tells about themselves at consent."""

    role: ReaderRole
    years: int  # of dermoscopy practice
    exams_per_week: int  # dermoscopic examinations in a typical week


def enrol(study: Study, user: User, profile: Profile | None = None) -> Enrolment:
    """Enrol `user` in `study`: draw their cases with a fresh seed and store both task orders.

    Everything is written in one transaction. If a concurrent request enrolled the same
    reader first, the unique constraints refuse this second draw and the first one is kept.
    """
    existing = enrolment_of(study.id, user.id)
    if existing is not None:
        return existing
    rows = db.session.execute(
        select(Case.position, Case.id, Case.truth).where(Case.study_id == study.id)
    ).all()
    pool = {position: truth for position, _, truth in rows}
    case_ids = {position: case_id for position, case_id, _ in rows}
    count = min(study.cases_per_reader, len(pool))
    seed = sampling.new_seed()
    drawn = sampling.draw(pool, count, seed, str(study.sampling), study.reshuffle_task2)
    moment = now()
    enrolment = Enrolment(
        study_id=study.id,
        user_id=user.id,
        seed=seed,
        created_at=moment,
        consented_at=moment,
        consent_version=study.consent_version,  # the text this reader agreed to
    )
    record_current(study)
    if profile is not None:
        enrolment.profile_role = profile.role
        enrolment.profile_years = profile.years
        enrolment.profile_exams_per_week = profile.exams_per_week
    for task, order in ((1, drawn.task1), (2, drawn.task2)):
        for index, position in enumerate(order):
            enrolment.assignments.append(
                Assignment(
                    case_id=case_ids[position], task=task, position=index, rotation=ROTATION[task]
                )
            )
    db.session.add(enrolment)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = enrolment_of(study.id, user.id)
        if existing is None:
            raise
        return existing
    return enrolment


@dataclass(frozen=True)
class Standing:
    """Where a reader is: the current assignment (None when all is answered) and the lock."""

    current: Assignment | None
    opens_at: datetime | None  # when Task 2 opens (None until Task 1 is complete)
    locked: bool  # the current assignment is in Task 2 and the wash-out has not passed


def standing(enrolment: Enrolment) -> Standing:
    """The reader's current assignment: the first unanswered one, Task 1 first."""
    current = db.session.scalar(
        select(Assignment)
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .where(Assignment.enrolment_id == enrolment.id, Answer.id.is_(None))
        .order_by(Assignment.task, Assignment.position)
        .limit(1)
    )
    if current is not None and current.task == 2 and enrolment.task1_completed_at is None:
        # Defensive: Task 1 is complete but the moment was not recorded; record it now.
        enrolment.task1_completed_at = now()
        db.session.commit()
    opens_at = enrolment.task2_opens_at
    locked = current is not None and current.task == 2 and opens_at is not None and now() < opens_at
    return Standing(current, opens_at, locked)


def task_size(enrolment: Enrolment, task: int) -> int:
    """How many cases the reader has in `task`."""
    return db.session.scalar(
        select(func.count(Assignment.id)).where(
            Assignment.enrolment_id == enrolment.id, Assignment.task == task
        )
    )


def case_token(assignment: Assignment) -> str:
    """An opaque token binding a form to one assignment (an HMAC; no image id in it)."""
    message = f"survey-case:{assignment.enrolment_id}:{assignment.id}:{assignment.task}"
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def where_to(study_id: int, enrolment: Enrolment | None) -> str:
    """The URL of the page the reader should see next."""
    if enrolment is None:
        return url_for("survey.welcome", study_id=study_id)
    state = standing(enrolment)
    current = state.current
    if current is None:
        return url_for("survey.task_end", study_id=study_id, task=2)
    if current.task == 2 and current.position == 0 and current.shown_at is None:
        if state.locked:
            return url_for("survey.task_end", study_id=study_id, task=1)
        return url_for("survey.task", study_id=study_id, task=2)
    if current.task == 1 and current.position == 0 and current.shown_at is None:
        return url_for("survey.task", study_id=study_id, task=1)
    return url_for("survey.case", study_id=study_id, task=current.task, number=current.position + 1)
