"""The application factory: configuration checks, SQLite pragmas, headers, errors, health."""

import sqlite3
from pathlib import Path

import pytest
from flask import Flask, abort
from sqlalchemy import text

from app import CONTENT_SECURITY_POLICY, create_app
from app.config import ConfigError, TestConfig, host_names, normalise_database_url
from app.extensions import db


class ProductionLike(TestConfig):
    """Not testing, not development: what a real start-up sees."""

    TESTING = False
    DEVELOPMENT = False


def test_missing_secret_key_stops_start_up_with_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^SECRET_KEY is not set") as caught:
        create_app(ProductionLike, {"SECRET_KEY": None, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")


def test_development_without_secret_key_gets_a_random_one() -> None:
    app = create_app(
        ProductionLike,
        {"SECRET_KEY": None, "DEVELOPMENT": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"},
    )
    assert len(app.config["SECRET_KEY"]) == 64


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/db", "oracle://x"])
def test_bad_database_url_stops_start_up(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": url})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
    ],
)
def test_postgres_urls_use_psycopg_3(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_default_database_is_sqlite_in_the_instance_folder_with_wal(tmp_path: Path) -> None:
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": None})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(
        Path(app.instance_path) / "secbir.sqlite"
    )
    file_app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db"})
    with file_app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 15000
        db.engine.dispose()
    assert sqlite3.connect(tmp_path / "a.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_production_needs_trusted_hosts() -> None:
    memory = {"SQLALCHEMY_DATABASE_URI": "sqlite://"}
    with pytest.raises(ConfigError, match=r"^TRUSTED_HOSTS is not set") as caught:
        create_app(ProductionLike, memory)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    # As read from the environment (Config): names, or "*" for any host on purpose.
    assert host_names(" study.hospital.org, ,") == ["study.hospital.org"]
    assert host_names(" , ") is None
    named = create_app(ProductionLike, {**memory, "TRUSTED_HOSTS": ["study.hospital.org"]})
    assert named.config["TRUSTED_HOSTS"] == ["study.hospital.org", "localhost", "127.0.0.1"]
    any_host = create_app(ProductionLike, {**memory, "TRUSTED_HOSTS": ["*"]})
    assert any_host.config["TRUSTED_HOSTS"] is None
    with pytest.raises(ConfigError, match="mixes"):
        create_app(ProductionLike, {**memory, "TRUSTED_HOSTS": ["*", "study.hospital.org"]})
    development = create_app(ProductionLike, {**memory, "DEVELOPMENT": True})
    assert development.config["TRUSTED_HOSTS"] is None


def test_trusted_hosts_answer_their_names_and_the_machine_itself() -> None:
    app = create_app(
        ProductionLike,
        {"SQLALCHEMY_DATABASE_URI": "sqlite://", "TRUSTED_HOSTS": "study.hospital.org"},
    )
    client = app.test_client()
    assert client.get("/health", base_url="https://study.hospital.org").status_code != 400
    assert client.get("/health", base_url="http://127.0.0.1:8000").status_code != 400  # Docker
    assert client.get("/health", base_url="http://evil.example").status_code == 400


def test_the_public_address_must_be_a_trusted_host() -> None:
    settings = {
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "TRUSTED_HOSTS": ["study.hospital.org"],
        "PUBLIC_URL": "https://reader.hospital.org",
    }
    with pytest.raises(ConfigError, match=r"^PUBLIC_URL's host \(reader.hospital.org\) is not in"):
        create_app(ProductionLike, settings)
    settings["PUBLIC_URL"] = "https://study.hospital.org:8443/study"
    assert create_app(ProductionLike, settings)


def test_study_images_default_to_the_instance_folder() -> None:
    app = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite://", "STUDY_IMAGES": None})
    assert app.config["STUDY_IMAGES"] == str(Path(app.instance_path, "study-images").resolve())


def test_proxy_fix_only_when_configured() -> None:
    plain = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    headers = {"X-Forwarded-For": "203.0.113.9"}
    plain.add_url_rule("/ip", "ip", lambda: __import__("flask").request.remote_addr)
    assert plain.test_client().get("/ip", headers=headers).text == "127.0.0.1"
    proxied = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite://", "PROXY_FIX_X_FOR": 1})
    proxied.add_url_rule("/ip", "ip", lambda: __import__("flask").request.remote_addr)
    assert proxied.test_client().get("/ip", headers=headers).text == "203.0.113.9"


def test_security_headers_on_every_response(client) -> None:
    for path in ("/login", "/health", "/no-such-page", "/static/css/app.css"):
        response = client.get(path)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/invite/whatever").headers["Referrer-Policy"] == "no-referrer"


def test_pages_have_no_inline_script(client) -> None:
    page = client.get("/login").text
    assert "<script>" not in page and "onclick" not in page and "style=" not in page


def test_health_reports_the_database(client, app: Flask) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_health_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    broken = create_app(TestConfig, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no/x.db"})
    response = broken.test_client().get("/health")
    assert response.status_code == 503
    assert response.json["status"] == "error"


@pytest.mark.parametrize("status", [400, 403, 404, 413, 429, 500])
def test_error_pages_and_json(app: Flask, status: int) -> None:
    app.add_url_rule(f"/fail{status}", f"fail{status}", lambda: abort(status))
    client = app.test_client()
    page = client.get(f"/fail{status}")
    assert page.status_code == status
    assert page.mimetype == "text/html" and f"({status})" in page.text
    api = client.get(f"/fail{status}", headers={"Accept": "application/json"})
    assert api.status_code == status
    assert api.json["status"] == status and api.json["message"]


def test_uncaught_exception_rolls_back_and_answers_500(app: Flask) -> None:
    from app.models import Role, User

    def explode() -> str:
        db.session.add(User(email="half@example.org", pseudonym="R-HALF00", role=Role.READER))
        db.session.flush()
        raise RuntimeError("boom")

    app.add_url_rule("/explode", "explode", explode)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/explode", headers={"Accept": "application/json"})
    assert response.status_code == 500
    assert response.json["error"] == "Something went wrong"
    assert "boom" not in response.text
    with app.app_context():
        assert db.session.scalar(text('SELECT count(*) FROM "user"')) == 0
