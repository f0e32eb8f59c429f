"""Reaching readers: correcting an address, each invitation's and reminder's delivery, "send now".

An organiser corrects a reader's address (a typo, a changed hospital address) only if they run
every study that reader is in: the address is the reader's login everywhere, and another
study's organisers must not see it change under them. Admins may always. Every change is
recorded (AddressChange: old, new, who, when). An unused invitation's address is corrected on
the study's invitations page; it gets a new link, as the old one went to the wrong place.

Each invitation's and reminder's e-mail keeps the invitation or enrolment it is about
(OutboxMessage.invitation_id / enrolment_id), so the organisers' pages show whether it was
queued, sent or refused, and with which error; "send now" sends one at once.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.auth import (
    hash_token,
    managed_enrolment_or_404,
    managed_study_ids,
    managed_study_or_404,
    reader_study_ids,
    refuse_control_characters,
    staff_required,
)
from app.clock import now
from app.extensions import db
from app.forms import EmptyForm
from app.mail import MailOff, mail_enabled
from app.mail.addresses import MAX_ADDRESS, AddressError, deliverable_address, pasted_entry
from app.mail.messages import compose, public_url
from app.mail.outbox import NOT_SENT, REFRESHERS, About, send_now
from app.models import (
    AddressChange,
    Enrolment,
    Invitation,
    MailStatus,
    OutboxMessage,
    Role,
    User,
)

bp = Blueprint("contact", __name__)


class AddressForm(FlaskForm):
    """The corrected address (pasted as mail programs copy it: "Name <address>" is fine)."""

    email = StringField(
        "The correct e-mail address",
        validators=[DataRequired(), Length(max=2 * MAX_ADDRESS)],
        description="It becomes the reader's login; the old address stops working.",
    )
    submit = SubmitField("Correct the address")


# ---------------------------------------------------------------- addresses


def new_address(text: str) -> str:
    """The bare address in what was typed or pasted; AddressError with why not."""
    entry = pasted_entry(text)
    if not entry:
        raise AddressError("Enter an e-mail address.")
    return deliverable_address(entry)


def may_correct(by: Any, reader: User) -> bool:
    """Whether `by` may change `reader`'s address: an admin, or an organiser who runs every
    study the reader is in (a reader's address only; staff addresses are an admin's)."""
    if by.is_admin:
        return True
    if reader.role != Role.READER or not by.is_staff:
        return False
    managed = managed_study_ids(by)
    return managed is None or reader_study_ids(reader) <= managed


def change_address(reader: User, text: str, by: User | None) -> AddressChange:
    """Give `reader` the address in `text` and record the change (the caller commits).

    AddressError when it is not an address, is theirs already, or another account has it.
    Their used invitations follow (they name the account by address); reminders and
    invitation mails still queued go to the new address (written afresh when sent).
    """
    address = new_address(text)
    if address == reader.email:
        raise AddressError("This is the reader's address already.")
    if db.session.scalar(select(User.id).where(User.email == address, User.id != reader.id)):
        raise AddressError("Another account has this address: ask an admin.")
    old = reader.email
    reader.email = address
    for invitation in db.session.scalars(select(Invitation).where(Invitation.user_id == reader.id)):
        invitation.email = address
    change = AddressChange(
        user_id=reader.id,
        old_email=old,
        new_email=address,
        changed_by_id=by.id if by is not None else None,
        changed_at=now(),
    )
    db.session.add(change)
    return change


def correct_invitation(invitation: Invitation, text: str, by: User) -> str:
    """Give an unused invitation the address in `text`, record it, and make a new link (the
    old one went to the wrong place); the new token (the caller commits and sends it)."""
    address = new_address(text)
    if address == invitation.email:
        raise AddressError("This is the invitation's address already.")
    db.session.add(
        AddressChange(
            invitation_id=invitation.id,
            old_email=invitation.email,
            new_email=address,
            changed_by_id=by.id,
            changed_at=now(),
        )
    )
    invitation.email = address
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    invitation.expires_at = now() + timedelta(days=current_app.config["INVITATION_DAYS"])
    return token


def changes_of(reader: User) -> list[AddressChange]:
    """The recorded changes of a reader's address, newest first."""
    return list(
        db.session.scalars(
            select(AddressChange)
            .where(AddressChange.user_id == reader.id)
            .order_by(AddressChange.changed_at.desc(), AddressChange.id.desc())
        )
    )


