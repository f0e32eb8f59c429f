"""Who may see what: a reader's studies, staff-only views, safe redirects, typed text."""

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from flask import abort, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, TextAreaField

from app.extensions import db
from app.models import Enrolment, Invitation, Study, StudyMember, StudyStatus, User

# Control characters have no place in typed text, and PostgreSQL cannot even store or compare
# a NUL (psycopg raises DataError: a server error). Text areas may hold tabs and line ends.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_CHARACTERS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def reader_study_ids(user: User) -> set[int]:
    """The studies a reader belongs to: enrolled, or joined through an invitation."""
    enrolled = db.session.scalars(select(Enrolment.study_id).where(Enrolment.user_id == user.id))
    invited = db.session.scalars(
        select(Invitation.study_id).where(
            Invitation.user_id == user.id, Invitation.used_at.is_not(None)
        )
    )
    return set(enrolled) | set(invited)


def managed_study_ids(user: Any) -> set[int] | None:
    """The studies `user` runs: None for an admin (every study), else those they are a member of."""
    if user.is_admin:
        return None
    if not user.is_staff:
        return set()
    return set(
        db.session.scalars(select(StudyMember.study_id).where(StudyMember.user_id == user.id))
    )


def may_manage_study(user: Any, study_id: int) -> bool:
    """Whether `user` may see and change a study's settings, invitations and results."""
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return False
    managed = managed_study_ids(user)
    return managed is None or study_id in managed


def owns_study(user: Any, study_id: int) -> bool:
    """Whether `user` may add and remove a study's collaborators: its owner, or an admin."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_admin:
        return True
    owner = db.session.scalar(
        select(StudyMember.id).where(
            StudyMember.study_id == study_id,
            StudyMember.user_id == user.id,
            StudyMember.owner.is_(True),
        )
    )
    return owner is not None and user.is_staff


def managed_study_or_404(study_id: int) -> Study:
    """The study if the current user may manage it; 404 otherwise, as if it did not exist."""
    study = db.session.get(Study, study_id)
    if study is None or not may_manage_study(current_user, study_id):
        abort(404)
    return study


def managed_enrolment_or_404(study_id: int, enrolment_id: int) -> tuple[Study, Enrolment]:
    """A study the current user manages and one of its enrolments; 404 otherwise, and for an
    enrolment of another study (its id in this study's address changes nothing)."""
    study = managed_study_or_404(study_id)
    enrolment = db.get_or_404(Enrolment, enrolment_id)
    if enrolment.study_id != study.id:
        abort(404)
    return study, enrolment


def may_see_study(user: Any, study_id: int) -> bool:
    """Whether `user` may see `study_id`'s material: its organisers, admins, its readers."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return may_manage_study(user, study_id)
    return study_id in reader_study_ids(user)


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


def is_safe_next(target: str | None) -> TypeGuard[str]:
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
        return url_for("studies.studies")
    return url_for("survey.home")


def start_after_login(user: Any) -> str:
    """Where a fresh login lands: a reader in exactly one open study goes straight back to
    where they left off in it (one click less between patients); others start at home."""
    if user.is_staff:
        return home_for(user)
    open_studies = db.session.scalars(
        select(Study.id).where(
            Study.id.in_(reader_study_ids(user)), Study.status == StudyStatus.OPEN
        )
    ).all()
    if len(open_studies) == 1:
        return url_for("survey.resume", study_id=open_studies[0])
    return home_for(user)
