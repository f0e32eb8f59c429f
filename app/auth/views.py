"""The auth pages: log in and out, change a password, accept an invitation."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from app.auth import bp
from app.auth.access import (
    home_for,
    is_safe_next,
    refuse_control_characters,
    start_after_login,
)
from app.auth.accounts import create_user, end_sessions, hash_token, normalise_email
from app.auth.forms import AcceptInvitationForm, JoinStudyForm, LoginForm, PasswordChangeForm
from app.auth.throttle import email_key, failed, reserve, succeeded, verify
from app.clock import now
from app.extensions import db
from app.forms import EmptyForm
from app.models import Invitation, Role, StudyStatus, User


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
        email = normalise_email(form.email.data or "")
        key = email_key(email)
        refusal = reserve(ip, key)
        if refusal is not None:
            flash(refusal, "error")
            return render_template("auth/login.html", form=form), 429
        user = db.session.scalar(select(User).where(User.email == email))
        if verify(user, form.password.data or ""):
            assert user is not None
            succeeded(ip, key, user)
            db.session.commit()
            login_user(user)
            return redirect(next_url if is_safe_next(next_url) else start_after_login(user))
        failed(ip)
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
        # Guessing the current password from a borrowed session counts like failed logins.
        ip, key = request.remote_addr or "unknown", email_key(current_user.email)
        refusal = reserve(ip, key)
        if refusal is not None:
            flash(refusal, "error")
            return render_template("auth/password.html", form=form), 429
        if not verify(current_user, form.current.data or ""):
            failed(ip)
            form.current.errors = [*form.current.errors, "This is not your current password."]
            return render_template("auth/password.html", form=form), 400
        user = current_user._get_current_object()
        succeeded(ip, key, user)
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


def may_join_by_link(user: User) -> bool:
    """Whether an invitation may let `user` in: never a deactivated account, and a staff
    account only with its own password (a link that set it would hand out a staff session)."""
    if not user.active:
        return False
    return user.role == Role.READER or user.password_hash is not None


@bp.route("/invite/<token>", methods=["GET", "POST"])
def invitation(token: str) -> Response | tuple[str, int] | str:
    """Accept an invitation: set a password (or confirm it), then go to the study's welcome."""
    found, problem = _usable_invitation(token)
    if found is None:
        status = 404 if "not valid" in problem else 410
        return render_template("auth/invitation_invalid.html", problem=problem), status
    invitation = found
    existing = db.session.scalar(select(User).where(User.email == invitation.email))
    if existing is not None and not may_join_by_link(existing):
        problem = (
            "This invitation cannot be used: its address belongs to an account that does not "
            "join studies by a link. Ask the study organiser or an admin."
        )
        return render_template("auth/invitation_invalid.html", problem=problem), 403
    joining = existing is not None and existing.password_hash is not None
    form: JoinStudyForm | AcceptInvitationForm = (
        JoinStudyForm() if joining else AcceptInvitationForm()
    )
    context = {"form": form, "study": invitation.study, "email": invitation.email}
    if not form.validate_on_submit():
        return render_template("auth/invitation.html", joining=joining, **context)
    if refuse_control_characters(form):
        return render_template("auth/invitation.html", joining=joining, **context), 400

    if isinstance(form, JoinStudyForm):
        assert existing is not None  # joining: an account with a password
        refusal_status = _refuse_join(existing, form)
        if refusal_status is not None:
            page = render_template("auth/invitation.html", joining=joining, **context)
            return page, refusal_status
        user = existing
    else:
        user = _account_taking_password(invitation, existing, form)
    return _claim_invitation(invitation, user)


def _refuse_join(existing: User, form: JoinStudyForm) -> int | None:
    """Check the password of an account joining by an invitation as a login would (its
    attempts count against the same limits): None when it is right, else the status of the
    refusal, whose reason is flashed (429: too many attempts, 401: a wrong password)."""
    ip, key = request.remote_addr or "unknown", email_key(existing.email)
    refusal = reserve(ip, key)
    if refusal is not None:
        flash(refusal, "error")
        return 429
    if not verify(existing, form.current.data or ""):
        failed(ip)
        flash("Wrong password.", "error")
        return 401
    succeeded(ip, key, existing)
    return None


def _account_taking_password(
    invitation: Invitation, existing: User | None, form: AcceptInvitationForm
) -> User:
    """The account that the invitation's new password goes to: one made without a password
    (e.g. by the CLI), which may also get its name here, or else a new reader's."""
    password = form.password.data
    assert password is not None  # DataRequired
    if existing is not None:
        existing.set_password(password)
        if form.name.data:
            existing.name = form.name.data.strip()
        return existing
    return create_user(invitation.email, Role.READER, name=form.name.data or "", password=password)


def _claim_invitation(invitation: Invitation, user: User) -> Response | tuple[str, int]:
    """Mark the invitation used by `user` and log them in, then on to the study's welcome;
    410 when another submission of the same link claimed it first."""
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
