"""Storing a reader's answer once: the token check, the current case, racing duplicates."""

import hmac

from flask import Response, flash, redirect, url_for
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.clock import now
from app.errors import error_response
from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Study, StudyStatus
from app.survey.enrolment import (
    PRACTICE,
    case_token,
    conditions_of,
    sessions_of,
    standing,
    task_size,
    where_to,
)
from app.survey.forms import AnswerForm
from app.survey.presentation import (
    Page,
    aid_view,
    closed,
    is_first_look,
    render_case,
    shown_context,
)


def answered_meanwhile(assignment: Assignment) -> bool:
    """Whether an answer to `assignment` is in the database now (not in the session's cache)."""
    stored = select(Answer.id).where(Answer.assignment_id == assignment.id)
    return db.session.scalar(stored) is not None


def token_is(form: AnswerForm, assignment: Assignment, phase: str = "") -> bool:
    """Whether the form's token is the one of `assignment` in `phase`."""
    # Compared as bytes: compare_digest raises TypeError on non-ASCII text (a forged token).
    sent = str(form.token.data or "").encode()
    return hmac.compare_digest(sent, case_token(assignment, phase).encode())


def case_address(study: Study, assignment: Assignment) -> str:
    """The URL of the assignment's case page."""
    return url_for(
        "survey.case", study_id=study.id, task=assignment.task, number=assignment.position + 1
    )


def answer(study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm) -> Page:
    """Store the answer to `assignment` once; bad or stale forms store nothing.

    In an initial-then-revised reading the first form stores the unaided initial answer (once)
    and shows the case again with the aid; the second stores the final answer.
    """
    first_look = is_first_look(study, assignment)
    if not token_is(form, assignment, "initial" if first_look else ""):
        if not first_look and token_is(form, assignment, "initial"):
            # The first-look form again (a double click): its answer is already kept.
            flash("Your first answer was already saved; the AI's help is shown now.", "info")
            return redirect(case_address(study, assignment), 303)
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
        return error_response(403, f"Task {assignment.task} is not open yet. Nothing was saved.")
    if state.current is None or state.current.id != assignment.id:
        if answered_meanwhile(assignment):
            # A racing duplicate of this form committed between our reads: same as above.
            flash("That case was already answered; answers are final, nothing was changed.", "info")
            return redirect(where_to(study.id, enrolment), 303)
        return error_response(400, "This is not your current case. Nothing was saved.")
    if not form.validate():
        return render_case(study, enrolment, assignment, form, status=400)
    if first_look:
        return keep_initial(study, assignment, form)

    moment = now()
    shown_at = assignment.shown_at or moment
    elapsed = max(0.0, (moment - shown_at).total_seconds())
    # Everything is read before the insert: a query after it would flush the new row
    # outside the try below, and a racing duplicate must fail inside it.
    last = assignment.position + 1 == task_size(enrolment, assignment.task)
    view = aid_view(study, assignment, conditions_of(study)[assignment.condition])
    shown = view.record()
    if view.condition.saliency:
        shown["saliency_views"] = form.saliency_count()
    final_session = assignment.task == sessions_of(study)
    db.session.add(
        Answer(
            assignment_id=assignment.id,
            diagnosis=form.diagnosis.data,
            confidence=form.level,
            shown_at=shown_at,
            answered_at=moment,
            seconds=elapsed,
            hidden_seconds=form.hidden_seconds(elapsed),
            neighbours_shown=[n.image_id for n in view.neighbours],
            shown=shown,
            rotation=assignment.rotation,
            context=shown_context(view.condition, assignment.case),
        )
    )
    if last:
        if assignment.task == 1 and enrolment.task1_completed_at is None:
            enrolment.task1_completed_at = moment
        if final_session and enrolment.task2_completed_at is None:
            enrolment.task2_completed_at = moment
    try:
        db.session.commit()
    except IntegrityError:
        # A second submission raced the first: the first answer stands, unchanged.
        db.session.rollback()
        flash("That case was already answered; answers are final, nothing was changed.", "info")
        return redirect(where_to(study.id, enrolment), 303)
    if last and assignment.task == PRACTICE:
        flash(
            "Practice finished. The study's own cases start now; from here on every answer counts.",
            "success",
        )
        return redirect(url_for("survey.task", study_id=study.id, task=1), 303)
    if last:  # the end page of the task, even when the next task is open at once
        return redirect(url_for("survey.task_end", study_id=study.id, task=assignment.task), 303)
    return redirect(where_to(study.id, enrolment), 303)


def keep_initial(study: Study, assignment: Assignment, form: AnswerForm) -> Response:
    """Store the unaided initial answer once, then show the case again with the aid."""
    db.session.execute(
        update(Assignment)
        .where(Assignment.id == assignment.id, Assignment.initial_diagnosis.is_(None))
        .values(
            initial_diagnosis=form.diagnosis.data,
            initial_confidence=form.level,
            initial_at=now(),
        )
    )
    db.session.commit()
    return redirect(case_address(study, assignment), 303)
