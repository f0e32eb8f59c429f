"""Accounts: log in and out, change a password, accept an invitation; who may see which study."""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

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
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response
from wtforms import PasswordField, TextAreaField

from app.clock import now
from app.extensions import db
from app.forms import (
    AcceptInvitationForm,
    EmptyForm,
    JoinStudyForm,
    LoginForm,
    PasswordChangeForm,
)
from app.models import (
    Enrolment,
    Invitation,
    LoginFailure,
    Role,
    Study,
    StudyStatus,
    User,
)

bp = Blueprint("auth", __name__)

MAX_FAILURES = 5  # failed logins for one e-mail address within LOCK_TIME lock it
LOCK_TIME = timedelta(minutes=15)
LOCKED = "This e-mail address is locked for up to 15 minutes after too many failed logins."
IP_MAX_FAILURES = 20  # failed logins from one address within IP_WINDOW
IP_WINDOW = timedelta(minutes=15)

_dummy_hashes: dict[str, str] = {}

# Control characters have no place in typed text, and PostgreSQL cannot even store or compare
# a NUL (psycopg raises DataError: a server error). Text areas may hold tabs and line ends.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# ---------------------------------------------------------------- helpers used across the app


def normalise_email(email: str) -> str:
    """The form in which e-mail addresses are stored and compared."""
    return email.strip().lower()


def new_pseudonym() -> str:
    """A fresh random reader pseudonym such as "R-3F9A2C" (unique in the database)."""
    while True:
        candidate = "R-" + secrets.token_hex(3).upper()
        if db.session.scalar(select(User.id).where(User.pseudonym == candidate)) is None:
            return candidate


def create_user(email: str, role: Role, name: str = "", password: str | None = None) -> User:
    """Add a new user to the session (the caller commits)."""
    user = User(
        email=normalise_email(email),
        name=name.strip(),
        role=role,
        pseudonym=new_pseudonym(),
        active=True,
        failed_logins=0,
    )
    if password is not None:
        user.set_password(password)
    db.session.add(user)
    return user


def hash_token(token: str) -> str:
    """The stored form of an invitation token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_invitation(
    study: Study, email: str, created_by: User | None = None, days: int | None = None
) -> tuple[Invitation, str]:
    """A new single-use invitation and its token (only its hash is stored; show it once)."""
    token = secrets.token_urlsafe(32)
    lifetime = days if days is not None else current_app.config["INVITATION_DAYS"]
    invitation = Invitation(
        study=study,
        email=normalise_email(email),
        token_hash=hash_token(token),
        created_at=now(),
        expires_at=now() + timedelta(days=lifetime),
        created_by_id=created_by.id if created_by is not None else None,
    )
    db.session.add(invitation)
    return invitation, token


def reader_study_ids(user: User) -> set[int]:
    """The studies a reader belongs to: enrolled, or joined through an invitation."""
    enrolled = db.session.scalars(select(Enrolment.study_id).where(Enrolment.user_id == user.id))
    invited = db.session.scalars(
        select(Invitation.study_id).where(
            Invitation.user_id == user.id, Invitation.used_at.is_not(None)
        )
    )
    return set(enrolled) | set(invited)


def may_see_study(user: Any, study_id: int) -> bool:
    """Whether `user` may see `study_id`'s material: staff always, readers of that study."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_staff or study_id in reader_study_ids(user)


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only organisers and admins (others get 403, anonymous users the login page)."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def refuse_control_characters(form: FlaskForm) -> bool:
    """Add an error to every text field holding a control character; whether any did.

    Passwords are exempt: they are only ever hashed, never stored or compared as text.
    """
    refused = False
    for field in form:
        if not isinstance(field.data, str) or isinstance(field, PasswordField):
            continue
        pattern = (
            CONTROL_CHARACTERS_IN_TEXT if isinstance(field, TextAreaField) else CONTROL_CHARACTERS
        )
        if pattern.search(field.data):
            field.errors = [*field.errors, "This contains a control character; retype it."]
            refused = True
    return refused


