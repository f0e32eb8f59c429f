"""Error pages survive a database that went away in the middle of a request."""

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError

from app.extensions import db


def test_a_dead_connection_still_gives_the_error_page(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollback after a failure raises on a dead connection: the 500 page still renders."""

    def fails() -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    app.add_url_rule("/boom", "boom", fails)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    invalidated = []
    monkeypatch.setattr(db.session, "rollback", fails, raising=False)
    # On the Session class: scoped_session has no proxy for invalidate (the old code called
    # db.session.invalidate() and would have raised AttributeError instead).
    session_class = db.session.session_factory.class_
    monkeypatch.setattr(session_class, "invalidate", lambda _self: invalidated.append(True))

    response = app.test_client().get("/boom")

    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    assert "Content-Security-Policy" in response.headers
    assert invalidated
