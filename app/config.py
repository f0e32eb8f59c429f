"""Configuration from the environment: one class for running, one for tests."""

import os
from pathlib import Path
from typing import ClassVar


class ConfigError(RuntimeError):
    """The environment does not describe a runnable application; the message says why."""


class Config:
    """Settings read from environment variables (see the deployment table in README)."""

    TESTING = False
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # None means: a SQLite file in the instance folder (WAL mode), set up by create_app.
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    STUDY_IMAGES = os.environ.get("STUDY_IMAGES")  # default: <instance>/study-images
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    WTF_CSRF_TIME_LIMIT = None  # a case page may stay open for a long consultation
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(512 * 1024 * 1024)))
    INVITATION_DAYS = int(os.environ.get("INVITATION_DAYS", "14"))
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


class TestConfig(Config):
    """Tests: a throw-away secret, CSRF off unless a test turns it on."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_APP_DATABASE_URL") or None
    WTF_CSRF_ENABLED = False
    SESSION_COOKIE_SECURE = False
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


def instance_sqlite_uri(instance_path: str) -> str:
    """The default database: a SQLite file in the instance folder."""
    return "sqlite:///" + str(Path(instance_path) / "secbir.sqlite")
