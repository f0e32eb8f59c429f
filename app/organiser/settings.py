"""A study's settings page: its settings (some lock once a reader enrolled), what its aids
scored in training, who agreed to which information text, opening and closing, and the design
frozen when it first opened."""

import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)

# WTForms 3.3 added SelectChoice; typeshed's types-WTForms (3.2.1) does not have it yet.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.auth import managed_study_or_404, refuse_control_characters, staff_required
from app.clock import duration_words
from app.consent import change_text
from app.extensions import db
from app.forms import EmptyForm, WholeNumberRange, finite_number
from app.models import Enrolment, Sampling, Study, StudyStatus
from app.organiser.design import PROBE_SENTENCE, describe_design, probes_disclosed
from app.organiser.design_freeze import design_document, freeze_state, frozen_of, open_study
from app.organiser.studies import enrolled_count, pool_size
from app.survey.enrolment import sessions_of
from app.washout import ReaderEffect, announce_openings, washout_effects
from studybundle.metrics import MetricsError, read_metrics
from studybundle.vocabulary import training_name

bp = Blueprint("settings", __name__)

# Settings that decide which cases a reader gets, or their order: fixed once someone enrolled.
DRAW_SETTINGS = ("cases_per_reader", "sampling", "reshuffle_later_sessions")


class StudySettingsForm(FlaskForm):
    """The settings an organiser may change (some lock once a reader has enrolled)."""

    name = StringField("Study name", validators=[DataRequired(), Length(max=200)])
    cases_per_reader = IntegerField(
        "Cases per reader",
        validators=[InputRequired(), WholeNumberRange(1, 100000)],
        description="Each reader answers this many cases in each task.",
    )
    washout_hours = DecimalField(
        "Wash-out between Task 1 and Task 2 (hours)",
        places=None,  # 0.02 stays 0.02 (one place showed "0.0")
        validators=[InputRequired(), finite_number, NumberRange(min=0, max=24 * 365)],
        description="0 lets a reader start Task 2 right after Task 1.",
    )
    sampling = SelectField(
        "How cases are drawn",
        choices=[
            SelectChoice(Sampling.RANDOM.value, "Simple random sample (as in the thesis)"),
            SelectChoice(
                Sampling.STRATIFIED.value, "Stratified by class (proportional to the pool)"
            ),
        ],
    )
    reshuffle_later_sessions = BooleanField("Task 2 shows the cases in a new order")
    information = TextAreaField(
        "Information and consent text shown to readers",
        validators=[Optional(), Length(max=20000)],
        description="A changed text becomes a new version; each reader's record keeps the "
        "version they agreed to.",
    )
    reminder_days = IntegerField(
        "Remind again after (days)",
        validators=[Optional(), WholeNumberRange(0, 60)],
        description="Readers get an e-mail when Task 2 opens; while they have not finished, "
        "another every this many days (at most 3). 0: only the first.",
    )
    submit = SubmitField("Save settings")


def aid_scores(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the training run measured for the aids (the bundle's provenance.metrics, read
    leniently by studybundle.metrics: a figure it cannot read is None): macro precision at k
    per retrieval, accuracy and macro sensitivity per classifier; and what the record holds
    that does not read (`problems`, the import's warnings: shown, so that a missing figure is
    not taken for one the run did not measure)."""
    provenance = manifest.get("provenance")
    try:
        found, problems = read_metrics(
            provenance.get("metrics") if isinstance(provenance, dict) else None,
            "manifest.json provenance.metrics",
        )
    except MetricsError:  # no metrics (or not an object): nothing to show
        return {}
    retrieval = found.retrieval or {}
    ks = sorted({k for by_k in retrieval.values() for k in by_k})
    rows = [
        {
            "name": training_name(name),
            "cells": [by_k[k].macro if k in by_k else None for k in ks],
        }
        for name, by_k in sorted(retrieval.items())
    ]
    models = [
        {
            "name": training_name(name),
            "accuracy": scores.accuracy,
            "macro_sensitivity": scores.macro_sensitivity,
        }
        for name, scores in sorted((found.classifiers or {}).items())
    ]
    return {"ks": ks, "retrieval": rows, "classifiers": models, "problems": problems}


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
        new_washout = float(form.washout_hours.data or 0)  # required: never None here
        affected = washout_effects(record, new_washout)
        if any(item.moves for item in affected) and request.form.get("confirm_washout") != "1":
            flash(
                "Changing the wash-out moves the next task of the readers listed below. "
                "Nothing is saved until you confirm.",
                "warning",
            )
            return settings_page(record, form, pool, locked, affected, 200)
        record.name = (form.name.data or "").strip()
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
            wanted = form.cases_per_reader.data or 1  # required, 1 or more: never None here
            if wanted > pool:
                flash(
                    f"Cases per reader capped to the pool size: {pool} (you asked for {wanted}).",
                    "warning",
                )
                wanted = pool
            record.cases_per_reader = wanted
            record.sampling = Sampling(form.sampling.data)
            record.reshuffle_later_sessions = bool(form.reshuffle_later_sessions.data)
        db.session.commit()
        flash("Settings saved.", "success")
        return redirect(url_for("settings.study", study_id=record.id))
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
        if getattr(form, "reshuffle_later_sessions", None) is not None:
            form.reshuffle_later_sessions.label.text = (
                "Each later task shows the cases in a new order"
            )
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
    """The design frozen when the study first opened, with its SHA-256 (see
    app.organiser.design_freeze): what a reviewer checks the study against."""
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
            Enrolment.study_id == record.id, Enrolment.finished_at.is_(None)
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
    return redirect(url_for("settings.study", study_id=record.id))
