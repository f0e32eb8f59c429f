"""The readers of a study: each one's progress, when their next session opens, reminders sent
now, and a withdrawal recorded for them."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.auth import managed_enrolment_or_404, managed_study_or_404, staff_required
from app.clock import describe_wait, now
from app.extensions import db
from app.forms import ConfirmForm, EmptyForm
from app.mail import mail_enabled
from app.mail.reminders import last_activity, manual_key, may_remind, queue_reminder
from app.models import Enrolment, User
from app.organiser.contact import may_correct, reminder_deliveries
from app.survey.enrolment import condition_orders, next_opening, session_progress
from app.survey.withdrawal import withdraw

bp = Blueprint("readers", __name__)


@bp.get("/studies/<int:study_id>/readers")
@staff_required
def readers(study_id: int) -> str:
    """Each enrolled reader's progress in every task."""
    record = managed_study_or_404(study_id)
    enrolments = db.session.scalars(
        select(Enrolment)
        .where(Enrolment.study_id == record.id)
        .join(User, User.id == Enrolment.user_id)
        .order_by(User.pseudonym)
    ).all()
    ids = [enrolment.id for enrolment in enrolments]
    progress = session_progress(record, ids)
    activity = last_activity(ids)
    orders = condition_orders(record, ids)
    deliveries = reminder_deliveries(ids)
    rows = [
        {
            "enrolment": enrolment,
            "user": enrolment.user,
            "sessions": progress[enrolment.id],
            "last": activity.get(enrolment.id, enrolment.consented_at),
            "remindable": may_remind(enrolment),
            "order": orders[enrolment.id],
            "next": next_words(enrolment),
            "reminder": deliveries.get(enrolment.id),
            "may_correct": may_correct(current_user, enrolment.user),
        }
        for enrolment in enrolments
    ]
    return render_template("admin/readers.html", study=record, rows=rows, button=EmptyForm())


def next_words(enrolment: Enrolment) -> str:
    """When a reader's next task opens (or that it is open), for the progress page."""
    if enrolment.withdrawn_at is not None or enrolment.finished_at is not None:
        return "—"
    found = next_opening(enrolment)
    if found is None:
        return "Task 1: open"
    task, opens_at = found
    moment = now()
    if opens_at <= moment:
        return f"Task {task}: open since {opens_at:%Y-%m-%d %H:%M}"
    return f"Task {task}: opens {opens_at:%Y-%m-%d %H:%M} (in {describe_wait(opens_at, moment)})"


@bp.route("/studies/<int:study_id>/readers/<int:enrolment_id>/withdraw", methods=["GET", "POST"])
@staff_required
def mark_withdrawn(study_id: int, enrolment_id: int) -> Response | str:
    """Record that a reader withdrew (told the organisers so), after a confirmation."""
    record, enrolment = managed_enrolment_or_404(study_id, enrolment_id)
    form = ConfirmForm()
    if not form.is_submitted():
        return render_template(
            "admin/confirm_withdraw.html", study=record, enrolment=enrolment, button=form
        )
    if not form.validate():
        abort(400)
    pseudonym = enrolment.user.pseudonym
    if withdraw(enrolment, "organiser"):
        db.session.commit()
        flash(f"{pseudonym} is recorded as withdrawn: no more cases, no more reminders.", "info")
    else:
        flash(f"{pseudonym} had withdrawn already.", "info")
    return redirect(url_for("readers.readers", study_id=record.id), 303)


@bp.post("/studies/<int:study_id>/readers/<int:enrolment_id>/remind")
@staff_required
def remind(study_id: int, enrolment_id: int) -> Response:
    """E-mail one reader a reminder now: the link, and the .ics once Task 1 is done."""
    record, enrolment = managed_enrolment_or_404(study_id, enrolment_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    pseudonym = enrolment.user.pseudonym
    if not mail_enabled():
        flash("This server sends no e-mail: remind the reader yourself.", "warning")
    elif not may_remind(enrolment):
        flash(
            f"{pseudonym} has finished, withdrawn, or the study is not open: no reminder.", "info"
        )
    else:
        queue_reminder(enrolment, dedupe_key=manual_key(enrolment))
        db.session.commit()
        flash(f"A reminder to {pseudonym} is on its way (its state is below).", "success")
    return redirect(url_for("readers.readers", study_id=record.id))
