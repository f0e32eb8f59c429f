"""The survey's routes: the reader's studies, welcome and consent, task pages and cases."""

from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from app.auth import is_safe_next, managed_study_or_404, reader_study_ids
from app.clock import describe_wait, now
from app.extensions import db
from app.forms import ConfirmForm
from app.mail.reminders import calendar_file
from app.models import Assignment, Case, Enrolment, ReaderRole, Study, StudyStatus
from app.survey.answers import answer
from app.survey.blueprint import bp
from app.survey.enrolment import (
    PRACTICE,
    Profile,
    enrol,
    enrolment_of,
    has_practice,
    next_opening,
    sessions_of,
    standing,
    task_size,
    where_to,
)
from app.survey.feedback import reader_feedback
from app.survey.forms import AnswerForm, ConsentForm, ShortcutsForm
from app.survey.presentation import (
    Page,
    case_count,
    classes_of,
    closed,
    how_it_works,
    image_url,
    page_context,
    practice_text,
    render_case,
    session_condition,
    session_name,
    session_text,
)
from app.survey.withdrawal import withdraw


def reader_study(study_id: int) -> Study:
    """The study if the current user reads in it: staff get 403, everyone else 404."""
    if current_user.is_staff:
        abort(403)
    if study_id not in reader_study_ids(current_user):
        abort(404)
    study = db.session.get(Study, study_id)
    if study is None or study.status == StudyStatus.DRAFT:
        abort(404)
    return study


def shown_study(study_id: int) -> Study:
    """The study for a page that only shows it (its information, its colours): its readers,
    and its organisers and admins, whose preview of the reader's pages uses them."""
    if current_user.is_staff:
        return managed_study_or_404(study_id)
    return reader_study(study_id)


@bp.get("/")
@login_required
def home() -> str:
    """The reader's studies, each with a link to where they are."""
    studies = []
    if not current_user.is_staff:
        ids = reader_study_ids(current_user)
        found = db.session.scalars(
            select(Study).where(Study.id.in_(ids), Study.status != StudyStatus.DRAFT)
        ).all()
        for study in sorted(found, key=lambda s: s.id):
            enrolment = enrolment_of(study.id, current_user.id)
            studies.append(
                {
                    "study": study,
                    "enrolment": enrolment,
                    "state": describe(enrolment),
                    "url": where_to(study.id, enrolment),
                }
            )
    return render_template("survey/home.html", studies=studies)


def describe(enrolment: Enrolment | None) -> str:
    """A reader's progress in one sentence."""
    if enrolment is None:
        return "Not started"
    if enrolment.withdrawn_at is not None:
        return f"Withdrawn on {enrolment.withdrawn_at:%Y-%m-%d}"
    state = standing(enrolment)
    if state.current is None:
        return finished_words(sessions_of(enrolment.study)) + " - thank you"
    task = state.current.session
    if task == PRACTICE:
        return "Practice in progress"
    if task == 1:
        return "Task 1 in progress"
    if state.locked and state.opens_at is not None:
        return f"Task {task - 1} completed; Task {task} opens {state.opens_at:%Y-%m-%d %H:%M} UTC"
    return f"Task {task} open"


def finished_words(sessions: int) -> str:
    """ "Both tasks completed" and the like, for a study of `sessions` tasks."""
    if sessions == 1:
        return "Study completed"
    return f"{'Both' if sessions == 2 else f'All {sessions}'} tasks completed"


@bp.route("/<int:study_id>/", methods=["GET", "POST"])
@login_required
def welcome(study_id: int) -> Page:
    """The study information and consent; consenting enrols the reader (draws the cases)."""
    study = reader_study(study_id)
    enrolment = enrolment_of(study.id, current_user.id)
    form = ConsentForm()
    if enrolment is None and form.is_submitted():
        if study.status != StudyStatus.OPEN:
            return closed()
        if form.validate():
            profile = consent_profile(form)
            enrol(study, current_user, profile)
            return redirect(where_to(study.id, enrolment_of(study.id, current_user.id)), 303)
        context = page_context(study, form=form, enrolment=None, steps=steps_of(study, None))
        return render_template("survey/welcome.html", **context), 400
    if enrolment is not None and form.is_submitted():
        return redirect(where_to(study.id, enrolment), 303)
    context = page_context(study, form=form, enrolment=enrolment, steps=steps_of(study, enrolment))
    return render_template("survey/welcome.html", **context)


def consent_profile(form: ConsentForm) -> Profile:
    """The profile of a validated consent form."""
    years, exams = form.years.data, form.exams_per_week.data
    assert years is not None and exams is not None  # InputRequired
    return Profile(ReaderRole(form.role.data), years, exams)


