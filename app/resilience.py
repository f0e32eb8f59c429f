"""A database restart that readers never see.

When PostgreSQL restarts, every pooled connection dies and for a few seconds no new one can be
made. Two things keep readers from seeing error pages meanwhile:

1. New connections are retried with backoff (0.1 s doubling to 1 s) for up to
   DATABASE_WAIT_SECONDS (default 15 s) before the error is let through. A request that needs
   a connection during the restart simply waits. 15 s covers a restart of a few seconds
   (typically 1-5 s) with room to spare, and stays far below gunicorn's timeout (120 s) and
   nginx's proxy_read_timeout (60 s), so a worker is never killed for waiting; a database
   that stays down longer gets the error page after 15 s rather than hanging every thread.
2. A request whose connection died under it (the restart came while it ran) is run once more
   from the start, on a fresh connection, if it failed with a disconnect. Its transaction was
   rolled back by the server, so nothing it did is half-stored; writes that must happen only
   once are protected by unique constraints anyway (an answer is unique per assignment).
"""

import time
from typing import Any

from flask import Flask, Response, current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from app.extensions import db

FIRST_WAIT = 0.1  # seconds before the second connection attempt; doubles up to MAX_WAIT
MAX_WAIT = 1.0


def connect_with_retry(
    dialect: Any,
    cargs: tuple[Any, ...],
    cparams: dict[str, Any],
    wait_seconds: float,
    sleep: Any = time.sleep,
) -> Any:
    """Open a DBAPI connection, retrying with backoff until `wait_seconds` have passed."""
    deadline = time.monotonic() + wait_seconds
    pause = FIRST_WAIT
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError:
            if time.monotonic() + pause > deadline:
                raise
            sleep(pause)
            pause = min(MAX_WAIT, pause * 2)


def install_connection_retry(engine: Engine, wait_seconds: float) -> None:
    """Make `engine` (PostgreSQL) wait for the database to come back when connecting."""
    if engine.dialect.name != "postgresql" or wait_seconds <= 0:
        return

    @event.listens_for(engine, "do_connect")
    def retry(dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        """Connect, waiting out a restart (SQLAlchemy uses what this returns)."""
        return connect_with_retry(dialect, cargs, cparams, wait_seconds)


def is_disconnect(error: BaseException) -> bool:
    """Whether `error` means the database connection died (not a bad query)."""
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def forget_request_state() -> None:
    """Drop the failed attempt's session and cached user, so a rerun starts clean."""
    try:
        db.session.rollback()
    except DBAPIError:
        db.session().invalidate()
    db.session.remove()
    g.pop("_login_user", None)


class ResilientFlask(Flask):
    """Flask that reruns a request once when the database connection died under it."""

    def full_dispatch_request(self) -> Response:
        """Dispatch; on a disconnect, once more on a fresh connection."""
        try:
            return super().full_dispatch_request()
        except DBAPIError as error:
            if not is_disconnect(error) or not current_app.config.get("DATABASE_RERUN", True):
                raise
            forget_request_state()
            return super().full_dispatch_request()


def end_session_safely(_error: BaseException | None) -> None:
    """Close the request's session even when its connection died (runs before
    Flask-SQLAlchemy's own teardown, whose rollback would raise and lose the response)."""
    try:
        db.session.remove()
    except DBAPIError:
        db.session.registry().invalidate()  # drop the dead connection without a rollback
        db.session.registry.clear()


def register(app: Flask) -> None:
    """Install the connection retry on the app's engine and the safe teardown (call after
    binding Flask-SQLAlchemy: teardowns run in reverse order, so this one runs first)."""
    with app.app_context():
        install_connection_retry(db.engine, float(app.config["DATABASE_WAIT_SECONDS"]))
    app.teardown_appcontext(end_session_safely)
