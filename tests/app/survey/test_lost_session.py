"""An answer posted after the session ended is not lost silently: the reader logs in and is
back on the same case, told that nothing was saved yet (the choice itself is kept in the
page's sessionStorage: tests/e2e/test_kept_readers_browser.py checks that part)."""

import re
from collections.abc import Callable

from flask import Flask
from sqlalchemy import func, select

from app.errors import ANSWER_NOT_SAVED
from app.extensions import db
from app.models import Answer
from tests.app.conftest import StudyRef, UserRef
from tests.app.reading import case_url, consent, token_of
from tests.app.world import CONSENT


def csrf_of(html: str) -> str:
    """The CSRF token in a page's form."""
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found
    return found.group(1)


def answers(app: Flask) -> int:
    """How many answers are stored."""
    with app.app_context():
        return db.session.scalar(select(func.count(Answer.id))) or 0


def test_an_answer_after_the_session_cookie_is_gone_returns_to_the_case(
    app: Flask, study: StudyRef, reader: UserRef, login: Callable
) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    page = client.get("/login")
    client.post(
        "/login",
        data={"email": reader.email, "password": reader.password, "csrf_token": csrf_of(page.text)},
    )
    welcome = client.get(f"/survey/{study.id}/")
    client.post(f"/survey/{study.id}/", data={**CONSENT, "csrf_token": csrf_of(welcome.text)})
    url = case_url(study.id, 1, 1)
    case = client.get(url)
    form = {
        "diagnosis": "mel",
        "confidence": "4",
        "token": token_of(case),
        "csrf_token": csrf_of(case.text),
    }
    client.delete_cookie("session")  # the session expired (or the browser dropped it)
    refused = client.post(url, data=form)
    assert refused.status_code == 302
    assert refused.headers["Location"] == f"/login?next={url}"
    assert answers(app) == 0
    login_page = client.get(refused.headers["Location"])
    assert "your answer was not saved yet" in login_page.text
    back = client.post(
        refused.headers["Location"],
        data={
            "email": reader.email,
            "password": reader.password,
            "csrf_token": csrf_of(login_page.text),
        },
    )
    assert back.status_code == 302 and back.headers["Location"] == url
    assert client.get(url).status_code == 200  # the same case, still unanswered


def test_an_answer_after_a_logout_elsewhere_returns_to_the_case(
    app: Flask, study: StudyRef, reader: UserRef, login: Callable
) -> None:
    client = app.test_client()
    login(client, reader)
    consent(client, study.id)
    url = case_url(study.id, 1, 1)
    token = token_of(client.get(url))
    elsewhere = app.test_client()
    login(elsewhere, reader)
    elsewhere.post("/logout")  # ends every session of the account, this one too
    refused = client.post(url, data={"diagnosis": "mel", "confidence": "4", "token": token})
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login?next=")
    assert ANSWER_NOT_SAVED in client.get(refused.headers["Location"]).text
    assert answers(app) == 0


def test_other_refused_forms_keep_the_plain_error(app: Flask, reader: UserRef) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    response = app.test_client().post("/password", data={})
    assert response.status_code == 400 and "security token" in response.text
