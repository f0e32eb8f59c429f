"""Organisers' pages: studies, importing a bundle, settings, opening and closing, invitations,
and the readers' progress. Organisers manage the studies they are members of (see app.team);
admins manage every study. Another study answers 404, as if it did not exist."""

import json
import math
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from app import imports
from app.auth import (
    create_invitation,
    hash_token,
    managed_enrolment_or_404,
    managed_study_ids,
    managed_study_or_404,
    refuse_control_characters,
    staff_required,
)
from app.clock import describe_wait, duration_words, now
from app.consent import change_text
from app.contact import (
    invitation_deliveries,
    may_correct,
    reminder_deliveries,
    send_invitation,
)
from app.design import PROBE_SENTENCE, copied, describe_design, probes_disclosed
from app.design_freeze import design_document, freeze_state, frozen_of, open_study
from app.extensions import db
from app.forms import (
    ConfirmForm,
    EmptyForm,
    ImportBundleForm,
    InvitationForm,
    NewStudyForm,
    StudySettingsForm,
)
from app.mail import mail_enabled
from app.mail.messages import public_url
from app.mail.reminders import last_activity, manual_key, may_remind, queue_reminder
from app.models import (
    Case,
    Enrolment,
    ImportJob,
    Invitation,
    Sampling,
    Study,
    StudyStatus,
    User,
)
from app.survey.enrolment import (
    condition_orders,
    next_opening,
    session_progress,
    sessions_of,
    withdraw,
)
from app.washout import ReaderEffect, announce_openings, washout_effects
from studybundle.vocabulary import training_name

bp = Blueprint("admin", __name__)

# Sent by the import progress page's script when it asks whether the import has finished.
POLL_HEADER = "X-Import-Poll"
# Settings that decide which cases a reader gets, or their order: fixed once someone enrolled.
DRAW_SETTINGS = ("cases_per_reader", "sampling", "reshuffle_task2")


def pool_size(study_id: int) -> int:
    """How many cases a study's pool has."""
    return db.session.scalar(select(func.count(Case.id)).where(Case.study_id == study_id)) or 0


def enrolled_count(study_id: int) -> int:
    """How many readers enrolled in a study."""
    query = select(func.count(Enrolment.id)).where(Enrolment.study_id == study_id)
    return db.session.scalar(query) or 0


def server_bundles() -> list[tuple[str, str]]:
    """Bundle folders under BUNDLE_ROOT (up to two levels down), as form choices.

    Only folders reached without a symbolic link: a link could lead outside the root (and
    the validator's messages quote what they read). The validator refuses linked files in
    a bundle.
    """
    root_setting = current_app.config.get("BUNDLE_ROOT")
    if not root_setting or not Path(root_setting).is_dir():
        return []
    root = Path(root_setting).resolve()
    found = sorted(
        {
            path.parent
            for pattern in ("*/manifest.json", "*/*/manifest.json")
            for path in root.glob(pattern)
            if path.parent.resolve() == path.parent
        }
    )
    return [(str(path.relative_to(root)), str(path.relative_to(root))) for path in found]


def runs() -> list[Study]:
    """The studies the current user runs (an admin: every study), newest first."""
    query = select(Study).order_by(Study.created_at.desc(), Study.id.desc())
    managed = managed_study_ids(current_user)
    if managed is not None:
        query = query.where(Study.id.in_(managed))
    return list(db.session.scalars(query))


@bp.get("/")
@staff_required
def studies() -> str:
    """The studies the user runs (an admin: every study) with status, pool and readers."""
    listing = [(study, pool_size(study.id), enrolled_count(study.id)) for study in runs()]
    return render_template("admin/studies.html", listing=listing)


@bp.route("/studies/new", methods=["GET", "POST"])
@staff_required
def new_study() -> Response | str | tuple[str, int]:
    """A new study: import a bundle, or reuse the cases of a study the user runs (a copy with
    its settings and design, without its readers)."""
    studies = runs()
    form = NewStudyForm()
    form.source.choices = [SelectChoice(study.id, study.name) for study in studies]
    if form.validate_on_submit() and not refuse_control_characters(form):
        source = managed_study_or_404(int(form.source.data))
        return copied(source, form.name.data or "")
    status = 400 if form.is_submitted() else 200
    return render_template("admin/new_study.html", form=form, studies=studies), status