@bp.route("/<int:study_id>/withdraw", methods=["GET", "POST"])
@login_required
def withdraw_page(study_id: int) -> Page:
    """Withdraw from the study, after a confirmation: no more cases and no more reminders."""
    study = reader_study(study_id)
    enrolment = enrolment_of(study.id, current_user.id)
    if enrolment is None or enrolment.withdrawn_at is not None:
        return redirect(url_for("survey.welcome", study_id=study.id))
    form = ConfirmForm()
    if form.is_submitted():
        if not form.validate():
            abort(400)
        withdraw(enrolment, "reader")
        db.session.commit()
        flash("You have withdrawn from the study. Thank you for the time you gave it.", "success")
        return redirect(url_for("survey.welcome", study_id=study.id), 303)
    return render_template("survey/withdraw.html", study=study, enrolment=enrolment, form=form)


@bp.get("/<int:study_id>/information")
@login_required
def information(study_id: int) -> str:
    """The general information and the class definitions (opened beside a case)."""
    study = shown_study(study_id)
    enrolment = enrolment_of(study.id, current_user.id)
    context = page_context(study, steps=steps_of(study, enrolment))
    return render_template("survey/information.html", **context)


def steps_of(study: Study, enrolment: Enrolment | None) -> list[str]:
    """The study's tasks in a sentence each, as this reader gets them."""
    return how_it_works(study, enrolment, min(study.cases_per_reader, case_count(study)))


@bp.get("/<int:study_id>/classes.css")
@login_required
def class_styles(study_id: int) -> Response:
    """The study's class colours as CSS custom properties (the CSP forbids inline styles)."""
    study = shown_study(study_id)
    css = render_template("survey/classes.css", classes=classes_of(study))
    response = current_app.response_class(css, mimetype="text/css")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/<int:study_id>/continue")
@login_required
def resume(study_id: int) -> Response:
    """Go to where the reader left off."""
    study = reader_study(study_id)
    return redirect(where_to(study.id, enrolment_of(study.id, current_user.id)))


def reader_enrolment(study_id: int, task: int) -> tuple[Study, Enrolment | None]:
    """The study and the reader's enrolment, for pages of `task` (404 for other tasks; the
    practice set, task 0, for readers who have one)."""
    study = reader_study(study_id)
    if not (task == PRACTICE or 1 <= task <= sessions_of(study)):
        abort(404)
    enrolment = enrolment_of(study.id, current_user.id)
    if enrolment is not None and enrolment.withdrawn_at is not None:
        flash("You have withdrawn from this study: nothing more is asked of you.", "info")
        abort(redirect(url_for("survey.welcome", study_id=study.id), 303))
    if task == PRACTICE and enrolment is not None and not has_practice(enrolment):
        abort(404)
    return study, enrolment


@bp.get("/<int:study_id>/task/<int:task>/")
@login_required
def task(study_id: int, task: int) -> Page:
    """A task's instructions, and for Task 2 during the wash-out, when it opens."""
    study, enrolment = reader_enrolment(study_id, task)
    if enrolment is None:
        return redirect(url_for("survey.welcome", study_id=study.id))
    state = standing(enrolment)
    if state.current is None or state.current.session > task:
        return redirect(url_for("survey.task_end", study_id=study.id, task=task))
    if state.current.session < task:
        return redirect(where_to(study.id, enrolment))
    start = url_for("survey.case", study_id=study.id, task=task, number=state.current.position + 1)
    size = task_size(enrolment, task)
    if task == PRACTICE:
        text = practice_text(size)
    else:
        text = session_text(study, size, task, session_condition(enrolment, task))
    context = page_context(
        study,
        task=task,
        session_name=session_name(task),
        size=size,
        text=text,
        done=state.current.position,
        locked=state.locked,
        opens_at=state.opens_at,
        washout_wait=describe_wait(study.washout + now(), now()),
        start=start,
    )
    return render_template("survey/task.html", **context)


@bp.get("/<int:study_id>/task/<int:task>/done")
@login_required
def task_end(study_id: int, task: int) -> Page:
    """The end of a task: thanks, and after Task 1, when Task 2 opens."""
    study, enrolment = reader_enrolment(study_id, task)
    if enrolment is None:
        return redirect(url_for("survey.welcome", study_id=study.id))
    state = standing(enrolment)
    finished = state.current is None or state.current.session > task
    if not finished or task == PRACTICE:  # after the practice: Task 1's page
        return redirect(where_to(study.id, enrolment))
    last = task == sessions_of(study)
    shown_feedback = None
    if last and study.feedback and state.current is None:
        shown_feedback = reader_feedback(study, enrolment)
    context = page_context(
        study,
        task=task,
        feedback=shown_feedback,
        last=last,
        locked=state.locked,
        opens_at=state.opens_at,
        next_task=state.current.session if state.current is not None else None,
        next_url=where_to(study.id, enrolment),
        probe_cases=probe_cases(enrolment) if state.current is None else [],
    )
    return render_template("survey/task_end.html", **context)


