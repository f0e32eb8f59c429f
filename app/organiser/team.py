"""A study's team: its owner and the collaborators the owner adds (organisers or admins).

Organisers see and change only the studies they are members of; every member may change
settings, invite, open and close and read results, only the owner (or an admin) changes who
is on the team. Admins see every study without being members.
"""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import (
    EmailField,
    SubmitField,
)
from wtforms.validators import DataRequired, Length

from app.auth import (
    managed_study_or_404,
    normalise_email,
    owns_study,
    refuse_control_characters,
    staff_required,
)
from app.extensions import db
from app.forms import EmptyForm, email_address
from app.models import Study, StudyMember, User

bp = Blueprint("team", __name__)


class TeamMemberForm(FlaskForm):
    """Add an organiser to a study's team by e-mail address."""

    email = EmailField(
        "Organiser's e-mail", validators=[DataRequired(), Length(max=254), email_address]
    )
    submit = SubmitField("Add to the team")


def add_member(study: Study, user: User, owner: bool = False) -> StudyMember:
    """Make `user` a member of `study` (the caller commits); an existing member stays one."""
    member = db.session.scalar(
        select(StudyMember).where(StudyMember.study_id == study.id, StudyMember.user_id == user.id)
    )
    if member is None:
        member = StudyMember(study_id=study.id, user_id=user.id, owner=owner)
        db.session.add(member)
    elif owner:
        member.owner = True
    return member


def members_of(study_id: int) -> list[StudyMember]:
    """A study's members, the owner first."""
    return list(
        db.session.scalars(
            select(StudyMember)
            .join(User, User.id == StudyMember.user_id)
            .where(StudyMember.study_id == study_id)
            .order_by(StudyMember.owner.desc(), User.email)
        )
    )


@bp.route("/studies/<int:study_id>/team", methods=["GET", "POST"])
@staff_required
def members(study_id: int) -> Response | str | tuple[str, int]:
    """Who runs the study; its owner (or an admin) adds collaborators by e-mail here."""
    study = managed_study_or_404(study_id)
    may_change = owns_study(current_user, study.id)
    form = TeamMemberForm()
    if form.is_submitted():
        if not may_change:
            abort(403)
        if form.validate_on_submit() and not refuse_control_characters(form):
            email = normalise_email(form.email.data or "")
            user = db.session.scalar(select(User).where(User.email == email))
            if user is None or not user.is_staff or not user.active:
                form.email.errors = [
                    *form.email.errors,
                    "No active organiser account has this address: an admin creates it first "
                    "(flask users create --role organiser --email ADDRESS).",
                ]
            else:
                add_member(study, user)
                db.session.commit()
                flash(f"{user.email} now runs this study with you.", "success")
                return redirect(url_for("team.members", study_id=study.id))
        status = 400
    else:
        status = 200
    return render_template(
        "admin/team.html",
        study=study,
        members=members_of(study.id),
        form=form,
        may_change=may_change,
        button=EmptyForm(),
    ), status


@bp.post("/studies/<int:study_id>/team/<int:member_id>/remove")
@staff_required
def remove(study_id: int, member_id: int) -> Response:
    """Take a collaborator off the team (the owner stays: an admin may hand a study over)."""
    study = managed_study_or_404(study_id)
    if not owns_study(current_user, study.id):
        abort(403)
    member = db.session.get(StudyMember, member_id)
    if member is None or member.study_id != study.id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    if member.owner:
        flash("The owner stays on the team.", "warning")
    else:
        email = member.user.email
        db.session.delete(member)
        db.session.commit()
        flash(f"{email} no longer runs this study.", "info")
    return redirect(url_for("team.members", study_id=study.id))
