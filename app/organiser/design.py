"""A study's design page: the design, its conditions, rotation and faulty-aid probes.

Everything here decides what readers get, so it locks once the first reader has enrolled.
Two presets set it in one click: the thesis's sequential replay (unaided, then SE-CBIR) and a
counterbalanced three-arm crossover (unaided, CBIR, SE-CBIR).
"""

import re
from collections.abc import Sequence
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
)

# WTForms 3.3 added SelectChoice; typeshed's types-WTForms (3.2.1) does not have it yet.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.auth import managed_study_or_404, staff_required
from app.bundle import copy_study
from app.extensions import db
from app.forms import EmptyForm, WholeNumberRange, finite_number
from app.models import Enrolment, Study
from app.organiser.team import add_member
from app.survey import conditions
from app.survey.conditions import Available, Condition
from app.survey.designs import Design
from app.survey.enrolment import conditions_of
from app.survey.presentation import case_count
from studybundle import read
from studybundle.vocabulary import (
    CLASSIFIERS,
    CONDITION_AIDS,
    NEIGHBOUR_AIDS,
    Aid,
    Classifier,
    Preset,
)

bp = Blueprint("design", __name__)

# What the information text must say before a study with probes may open.
PROBES_DISCLOSED = re.compile(r"mislead|deliberately\s+(wrong|incorrect|false)", re.IGNORECASE)
PROBE_SENTENCE = (
    "Some of the AI's help shown in this study is deliberately misleading, to measure how much"
    " readers rely on it; you will be told at the end."
)


# The design form's name for an unaided reading with the saliency overlay as its only aid.
SALIENCY_ONLY = "saliency_only"
MAX_PRACTICE_CASES = 20


class ConditionForm(Form):
    """One condition of a study's design (a row of the design form; no CSRF of its own)."""

    aid = SelectField(
        "Aid",
        choices=[
            SelectChoice("", "(not used)"),
            SelectChoice(Aid.UNAIDED.value, Aid.UNAIDED.label),
            SelectChoice(SALIENCY_ONLY, f"{Aid.SALIENCY.label} only"),
            *(SelectChoice(a, Aid(a).label) for a in CONDITION_AIDS if a != Aid.UNAIDED),
        ],
        default="",
    )
    k = IntegerField(
        "Similar images shown", default=6, validators=[Optional(), WholeNumberRange(1, 50)]
    )
    labelled = BooleanField("Similar images with their classes", default=True)
    classifier = SelectField(
        "Probabilities of",
        choices=[SelectChoice(model.value, f"the {model.label}") for model in Classifier],
        default=Classifier.RGB_SALIENCY.value,
    )
    saliency = BooleanField("Saliency map of the AI as a toggle on the case", default=False)
    context = BooleanField(
        "The patient's age, sex and body site beside the case",
        default=False,
        description="From the dataset's metadata, where the bundle carries it.",
    )