def probe_cases(enrolment: Enrolment) -> list[dict[str, Any]]:
    """The readings whose aid was a deliberate probe, as the reader saw them (task, number,
    the image as shown): named only once every task is done, so that knowing which they were
    cannot change an answer. Nothing of their truth."""
    readings = db.session.scalars(
        select(Assignment)
        .where(Assignment.enrolment_id == enrolment.id, Assignment.probe.is_(True))
        .order_by(Assignment.session, Assignment.position)
        .options(selectinload(Assignment.case))
    )
    return [
        {
            "task": a.session,
            "number": a.position + 1,
            "url": image_url(a.case.image_rotated if a.rotation else a.case.image),
        }
        for a in readings
    ]


@bp.route("/<int:study_id>/task/<int:task>/case/<int:number>", methods=["GET", "POST"])
@login_required
def case(study_id: int, task: int, number: int) -> Page:
    """One case of a task (GET shows it, POST stores the answer once)."""
    study, enrolment = reader_enrolment(study_id, task)
    if enrolment is None:
        return redirect(url_for("survey.welcome", study_id=study.id))
    if number < 1:  # no such case (the <int> converter already bounds it from above)
        abort(404)
    assignment = db.session.scalar(
        select(Assignment)
        .where(
            Assignment.enrolment_id == enrolment.id,
            Assignment.session == task,
            Assignment.position == number - 1,
        )
        .options(selectinload(Assignment.case).selectinload(Case.neighbours))
    )
    if assignment is None:
        abort(404)
    form = AnswerForm(classes_of(study), len(study.likert))
    if form.is_submitted():
        return answer(study, enrolment, assignment, form)

    if assignment.answer is not None:
        flash("You have already answered that case; answers are final.", "info")
        return redirect(where_to(study.id, enrolment))
    state = standing(enrolment)
    if state.current is not None and state.locked:  # only a current session is locked
        return redirect(url_for("survey.task", study_id=study.id, task=state.current.session))
    if state.current is None or state.current.id != assignment.id:
        return redirect(where_to(study.id, enrolment))
    if study.status != StudyStatus.OPEN:
        return closed()
    if assignment.shown_at is None:
        # Only the first serving counts: a reload keeps the original moment.
        db.session.execute(
            update(Assignment)
            .where(Assignment.id == assignment.id, Assignment.shown_at.is_(None))
            .values(shown_at=now())
        )
        db.session.commit()
    return render_case(study, enrolment, assignment, form)


@bp.post("/preferences/shortcuts")
@login_required
def shortcuts() -> Page:
    """Turn the reader's single-key shortcuts on or off (kept with the account)."""
    form = ShortcutsForm()
    wants_json = request.accept_mimetypes.best == "application/json"
    if not form.validate():
        if wants_json:
            return jsonify(error="Choose on (1) or off (0)."), 400
        abort(400)
    current_user.shortcuts_enabled = form.enabled.data == "1"
    db.session.commit()
    if wants_json:
        return jsonify(shortcuts=current_user.shortcuts_enabled)
    state = "on" if current_user.shortcuts_enabled else "off"
    flash(f"Single-key shortcuts are {state}.", "success")
    target = form.next.data
    return redirect(target if is_safe_next(target) else url_for("survey.home"), 303)


@bp.get("/<int:study_id>/task2.ics")
@login_required
def calendar(study_id: int) -> Response:
    """The opening of the reader's next task as a calendar file (once the one before is done)."""
    study = reader_study(study_id)
    enrolment = enrolment_of(study.id, current_user.id)
    if enrolment is None or enrolment.withdrawn_at is not None:
        abort(404)
    found = next_opening(enrolment)
    if found is None and enrolment.second_session_opens_at is not None:
        found = (2, enrolment.second_session_opens_at)  # a two-task reader who has finished
    if found is None:
        abort(404)
    session, opens_at = found
    link = url_for("survey.resume", study_id=study.id, _external=True)
    response = current_app.response_class(
        calendar_file(enrolment, opens_at, link, session), mimetype="text/calendar"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="task{session}.ics"'
    return response
