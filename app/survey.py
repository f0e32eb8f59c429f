"""The reader's way through a study: welcome and consent, Task 1, wash-out, Task 2, the end.

Where a reader stands is never kept in the session: it is always the first unanswered
assignment (Task 1 before Task 2), so a reader resumes exactly there after a logout or a closed
tab. Answers are stored once (Answer.assignment_id is unique) and never changed.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import sampling
from app.auth import reader_study_ids
from app.clock import now
from app.errors import error_response
from app.extensions import db
from app.models import CLASS_CODES, Answer, Assignment, Case, Enrolment, Study, StudyStatus, User
from app.survey_forms import AnswerForm, ConsentForm

bp = Blueprint("survey", __name__)

TASKS = (1, 2)
CONFIDENCE_KEYS = ("a", "s", "d", "f", "g")  # home row: confidence 1-5 without looking
ROTATION = {1: 0, 2: 180}  # Task 2 shows the query turned by 180 degrees (thesis 3.4)
HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
FALLBACK_COLOUR = "#595959"

Page = Response | str | tuple[Response | str, int]


# ---------------------------------------------------------------- enrolment and position


def enrolment_of(study_id: int, user_id: int) -> Enrolment | None:
    """The user's enrolment in the study, if they have consented already."""
    return db.session.scalar(
        select(Enrolment).where(Enrolment.study_id == study_id, Enrolment.user_id == user_id)
    )


def enrol(study: Study, user: User) -> Enrolment:
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
        study_id=study.id, user_id=user.id, seed=seed, created_at=moment, consented_at=moment
    )
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


# ---------------------------------------------------------------- access


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


def closed() -> tuple[Response | str, int]:
    """The page for an attempt to answer in a closed study."""
    return error_response(403, "This study is closed: no more answers are taken.")


# ---------------------------------------------------------------- presentation helpers


def classes_of(study: Study) -> list[dict]:
    """The study's classes in display order, with safe colours and a readable text colour."""
    out = []
    for item in study.manifest.get("classes", []):
        if item.get("code") not in CLASS_CODES:
            continue  # the database refuses other diagnoses, so they are never offered
        colour = item.get("colour", "")
        colour = colour if HEX_COLOUR.match(colour) else FALLBACK_COLOUR
        text = item.get("text_colour", "")
        text = text if HEX_COLOUR.match(text) else readable_text_colour(colour)
        out.append({**item, "colour": colour, "text_colour": text})
    return out


def readable_text_colour(colour: str) -> str:
    """Black or white, whichever contrasts more with `colour` (WCAG relative luminance)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # Contrast with black is (L + .05) / .05, with white 1.05 / (L + .05).
    return "#000000" if (luminance + 0.05) ** 2 > 0.05 * 1.05 else "#FFFFFF"


def likert_of(study: Study) -> list[str]:
    """The five confidence labels, level 1 first."""
    labels = list(study.manifest.get("likert", []))
    return labels if len(labels) == 5 else ["1", "2", "3", "4", "5"]


def image_url(name: str) -> str:
    """The URL of a study image by its content-hash file name."""
    return url_for("images.image", name=name.removesuffix(".jpg"))


def paragraphs(text: str) -> list[str]:
    """Plain text split into paragraphs at blank lines."""
    return [part.strip() for part in re.split(r"\n\s*\n", text or "") if part.strip()]


def case_count(study: Study) -> int:
    """How many cases the study's pool holds."""
    return db.session.scalar(select(func.count(Case.id)).where(Case.study_id == study.id)) or 0


def page_context(study: Study, **extra: object) -> dict:
    """What every survey page of a study shows."""
    return {
        "study": study,
        "classes": classes_of(study),
        "likert": likert_of(study),
        "information": paragraphs(study.information),
        "cases": min(study.cases_per_reader, case_count(study)),
        "keys": CONFIDENCE_KEYS,
        **extra,
    }