def import_form() -> tuple[ImportBundleForm, list[tuple[str, str]]]:
    """The import form with the server's bundle folders offered."""
    form = ImportBundleForm()
    offered = server_bundles()
    form.server_path.choices = [SelectChoice("", "(none)")] + [
        SelectChoice(value, label) for value, label in offered
    ]
    return form, offered


@bp.route("/studies/import", methods=["GET", "POST"])
@staff_required
def import_study() -> Response | str | tuple[str, int]:
    """Create a study from a bundle: an uploaded .zip or a folder under BUNDLE_ROOT.

    The import runs in the background, in a process of its own (app.imports); the browser
    goes to its progress page.
    """
    form, offered = import_form()
    if not form.validate_on_submit() or refuse_control_characters(form):
        status = 400 if form.is_submitted() else 200
        return render_template("admin/import.html", form=form), status
    folder = None
    if form.server_path.data:
        if form.server_path.data not in dict(offered):
            abort(400)
        folder = Path(current_app.config["BUNDLE_ROOT"]).resolve() / form.server_path.data
    user = current_user._get_current_object()
    upload = None if folder is not None else form.upload.data.stream
    try:
        job = imports.start(user, form.name.data or "", upload, folder)
    except imports.Busy as busy:
        form.upload.errors = [*form.upload.errors, str(busy)]
        return render_template("admin/import.html", form=form), 429
    if job.state in imports.UNFINISHED:
        return redirect(url_for("admin.import_job", job_id=job.id), 303)
    return import_outcome(job)


def import_outcome(job: ImportJob) -> Response | tuple[str, int]:
    """What a finished import shows: its study, or the import form with why it failed."""
    if job.state == "done" and job.study_id is not None:
        study = db.get_or_404(Study, job.study_id)
        if job.created_study:
            flash(f"Imported “{study.name}” with {len(study.cases)} cases.", "success")
        else:
            flash(
                f"This bundle was imported before, as “{study.name}”: nothing changed. To run "
                "its cases again, choose New study on the studies page.",
                "info",
            )
        return redirect(url_for("admin.study", study_id=study.id))
    form, _ = import_form()
    form.name.data = job.name
    form.upload.errors = [*form.upload.errors, job.errors or "The import failed."]
    return render_template("admin/import.html", form=form), 409 if job.state == "conflict" else 400


@bp.get("/imports/<int:job_id>")
@staff_required
def import_job(job_id: int) -> Response | str | tuple[str, int]:
    """An import's progress (the page reloads itself), then its outcome.

    Only whoever started it (or an admin) sees it; another job answers 404.
    """
    job = db.session.get(ImportJob, job_id)
    if job is None or not (job.created_by_id == current_user.id or current_user.is_admin):
        abort(404)
    imports.settle()
    db.session.refresh(job)
    if job.state in imports.UNFINISHED:
        return render_template("admin/import_progress.html", job=job)
    if request.headers.get(POLL_HEADER):
        # The progress page's own look (static/js/importprogress.js): it reloads, and the
        # outcome and its message are shown once, then.
        return Response(status=204)
    return import_outcome(job)


def _figure(value: Any) -> float | None:
    """A score from the bundle's provenance if it is a plain finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def aid_scores(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the training run measured for the aids (the bundle's provenance.metrics): macro
    precision at k per retrieval, accuracy and macro sensitivity per classifier."""
    provenance = manifest.get("provenance")
    metrics = provenance.get("metrics") if isinstance(provenance, dict) else None
    if not isinstance(metrics, dict):
        return {}
    retrieval = metrics.get("retrieval") if isinstance(metrics.get("retrieval"), dict) else {}
    ks = sorted(
        {k for by_k in retrieval.values() if isinstance(by_k, dict) for k in by_k if k.isdigit()},
        key=int,
    )
    rows = [
        {
            "name": training_name(str(name)),
            "cells": [
                _figure(by_k.get(k, {}).get("macro") if isinstance(by_k.get(k), dict) else None)
                for k in ks
            ],
        }
        for name, by_k in sorted(retrieval.items())
        if isinstance(by_k, dict)
    ]
    classifiers = metrics.get("classifiers") if isinstance(metrics.get("classifiers"), dict) else {}
    models = [
        {
            "name": training_name(str(name)),
            "accuracy": _figure(values.get("accuracy")),
            "macro_sensitivity": _figure(values.get("macro_sensitivity")),
        }
        for name, values in sorted(classifiers.items())
        if isinstance(values, dict)
    ]
    return {"ks": ks, "retrieval": rows, "classifiers": models}