class CopyStudyForm(FlaskForm):
    """A second study on the same cases: the copy's name."""

    name = StringField("Name of the new study", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Copy into a new draft study")


class DesignForm(FlaskForm):
    """A study's design: how conditions are laid out, the conditions, probes."""

    design = SelectField(
        "Design",
        choices=[SelectChoice(design.value, design.choice) for design in Design],
    )
    conditions = FieldList(FormField(ConditionForm), min_entries=4, max_entries=4)
    rotate_later_sessions = BooleanField("Later tasks show the case turned by 180 degrees")
    probe_share = DecimalField(
        "Share of aided readings with a deliberately misleading aid",
        places=2,
        validators=[InputRequired(), finite_number, NumberRange(min=0, max=0.5)],
        description="0 for none; 0.1 shows a misleading aid in one aided reading of ten.",
    )
    practice = BooleanField("Readers practise on a few cases before Task 1", default=False)
    practice_cases = IntegerField(
        "Practice cases",
        default=3,
        validators=[Optional()],
        description=(
            "Cases outside each reader's own draw, on the same page as the study's cases;"
            " never analysed or exported, and no diagnosis is shown afterwards."
        ),
    )
    feedback = BooleanField(
        "At the end, show each reader their own score per condition and which of their cases"
        " were misleading-aid probes",
        default=False,
    )
    submit = SubmitField("Save the design")

    def validate_practice_cases(self, field: IntegerField) -> None:
        """With practice ticked, 1 to MAX_PRACTICE_CASES cases (unticked: not looked at)."""
        if self.practice.data:
            WholeNumberRange(
                1, MAX_PRACTICE_CASES, f"Give 1 to {MAX_PRACTICE_CASES} practice cases."
            )(self, field)


def describe_design(study: Study) -> list[str]:
    """What readers get, a line per task, in organisers' words (the Settings page)."""
    design = Design(study.design)
    listed = conditions_of(study)
    labels = [condition.label for condition in listed]
    if design == Design.SEQUENTIAL:
        return [f"Task {n}: {label}" for n, label in enumerate(labels, start=1)]
    if design == Design.CROSSOVER:
        return [
            f"{len(labels)} tasks, one condition each, in an order balanced over readers: "
            + "; ".join(labels)
        ]
    if design == Design.PER_CASE:
        return ["One task, the condition drawn case by case: " + "; ".join(labels)]
    return ["One task: a first answer without help, then revised with " + "; ".join(labels)]


def available_aids(study: Study) -> Available:
    """What the study's bundle carries: each neighbour aid's list length, the classifiers
    with probabilities, and whether the saliency overlay is there (studybundle.read)."""
    manifest = study.manifest
    aids = read.aids(manifest)
    most = read.max_neighbours(manifest)
    neighbours: dict[str, int] = {aid: most for aid in NEIGHBOUR_AIDS if aid in aids and most}
    classifiers = CLASSIFIERS if Aid.PROBABILITIES in aids else ()
    return Available(
        neighbours=neighbours,
        classifiers=classifiers,
        saliency=Aid.SALIENCY in aids,
        context="context" in (manifest.get("extensions") or []),
    )


def offered_words(available: Available) -> str:
    """What the bundle can show, in organisers' words (the Design page)."""
    parts = [f"{Aid(aid).label} (up to {k})" for aid, k in available.neighbours.items()] or [
        "no similar images"
    ]
    if available.classifiers:
        names = " and ".join(Classifier(c).label for c in available.classifiers)
        parts.append(f"class probabilities of the {names}")
    if available.saliency:
        parts.append("saliency maps")
    if available.context:
        parts.append("each patient's age, sex and body site")
    return "; ".join(parts)


def design_problems(design: Design, listed: Sequence[Condition], available: Available) -> list[str]:
    """Every reason the design cannot run with these conditions on this study's bundle."""
    problems = conditions.check(listed, available)
    if design in (Design.CROSSOVER, Design.PER_CASE) and len(listed) < 2:
        problems.append(f"{design.label} needs at least two conditions.")
    if design == Design.INITIAL_REVISED and any(not c.aided for c in listed):
        problems.append(
            "Initial then revised: the first answer is always unaided, so list only aids."
        )
    return problems


def probe_problems(design: Design, listed: Sequence[Condition], share: float) -> list[str]:
    """Why probes cannot run in this design (none when `share` is 0)."""
    if share > 0 and not any(c.can_mislead for c in listed):
        return ["Probes need a condition that shows similar images or probabilities."]
    return []


def practice_problems(study: Study, practice: int) -> list[str]:
    """Why the study cannot give `practice` practice cases: they come from the pool's cases
    outside each reader's own draw, so the pool must hold that many more."""
    pool = case_count(study)
    spare = pool - min(study.cases_per_reader, pool)
    if practice <= spare:
        return []
    return [
        f"Practice cases come from outside each reader's own {study.cases_per_reader} cases:"
        f" the pool of {pool} has {spare} to spare, so at most {spare} practice cases"
        " (or fewer cases per reader, under Settings)."
    ]


def probes_disclosed(study: Study) -> bool:
    """Whether the study may open: no probes, or the information text announces them."""
    return study.probe_share == 0 or bool(PROBES_DISCLOSED.search(study.information or ""))


def enrolled(study: Study) -> int:
    """How many readers have enrolled."""
    return (
        db.session.scalar(select(func.count(Enrolment.id)).where(Enrolment.study_id == study.id))
        or 0
    )


def fill(form: DesignForm, study: Study) -> None:
    """Show the study's design in the form."""
    form.design.data = study.design
    form.rotate_later_sessions.data = study.rotate_later_sessions
    form.probe_share.data = Decimal(str(study.probe_share))
    form.practice.data = study.practice_cases > 0
    form.practice_cases.data = study.practice_cases or 3
    form.feedback.data = study.feedback
    for row, condition in zip(form.conditions, conditions_of(study), strict=False):
        saliency_only = condition.aid == conditions.UNAIDED and condition.saliency
        row.aid.data = SALIENCY_ONLY if saliency_only else condition.aid
        row.k.data = condition.k or 6
        row.labelled.data = condition.labelled
        row.classifier.data = condition.classifier or "rgb_saliency"
        row.saliency.data = condition.saliency
        row.context.data = condition.context


def listed_conditions(form: DesignForm) -> tuple[list[Condition], list[str]]:
    """The conditions of the form's used rows, and the problems of its rows."""
    out, problems = [], []
    for index, row in enumerate(form.conditions, start=1):
        if not row.aid.data:
            continue
        saliency_only = row.aid.data == SALIENCY_ONLY
        item = {
            "aid": conditions.UNAIDED if saliency_only else row.aid.data,
            "k": row.k.data if row.k.data is not None else 6,
            "labelled": bool(row.labelled.data),
            "classifier": row.classifier.data,
            # "No aid" has no options: a tick left from another aid does not make it aided.
            "saliency": saliency_only
            or (row.aid.data != conditions.UNAIDED and bool(row.saliency.data)),
            "context": bool(row.context.data),
        }
        try:
            out.append(conditions.parse(item))
        except conditions.ConditionError as error:
            problems.append(f"Condition {index}: {error}")
    return out, problems


def apply_preset(study: Study, name: str, available: Available) -> None:
    """Set the study's design to a preset (k: six, or what the bundle has if fewer)."""
    # The bundle's own k for Task 2 (format 2's `neighbours`; six in format 1).
    wanted = study.neighbours_shown or conditions.DEFAULT_K
    k = min([wanted, *available.neighbours.values()]) or conditions.DEFAULT_K
    if name == Preset.THESIS:
        study.design, listed = Design.SEQUENTIAL.value, conditions.thesis(k)
    else:
        study.design, listed = Design.CROSSOVER.value, conditions.three_arm(k)
    study.conditions = [c.to_json() for c in listed]
    study.rotate_later_sessions = True
    study.probe_share = 0.0


@bp.route("/studies/<int:study_id>/design", methods=["GET", "POST"])
@staff_required
def edit(study_id: int) -> Response | str | tuple[str, int]:
    """The study's design (locked once a reader has enrolled)."""
    study = managed_study_or_404(study_id)
    available = available_aids(study)
    locked = enrolled(study) > 0
    form = DesignForm()
    problems: list[str] = []
    if form.is_submitted() and locked:
        flash("A reader has enrolled: the design can no longer change.", "error")
        return redirect(url_for("design.edit", study_id=study.id), 303)
    if form.validate_on_submit():
        design = Design(form.design.data)
        listed, problems = listed_conditions(form)
        share = float(form.probe_share.data or 0)  # required: never None here
        problems += design_problems(design, listed, available)
        problems += probe_problems(design, listed, share)
        practice = (form.practice_cases.data or 3) if form.practice.data else 0
        problems += practice_problems(study, practice)
        if not problems:
            study.design = design.value
            study.conditions = [c.to_json() for c in listed]
            study.rotate_later_sessions = bool(form.rotate_later_sessions.data)
            study.probe_share = share
            study.practice_cases = practice
            study.feedback = bool(form.feedback.data)
            db.session.commit()
            flash("Design saved.", "success")
            return redirect(url_for("design.edit", study_id=study.id), 303)
    elif not form.is_submitted():
        fill(form, study)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "admin/design.html",
        study=study,
        form=form,
        problems=problems,
        locked=locked,
        listed=conditions_of(study),
        design_name=Design(study.design).label,
        available=available,
        offered=offered_words(available),
        presets=Preset,
        button=EmptyForm(),
        probe_sentence=PROBE_SENTENCE,
        disclosed=probes_disclosed(study),
        copy_form=CopyStudyForm(formdata=None, name=f"{study.name} (second design)"[:200]),
    ), status


