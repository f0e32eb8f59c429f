"""Accounts and invitations: new users and pseudonyms, invitation tokens, ending sessions."""

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app.clock import now
from app.extensions import db
from app.mail.addresses import pasted_entry
from app.models import Invitation, Role, Study, User


def normalise_email(email: str) -> str:
    """The form in which e-mail addresses are stored and compared (a comma or semicolon
    pasted with the address, as copied from a list, is not part of it)."""
    return pasted_entry(email).lower()


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


def end_sessions(user: User) -> None:
    """Make every session cookie of `user` worthless, copies too (the caller commits)."""
    # In SQL, so that two simultaneous bumps both count.
    user.session_version = User.session_version + 1
