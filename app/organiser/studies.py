"""The organiser's list of studies, and a new study on the cases of one they run."""

from flask import Blueprint, render_template
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, SubmitField

# WTForms 3.3 added SelectChoice; typeshed's types-WTForms (3.2.1) does not have it yet.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, Length

from app.auth import (
    managed_study_ids,
    managed_study_or_404,
    refuse_control_characters,
    staff_required,
)
from app.extensions import db
from app.models import Case, Enrolment, Study
from app.organiser.design import copied

bp = Blueprint("studies", __name__)


class NewStudyForm(FlaskForm):
    """A new study on the cases of one the organiser runs: which, and the new one's name."""

    source = SelectField("The cases of", choices=[], coerce=int, validate_choice=True)
    name = StringField("Name of the new study", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Create the new draft study")


def pool_size(study_id: int) -> int:
    """How many cases a study's pool has."""
    return db.session.scalar(select(func.count(Case.id)).where(Case.study_id == study_id)) or 0


def enrolled_count(study_id: int) -> int:
    """How many readers enrolled in a study."""
    query = select(func.count(Enrolment.id)).where(Enrolment.study_id == study_id)
    return db.session.scalar(query) or 0


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
