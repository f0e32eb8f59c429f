"""The login lockout: failed logins counted per e-mail address and per network address."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.accounts import normalise_email
from app.clock import now
from app.extensions import db
from app.models import LoginFailure, User

MAX_FAILURES = 5  # failed logins for one e-mail address within LOCK_TIME lock it
LOCK_TIME = timedelta(minutes=15)
LOCKED = "This e-mail address is locked for up to 15 minutes after too many failed logins."
IP_MAX_FAILURES = 20  # failed logins from one address within IP_WINDOW
IP_WINDOW = timedelta(minutes=15)

_dummy_hashes: dict[str, str] = {}


def email_key(email: str) -> str:
    """How failed logins name an e-mail address: a keyed hash (a dump shows no addresses)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def ip_blocked(ip: str) -> bool:
    """Whether this address failed too often lately (counted in the database: all workers)."""
    since = now() - IP_WINDOW
    count = db.session.scalar(
        select(func.count(LoginFailure.id)).where(LoginFailure.ip == ip, LoginFailure.at > since)
    )
    return (count or 0) >= IP_MAX_FAILURES


def email_locked(key: str) -> bool:
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


def record_failure(ip: str, key: str | None) -> None:
    """Count a failed login against the network address and the e-mail address (if any)."""
    moment = now()
    oldest = moment - max(IP_WINDOW, LOCK_TIME)
    db.session.execute(delete(LoginFailure).where(LoginFailure.at <= oldest))
    db.session.add(LoginFailure(ip=ip, email_hash=key, at=moment))
    db.session.commit()


def forget_failures(key: str, user: User) -> None:
    """After the right password: the e-mail's failures no longer count (the caller commits)."""
    # Only unlinked from the e-mail: they still count against the network address.
    db.session.execute(
        update(LoginFailure).where(LoginFailure.email_hash == key).values(email_hash=None)
    )
    user.failed_logins = 0
    user.locked_until = None


def waste_time_like_a_check(password: str) -> None:
    """Hash anyway for unknown accounts, so timing does not tell which e-mails exist."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_hex(8), method=method)
    check_password_hash(_dummy_hashes[method], password)