def end_sessions(user: User) -> None:
    """Make every session cookie of `user` worthless, copies too (the caller commits)."""
    # In SQL, so that two simultaneous bumps both count.
    user.session_version = User.session_version + 1  # type: ignore[assignment]


def is_safe_next(target: str | None) -> bool:
    """Whether `target` is a relative path on this host (no scheme, host or tricks)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(char) < 32 for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def home_for(user: Any) -> str:
    """Where a user starts: organisers' studies list, readers' survey home."""
    if not getattr(user, "is_authenticated", False):
        return url_for("auth.login")
    if user.is_staff:
        return url_for("admin.studies")
    return url_for("survey.home")


# ---------------------------------------------------------------- throttling


def email_key(email: str) -> str:
    """How failed logins name an e-mail address: a keyed hash (a dump shows no addresses)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def _ip_blocked(ip: str) -> bool:
    """Whether this address failed too often lately (counted in the database: all workers)."""
    since = now() - IP_WINDOW
    count = db.session.scalar(
        select(func.count(LoginFailure.id)).where(LoginFailure.ip == ip, LoginFailure.at > since)
    )
    return (count or 0) >= IP_MAX_FAILURES


def _email_locked(key: str) -> bool:
    """Whether an e-mail address failed MAX_FAILURES times within LOCK_TIME.

    Counted per address string, whether an account has it or not: a lock that only real
    accounts got would tell which e-mails exist. The lock ends as its failures age out.
    """
    since = now() - LOCK_TIME
    count = db.session.scalar(
        select(func.count(LoginFailure.id)).where(
            LoginFailure.email_hash == key, LoginFailure.at > since
        )
    )
    return (count or 0) >= MAX_FAILURES


def _record_failure(ip: str, key: str | None) -> None:
    """Count a failed login against the network address and the e-mail address (if any)."""
    moment = now()
    oldest = moment - max(IP_WINDOW, LOCK_TIME)
    db.session.execute(delete(LoginFailure).where(LoginFailure.at <= oldest))
    db.session.add(LoginFailure(ip=ip, email_hash=key, at=moment))
    db.session.commit()


def _forget_failures(key: str, user: User) -> None:
    """After the right password: the e-mail's failures no longer count (the caller commits)."""
    # Only unlinked from the e-mail: they still count against the network address.
    db.session.execute(
        update(LoginFailure).where(LoginFailure.email_hash == key).values(email_hash=None)
    )
    user.failed_logins = 0
    user.locked_until = None


def _waste_time_like_a_check(password: str) -> None:
    """Hash anyway for unknown accounts, so timing does not tell which e-mails exist."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_hex(8), method=method)
    check_password_hash(_dummy_hashes[method], password)


# ---------------------------------------------------------------- views


@bp.get("/")
def index() -> Response:
    """Send each user to where they start."""
    return redirect(home_for(current_user))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """Log in with e-mail and password (throttled per account and per address)."""
    next_url = request.args.get("next")
    if current_user.is_authenticated:
        return redirect(next_url if is_safe_next(next_url) else home_for(current_user))
    form = LoginForm()
    # A malformed e-mail is a form error like any other (no account can have it: not counted).
    if form.validate_on_submit() and not refuse_control_characters(form):
        ip = request.remote_addr or "unknown"
        if _ip_blocked(ip):
            flash("Too many failed logins from your network. Try again in 15 minutes.", "error")
            return render_template("auth/login.html", form=form), 429
        email = normalise_email(form.email.data or "")
        key = email_key(email)
        if _email_locked(key):
            # Counts against the network (guessing on): not the address, so the lock ends.
            _record_failure(ip, None)
            flash(LOCKED, "error")
            return render_template("auth/login.html", form=form), 429
        user = db.session.scalar(select(User).where(User.email == email))
        password = form.password.data or ""
        if user is None:
            _waste_time_like_a_check(password)
        elif user.active and user.check_password(password):
            _forget_failures(key, user)
            db.session.commit()
            login_user(user)
            return redirect(next_url if is_safe_next(next_url) else home_for(user))
        _record_failure(ip, key)
        flash("Wrong e-mail or password.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Log out everywhere (a POST with a CSRF token, so another site cannot log users out)."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    # Logging out ends the user's sessions everywhere: a copied cookie cannot be replayed.
    end_sessions(current_user)
    db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Response | tuple[str, int] | str:
    """Change one's own password."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data or ""):
            form.current.errors.append("This is not your current password.")
            return render_template("auth/password.html", form=form), 400
        user = current_user._get_current_object()
        user.set_password(form.password.data)
        end_sessions(user)  # whoever knew the old password is logged out everywhere
        db.session.commit()
        login_user(user)  # this session goes on, under the new version
        flash("Your password has been changed.", "success")
        return redirect(home_for(current_user))
    return render_template("auth/password.html", form=form)