@bp.route("/studies/<int:study_id>", methods=["GET", "POST"])
@staff_required
def study(study_id: int) -> Response | str | tuple[str, int]:
    """A study's settings (those that change the draw lock once a reader has enrolled)."""
    record = managed_study_or_404(study_id)
    pool = pool_size(record.id)
    locked = enrolled_count(record.id) > 0
    form = StudySettingsForm(obj=record)
    if locked:
        for name in DRAW_SETTINGS:
            delattr(form, name)
    fit_labels(form, record)
    affected: list[ReaderEffect] = []
    if form.validate_on_submit() and not refuse_control_characters(form):
        new_washout = float(form.washout_hours.data)
        affected = washout_effects(record, new_washout)
        if any(item.moves for item in affected) and request.form.get("confirm_washout") != "1":
            flash(
                "Changing the wash-out moves the next task of the readers listed below. "
                "Nothing is saved until you confirm.",
                "warning",
            )
            return settings_page(record, form, pool, locked, affected, 200)
        record.name = form.name.data.strip()
        record.washout_hours = new_washout
        if announce_openings(record, affected):
            flash("The readers whose next task opened now get an e-mail saying so.", "info")
        if form.reminder_days.data is not None:
            record.reminder_days = int(form.reminder_days.data)
        if change_text(record, form.information.data or "", current_user):
            flash(
                f"The information text is now version {record.consent_version}; readers who "
                "agreed before keep the version they agreed to.",
                "info",
            )
        if not locked:
            wanted = form.cases_per_reader.data
            if wanted > pool:
                flash(
                    f"Cases per reader capped to the pool size: {pool} (you asked for {wanted}).",
                    "warning",
                )
                wanted = pool
            record.cases_per_reader = wanted
            record.sampling = Sampling(form.sampling.data)
            record.reshuffle_task2 = bool(form.reshuffle_task2.data)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("admin.study", study_id=record.id))
    return settings_page(record, form, pool, locked, affected, 400 if form.is_submitted() else 200)


def fit_labels(form: StudySettingsForm, study: Study) -> None:
    """Name the tasks as the study's design has them (the form's labels speak of two)."""
    sessions = sessions_of(study)
    now_words = f"Now: {duration_words(study.washout_hours)}."
    if sessions == 1:
        form.washout_hours.label.text = "Wash-out (hours)"
        form.washout_hours.description = (
            "This design has one task, so no wash-out applies. " + now_words
        )
    elif sessions > 2:
        form.washout_hours.label.text = "Wash-out between one task and the next (hours)"
        form.washout_hours.description = (
            "0 lets a reader start the next task right after one ends; 0.5 is 30 minutes. "
            + now_words
        )
        if getattr(form, "reshuffle_task2", None) is not None:
            form.reshuffle_task2.label.text = "Each later task shows the cases in a new order"
    else:
        form.washout_hours.description = (
            "0 lets a reader start Task 2 right after Task 1; 0.5 is 30 minutes. " + now_words
        )
    if sessions != 2:
        form.reminder_days.description = (
            "Readers get an e-mail when their next task opens; while they have not finished, "
            "another every this many days (at most 3). 0: only the first."
        )


def settings_page(
    record: Study,
    form: StudySettingsForm,
    pool: int,
    locked: bool,
    affected: list[ReaderEffect],
    status: int,
) -> tuple[str, int]:
    """The study's settings page: the form, the pool, what the aids score, who agreed to what,
    and the readers a wash-out change would move (asked to confirm)."""
    return render_template(
        "admin/study.html",
        study=record,
        form=form,
        pool=pool,
        locked=locked,
        scores=aid_scores(record.manifest),
        readers=enrolled_count(record.id),
        button=EmptyForm(),
        affected=affected,
        moving=sum(1 for item in affected if item.moves),
        design_lines=describe_design(record),
        agreed=consent_counts(record.id),
        freeze=freeze_state(record),
    ), status


