"""The application factory: `create_app()` builds the survey app from the environment (README)."""

import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, flash, redirect, request
from flask_login import login_url
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.routing import IntegerConverter as UnboundedIntegerConverter
from werkzeug.routing import Map
from werkzeug.wrappers import Response as WerkzeugResponse  # what redirect() gives

from app import assets, limits, resilience
from app.config import ROOT, configure
from app.extensions import csrf, db, login_manager, migrate
from app.extensions import mail as mailer  # not `mail`: the app.mail package takes that name
from app.mail import outbox
from app.resilience import ResilientFlask

# The largest value of an INTEGER column (PostgreSQL's and what SQLite's driver binds safely).
DATABASE_INT_MAX = 2**31 - 1
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def create_app(
    config: type | Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> Flask:
    """Build the application: configuration, database, extensions, blueprints, errors, CLI."""
    app = ResilientFlask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    configure(app, config, overrides)
    # Before any blueprint adds its rules: every <int:...> in a URL gets the bounded converter.
    app.url_map.converters["int"] = IntegerConverter
    limits.register(app)  # before the extensions: the body limit must precede the CSRF check
    register_extensions(app)
    assets.register(app)
    resilience.register(app)
    limits.register_after_login(app)
    register_blueprints(app)
    outbox.register(app)
    register_security_headers(app)
    register_errors_and_cli(app)
    return app


class IntegerConverter(UnboundedIntegerConverter):
    """werkzeug's <int:...>, bounded by the database's INTEGER: a larger id is simply not found.

    Without the bound, an id like 2**63 reaches the database and fails there (OverflowError
    on SQLite, DataError on PostgreSQL): a server error instead of a 404. It keeps werkzeug's
    class name, so that whatever inspects converters by name still sees an integer.
    """

    def __init__(
        self,
        map: Map,  # werkzeug passes these by these names
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        bounded = DATABASE_INT_MAX if max is None or max > DATABASE_INT_MAX else max
        lowest = -DATABASE_INT_MAX - 1
        floor = lowest if signed and (min is None or min < lowest) else min
        super().__init__(map, fixed_digits=fixed_digits, min=floor, max=bounded, signed=signed)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: WAL (readers never block the writer), a busy timeout, and enforced foreign keys."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL never corrupts the database and saves an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def register_extensions(app: Flask) -> None:
    """Bind the extensions created unbound in `app.extensions`."""
    from app import models

    db.init_app(app)
    # Batch mode lets Alembic alter SQLite tables (it recreates them); a no-op on PostgreSQL.
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    mailer.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.unauthorized_handler
    def unauthorized() -> WerkzeugResponse:
        """To the login page and back; an answer posted after the session ended says so."""
        from app.errors import back_to_the_case

        returning = back_to_the_case()
        if returning is not None:
            return returning
        flash(login_manager.login_message, login_manager.login_message_category)
        return redirect(login_url("auth.login", next_url=request.url))

    @login_manager.user_loader
    def load_user(session_id: str) -> models.User | None:
        """The user of a session id "<id>:<version>"; None when gone or the version is old."""
        user_id, _, version = session_id.partition(":")
        try:
            number, wanted = int(user_id), int(version)
        except ValueError:  # also a cookie from before session versions: log in again
            return None
        if not 0 < number <= DATABASE_INT_MAX:
            return None
        user = db.session.get(models.User, number)
        if user is None or user.session_version != wanted:
            return None
        return user


def register_blueprints(app: Flask) -> None:
    """Register every blueprint under its URL prefix."""
    from app import auth, health, images, organiser
    from app.survey import blueprint, pages, preview  # noqa: F401 (they put their routes on it)

    app.register_blueprint(auth.bp)
    organiser.register(app)
    app.register_blueprint(blueprint.bp, url_prefix="/survey")
    app.register_blueprint(images.bp)
    app.register_blueprint(health.bp)

    from app.clock import describe_wait
    from app.mail import mail_enabled

    app.add_template_filter(describe_wait, "wait")

    @app.context_processor
    def mail_setting() -> dict[str, bool]:
        """Templates say "pass the link on by hand" when no e-mail can be sent."""
        return {"mail_enabled": mail_enabled()}


def register_security_headers(app: Flask) -> None:
    """Add the security headers to every response."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        """A strict CSP and friends; invitation links never leak through the Referer."""
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        # Pages whose URL holds a secret token: an invitation or a password-reset link.
        is_invitation = request.endpoint in ("auth.invitation", "auth.reset_password")
        headers["Referrer-Policy"] = "no-referrer" if is_invitation else "same-origin"
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def register_errors_and_cli(app: Flask) -> None:
    """Error handlers (pages or JSON) and the `flask` sub-commands."""
    from app import cli, errors

    errors.register(app)
    cli.register(app)
