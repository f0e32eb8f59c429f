"""Storing a reader's answer once: the token check, the current case, racing duplicates."""

import hmac

from flask import flash, redirect, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.clock import now
from app.errors import error_response
from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Study, StudyStatus
from app.survey.enrolment import case_token, standing, task_size, where_to
from app.survey.forms import AnswerForm
from app.survey.presentation import Page, closed, render_case


def answered_meanwhile(assignment: Assignment) -> bool:
    """Whether an answer to `assignment` is in the database now (not in the session's cache)."""
    stored = select(Answer.id).where(Answer.assignment_id == assignment.id)
    return db.session.scalar(stored) is not None


def answer(study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm) -> Page:
    """Store the answer to `assignment` once; bad or stale forms store nothing."""
    # Compared as bytes: compare_digest raises TypeError on non-ASCII text (a forged token).
    sent = str(form.token.data or "").encode()
    if not hmac.compare_digest(sent, case_token(assignment).encode()):
        return error_response(
            400, "This answer does not belong to the case at this address. Nothing was saved."
        )
    if assignment.answer is not None:
        flash("That case was already answered; answers are final, nothing was changed.", "info")
        return redirect(where_to(study.id, enrolment), 303)
    if study.status != StudyStatus.OPEN:
        return closed()
    state = standing(enrolment)
    if state.locked:
        return error_response(403, "Task 2 is not open yet. Nothing was saved.")
    if state.current is None or state.current.id != assignment.id:
        if answered_meanwhile(assignment):
            # A racing duplicate of this form committed between our reads: same as above.
            flash("That case was already answered; answers are final, nothing was changed.", "info")
            return redirect(where_to(study.id, enrolment), 303)
        return error_response(400, "This is not your current case. Nothing was saved.")
    if not form.validate():
        return render_case(study, enrolment, assignment, form, status=400)

    moment = now()
    shown_at = assignment.shown_at or moment
    elapsed = max(0.0, (moment - shown_at).total_seconds())
    case = assignment.case
    # Everything is read before the insert: a query after it would flush the new row
    # outside the try below, and a racing duplicate must fail inside it.
    last = assignment.position + 1 == task_size(enrolment, assignment.task)
    shown = [n.image_id for n in case.neighbours] if assignment.task == 2 else []
    db.session.add(
        Answer(
            assignment_id=assignment.id,
            diagnosis=form.diagnosis.data,
            confidence=form.level,
            shown_at=shown_at,
            answered_at=moment,
            seconds=elapsed,
            hidden_seconds=form.hidden_seconds(elapsed),
            neighbours_shown=shown,
            rotation=assignment.rotation,
        )
    )
    if last:
        if assignment.task == 1 and enrolment.task1_completed_at is None:
            enrolment.task1_completed_at = moment
        if assignment.task == 2 and enrolment.task2_completed_at is None:
            enrolment.task2_completed_at = moment
    try:
        db.session.commit()
    except IntegrityError:
        # A second submission raced the first: the first answer stands, unchanged.
        db.session.rollback()
        flash("That case was already answered; answers are final, nothing was changed.", "info")
        return redirect(where_to(study.id, enrolment), 303)
    if last:  # the end page of the task, even when the next task is open at once
        return redirect(url_for("survey.task_end", study_id=study.id, task=assignment.task), 303)
    return redirect(where_to(study.id, enrolment), 303)