@bp.get("/studies/<int:study_id>/design.json")
@staff_required
def design_json(study_id: int) -> Response:
    """The design frozen when the study first opened, with its SHA-256 (see app.design_freeze):
    what a reviewer checks the study against."""
    record = managed_study_or_404(study_id)
    body = json.dumps(design_document(record), indent=2, ensure_ascii=False) + "\n"
    response = Response(body, content_type="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="study-{record.id}-design.json"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def consent_counts(study_id: int) -> dict[int | None, int]:
    """How many readers agreed to each version of the information text (None: unrecorded)."""
    rows = db.session.execute(
        select(Enrolment.consent_version, func.count(Enrolment.id))
        .where(Enrolment.study_id == study_id)
        .group_by(Enrolment.consent_version)
    )
    return {version: count for version, count in rows}


@bp.get("/studies/<int:study_id>/close/confirm")
@staff_required
def confirm_close(study_id: int) -> str:
    """Ask before closing: how many readers are still in the middle of the study."""
    record = managed_study_or_404(study_id)
    unfinished = db.session.scalar(
        select(func.count(Enrolment.id)).where(
            Enrolment.study_id == record.id, Enrolment.task2_completed_at.is_(None)
        )
    )
    return render_template(
        "admin/confirm_close.html", study=record, unfinished=unfinished or 0, button=EmptyForm()
    )


@bp.post("/studies/<int:study_id>/<any(open, close):action>")
@staff_required
def change_status(study_id: int, action: str) -> Response:
    """Open a study to its readers, or close it (a closed study may be opened again)."""
    record = managed_study_or_404(study_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if action == "open" and not probes_disclosed(record):
        flash(
            "The study was not opened: it shows misleading-aid probes, and its information text"
            " does not tell readers so. Add a sentence such as: " + PROBE_SENTENCE,
            "error",
        )
        return redirect(url_for("design.edit", study_id=record.id))
    if action == "open":
        open_study(record)
        flash("The study is open: invited readers can start.", "success")
    else:
        record.status = StudyStatus.CLOSED
        flash("The study is closed: readers can no longer answer.", "info")
    try:
        db.session.commit()
    except IntegrityError:
        # A double-clicked Open: the other request froze the design first (one freeze per
        # study). Its freeze stands; this request only opens.
        db.session.rollback()
        if action != "open" or frozen_of(record) is None:
            raise
        record.status = StudyStatus.OPEN
        db.session.commit()
    return redirect(url_for("admin.study", study_id=record.id))


def invitation_state(invitation: Invitation) -> str:
    """ "used", "expired" or "pending"."""
    if invitation.used_at is not None:
        return "used"
    return "expired" if invitation.expires_at <= now() else "pending"


def invitations_page(record: Study, form: InvitationForm, links: list, status: int) -> tuple:
    """The invitations page: new links (shown once, each with a copy button) and the list."""
    rows = db.session.scalars(
        select(Invitation)
        .where(Invitation.study_id == record.id)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
    ).all()
    listing = [(invitation, invitation_state(invitation)) for invitation in rows]
    response = render_template(
        "admin/invitations.html",
        study=record,
        form=form,
        links=links,
        listing=listing,
        deliveries=invitation_deliveries([invitation.id for invitation in rows]),
        button=EmptyForm(),
    )
    return response, status


def invitation_refusal(user: User, wanted: int) -> tuple[str, int] | None:
    """Why `user` may not create `wanted` invitations now (and the status), if they may not.

    One form's addresses are capped (INVITATIONS_PER_REQUEST), and so are an organiser's new
    invitations in the last hour (INVITATIONS_PER_HOUR): one POST once created 9000
    invitations and queued 9000 e-mails. Nothing is created when either is exceeded.
    """
    per_request = current_app.config["INVITATIONS_PER_REQUEST"]
    if wanted > per_request:
        return (
            f"You entered {wanted} addresses: at most {per_request} can be invited at once. "
            "Please invite them in parts.",
            400,
        )
    per_hour = current_app.config["INVITATIONS_PER_HOUR"]
    recent = db.session.scalar(
        select(func.count(Invitation.id)).where(
            Invitation.created_by_id == user.id,
            Invitation.created_at > now() - timedelta(hours=1),
        )
    )
    left = max(0, per_hour - (recent or 0))
    if wanted > left:
        return (
            f"You can create at most {per_hour} invitations an hour and have {left} left now: "
            f"please invite these {wanted} readers later, or fewer of them now.",
            429,
        )
    return None


@bp.route("/studies/<int:study_id>/invitations", methods=["GET", "POST"])
@staff_required
def invitations(study_id: int) -> str | tuple[str, int]:
    """List a study's invitations and invite a pasted list of readers (links shown once)."""
    record = managed_study_or_404(study_id)
    form = InvitationForm()
    if not form.is_submitted():
        form.days.data = current_app.config["INVITATION_DAYS"]
    if not form.validate_on_submit() or refuse_control_characters(form):
        return invitations_page(record, form, [], 400 if form.is_submitted() else 200)
    if record.status == StudyStatus.DRAFT:
        form.email.errors = [
            "The study is still a draft: open it first (Settings), then invite readers. "
            "A link to a draft study would lead nowhere."
        ]
        return invitations_page(record, form, [], 400)
    addresses, errors = form.addresses()
    if errors or not addresses:
        form.email.errors = errors or ["Enter at least one e-mail address."]
        return invitations_page(record, form, [], 400)  # nothing created: fix and resend
    too_many = invitation_refusal(current_user, len(addresses))
    if too_many is not None:
        form.email.errors = [too_many[0]]
        return invitations_page(record, form, [], too_many[1])
    send = bool(form.send.data) and mail_enabled()
    links = []
    for address in addresses:
        invitation, token = create_invitation(record, address, current_user, form.days.data)
        link = public_url("auth.invitation", token=token)
        if send:
            send_invitation(invitation, link)
        links.append((invitation.email, link))
    db.session.commit()
    sent = " and e-mailed" if send else ""
    flash(f"{len(links)} invitation link(s) created{sent}. Copy them now if needed.", "success")
    form = InvitationForm(formdata=None, days=current_app.config["INVITATION_DAYS"])
    return invitations_page(record, form, links, 200)


@bp.post("/studies/<int:study_id>/invitations/<int:invitation_id>/resend")
@staff_required
def resend_invitation(study_id: int, invitation_id: int) -> str | tuple[str, int] | Response:
    """A fresh link for an unused invitation (the old one stops working), e-mailed if possible."""
    record = managed_study_or_404(study_id)
    invitation = db.get_or_404(Invitation, invitation_id)
    if invitation.study_id != record.id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if invitation.used_at is not None:
        flash("This invitation was already used; the reader logs in with their password.", "info")
        return redirect(url_for("admin.invitations", study_id=record.id))
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    invitation.expires_at = now() + timedelta(days=current_app.config["INVITATION_DAYS"])
    link = public_url("auth.invitation", token=token)
    if mail_enabled():
        send_invitation(invitation, link)
    db.session.commit()
    flash(f"A new link for {invitation.email}; the old one no longer works.", "success")
    form = InvitationForm(formdata=None, days=current_app.config["INVITATION_DAYS"])
    return invitations_page(record, form, [(invitation.email, link)], 200)


@bp.post("/studies/<int:study_id>/invitations/<int:invitation_id>/revoke")
@staff_required
def revoke_invitation(study_id: int, invitation_id: int) -> Response:
    """Delete an unused invitation, so its link stops working."""
    managed_study_or_404(study_id)
    invitation = db.get_or_404(Invitation, invitation_id)
    if invitation.study_id != study_id or not EmptyForm().validate_on_submit():
        abort(404 if invitation.study_id != study_id else 400)
    if invitation.used_at is not None:
        flash("This invitation was already used; it cannot be revoked.", "warning")
    else:
        db.session.delete(invitation)
        db.session.commit()
        flash(f"The invitation for {invitation.email} was revoked.", "info")
    return redirect(url_for("admin.invitations", study_id=study_id))


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
    return redirect(url_for("admin.readers", study_id=record.id), 303)


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
    return redirect(url_for("admin.readers", study_id=record.id))
