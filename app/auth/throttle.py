"""Password guessing, slowed: attempts counted per e-mail address and per network address.

Three counters, each a row of `attempt_counter` raised atomically (one upsert with RETURNING,
on SQLite and PostgreSQL alike), so that simultaneous guesses each see their own number:

- per e-mail address (a keyed hash of it, account or not): every password check reserves a
  slot *before* the check; the sixth within 15 minutes is refused, right password or not, and
  a good login clears the count. Racing requests cannot get more than MAX_FAILURES checks.
- per network address: failed checks from it. Past IP_MAX_FAILURES the address is not blocked
  (a hospital's readers share one proxy address, and one of them guessing must not lock out
  the others): each e-mail address then gets only PAIR_MAX checks from that network address
  per window. Readers who type their right password still log in; a guesser gets two tries
  per account instead of five.
- per (network address, e-mail address) pair: counted only while the network is over its
  limit.

Every path costs one password hash, whether the account exists, has no password yet or is
deactivated, so timing tells nobody which e-mails have accounts.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import cast

from flask import current_app
from sqlalchemy import Table, case, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.accounts import normalise_email
from app.clock import now
from app.extensions import db
from app.models import AttemptCounter, User

MAX_FAILURES = 5  # password checks for one e-mail address within LOCK_TIME
LOCK_TIME = timedelta(minutes=15)
LOCKED = "This e-mail address is locked for up to 15 minutes after too many failed logins."
IP_MAX_FAILURES = 20  # failed checks from one network address within IP_WINDOW ...
IP_WINDOW = timedelta(minutes=15)
PAIR_MAX = 2  # ... after which each e-mail address gets this many checks from it per window
# The reset form's counters (app/auth/reset.py): their keys' prefixes, and their window.
RESET_BY_IP, RESET_BY_EMAIL = "f:", "r:"
RESET_WINDOW = timedelta(hours=1)
NETWORK_SLOWED = (
    "Too many failed logins from your network: this e-mail address may try again in "
    "15 minutes. Other accounts can still log in."
)

_dummy_hashes: dict[str, str] = {}


def email_key(email: str) -> str:
    """How counters name an e-mail address: a keyed hash (a dump shows no addresses)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def hit(key: str, window: timedelta, commit: bool = True) -> int:
    """Count one attempt under `key` and return the count in the current window (atomic).

    A window starts at its first attempt and lasts `window`; the next attempt after it starts
    a new one. One statement reads and writes the row, so concurrent callers are serialised
    by the database (PostgreSQL's row lock, SQLite's write lock) and never share a number.
    `commit=False` leaves the commit to the caller (the row stays locked until then).
    """
    moment = now()
    table = cast(Table, AttemptCounter.__table__)  # a model's is a Table (typed FromClause)
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    expired = table.c.started_at <= moment - window
    statement = (
        insert(table)
        .values(key=key, hits=1, started_at=moment)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "hits": case((expired, 1), else_=table.c.hits + 1),
                "started_at": case((expired, moment), else_=table.c.started_at),
            },
        )
        .returning(table.c.hits)
    )
    hits = db.session.execute(statement).scalar_one()
    if commit:
        db.session.commit()
    return int(hits)


def peek(key: str, window: timedelta) -> int:
    """The count under `key` in its current window (0 once the window is over)."""
    row = db.session.get(AttemptCounter, key)
    if row is None or row.started_at <= now() - window:
        return 0
    return row.hits


def clear(*keys: str) -> None:
    """Forget the counts under `keys` (the caller commits)."""
    db.session.execute(delete(AttemptCounter).where(AttemptCounter.key.in_(keys)))


def reserve(ip: str, key: str) -> str | None:
    """Take one password check for e-mail `key` from `ip`: None if allowed, else why not.

    Call before checking the password; then `failed` or `succeeded`.
    """
    if hit(f"e:{key}", LOCK_TIME) > MAX_FAILURES:
        return LOCKED
    if peek(f"i:{ip}", IP_WINDOW) >= IP_MAX_FAILURES and hit(f"p:{ip}:{key}", IP_WINDOW) > PAIR_MAX:
        return NETWORK_SLOWED
    return None


def failed(ip: str) -> None:
    """A password check from `ip` failed: it counts against the network address."""
    hit(f"i:{ip}", IP_WINDOW)
    # Rows whose window has ended; the reset form's counters last an hour, not 15 minutes.
    moment, key = now(), AttemptCounter.key
    hourly = key.startswith(RESET_BY_IP) | key.startswith(RESET_BY_EMAIL)
    ended = (AttemptCounter.started_at <= moment - RESET_WINDOW) | (
        ~hourly & (AttemptCounter.started_at <= moment - max(IP_WINDOW, LOCK_TIME))
    )
    db.session.execute(delete(AttemptCounter).where(ended))
    db.session.commit()


def succeeded(ip: str, key: str, user: User) -> None:
    """The right password: this e-mail's checks no longer count (the caller commits).

    The network address keeps its failures: a guesser cannot reset them with their own login.
    """
    forget_failures(key, user)


def forget_failures(key: str, user: User) -> None:
    """Unlock e-mail `key` (right password, or a new one set by a reset link); the caller
    commits. Network addresses keep their counts."""
    db.session.execute(
        delete(AttemptCounter).where(
            (AttemptCounter.key == f"e:{key}")
            | (AttemptCounter.key.like("p:%") & AttemptCounter.key.endswith(f":{key}"))
        )
    )
    user.failed_logins = 0
    user.locked_until = None


def verify(user: User | None, password: str) -> bool:
    """Whether `user` may log in with `password`, at the cost of one hash in every case."""
    if user is None or user.password_hash is None:
        waste_time_like_a_check(password)
        return False
    return user.check_password(password) and user.active


def waste_time_like_a_check(password: str) -> None:
    """Hash anyway where there is nothing to check, so timing does not tell which e-mails exist."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _dummy_hashes:
        _dummy_hashes[method] = generate_password_hash(secrets.token_hex(8), method=method)
    check_password_hash(_dummy_hashes[method], password)


def ip_counter_of(ip: str) -> int:
    """Failed checks from `ip` in its current window (for tests and the admin's eyes)."""
    return peek(f"i:{ip}", IP_WINDOW)
