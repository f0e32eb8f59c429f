"""The application factory: `create_app()` builds the survey app from the environment (README)."""

import secrets
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, flash, redirect, request
from flask_login import login_url
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter as UnboundedIntegerConverter
from werkzeug.routing import Map
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response as WerkzeugResponse  # what redirect() gives

from app import assets, limits, resilience
from app.config import Config, ConfigError, host_names, instance_sqlite_uri
from app.extensions import csrf, db, login_manager, migrate
from app.extensions import mail as mailer  # not `mail`: the app.mail package takes that name
from app.mail import outbox
from app.resilience import ResilientFlask

ROOT = Path(__file__).resolve().parent.parent
# The largest value of an INTEGER column (PostgreSQL's and what SQLite's driver binds safely).
DATABASE_INT_MAX = 2**31 - 1
# Always among the trusted hosts: requests from the machine itself (health checks).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")

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


def configure(
    app: Flask, config: type | Mapping[str, Any] | None, overrides: Mapping[str, Any] | None
) -> None:
    """Load the configuration and check it; a broken one stops start-up with one sentence."""
    if config is None or isinstance(config, type):
        app.config.from_object(config or Config)
    else:
        app.config.from_object(Config)
        app.config.update(config)
    if overrides:
        app.config.update(overrides)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    production = not (app.config.get("TESTING") or app.config.get("DEVELOPMENT"))
    if not app.config.get("SECRET_KEY"):
        if production:
            raise ConfigError(
                "SECRET_KEY is not set: export a long random value, e.g. "
                "SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')."
            )
        # Development only: sessions last as long as this process.
        app.config["SECRET_KEY"] = secrets.token_hex(32)

    check_public_url(app.config)
    check_mail_settings(app.config)
    app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config, production)
    uri = app.config.get("SQLALCHEMY_DATABASE_URI") or instance_sqlite_uri(app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(uri)
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Waiting writers queue for up to 15 s instead of failing at once.
        options.setdefault("connect_args", {"timeout": 15})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options

    images = app.config.get("STUDY_IMAGES") or str(Path(app.instance_path) / "study-images")
    app.config["STUDY_IMAGES"] = str(Path(images).resolve())
    uploads = app.config.get("IMPORT_UPLOADS") or str(Path(images).parent / "import-uploads")
    app.config["IMPORT_UPLOADS"] = str(Path(uploads).resolve())

    hops = {
        key: int(app.config.get(f"PROXY_FIX_{key.upper()}") or 0)
        for key in ("x_for", "x_proto", "x_host", "x_prefix")
    }
    if any(hops.values()):
        # Only behind a proxy we were told about: otherwise clients could forge their IP.
        app.wsgi_app = ProxyFix(app.wsgi_app, **hops)  # type: ignore[method-assign]


def trusted_hosts(config: Mapping[str, Any], production: bool) -> list[str] | None:
    """Flask's TRUSTED_HOSTS from ours: required in production, "*" for any host on purpose.

    The loopback names are always added, so that a health check from the machine itself (the
    Docker image's HEALTHCHECK, curl on the host) is answered. PUBLIC_URL's host must be
    trusted: the links in e-mails would otherwise lead to a 400.
    """
    hosts = config.get("TRUSTED_HOSTS")
    names = host_names(hosts) if isinstance(hosts, str) else list(hosts or [])
    if not names:
        if production:
            raise ConfigError(
                "TRUSTED_HOSTS is not set: list the host names readers use, e.g. "
                "TRUSTED_HOSTS=study.hospital.org (or TRUSTED_HOSTS='*' to answer any Host "
                "header, when a proxy in front already drops other names)."
            )
        return None
    if names == ["*"]:
        return None
    if "*" in names:
        raise ConfigError("TRUSTED_HOSTS mixes '*' with host names: give one or the other.")
    names += [name for name in LOOPBACK_HOSTS if name not in names]
    public = config.get("PUBLIC_URL")
    if public and not host_is_trusted(urlsplit(public).netloc, names):
        raise ConfigError(
            f"PUBLIC_URL's host ({urlsplit(public).hostname}) is not in TRUSTED_HOSTS: links "
            "in e-mails would be refused; add it to TRUSTED_HOSTS or correct PUBLIC_URL."
        )
    return names


def check_public_url(config: Mapping[str, Any]) -> None:
    """PUBLIC_URL, when set, is an http(s) address with a host and nothing after the path."""
    public = config.get("PUBLIC_URL")
    if not public:
        return
    parts = urlsplit(public)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"PUBLIC_URL is not a web address ({public!r}): give the address readers use, e.g. "
            "PUBLIC_URL=https://study.hospital.org."
        )


def check_mail_settings(config: Mapping[str, Any]) -> None:
    """With MAIL_SERVER set, the rest must make sense: a sender, the public address for the
    links, TLS or SSL (not both)."""
    if not config.get("MAIL_SERVER"):
        return
    if not config.get("MAIL_DEFAULT_SENDER"):
        raise ConfigError(
            "MAIL_SERVER is set but MAIL_DEFAULT_SENDER is not: set the From address, e.g. "
            "MAIL_DEFAULT_SENDER='Reader study <study@hospital.org>'."
        )
    if not config.get("PUBLIC_URL"):
        raise ConfigError(
            "MAIL_SERVER is set but PUBLIC_URL is not: set the address readers use, the base "
            "of every link in an e-mail, e.g. PUBLIC_URL=https://study.hospital.org."
        )
    if config.get("MAIL_USE_TLS") and config.get("MAIL_USE_SSL"):
        raise ConfigError(
            "MAIL_USE_TLS and MAIL_USE_SSL are both on: use TLS (STARTTLS, port 587) or SSL "
            "(port 465), not both."
        )


def normalise_database_url(url: str) -> str:
    """Check a database URL and pick the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a valid database URL: use postgresql://USER:PASSWORD@HOST/DB "
            "or sqlite:////absolute/path.sqlite."
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"DATABASE_URL names an unsupported database ({parsed.get_backend_name()}): "
            "use PostgreSQL (postgresql://...) or SQLite (sqlite:///...)."
        )
    return url


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
    from app import admin, auth, contact, dashboard, design, health, images, survey, team

    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp, url_prefix="/admin")
    app.register_blueprint(team.bp, url_prefix="/admin")
    app.register_blueprint(contact.bp, url_prefix="/admin")
    app.register_blueprint(design.bp, url_prefix="/admin")
    app.register_blueprint(survey.bp, url_prefix="/survey")
    app.register_blueprint(dashboard.bp, url_prefix="/dashboard")
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