# ---------------------------------------------------------------- invitation mail


def invitation_key(invitation: Invitation) -> str:
    """The dedupe key of an invitation's mail: one per link (a new link is a new message)."""
    return f"invitation:{invitation.id}:{invitation.token_hash[:16]}"


def send_invitation(invitation: Invitation, link: str) -> OutboxMessage:
    """Queue the invitation e-mail with its link (the caller commits)."""
    db.session.flush()  # the invitation's id, for the key and the delivery status
    return compose(
        invitation.email,
        "invitation",
        "invitation",
        dedupe_key=invitation_key(invitation),
        about=About(invitation_id=invitation.id),
        study=invitation.study,
        link=link,
        expires_at=invitation.expires_at,
    )


def refresh_invitation(message: OutboxMessage) -> str | None:
    """Just before an invitation's mail goes out: to the invitation's address as it is now
    (corrected since?), and not at all once the link was used, replaced or revoked."""
    if message.invitation_id is None:
        if message.dedupe_key and message.dedupe_key.startswith("invitation:"):
            return NOT_SENT + "the invitation was revoked."
        return None  # queued before invitations were tied to their mail: send as queued
    invitation = db.session.get(Invitation, message.invitation_id)
    if invitation is None:
        return NOT_SENT + "the invitation was revoked."
    if invitation.used_at is not None:
        return NOT_SENT + "the invitation was used already."
    if message.dedupe_key != invitation_key(invitation):
        return NOT_SENT + "a newer link replaced this one."
    if invitation.expires_at <= now():
        return NOT_SENT + "the link has expired."
    if message.recipient != invitation.email:
        message.recipient = invitation.email
        db.session.commit()
    return None


REFRESHERS["invitation"] = refresh_invitation


# ---------------------------------------------------------------- delivery status


@dataclass(frozen=True)
class Delivery:
    """Where the latest e-mail about an invitation or a reader is."""

    message_id: int
    state: str  # "queued", "retrying", "sending", "sent", "failed", "not sent"
    when: datetime
    error: str | None  # the server's answer, or why it was not sent

    @property
    def can_send_now(self) -> bool:
        """Whether "send now" makes sense: waiting, or failed for a reason a retry may cure."""
        return self.state in ("queued", "retrying", "failed")


def delivery_of(message: OutboxMessage) -> Delivery:
    """A message's delivery in the organisers' words."""
    error = message.last_error
    if message.status == MailStatus.SENT:
        return Delivery(message.id, "sent", message.sent_at or message.created_at, None)
    if message.status == MailStatus.SENDING:
        return Delivery(message.id, "sending", message.claimed_at or message.created_at, None)
    if message.status == MailStatus.FAILED:
        if error and error.startswith(NOT_SENT):
            return Delivery(message.id, "not sent", message.created_at, error[len(NOT_SENT) :])
        return Delivery(message.id, "failed", message.created_at, error)
    if message.attempts:
        return Delivery(message.id, "retrying", message.next_attempt_at, error)
    return Delivery(message.id, "queued", message.created_at, None)


def latest_deliveries(column: Any, ids: list[int]) -> dict[int, Delivery]:
    """The latest message's delivery for each of `ids` of `column` (invitation or enrolment)."""
    if not ids:
        return {}
    newest = (
        select(func.max(OutboxMessage.id)).where(column.in_(ids)).group_by(column).scalar_subquery()
    )
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(newest)))
    return {getattr(message, column.key): delivery_of(message) for message in messages}


def invitation_deliveries(invitation_ids: list[int]) -> dict[int, Delivery]:
    """Each invitation's latest e-mail."""
    return latest_deliveries(OutboxMessage.invitation_id, invitation_ids)


def reminder_deliveries(enrolment_ids: list[int]) -> dict[int, Delivery]:
    """Each reader's latest reminder."""
    return latest_deliveries(OutboxMessage.enrolment_id, enrolment_ids)


def message_study(message: OutboxMessage) -> int | None:
    """The study a message is about (through its invitation or enrolment)."""
    if message.invitation_id is not None:
        return db.session.scalar(
            select(Invitation.study_id).where(Invitation.id == message.invitation_id)
        )
    if message.enrolment_id is not None:
        return db.session.scalar(
            select(Enrolment.study_id).where(Enrolment.id == message.enrolment_id)
        )
    return None


