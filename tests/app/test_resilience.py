"""A database restart readers never see: connections wait for the database to come back,
and a request whose connection died under it runs once more (app/resilience.py)."""

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from app.extensions import db
from app.resilience import FIRST_WAIT, MAX_WAIT, connect_with_retry
from tests.app.conftest import StudyRef, UserRef


class Down(Exception):
    """What the fake driver raises while the database is down."""


class FakeDialect:
    """A dialect whose database answers only after `failures` attempts."""

    class loaded_dbapi:
        OperationalError = Down

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    def connect(self, *args: Any, **kwargs: Any) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise Down("connection refused")
        return "connection"


def test_connecting_waits_with_backoff_until_the_database_answers() -> None:
    pauses: list[float] = []
    dialect = FakeDialect(failures=6)
    assert connect_with_retry(dialect, (), {}, 15.0, sleep=pauses.append) == "connection"
    assert dialect.attempts == 7
    assert pauses[0] == FIRST_WAIT and max(pauses) == MAX_WAIT
    assert pauses == sorted(pauses)


def test_connecting_gives_up_after_the_wait() -> None:
    dialect = FakeDialect(failures=10**6)
    with pytest.raises(Down):
        connect_with_retry(dialect, (), {}, 0.5)
    assert 2 <= dialect.attempts <= 6


@pytest.mark.postgres
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)
def test_a_request_whose_connection_dies_under_it_runs_again(
    app: Flask, study: StudyRef, reader: UserRef, login
) -> None:
    # As in a restart: the server ends the backend while the request is running.
    runs: list[int] = []

    @app.get("/test-only/dies-once")
    def dies_once() -> str:
        runs.append(1)
        own = db.session.scalar(text("SELECT pg_backend_pid()"))
        if len(runs) == 1:
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": own})
        return str(db.session.scalar(text("SELECT count(*) FROM study")))

    client = app.test_client()
    login(client, reader)
    response = client.get("/test-only/dies-once")
    assert response.status_code == 200 and response.text == "1"
    assert len(runs) == 2
    # The reader's own pages work on, on fresh connections.
    assert client.get(f"/survey/{study.id}/").status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("app", ["postgresql"], indirect=True)
def test_a_connection_that_died_after_the_view_still_gives_the_response(
    app: Flask, reader: UserRef, login
) -> None:
    # The restart came between the view and the end of the request: the rollback at teardown
    # failed and escaped Flask, and gunicorn sent a bare 500 for an answer already computed.
    @app.get("/test-only/dies-after")
    def dies_after() -> str:
        own = db.session.scalar(text("SELECT pg_backend_pid()"))
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": own})
        return "done"

    client = app.test_client()
    login(client, reader)
    response = client.get("/test-only/dies-after")
    assert response.status_code == 200 and response.text == "done"
