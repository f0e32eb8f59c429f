"""Self-service password reset: an e-mailed link that works once and expires.

The link carries a signed token naming the account, a fingerprint of its current password
hash and the moment it was issued; nothing is stored. Setting a password changes the hash
(new salt), so the link stops working after one use, and so does every older link. The
request page answers the same whether or not the address has an account. The link starts
with PUBLIC_URL, never with the request's host (app/mail/messages.py).
"""

import hashlib
from datetime import datetime, timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from app.auth import bp
from app.auth.access import refuse_control_characters, start_after_login
from app.auth.accounts import end_sessions, normalise_email
from app.auth.throttle import email_key, forget_failures, hit
from app.clock import now
from app.extensions import db
from app.forms import PasswordResetForm, PasswordResetRequestForm
from app.mail import mail_enabled
from app.mail.messages import password_reset, public_url
from app.models import OutboxMessage, User

EPOCH = datetime(1970, 1, 1)  # tokens carry naive-UTC seconds since then (the app's clock)
RESET_MINUTES = 60
# At most this many reset e-mails per address and hour: the form cannot flood a mailbox.
RESETS_PER_HOUR = 3
# At most this many requests of the form per network address and hour: one machine cannot mail
# every address it guesses, nor probe the form in a loop. Generous enough for a hospital's
# readers behind one proxy address (a reset is rare).
RESET_REQUESTS_PER_IP_HOUR = 20
TOO_MANY_REQUESTS = (
    "Too many password-reset requests from your network. Please try again in an hour."
)
SENT = (
    "If an account has this address, a link to set a new password is on its way to it. "
    "It works once, for {minutes} minutes."
)
EXPIRED = "This link has expired or was already used. Ask for a new one below."


def _serializer() -> URLSafeSerializer:
    """Signs reset tokens with the app's secret (its own salt: no other token fits)."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _fingerprint(user: User) -> str:
    """A short digest of the current password hash: it changes with every new password."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def _lifetime() -> int:
    """Minutes a reset link works."""
    return int(current_app.config.get("PASSWORD_RESET_MINUTES", RESET_MINUTES))


def reset_token(user: User) -> str:
    """A token for `user` that works until the password changes or the lifetime ends."""
    issued = int((now() - EPOCH).total_seconds())
    return _serializer().dumps({"u": user.id, "p": _fingerprint(user), "t": issued})


def user_of_token(token: str) -> User | None:
    """The account a token still works for, or None (forged, expired, used, inactive)."""
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    user_id, fingerprint, issued = payload.get("u"), payload.get("p"), payload.get("t")
    if not (isinstance(user_id, int) and isinstance(issued, int) and isinstance(fingerprint, str)):
        return None
    age = now() - (EPOCH + timedelta(seconds=issued))
    if not timedelta(0) <= age <= timedelta(minutes=_lifetime()):
        return None
    user = db.session.get(User, user_id) if 0 < user_id < 2**31 else None
    if user is None or not user.active or _fingerprint(user) != fingerprint:
        return None
    return user


def _recent_resets(email: str) -> int:
    """How many reset e-mails were queued for `email` in the last hour."""
    since = now() - timedelta(hours=1)
    return (
        db.session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.kind == "reset",
                OutboxMessage.recipient == email,
                OutboxMessage.created_at > since,
            )
        )
        or 0
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Response | str | tuple[str, int]:
    """Ask for a reset link by e-mail; the answer is the same for every address."""
    form = PasswordResetRequestForm()
    if not mail_enabled():
        return render_template("auth/forgot.html", form=None)
    if form.validate_on_submit() and not refuse_control_characters(form):
        ip = request.remote_addr or "unknown"
        if hit(f"f:{ip}", timedelta(hours=1)) > RESET_REQUESTS_PER_IP_HOUR:
            flash(TOO_MANY_REQUESTS, "error")
            return render_template("auth/forgot.html", form=form), 429
        email = normalise_email(form.email.data or "")
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None and user.active and _recent_resets(email) < RESETS_PER_HOUR:
            link = public_url("auth.reset_password", token=reset_token(user))
            password_reset(user.email, link, _lifetime())
            db.session.commit()
        flash(SENT.format(minutes=_lifetime()), "info")
        return redirect(url_for("auth.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | str | tuple[str, int]:
    """Choose a new password from an e-mailed link; every session of the account ends."""
    user = user_of_token(token)
    if user is None:
        flash(EXPIRED, "warning")
        form = PasswordResetRequestForm() if mail_enabled() else None
        return render_template("auth/forgot.html", form=form), 410
    form = PasswordResetForm()
    if form.validate_on_submit():
        user.set_password(form.password.data)
        end_sessions(user)  # whoever was logged in with the old password is logged out
        forget_failures(email_key(user.email), user)
        db.session.commit()
        login_user(user)
        flash("Your new password is set. Your account was logged out everywhere else.", "success")
        return redirect(start_after_login(user))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/reset.html", form=form, email=user.email), status