# ---------------------------------------------------------------- pages


@bp.route("/studies/<int:study_id>/readers/<int:enrolment_id>/address", methods=["GET", "POST"])
@staff_required
def reader_address(study_id: int, enrolment_id: int) -> Response | str | tuple[str, int]:
    """Correct a reader's e-mail address (their login): organisers who run every study the
    reader is in, and admins."""
    study, enrolment = managed_enrolment_or_404(study_id, enrolment_id)
    reader = enrolment.user
    allowed = may_correct(current_user, reader)
    form = AddressForm()
    status = 200
    if form.is_submitted():
        if not allowed:
            abort(403)
        if form.validate() and not refuse_control_characters(form):
            try:
                change = change_address(reader, form.email.data or "", current_user)
            except AddressError as problem:
                form.email.errors = [str(problem)]
            else:
                db.session.commit()
                flash(
                    f"{reader.pseudonym}'s address is now {change.new_email} (it was "
                    f"{change.old_email}); they log in with the new one.",
                    "success",
                )
                return redirect(url_for("readers.readers", study_id=study.id), 303)
        status = 400
    return render_template(
        "admin/address.html",
        study=study,
        form=form,
        allowed=allowed,
        whose=f"reader {reader.pseudonym}",
        current=reader.email,
        changes=changes_of(reader),
        back=url_for("readers.readers", study_id=study.id),
    ), status


@bp.route(
    "/studies/<int:study_id>/invitations/<int:invitation_id>/address", methods=["GET", "POST"]
)
@staff_required
def invitation_address(study_id: int, invitation_id: int) -> Response | str | tuple[str, int]:
    """Correct the address of an unused invitation: it gets a new link, e-mailed if possible."""
    study = managed_study_or_404(study_id)
    invitation = db.get_or_404(Invitation, invitation_id)
    if invitation.study_id != study.id:
        abort(404)
    back = url_for("invitations.invitations", study_id=study.id)
    if invitation.used_at is not None:
        flash("This invitation was used: correct the reader's address under Readers.", "info")
        return redirect(back, 303)
    form = AddressForm()
    form.email.description = "The invitation gets a new link for this address; the old link stops."
    link, status = None, 200
    if form.is_submitted():
        status = 400
        if form.validate() and not refuse_control_characters(form):
            try:
                token = correct_invitation(invitation, form.email.data or "", current_user)
            except AddressError as problem:
                form.email.errors = [str(problem)]
            else:
                link = public_url("auth.invitation", token=token)
                if mail_enabled():
                    send_invitation(invitation, link)
                db.session.commit()
                sent = "and e-mailed it" if mail_enabled() else "to pass on yourself"
                flash(f"The invitation goes to {invitation.email}, a new link {sent}.", "success")
                status = 200
    return render_template(
        "admin/address.html",
        study=study,
        form=form,
        allowed=True,
        whose="an invitation",
        current=invitation.email,
        changes=[],
        back=back,
        link=link,  # shown once, in place of the form
    ), status


@bp.post("/studies/<int:study_id>/mail/<int:message_id>/send")
@staff_required
def send_message_now(study_id: int, message_id: int) -> Response:
    """Send one invitation's or reminder's e-mail now (queued, waiting to retry, or failed)."""
    study = managed_study_or_404(study_id)
    message = db.get_or_404(OutboxMessage, message_id)
    if message_study(message) != study.id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    back = (
        url_for("invitations.invitations", study_id=study.id)
        if message.invitation_id is not None
        else url_for("readers.readers", study_id=study.id)
    )
    if not delivery_of(message).can_send_now:
        flash("That e-mail is not waiting to be sent.", "info")
        return redirect(back, 303)
    try:
        report = send_now(message)
    except MailOff:
        flash("This server sends no e-mail (no MAIL_SERVER).", "warning")
        return redirect(back, 303)
    db.session.refresh(message)
    delivery = delivery_of(message)
    if report.sent:
        flash(f"Sent to {message.recipient}.", "success")
    elif delivery.state == "not sent":
        flash(f"Not sent: {delivery.error}", "info")
    else:
        flash(
            f"Not sent: {delivery.error or 'the mail server did not take it'}"
            + (" It stays queued and is tried again." if delivery.state == "retrying" else ""),
            "error",
        )
    return redirect(back, 303)