# ---------------------------------------------------------------- views


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
    if enrolment.task2_completed_at is not None:
        return "Both tasks completed - thank you"
    if enrolment.task1_completed_at is None:
        return "Task 1 in progress"
    opens_at = enrolment.task2_opens_at
    if opens_at is not None and now() < opens_at:
        return f"Task 1 completed; Task 2 opens {opens_at:%Y-%m-%d %H:%M} UTC"
    return "Task 2 open"


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
            enrol(study, current_user)
            return redirect(where_to(study.id, enrolment_of(study.id, current_user.id)), 303)
        context = page_context(study, form=form, enrolment=None)
        return render_template("survey/welcome.html", **context), 400
    if enrolment is not None and form.is_submitted():
        return redirect(where_to(study.id, enrolment), 303)
    context = page_context(study, form=form, enrolment=enrolment)
    return render_template("survey/welcome.html", **context)


@bp.get("/<int:study_id>/information")
@login_required
def information(study_id: int) -> str:
    """The general information and the class definitions (opened beside a case)."""
    study = reader_study(study_id)
    return render_template("survey/information.html", **page_context(study))


@bp.get("/<int:study_id>/classes.css")
@login_required
def class_styles(study_id: int) -> Response:
    """The study's class colours as CSS custom properties (the CSP forbids inline styles)."""
    study = reader_study(study_id)
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
    """The study and the reader's enrolment, for pages of `task` (404 for other tasks)."""
    if task not in TASKS:
        abort(404)
    study = reader_study(study_id)
    return study, enrolment_of(study.id, current_user.id)


@bp.get("/<int:study_id>/task/<int:task>/")
@login_required
def task(study_id: int, task: int) -> Page:
    """A task's instructions, and for Task 2 during the wash-out, when it opens."""
    study, enrolment = reader_enrolment(study_id, task)
    if enrolment is None:
        return redirect(url_for("survey.welcome", study_id=study.id))
    state = standing(enrolment)
    if state.current is None or state.current.task > task:
        return redirect(url_for("survey.task_end", study_id=study.id, task=task))
    if state.current.task < task:
        return redirect(where_to(study.id, enrolment))
    start = url_for("survey.case", study_id=study.id, task=task, number=state.current.position + 1)
    context = page_context(
        study,
        task=task,
        size=task_size(enrolment, task),
        done=state.current.position,
        locked=state.locked,
        opens_at=state.opens_at,
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
    finished = state.current is None or state.current.task > task
    if not finished:
        return redirect(where_to(study.id, enrolment))
    context = page_context(
        study,
        task=task,
        locked=state.locked,
        opens_at=state.opens_at,
        next_url=where_to(study.id, enrolment),
    )
    return render_template("survey/task_end.html", **context)


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
            Assignment.task == task,
            Assignment.position == number - 1,
        )
        .options(selectinload(Assignment.case).selectinload(Case.neighbours))
    )
    if assignment is None:
        abort(404)
    form = AnswerForm(classes_of(study))
    if form.is_submitted():
        return answer(study, enrolment, assignment, form)

    if assignment.answer is not None:
        flash("You have already answered that case; answers are final.", "info")
        return redirect(where_to(study.id, enrolment))
    state = standing(enrolment)
    if state.locked:
        return redirect(url_for("survey.task", study_id=study.id, task=2))
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


def render_case(
    study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm, status: int = 200
) -> tuple[str, int]:
    """The case page: the query (turned in Task 2), its neighbours in Task 2, the answer form."""
    form.token.data = case_token(assignment)
    classes = classes_of(study)
    by_code = {item["code"]: item for item in classes}
    neighbours = []
    query_image = assignment.case.image
    if assignment.task == 2:
        query_image = assignment.case.image_rotated
        neighbours = [
            {"rank": n.rank, "url": image_url(n.image), "cls": by_code.get(n.truth)}
            for n in assignment.case.neighbours
        ]
    context = page_context(
        study,
        form=form,
        task=assignment.task,
        number=assignment.position + 1,
        size=task_size(enrolment, assignment.task),
        query_url=image_url(query_image),
        neighbours=neighbours,
    )
    return render_template("survey/case.html", **context), status


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
            seconds=max(0.0, (moment - shown_at).total_seconds()),
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
