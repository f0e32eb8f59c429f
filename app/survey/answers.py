"""Storing a reader's answer once: the token check, the current case, racing duplicates."""

import hmac
from datetime import datetime

from flask import flash, redirect, url_for
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

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
        "survey.case", study_id=study.id, task=assignment.session, number=assignment.position + 1
    )


# A second form for a case already answered (a double click, a racing duplicate) stores nothing.
ALREADY_ANSWERED = "That case was already answered; answers are final, nothing was changed."


def answer(study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm) -> Page:
    """Store the answer to `assignment` once; bad or stale forms store nothing.

    In an initial-then-revised reading the first form stores the unaided initial answer (once)
    and shows the case again with the aid; the second stores the final answer.
    """
    first_look = is_first_look(study, assignment)
    refused = refusal(study, enrolment, assignment, form, first_look)
    if refused is not None:
        return refused
    if not form.validate():
        return render_case(study, enrolment, assignment, form, status=400)
    if first_look:
        return keep_initial(study, assignment, form)
    return keep_final(study, enrolment, assignment, form)


def refusal(
    study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm, first_look: bool
) -> Page | None:
    """The page for a form that must store nothing: one for another case or phase, for a case
    already answered, in a closed study or a session not open yet, or for a case that is not
    the reader's current one. None when the form may be stored."""
    if not token_is(form, assignment, "initial" if first_look else ""):
        return wrong_token(study, assignment, form, first_look)
    if assignment.answer is not None:
        return already_answered(study, enrolment)
    if study.status != StudyStatus.OPEN:
        return closed()
    state = standing(enrolment)
    if state.locked:
        return error_response(403, f"Task {assignment.session} is not open yet. Nothing was saved.")
    if state.current is None or state.current.id != assignment.id:
        if answered_meanwhile(assignment):
            # A racing duplicate of this form committed between our reads: same as above.
            return already_answered(study, enrolment)
        return error_response(400, "This is not your current case. Nothing was saved.")
    return None


def wrong_token(study: Study, assignment: Assignment, form: AnswerForm, first_look: bool) -> Page:
    """The page for a form whose token is not the one this case expects now."""
    if not first_look and token_is(form, assignment, "initial"):
        # The first-look form again (a double click): its answer is already kept.
        flash("Your first answer was already saved; the AI's help is shown now.", "info")
        return redirect(case_address(study, assignment), 303)
    return error_response(
        400, "This answer does not belong to the case at this address. Nothing was saved."
    )


def already_answered(study: Study, enrolment: Enrolment) -> Response:
    """On to where the reader stands, saying that the answer kept is the first one."""
    flash(ALREADY_ANSWERED, "info")
    return redirect(where_to(study.id, enrolment), 303)


def keep_final(
    study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm
) -> Response:
    """Store the final answer once (with the end of the session at its last case), then on."""
    moment = now()
    shown_at = assignment.shown_at or moment
    elapsed = max(0.0, (moment - shown_at).total_seconds())
    # Everything is read before the insert: a query after it would flush the new row
    # outside the try below, and a racing duplicate must fail inside it.
    last = assignment.position + 1 == task_size(enrolment, assignment.session)
    view = aid_view(study, assignment, conditions_of(study)[assignment.condition])
    shown = view.record()
    if view.condition.saliency:
        shown["saliency_views"] = form.saliency_count()
    final_session = assignment.session == sessions_of(study)
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
        mark_session_end(enrolment, assignment.session, final_session, moment)
    try:
        db.session.commit()
    except IntegrityError:
        # A second submission raced the first: the first answer stands, unchanged.
        db.session.rollback()
        return already_answered(study, enrolment)
    return after_answer(study, enrolment, assignment, last)


def mark_session_end(
    enrolment: Enrolment, task: int, final_session: bool, moment: datetime
) -> None:
    """Record that the reader answered the last case of `task` at `moment`: the end of Task 1,
    or of their last session (each kept once)."""
    if task == 1 and enrolment.first_session_done_at is None:
        enrolment.first_session_done_at = moment
    if final_session and enrolment.finished_at is None:
        enrolment.finished_at = moment


def after_answer(
    study: Study, enrolment: Enrolment, assignment: Assignment, last: bool
) -> Response:
    """Where a stored final answer leads: after the practice set to Task 1, after a task's
    last case to its end page (even when the next task is open at once), else the next case."""
    if last and assignment.session == PRACTICE:
        flash(
            "Practice finished. The study's own cases start now; from here on every answer counts.",
            "success",
        )
        return redirect(url_for("survey.task", study_id=study.id, task=1), 303)
    if last:
        return redirect(url_for("survey.task_end", study_id=study.id, task=assignment.session), 303)
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
