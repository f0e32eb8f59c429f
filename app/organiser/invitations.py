"""Inviting readers to a study: links (shown once, e-mailed if the server sends mail), resent or
revoked while unused. Creating invitations is capped per form and per hour."""

import secrets
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from app.auth import (
    create_invitation,
    hash_token,
    managed_study_or_404,
    refuse_control_characters,
    staff_required,
)
from app.clock import now
from app.extensions import db
from app.forms import EmptyForm, WholeNumberRange
from app.mail import mail_enabled
from app.mail.addresses import AddressError, deliverable_address, pasted_entries
from app.mail.messages import public_url
from app.models import Invitation, Study, StudyStatus, User
from app.organiser.contact import invitation_deliveries, send_invitation

bp = Blueprint("invitations", __name__)


class InvitationForm(FlaskForm):
    """Invite readers: e-mail addresses, one per line (each line is checked on its own)."""

    email = TextAreaField(
        "Readers' e-mail addresses, one per line",
        validators=[DataRequired(), Length(max=100_000)],
        description="Paste a list; blank lines are skipped, repeated addresses invited once. "
        "“Name <address>”, several on a line as mail programs copy them (separated by commas "
        "or semicolons) and a separator at the end of a line are fine.",
    )
    days = IntegerField(
        "Links valid for (days)", validators=[InputRequired(), WholeNumberRange(1, 90)]
    )
    send = BooleanField("E-mail each reader their link", default=True)
    submit = SubmitField("Create invitation links")

    def addresses(self) -> tuple[list[str], list[str]]:
        """The bare, normalised addresses (first occurrence kept) and one error per bad line."""
        found: dict[str, None] = {}
        errors: list[str] = []
        for number, line in enumerate((self.email.data or "").splitlines(), start=1):
            for text in pasted_entries(line):
                try:
                    found.setdefault(deliverable_address(text))
                except AddressError as problem:
                    errors.append(
                        f"Line {number}: “{text[:80]}” is not an e-mail address. {problem}"
                    )
        return list(found), errors


def invitation_state(invitation: Invitation) -> str:
    """ "used", "expired" or "pending"."""
    if invitation.used_at is not None:
        return "used"
    return "expired" if invitation.expires_at <= now() else "pending"


def invitations_page(
    record: Study, form: InvitationForm, links: list[tuple[str, str]], status: int
) -> tuple[str, int]:
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
            Invitation.created_by_id == user.id, Invitation.created_at > now() - timedelta(hours=1)
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
        return redirect(url_for("invitations.invitations", study_id=record.id))
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
    return redirect(url_for("invitations.invitations", study_id=study_id))