@bp.post(f"/studies/<int:study_id>/design/<any({', '.join(Preset)}):preset>")
@staff_required
def preset(study_id: int, preset: str) -> Response:
    """Set the design to a preset in one click (before any reader has enrolled)."""
    study = managed_study_or_404(study_id)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if enrolled(study) > 0:
        flash("A reader has enrolled: the design can no longer change.", "error")
        return redirect(url_for("design.edit", study_id=study.id), 303)
    available = available_aids(study)
    apply_preset(study, preset, available)
    problems = design_problems(Design(study.design), conditions_of(study), available)
    if problems:
        db.session.rollback()
        for problem in problems:
            flash(f"This bundle cannot run {Preset(preset).label}: {problem}", "error")
        return redirect(url_for("design.edit", study_id=study.id), 303)
    db.session.commit()
    flash(f"The study now uses {Preset(preset).label}.", "success")
    return redirect(url_for("design.edit", study_id=study.id), 303)


@bp.post("/studies/<int:study_id>/copy")
@staff_required
def copy(study_id: int) -> Response:
    """A new draft study on the same cases, with this study's settings and design, no readers."""
    study = managed_study_or_404(study_id)
    form = CopyStudyForm()
    if not form.validate_on_submit():
        flash("Give the new study a name (at most 200 characters).", "error")
        return redirect(url_for("design.edit", study_id=study.id), 303)
    return copied(study, form.name.data or "")


def copied(study: Study, name: str) -> Response:
    """Copy `study` into a new draft named `name`, owned by the current user; to its design."""
    created = copy_study(study, name, current_user)
    db.session.flush()
    add_member(created, current_user, owner=True)
    db.session.commit()
    flash(
        f"“{created.name}” is a new draft study on the same {len(created.cases)} cases: choose"
        " its design, then invite its readers.",
        "success",
    )
    return redirect(url_for("design.edit", study_id=created.id), 303)
