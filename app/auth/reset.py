"""Self-service password reset: an e-mailed link that works once and expires.

The link carries a signed token naming the account, a fingerprint of its current password
hash and the moment it was issued; nothing is stored. Setting a password changes the hash
(new salt), so the link stops working after one use, and so does every older link; the new
hash is written only where the old one is still in place (one conditional UPDATE), so of
simultaneous uses of one link exactly one sets a password.

The request page answers the same whether or not the address has an account, and in the
same time: every address costs a counter update, a token, the rendered message and the one
statement that queues it only for an account (`queue_mail_if`). The link starts with
PUBLIC_URL, never with the request's host (app/mail/messages.py).
"""

import hashlib
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import CursorResult, select, update
from werkzeug.security import generate_password_hash
from werkzeug.wrappers import Response

from app.auth import bp
from app.auth.access import refuse_control_characters, start_after_login
from app.auth.accounts import normalise_email
from app.auth.forms import PasswordResetForm, PasswordResetRequestForm
from app.auth.throttle import (
    RESET_BY_EMAIL,
    RESET_BY_IP,
    RESET_WINDOW,
    email_key,
    forget_failures,
    hit,
)
from app.clock import now
from app.extensions import db
from app.mail import mail_enabled
from app.mail.messages import password_reset, public_url
from app.models import User

EPOCH = datetime(1970, 1, 1)  # tokens carry naive-UTC seconds since then (the app's clock)
RESET_MINUTES = 60
# At most this many requests per address and hour get an e-mail: the form cannot flood a
# mailbox (counted for every address, account or not).
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


def _fingerprint(password_hash: str | None) -> str:
    """A short digest of a password hash: it changes with every new password."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _lifetime() -> int:
    """Minutes a reset link works."""
    return int(current_app.config.get("PASSWORD_RESET_MINUTES", RESET_MINUTES))


def reset_token(user: User) -> str:
    """A token for `user` that works until the password changes or the lifetime ends."""
    return make_token(user.id, user.password_hash)


def make_token(user_id: int, password_hash: str | None) -> str:
    """A token for account `user_id` with password hash `password_hash`; with user id 0, one
    made the same way that no account accepts (the reset form makes one for every address)."""
    issued = int((now() - EPOCH).total_seconds())
    return _serializer().dumps({"u": user_id, "p": _fingerprint(password_hash), "t": issued})


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
    if user is None or not user.active or _fingerprint(user.password_hash) != fingerprint:
        return None
    return user


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Response | str | tuple[str, int]:
    """Ask for a reset link by e-mail; the answer is the same for every address."""
    form = PasswordResetRequestForm()
    if not mail_enabled():
        return render_template("auth/forgot.html", form=None)
    if form.validate_on_submit() and not refuse_control_characters(form):
        ip = request.remote_addr or "unknown"
        if hit(RESET_BY_IP + ip, RESET_WINDOW) > RESET_REQUESTS_PER_IP_HOUR:
            flash(TOO_MANY_REQUESTS, "error")
            return render_template("auth/forgot.html", form=form), 429
        email = normalise_email(form.email.data or "")
        # The same work for every address, account or not (see the module docstring): the
        # account's columns, not an ORM object; the counter's write makes every commit alike.
        account = db.session.execute(
            select(User.id, User.password_hash, User.active).where(User.email == email)
        ).first()
        asked = hit(RESET_BY_EMAIL + email_key(email), RESET_WINDOW, commit=False)
        send = account is not None and account.active and asked <= RESETS_PER_HOUR
        if send and account is not None:
            user_id, password_hash = account.id, account.password_hash
        else:
            user_id, password_hash = 0, None
        link = public_url("auth.reset_password", token=make_token(user_id, password_hash))
        password_reset(email, link, _lifetime(), send=send)
        db.session.commit()
        flash(SENT.format(minutes=_lifetime()), "info")
        return redirect(url_for("auth.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/forgot.html", form=form), status


def _expired() -> tuple[str, int]:
    """The answer to a link that no longer works: why, and the form to ask for a new one."""
    flash(EXPIRED, "warning")
    form = PasswordResetRequestForm() if mail_enabled() else None
    return render_template("auth/forgot.html", form=form), 410


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | str | tuple[str, int]:
    """Choose a new password from an e-mailed link; every session of the account ends."""
    user = user_of_token(token)
    if user is None:
        return _expired()
    form = PasswordResetForm()
    if form.validate_on_submit():
        if not set_password_once(user, form.password.data or ""):
            db.session.rollback()
            return _expired()  # another use of this link (or a new password) came first
        forget_failures(email_key(user.email), user)
        db.session.commit()  # expires `user`: login_user reads the new session version
        login_user(user)
        flash("Your new password is set. Your account was logged out everywhere else.", "success")
        return redirect(start_after_login(user))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/reset.html", form=form, email=user.email), status


def set_password_once(user: User, password: str) -> bool:
    """Set `user`'s password and end their sessions, only if the password hash is still the
    one the link was checked against (`user` as loaded then: nothing commits in between);
    whether it was (the caller commits).

    One conditional UPDATE: of simultaneous uses of one link, the database lets exactly one
    change the row (SQLite serialises writers; PostgreSQL makes the others wait for the row
    and then re-check the condition against the new hash, which no longer matches).
    """
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    unchanged = (
        User.password_hash.is_(None)
        if user.password_hash is None
        else User.password_hash == user.password_hash
    )
    # An UPDATE's result is a CursorResult (Session.execute is typed as a plain Result).
    claimed = cast(
        CursorResult[Any],
        db.session.execute(
            update(User)
            .where(User.id == user.id, unchanged)
            .values(
                password_hash=generate_password_hash(password, method=method),
                # Whoever was logged in with the old password is logged out (as end_sessions).
                session_version=User.session_version + 1,
            )
            .execution_options(synchronize_session=False)
        ),
    )
    return claimed.rowcount == 1
