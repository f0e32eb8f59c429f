"""Configuration from the environment: one class for running, one for tests."""

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

# The repository's root (the folder that holds app/): import jobs' child processes start here.
ROOT = Path(__file__).resolve().parent.parent
# Always among the trusted hosts: requests from the machine itself (health checks).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def env_flag(name: str) -> bool:
    """An on/off environment variable: 1, true, yes or on (any case) mean on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def host_names(value: str) -> list[str] | None:
    """A comma-separated list of host names; None when it names none."""
    return [host.strip() for host in value.split(",") if host.strip()] or None


class ConfigError(RuntimeError):
    """The environment does not describe a runnable application; the message says why."""


class Config:
    """Settings read from environment variables (see the deployment table in README)."""

    TESTING = False
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # None means: a SQLite file in the instance folder (WAL mode), set up by create_app.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    STUDY_IMAGES = os.environ.get("STUDY_IMAGES")  # default: <instance>/study-images
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {"pool_pre_ping": True}
    # PostgreSQL: how long a request waits for the database to come back (app/resilience.py).
    DATABASE_WAIT_SECONDS = float(os.environ.get("DATABASE_WAIT_SECONDS", "15"))
    # Run a request once more when its connection died under it (0: never; for comparisons).
    DATABASE_RERUN = os.environ.get("DATABASE_RERUN", "1") != "0"
    WTF_CSRF_TIME_LIMIT = None  # a case page may stay open for a long consultation
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # The largest bundle upload (a logged-in organiser's); every other request: SMALL_BODY_BYTES.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(512 * 1024 * 1024)))
    SMALL_BODY_BYTES = int(os.environ.get("SMALL_BODY_BYTES", str(1024 * 1024)))
    # Bundle imports run in a process of their own started by the upload
    # (app/organiser/import_jobs.py); off,
    # the upload's request does the import itself (the tests, which want to see the outcome at
    # once), without the limits below.
    IMPORT_IN_BACKGROUND = os.environ.get("IMPORT_IN_BACKGROUND", "1") == "1"
    # What the operating system lets one import process use before it ends it (0: no limit):
    # processor seconds (RLIMIT_CPU), megabytes of memory on top of its start (RLIMIT_AS), and
    # seconds from its start (an alarm). A real bundle needs a few CPU minutes at most; one
    # crafted within every per-image bound could take hours. The process runs at this
    # niceness, so that readers' pages come first.
    IMPORT_CPU_SECONDS = int(os.environ.get("IMPORT_CPU_SECONDS", "1800"))
    IMPORT_MEMORY_MB = int(os.environ.get("IMPORT_MEMORY_MB", "1024"))
    IMPORT_WALL_SECONDS = int(os.environ.get("IMPORT_WALL_SECONDS", "3600"))
    IMPORT_NICE = int(os.environ.get("IMPORT_NICE", "10"))
    # Imports at once on the whole deployment (each takes about a core); one per organiser.
    IMPORT_MAX_RUNNING = int(os.environ.get("IMPORT_MAX_RUNNING", "2"))
    # Where uploaded .zip files wait and are unpacked: default <instance>/import-uploads.
    IMPORT_UPLOADS = os.environ.get("IMPORT_UPLOADS")
    # Dashboard pages, figures and exports per staff account and minute (see app/limits.py).
    DASHBOARD_REQUESTS_PER_MINUTE = int(os.environ.get("DASHBOARD_REQUESTS_PER_MINUTE", "30"))
    # A session unused this long is logged out; a case page kept open is a use every answer.
    SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "480"))
    # Host names this app answers to (Flask's TRUSTED_HOSTS); others get 400. Required in
    # production ("*": any host, on purpose); create_app adds the loopback names (app/factory.py).
    TRUSTED_HOSTS = host_names(os.environ.get("TRUSTED_HOSTS", ""))
    INVITATION_DAYS = int(os.environ.get("INVITATION_DAYS", "14"))
    # New invitations (and their e-mails) per form sent, and per organiser in any hour.
    INVITATIONS_PER_REQUEST = int(os.environ.get("INVITATIONS_PER_REQUEST", "200"))
    INVITATIONS_PER_HOUR = int(os.environ.get("INVITATIONS_PER_HOUR", "500"))
    DEVELOPMENT = os.environ.get("FLASK_DEBUG") == "1" or os.environ.get("SECBIR_DEV") == "1"
    CLOCK = None  # tests put a callable here to control time
    # werkzeug's hashing method for passwords; tests use a cheap one to stay fast.
    PASSWORD_HASH_METHOD = "scrypt"
    # Organisers may import bundles from folders under this server path (web form).
    BUNDLE_ROOT = os.environ.get("BUNDLE_ROOT")
    # Trusted proxy hops for werkzeug's ProxyFix; all 0 (the default) means no ProxyFix.
    PROXY_FIX_X_FOR = int(os.environ.get("PROXY_FIX_X_FOR", "0"))
    PROXY_FIX_X_PROTO = int(os.environ.get("PROXY_FIX_X_PROTO", "0"))
    PROXY_FIX_X_HOST = int(os.environ.get("PROXY_FIX_X_HOST", "0"))
    PROXY_FIX_X_PREFIX = int(os.environ.get("PROXY_FIX_X_PREFIX", "0"))
    # Where readers reach the app, e.g. https://study.hospital.org: the base of every link in an
    # e-mail (never the request's Host header). Required with MAIL_SERVER.
    PUBLIC_URL = os.environ.get("PUBLIC_URL") or None
    # E-mail through an SMTP server, with Flask-Mail's names. No MAIL_SERVER: no e-mail at
    # all, and the organiser pages say that links must be passed on by hand.
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_USE_TLS = env_flag("MAIL_USE_TLS")
    MAIL_USE_SSL = env_flag("MAIL_USE_SSL")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER") or None
    # Flask-Mail would not send while TESTING; the tests' own SMTP server must get the mail.
    MAIL_SUPPRESS_SEND = False
    MAIL_TIMEOUT = float(os.environ.get("MAIL_TIMEOUT", "30"))  # seconds per SMTP operation
    MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", "8"))
    MAIL_RETRY_SECONDS = float(os.environ.get("MAIL_RETRY_SECONDS", "60"))  # doubles each time
    # Send the mail a request queued right after its response has gone out (an invitation
    # reaches its reader within seconds); `flask mail send-queued` from cron stays the safety
    # net for what could not be sent then. At most this many messages, this many seconds per
    # SMTP operation, so that a slow server holds a worker only briefly.
    MAIL_SEND_AFTER_REQUEST = os.environ.get("MAIL_SEND_AFTER_REQUEST", "1") != "0"
    MAIL_AFTER_REQUEST_LIMIT = int(os.environ.get("MAIL_AFTER_REQUEST_LIMIT", "50"))
    MAIL_AFTER_REQUEST_TIMEOUT = float(os.environ.get("MAIL_AFTER_REQUEST_TIMEOUT", "10"))
    # Time on case counts the reader as present for this long after their last input (a look
    # at the image without moving counts); beyond it, until the next input, the time is not
    # counted (static/js/activetime.js).
    CASE_IDLE_SECONDS = int(os.environ.get("CASE_IDLE_SECONDS", "90"))


class TestConfig(Config):
    """Tests: a throw-away secret, CSRF off unless a test turns it on."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_APP_DATABASE_URL") or None
    WTF_CSRF_ENABLED = False
    SESSION_COOKIE_SECURE = False
    TRUSTED_HOSTS = None
    PUBLIC_URL = "http://localhost"  # the test client's host: links in mails lead back to it
    # Tests move the app's clock by days within one session; test_sessions sets it low.
    SESSION_IDLE_MINUTES = 366 * 24 * 60
    # The tests walk the dashboard many times with one account; test_limits sets it low.
    DASHBOARD_REQUESTS_PER_MINUTE = 100000
    IMPORT_IN_BACKGROUND = False  # test_imports turns it on
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    MAIL_SERVER = None  # a test that sends starts its own SMTP server and sets this
    # The tests that look at the queue see it as the request left it; those of sending right
    # after the request turn this on.
    MAIL_SEND_AFTER_REQUEST = False
    MAIL_DEFAULT_SENDER = "study@example.org"
    # The dashboard renders with StrictUndefined: a key it reads that the analysis no longer
    # has fails the test instead of showing a blank cell.
    DASHBOARD_STRICT_TEMPLATES = True


def instance_sqlite_uri(instance_path: str) -> str:
    """The default database: a SQLite file in the instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "secbir.sqlite")


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