def _usable_invitation(token: str) -> tuple[Invitation | None, str]:
    """The invitation behind `token` if it can still be used, else None and why not."""
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.token_hash == hash_token(token))
    )
    if invitation is None:
        return None, "This invitation link is not valid. Check that you copied all of it."
    if invitation.used_at is not None:
        return None, "This invitation link has already been used. Log in with your password."
    if invitation.expires_at <= now():
        return None, "This invitation link has expired. Ask the study organiser for a new one."
    if invitation.study.status == StudyStatus.CLOSED:
        return None, "This study is closed."
    return invitation, ""


@bp.route("/invite/<token>", methods=["GET", "POST"])
def invitation(token: str) -> Response | tuple[str, int] | str:
    """Accept an invitation: set a password (or confirm it), then go to the study's welcome."""
    found, problem = _usable_invitation(token)
    if found is None:
        status = 404 if "not valid" in problem else 410
        return render_template("auth/invitation_invalid.html", problem=problem), status
    invitation = found
    existing = db.session.scalar(select(User).where(User.email == invitation.email))
    joining = existing is not None and existing.password_hash is not None
    form: JoinStudyForm | AcceptInvitationForm = (
        JoinStudyForm() if joining else AcceptInvitationForm()
    )
    context = {"form": form, "study": invitation.study, "email": invitation.email}
    if not form.validate_on_submit():
        return render_template("auth/invitation.html", joining=joining, **context)
    if refuse_control_characters(form):
        return render_template("auth/invitation.html", joining=joining, **context), 400

    if joining:
        assert existing is not None
        key = email_key(existing.email)
        if _email_locked(key):
            _record_failure(request.remote_addr or "unknown", None)
            flash(LOCKED, "error")
            return render_template("auth/invitation.html", joining=joining, **context), 429
        if not existing.check_password(form.current.data or ""):  # type: ignore[union-attr]
            _record_failure(request.remote_addr or "unknown", key)
            flash("Wrong password.", "error")
            return render_template("auth/invitation.html", joining=joining, **context), 401
        _forget_failures(key, existing)
        user = existing
    elif existing is not None:  # an account made without a password (e.g. by the CLI)
        user = existing
        user.set_password(form.password.data)  # type: ignore[union-attr]
        if form.name.data:  # type: ignore[union-attr]
            user.name = form.name.data.strip()  # type: ignore[union-attr]
    else:
        user = create_user(
            invitation.email,
            Role.READER,
            name=form.name.data or "",  # type: ignore[union-attr]
            password=form.password.data,  # type: ignore[union-attr]
        )
    try:
        db.session.flush()
        # Atomic: of two simultaneous submissions only one finds the link unused.
        claimed = db.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
            .values(used_at=now(), user_id=user.id)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise IntegrityError("invitation already used", None, Exception())
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        message = "This invitation link has already been used. Log in with your password."
        return render_template("auth/invitation_invalid.html", problem=message), 410
    logout_user()
    login_user(user)
    flash(f"Welcome to {invitation.study.name}.", "success")
    return redirect(url_for("survey.welcome", study_id=invitation.study_id))
