"""Security properties of the whole web app, checked route by route and page by page.

CSRF on every POST route of the URL map; session cookies; proxy headers trusted only when
configured; security headers on every kind of response; no inline script, event handler or
style attribute in any page any role can reach; login throttling; no open redirect through
`next`; single-use, expiring invitation links; size limits on uploads and imports; and what
test_survey_leaks does not cover of a reader's view: image bytes, response headers, static
files.
"""

import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from app import create_app
from app.auth import IP_MAX_FAILURES, MAX_FAILURES, create_invitation, hash_token
from app.auth.throttle import ip_counter_of
from app.bundle import BundleError, extract_zip, import_bundle
from app.config import TestConfig
from app.extensions import db
from app.models import (
    Answer,
    Assignment,
    AttemptCounter,
    Case,
    Enrolment,
    Invitation,
    Neighbour,
    OutboxMessage,
    Role,
    Study,
    StudyMember,
    StudyStatus,
    User,
)
from app.organiser.team import add_member
from app.survey import enrol, enrolment_of
from tests.app.bundle_factory import make_bundle
from tests.app.checks import declared_size, dump, files_under, stays_here, zip_of
from tests.app.conftest import PASSWORD, FakeClock, StudyRef, UserRef, join_study
from tests.app.reading import case_url, token_of
from tests.app.route_matrix import requests_of
from tests.app.smtp import free_port
from tests.app.world import CONSENT, World

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "static"
NEW_PASSWORD = "another long passphrase"


# ---------------------------------------------------------------- fixtures and helpers


def count(app: Flask, model: type) -> int:
    """How many rows `model`'s table holds."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model)) or 0


def csrf_token_in(html: str) -> str:
    """The first CSRF token in a page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def csrf_token_of(client: FlaskClient) -> str:
    """A valid CSRF token for `client`'s session (from a page with a form)."""
    page = client.get("/login")
    if page.status_code == 302:  # logged in: the password page has a form too
        page = client.get("/password")
    return csrf_token_in(page.text)


def logged_in(client: FlaskClient) -> bool:
    """Whether `client` has a logged-in session."""
    return client.get("/password").status_code == 200


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private temporary folder for the app's uploads, to see what an import left there."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# ---------------------------------------------------------------- CSRF on every POST route


@dataclass
class Post:
    """A POST that would write something: who sends it, where, with what, and how to see it."""

    role: str
    url: str
    data: Callable[[FlaskClient], dict[str, Any]]
    done: Callable[[FlaskClient], bool]


def csrf_scenarios(world: World, tmp_path: Path) -> dict[str, Post]:
    """One effective POST per POST endpoint (valid data, only the CSRF token left out)."""
    app, study = world.app, world.study

    def study_row() -> Study:
        return db.session.get(Study, study.id)

    def check(query: Callable[[], bool]) -> Callable[[FlaskClient], bool]:
        def done(_: FlaskClient) -> bool:
            with app.app_context():
                return query()

        return done

    revoked_id, _ = world.fresh_invitation()
    resent_id, resent_token = world.fresh_invitation()
    resent_hash = hash_token(resent_token)
    _, invitation_token = world.fresh_invitation()
    newcomer = join_newcomer(world)
    leaver = join_newcomer(world, "leaver", enrolled=True)
    marked = join_newcomer(world, "marked", enrolled=True)
    with app.app_context():
        marked_enrolment = enrolment_of(study.id, marked.id)
        assert marked_enrolment is not None
        marked_id = marked_enrolment.id
    with app.app_context():
        from app.auth import create_user

        forgetful = create_user("forgetful@example.org", Role.READER, password=PASSWORD)
        db.session.commit()
        forgetful_id = forgetful.id
    reset_token = world.reset_token(forgetful_id)
    moved = join_newcomer(world, "moved", enrolled=True)
    with app.app_context():
        moved_enrolment = enrolment_of(study.id, moved.id)
        assert moved_enrolment is not None
        moved_id = moved_enrolment.id
    corrected_id, _ = world.fresh_invitation()
    message_id = world.fresh_message()
    # A draft study of the organiser's, nobody enrolled: its design may still change.
    with app.app_context():
        draft, _ = import_bundle(
            make_bundle(tmp_path / "design-bundle", cases=3, seed=12, pool=8),
            "Draft design",
            app.config["STUDY_IMAGES"],
        )
        draft.design = "per_case"
        add_member(draft, db.session.get(User, world.users["organiser"].id), owner=True)
        db.session.commit()
        draft_id = draft.id

    bundle = make_bundle(tmp_path / "csrf-bundle", cases=3, seed=11, pool=8)
    archive = zip_of(bundle)
    with app.app_context():
        collaborator = add_member(
            db.session.get(Study, study.id), db.session.get(User, world.users["other_organiser"].id)
        )
        db.session.commit()
        collaborator = collaborator.id

    def design_of() -> str:
        return db.session.get(Study, draft_id).design

    def member_of(user_id: int) -> StudyMember | None:
        return db.session.scalar(select(StudyMember).filter_by(study_id=study.id, user_id=user_id))

    def case_form(client: FlaskClient) -> dict[str, Any]:
        page = client.get(case_url(study.id, 1, 1))
        assert page.status_code == 200
        return {"diagnosis": "mel", "confidence": "4", "token": token_of(page)}

    return {
        "settings.change_status": Post(
            "organiser",
            f"/admin/studies/{study.id}/close",
            lambda _: {},
            check(lambda: study_row().status == StudyStatus.CLOSED),
        ),
        "imports.import_study": Post(
            "organiser",
            "/admin/studies/import",
            lambda _: {"name": "Via CSRF", "upload": (io.BytesIO(archive), "bundle.zip")},
            check(lambda: db.session.scalar(select(Study).filter_by(name="Via CSRF")) is not None),
        ),
        "invitations.invitations": Post(
            "organiser",
            f"/admin/studies/{study.id}/invitations",
            lambda _: {"email": "csrf@example.org", "days": "3"},
            check(
                lambda: db.session.scalar(select(Invitation).filter_by(email="csrf@example.org"))
                is not None
            ),
        ),
        "readers.remind": Post(
            "organiser",
            f"/admin/studies/{study.id}/readers/{world.enrolment_id(study)}/remind",
            lambda _: mail_on(app),
            check(
                lambda: db.session.scalar(select(OutboxMessage).filter_by(kind="reminder"))
                is not None
            ),
        ),
        "invitations.resend_invitation": Post(
            "organiser",
            f"/admin/studies/{study.id}/invitations/{resent_id}/resend",
            lambda _: {},
            check(lambda: db.session.get(Invitation, resent_id).token_hash != resent_hash),
        ),
        "invitations.revoke_invitation": Post(
            "admin",
            f"/admin/studies/{study.id}/invitations/{revoked_id}/revoke",
            lambda _: {},
            check(lambda: db.session.get(Invitation, revoked_id) is None),
        ),
        "settings.study": Post(
            "admin",
            f"/admin/studies/{study.id}",
            lambda _: {"name": "Renamed", "washout_hours": "12", "information": "New text."},
            check(lambda: study_row().name == "Renamed"),
        ),
        "design.edit": Post(
            "organiser",
            f"/admin/studies/{draft_id}/design",
            lambda _: {
                "design": "crossover",
                "conditions-0-aid": "unaided",
                "conditions-1-aid": "se_cbir",
                "conditions-1-k": "6",
                "probe_share": "0",
            },
            check(lambda: design_of() == "crossover"),
        ),
        "design.preset": Post(
            "organiser",
            f"/admin/studies/{draft_id}/design/thesis",
            lambda _: {},
            check(lambda: design_of() == "sequential"),
        ),
        "studies.new_study": Post(
            "organiser",
            "/admin/studies/new",
            lambda _: {"source": str(study.id), "name": "A new one"},
            check(lambda: db.session.scalar(select(Study).filter_by(name="A new one")) is not None),
        ),
        "contact.reader_address": Post(
            "admin",
            f"/admin/studies/{study.id}/readers/{moved_id}/address",
            lambda _: {"email": "moved-on@example.org"},
            check(lambda: db.session.get(User, moved.id).email == "moved-on@example.org"),
        ),
        "contact.invitation_address": Post(
            "organiser",
            f"/admin/studies/{study.id}/invitations/{corrected_id}/address",
            lambda _: {"email": "corrected@example.org"},
            check(
                lambda: db.session.get(Invitation, corrected_id).email == "corrected@example.org"
            ),
        ),
        "contact.send_message_now": Post(
            "organiser",
            f"/admin/studies/{study.id}/mail/{message_id}/send",
            lambda _: mail_on(app),  # nobody listens: the attempt is made, and counted
            check(lambda: db.session.get(OutboxMessage, message_id).attempts == 1),
        ),
        "design.copy": Post(
            "organiser",
            f"/admin/studies/{study.id}/copy",
            lambda _: {"name": "A copy"},
            check(lambda: db.session.scalar(select(Study).filter_by(name="A copy")) is not None),
        ),
        "auth.invitation": Post(
            "anonymous",
            f"/invite/{invitation_token}",
            lambda _: {"name": "New", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            check(
                lambda: db.session.scalar(
                    select(Invitation.used_at).filter_by(token_hash=hash_token(invitation_token))
                )
                is not None
            ),
        ),
        "auth.forgot_password": Post(
            "anonymous",
            "/password/forgot",
            lambda _: ask_with_mail_on(app, world.users["admin"].email),
            check(
                lambda: db.session.scalar(select(OutboxMessage).filter_by(kind="reset")) is not None
            ),
        ),
        "auth.reset_password": Post(
            "anonymous",
            f"/password/reset/{reset_token}",
            lambda _: {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            check(lambda: db.session.get(User, forgetful_id).check_password(NEW_PASSWORD)),
        ),
        "auth.login": Post(
            "anonymous",
            "/login",
            lambda _: {"email": world.users["organiser"].email, "password": PASSWORD},
            logged_in,
        ),
        "auth.logout": Post("other_reader", "/logout", lambda _: {}, lambda c: not logged_in(c)),
        "auth.password": Post(
            "organiser",
            "/password",
            lambda _: {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            check(
                lambda: db.session.get(User, world.users["organiser"].id).check_password(
                    NEW_PASSWORD
                )
            ),
        ),
        "survey.shortcuts": Post(
            "reader",
            "/survey/preferences/shortcuts",
            lambda _: {"enabled": "0"},
            check(lambda: not db.session.get(User, world.users["reader"].id).shortcuts_enabled),
        ),
        "team.members": Post(
            "organiser",
            f"/admin/studies/{study.id}/team",
            lambda _: {"email": world.users["admin"].email},
            check(lambda: member_of(world.users["admin"].id) is not None),
        ),
        "team.remove": Post(
            "organiser",
            f"/admin/studies/{study.id}/team/{collaborator}/remove",
            lambda _: {},
            check(lambda: db.session.get(StudyMember, collaborator) is None),
        ),
        "survey.case": Post(
            "reader",
            case_url(study.id, 1, 1),
            case_form,
            check(lambda: db.session.scalar(select(func.count(Answer.id))) == 1),
        ),
        "survey.withdraw_page": Post(
            "leaver",
            f"/survey/{study.id}/withdraw",
            lambda _: {"confirm": "yes"},
            check(lambda: withdrawn_by(leaver) == "reader"),
        ),
        "readers.mark_withdrawn": Post(
            "organiser",
            f"/admin/studies/{study.id}/readers/{marked_id}/withdraw",
            lambda _: {"confirm": "yes"},
            check(lambda: withdrawn_by(marked) == "organiser"),
        ),
        # The preview keeps nothing: what it does is go on, saying that nothing was saved.
        "survey.preview": Post(
            "organiser", f"/survey/{study.id}/preview/", lambda _: CONSENT, preview_went_on
        ),
        "survey.preview_case": Post(
            "organiser",
            f"/survey/{study.id}/preview/case/1",
            lambda _: {"diagnosis": "mel", "confidence": "3"},
            preview_went_on,
        ),
        "survey.welcome": Post(
            "newcomer",
            f"/survey/{study.id}/",
            lambda _: CONSENT,
            check(
                lambda: db.session.scalar(select(Enrolment).filter_by(user_id=newcomer.id))
                is not None
            ),
        ),
    }


def mail_on(app: Flask) -> dict[str, Any]:
    """Switch e-mail on (messages are queued; nothing is sent here); no form data."""
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    return {}


def ask_with_mail_on(app: Flask, email: str) -> dict[str, Any]:
    """The forgotten-password form's data, with e-mail switched on (it queues, sends nothing)."""
    return {**mail_on(app), "email": email}


def join_newcomer(world: World, role: str = "newcomer", enrolled: bool = False) -> UserRef:
    """A reader of the study with a session in `world` as `role`, who has not consented yet
    (or, `enrolled`, has)."""
    with world.app.app_context():
        from app.auth import create_user

        user = create_user(f"{role}@example.org", Role.READER, password=PASSWORD)
        db.session.commit()
        ref = UserRef(user.id, user.email, PASSWORD, user.role, user.pseudonym)
    join_study(world.app, ref, world.study)
    if enrolled:
        with world.app.app_context():
            enrol(db.session.get(Study, world.study.id), db.session.get(User, ref.id))
    client = world.app.test_client()
    response = client.post("/login", data={"email": ref.email, "password": PASSWORD})
    assert response.status_code == 302
    world.cookies[role] = client.get_cookie("session").value
    return ref


def post_endpoints(app: Flask) -> set[str]:
    """Every endpoint that takes POST."""
    return {rule.endpoint for rule in app.url_map.iter_rules() if "POST" in rule.methods}


def withdrawn_by(reader: UserRef) -> str | None:
    """Who recorded the reader's withdrawal from their (only) study; None if nobody did."""
    return db.session.scalars(select(Enrolment.withdrawn_by).filter_by(user_id=reader.id)).one()


def preview_went_on(client: FlaskClient) -> bool:
    """Whether a preview form was taken (and, storing nothing, said so in a flash)."""
    with client.session_transaction() as session:
        flashes = session.get("_flashes", [])
        session.pop("_flashes", None)
    return any("nothing was saved" in message for _, message in flashes)


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token(
    world: World, tmp_path: Path, scratch: Path
) -> None:
    app = world.app
    scenarios = csrf_scenarios(world, tmp_path)
    assert set(scenarios) == post_endpoints(app), "a POST route has no CSRF scenario here"
    app.config["WTF_CSRF_ENABLED"] = True
    foreign = csrf_token_of(app.test_client())  # a valid token of somebody else's session
    # Closing the study last: the reader's answer needs it open.
    for endpoint in sorted(scenarios, key=lambda e: (e == "settings.change_status", e)):
        post = scenarios[endpoint]
        client = world.client(post.role)
        token = csrf_token_of(client)
        for bad in ({}, {"csrf_token": foreign}, {"csrf_token": token[:-4] + "AAAA"}):
            data = {**post.data(client), **bad}  # (may open a page, which may write)
            before = dump(app)
            response = client.post(post.url, data=data)
            assert response.status_code == 400, (endpoint, bad, response.status_code)
            assert "security token" in response.text, endpoint
            assert dump(app) == before, f"{endpoint} wrote without a valid CSRF token"
            assert not post.done(client), endpoint
        # The same request with the token does write: the refusals above were about the token.
        response = client.post(post.url, data={**post.data(client), "csrf_token": token})
        assert response.status_code in (200, 302, 303), (endpoint, response.status_code)
        assert post.done(client), f"{endpoint} did nothing even with its CSRF token"
        if endpoint == "auth.password":  # a new password ends the role's other sessions
            world.cookies[post.role] = client.get_cookie("session").value


# ---------------------------------------------------------------- cookies and proxies


def make_app(tmp_path: Path, **overrides: Any) -> Flask:
    """A separate app on its own SQLite file (for settings a test must choose up front)."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'own.sqlite'}",
        "STUDY_IMAGES": str(tmp_path / "own-images"),
        **overrides,
    }
    application = create_app(TestConfig, settings)
    with application.app_context():
        db.create_all()
        from app.auth import create_user

        create_user("staff@example.org", Role.ORGANISER, password=PASSWORD)
        db.session.commit()
    return application


def session_set_cookie(response: TestResponse) -> str:
    """The Set-Cookie header of the session cookie."""
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_session_cookie_is_httponly_and_samesite(client: FlaskClient, organiser) -> None:
    response = client.post("/login", data={"email": organiser.email, "password": PASSWORD})
    cookie = session_set_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the test configuration speaks plain HTTP


def test_session_cookie_is_secure_when_configured(tmp_path: Path) -> None:
    application = make_app(tmp_path, SESSION_COOKIE_SECURE=True)
    response = application.test_client().post(
        "/login", data={"email": "staff@example.org", "password": PASSWORD}
    )
    cookie = session_set_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("value, secure", [("1", True), ("0", False), (None, False)])
def test_session_cookie_secure_follows_the_environment(value: str | None, secure: bool) -> None:
    # Config reads the environment when imported, so a fresh interpreter checks it.
    env = {k: v for k, v in os.environ.items() if k != "SESSION_COOKIE_SECURE"}
    if value is not None:
        env["SESSION_COOKIE_SECURE"] = value
    code = "from app.config import Config; print(Config.SESSION_COOKIE_SECURE)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(secure)


FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def network_counters(application: Flask) -> dict[str, int]:
    """Failed logins counted per network address."""
    with application.app_context():
        rows = db.session.execute(select(AttemptCounter.key, AttemptCounter.hits)).all()
        return {key.removeprefix("i:"): hits for key, hits in rows if key.startswith("i:")}


def failed_login_address(application: Flask, headers: dict[str, str]) -> str:
    """The address a failed login is counted against."""
    before = network_counters(application)
    application.test_client().post(
        "/login", data={"email": "staff@example.org", "password": "wrong one"}, headers=headers
    )
    after = network_counters(application)
    (address,) = [ip for ip, hits in after.items() if hits > before.get(ip, 0)]
    return address


def test_proxy_headers_are_ignored_without_proxy_fix(tmp_path: Path) -> None:
    application = make_app(tmp_path)
    assert failed_login_address(application, FORGED) == "127.0.0.1"
    response = application.test_client().get("/login", headers=FORGED)
    assert "Strict-Transport-Security" not in response.headers  # not HTTPS, whatever it says
    # Rotating a forged X-Forwarded-For does not escape the per-address count.
    client = application.test_client()
    for number in range(IP_MAX_FAILURES):
        client.post(
            "/login",
            data={"email": f"u{number}@example.org", "password": "wrong one"},
            headers={"X-Forwarded-For": f"198.51.100.{number}"},
        )
    assert set(network_counters(application)) == {"127.0.0.1"}
    with application.app_context():
        assert ip_counter_of("127.0.0.1") == IP_MAX_FAILURES + 1


def test_proxy_headers_are_honoured_with_proxy_fix(tmp_path: Path) -> None:
    application = make_app(tmp_path, PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1)
    assert failed_login_address(application, FORGED) == "203.0.113.9"
    # One trusted hop: only the address our proxy appended counts, not what the client wrote.
    spoofed = {"X-Forwarded-For": "192.0.2.66, 203.0.113.10"}
    assert failed_login_address(application, spoofed) == "203.0.113.10"
    response = application.test_client().get("/login", headers=FORGED)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    login = application.test_client().post(
        "/login", data={"email": "staff@example.org", "password": PASSWORD}, headers=FORGED
    )
    assert login.status_code == 302


# ---------------------------------------------------------------- security headers


def csp_directives(response: TestResponse) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: sources}."""
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def check_security_headers(label: str, response: TestResponse) -> None:
    """A strict CSP (no inline script or style), no framing, no sniffing, a Referrer-Policy."""
    csp = csp_directives(response)
    assert csp, f"{label}: no Content-Security-Policy"
    default = csp.get("default-src")
    assert default is not None and "*" not in default, (label, csp)
    for kind in ("script-src", "style-src"):
        sources = csp.get(kind, default)
        for unsafe in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
            assert unsafe not in sources, (label, kind, sources)
    assert csp.get("frame-ancestors") == ["'none'"], (label, csp)
    assert csp.get("object-src", default) in (["'none'"], ["'self'"]), (label, csp)
    assert response.headers.get("X-Content-Type-Options") == "nosniff", label
    assert response.headers.get("Referrer-Policy") in (
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ), label


def responses_of_every_kind(world: World) -> Iterator[tuple[str, TestResponse]]:
    """A response of each type the app sends: pages, errors, redirects, files, downloads."""
    study = world.study
    anonymous, reader, staff = (
        world.client("anonymous"),
        world.client("reader"),
        world.client("organiser"),
    )
    json = {"Accept": "application/json"}
    yield "HTML page", anonymous.get("/login")
    yield "redirect", anonymous.get("/admin/")
    yield "HTML 404", anonymous.get("/no/such/page")
    yield "JSON 404", anonymous.get("/no/such/page", headers=json)
    yield "HTML 403", reader.get("/admin/")
    yield "JSON 403", reader.get("/admin/", headers=json)
    yield "HTML 405", anonymous.get("/logout")
    yield "HTML 400", staff.post(f"/admin/studies/{study.id}", data={})
    yield "health JSON", anonymous.get("/health")
    yield "stylesheet", anonymous.get("/static/css/app.css")
    yield "script", anonymous.get("/static/js/survey.js")
    yield "study image", reader.get(f"/images/{world.image}.jpg")
    yield "class colours", reader.get(f"/survey/{study.id}/classes.css")
    yield "case page", reader.get(case_url(study.id, 1, 1))
    yield "invitation page", anonymous.get(f"/invite/{world.fresh_invitation()[1]}")
    yield "invalid invitation", anonymous.get("/invite/nonsense")
    yield "dashboard", staff.get(f"/dashboard/{study.id}/")
    yield "CSV export", staff.get(f"/dashboard/{study.id}/export/responses")
    yield "JSON export", staff.get(f"/dashboard/{study.id}/export/summary-json")
    yield "PNG download", staff.get(f"/dashboard/{study.id}/confusion-task1.png")
    yield "SVG download", staff.get(f"/dashboard/{study.id}/confusion-task2.svg")
    yield "study report", staff.get(f"/dashboard/{study.id}/report.html")
    world.app.config["MAX_CONTENT_LENGTH"] = 1000
    yield "413", staff.post("/admin/studies/import", data={"name": "x" * 5000})
    world.app.config["WTF_CSRF_ENABLED"] = True
    yield "CSRF 400", anonymous.post("/login", data={"email": "a@b.cd", "password": "x"})


def test_security_headers_on_every_kind_of_response(world: World) -> None:
    seen = set()
    for label, response in responses_of_every_kind(world):
        assert response.status_code < 500, label
        check_security_headers(label, response)
        seen.add(response.mimetype)
    assert {"text/html", "application/json", "image/jpeg", "text/css", "text/csv"} <= seen
    assert {"image/png", "image/svg+xml", "text/javascript"} & seen


def test_security_headers_on_a_server_error(tmp_path: Path) -> None:
    application = make_app(tmp_path, PROPAGATE_EXCEPTIONS=False)

    @application.get("/boom")
    def boom() -> str:
        raise RuntimeError("a bug")

    client = application.test_client()
    for headers in ({}, {"Accept": "application/json"}):
        response = client.get("/boom", headers=headers)
        assert response.status_code == 500
        assert "a bug" not in response.text  # no details of the failure reach the client
        check_security_headers(f"500 {headers}", response)


def test_invitation_pages_send_no_referrer(world: World) -> None:
    # The token is in the URL: links on the page must not pass it on.
    response = world.client("anonymous").get(f"/invite/{world.fresh_invitation()[1]}")
    assert response.headers["Referrer-Policy"] == "no-referrer"


# ---------------------------------------------------------------- markup of every page


SCHEMES = ("javascript:", "data:text", "vbscript:")


class MarkupCheck(HTMLParser):
    """Collects what a strict CSP would block, and POST forms without a CSRF token.

    A <style> element passes only when the page's own CSP allows it by the hash of its text
    (`allowed_styles`: the style-src sources, as the study report sends them)."""

    def __init__(self, allowed_styles: Sequence[str] = ()) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.in_script = False
        self.style: list[str] | None = None  # the text of the <style> element being read
        self.allowed_styles = set(allowed_styles)
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Inspect one start tag and its attributes."""
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name == "style":
                self.problems.append(f"style= on <{tag}>")
            link = (value or "").strip().lower()
            if name in ("href", "src", "action", "formaction") and link.startswith(SCHEMES):
                self.problems.append(f"{name}={value!r} on <{tag}>")
        if tag == "script":
            self.in_script = True
            source = values.get("src") or ""
            if not source:
                self.problems.append("inline <script>")
            elif not source.startswith("/static/"):
                self.problems.append(f"script from {source!r}")
        if tag == "style":
            self.style = []
        if tag in ("iframe", "object", "embed", "base"):
            self.problems.append(f"<{tag}> element")
        if tag == "link" and "stylesheet" in (values.get("rel") or ""):
            href = values.get("href") or ""
            if not href.startswith("/"):
                self.problems.append(f"stylesheet from {href!r}")
        if tag == "form":
            self.forms.append({"method": (values.get("method") or "get").lower(), "csrf": False})
        if tag == "input" and values.get("name") == "csrf_token" and self.forms:
            self.forms[-1]["csrf"] = bool(values.get("value"))

    def handle_endtag(self, tag: str) -> None:
        """Leave a script element; judge a style element by the hash of its text."""
        if tag == "script":
            self.in_script = False
        if tag == "style" and self.style is not None:
            digest = hashlib.sha256("".join(self.style).encode()).digest()
            if f"'sha256-{base64.b64encode(digest).decode()}'" not in self.allowed_styles:
                self.problems.append("<style> element")
            self.style = None

    def handle_data(self, data: str) -> None:
        """Text inside a <script> element is inline script; a <style>'s text is kept."""
        if self.in_script and data.strip():
            self.problems.append("inline script body")
        if self.style is not None:
            self.style.append(data)


def markup_problems(html: str, csrf_on: bool, allowed_styles: Sequence[str] = ()) -> list[str]:
    """What is wrong with a page's markup (`allowed_styles`: its CSP's style-src)."""
    parser = MarkupCheck(allowed_styles)
    parser.feed(html)
    parser.close()
    problems = list(parser.problems)
    if csrf_on:
        for form in parser.forms:
            if form["method"] == "post" and not form["csrf"]:
                problems.append("a POST form without a CSRF token")
    return problems


def reader_walk(world: World, clock: FakeClock) -> list[tuple[str, TestResponse]]:
    """A second reader's whole way through both tasks, with a mistake, every response kept."""
    app, study = world.app, world.study
    newcomer = join_newcomer(world)
    client = world.client("newcomer")
    kept: list[tuple[str, TestResponse]] = []

    def get(url: str) -> TestResponse:
        response = client.get(url)
        kept.append((url, response))
        return response

    get(f"/survey/{study.id}/")
    kept.append(("consent forgotten", client.post(f"/survey/{study.id}/", data={})))
    assert client.post(f"/survey/{study.id}/", data=CONSENT).status_code == 303
    with app.app_context():
        size = study_size(newcomer, study)
    for task in (1, 2):
        get(f"/survey/{study.id}/task/{task}/")
        for number in range(1, size + 1):
            page = get(case_url(study.id, task, number))
            data = {"diagnosis": "bkl", "confidence": "2", "token": token_of(page)}
            if number == 1:
                wrong = client.post(
                    case_url(study.id, task, number), data={**data, "diagnosis": ""}
                )
                kept.append(("answer without a diagnosis", wrong))
            assert client.post(case_url(study.id, task, number), data=data).status_code == 303
        get(f"/survey/{study.id}/task/{task}/done")
        if task == 1:
            get(f"/survey/{study.id}/task/2/")  # during the wash-out
            clock.advance(hours=24, seconds=1)
    get("/survey/")
    return kept


def study_size(user: UserRef, study: StudyRef) -> int:
    """How many cases `user` has per task (inside an app context)."""
    enrolment = db.session.scalar(select(Enrolment).filter_by(user_id=user.id, study_id=study.id))
    return db.session.scalar(
        select(func.count(Assignment.id)).filter_by(enrolment_id=enrolment.id, session=1)
    )


def test_no_page_any_role_reaches_has_inline_script_or_style(
    world: World, clock: FakeClock
) -> None:
    pages: list[tuple[str, TestResponse, bool]] = []
    for label, response in reader_walk(world, clock):
        pages.append((label, response, False))
    staff = world.client("organiser")
    link_page = staff.post(
        f"/admin/studies/{world.study.id}/invitations", data={"email": "x@example.org", "days": 3}
    )
    pages.append(("invitation created", link_page, False))
    # With CSRF on, as in production: every role, every route of the matrix, GET and POST.
    world.app.config["WTF_CSRF_ENABLED"] = True
    for _, method, role, url, response in requests_of(world):
        pages.append((f"{method} {url} as {role}", response, True))
    for query in ("?completed=1", "?identify=1"):
        pages.append(
            (f"dashboard {query}", staff.get(f"/dashboard/{world.study.id}/{query}"), True)
        )
    with world.app.app_context():
        used = db.session.scalars(select(Invitation).where(Invitation.used_at.is_not(None))).first()
        assert used is not None
    html_pages = 0
    for label, response, csrf_on in pages:
        if response.mimetype != "text/html":
            continue
        html_pages += 1
        styles = csp_directives(response).get("style-src", [])
        problems = markup_problems(response.get_data(as_text=True), csrf_on, styles)
        assert not problems, (label, response.status_code, problems)
    assert html_pages > 150


def test_the_markup_check_finds_what_it_looks_for() -> None:
    bad = (
        '<p style="color:red" onclick="x()">a</p><script>alert(1)</script>'
        '<a href="javascript:alert(1)">b</a><form method="post"></form><style>p{}</style>'
    )
    problems = markup_problems(bad, csrf_on=True)
    assert len(problems) == 7, problems
    good = '<script src="/static/js/survey.js"></script><form method="post">'
    good += '<input type="hidden" name="csrf_token" value="abc"></form>'
    assert markup_problems(good, csrf_on=True) == []


# ---------------------------------------------------------------- login throttling


@pytest.mark.parametrize("known", [True, False], ids=["known e-mail", "unknown e-mail"])
def test_repeated_failures_lock_the_address_guessed_not_the_network(
    client: FlaskClient, organiser: UserRef, known: bool, clock: FakeClock
) -> None:
    email = organiser.email if known else "nobody@example.org"
    statuses = []
    for attempt in range(IP_MAX_FAILURES):
        guess = f"{email.split('@')[0]}{attempt}@example.org" if attempt % 2 else email
        statuses.append(
            client.post("/login", data={"email": guess, "password": "wrong guess"}).status_code
        )
    assert set(statuses) <= {401, 429} and statuses[0] == 401
    # The guessed address is locked now, with a sentence saying why and for how long.
    refused = client.post("/login", data={"email": email, "password": PASSWORD})
    assert refused.status_code == 429
    assert "locked" in refused.text and "15 minutes" in refused.text
    assert not logged_in(client)
    # Another account behind the same address still logs in (issue 13: one guesser must not
    # lock out a whole hospital); the guessed one waits out its lock.
    right = client.post("/login", data={"email": organiser.email, "password": PASSWORD})
    assert right.status_code == (429 if known else 302)
    clock.advance(minutes=16)
    client.post("/logout")
    assert (
        client.post("/login", data={"email": organiser.email, "password": PASSWORD}).status_code
        == 302
    )


def test_the_lock_does_not_tell_which_accounts_exist(app: Flask, organiser: UserRef) -> None:
    answers = []
    for email in (organiser.email, "nobody@example.org"):
        client = app.test_client()
        # Another address per e-mail: only the per-account rule is at work.
        environ = {"REMOTE_ADDR": "10.0.0.1" if email == organiser.email else "10.0.0.2"}
        for _ in range(MAX_FAILURES):
            client.post(
                "/login", data={"email": email, "password": "wrong guess"}, environ_base=environ
            )
        last = client.post(
            "/login", data={"email": email, "password": "wrong guess"}, environ_base=environ
        )
        answers.append((last.status_code, "locked" in last.text))
    assert answers[0] == answers[1], answers


# ---------------------------------------------------------------- open redirects

EVIL_NEXT = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "//localhost@evil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
]


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_next_never_leads_off_the_site(
    client: FlaskClient, organiser: UserRef, target: str
) -> None:
    query = "?next=" + quote(target, safe="")
    response = client.post("/login" + query, data={"email": organiser.email, "password": PASSWORD})
    assert response.status_code == 302
    assert stays_here(response.headers["Location"]), response.headers["Location"]
    again = client.get("/login" + query)  # already logged in: the same rule
    assert again.status_code == 302 and stays_here(again.headers["Location"])


def test_a_local_next_is_followed_and_not_reflected_unescaped(
    client: FlaskClient, organiser: UserRef
) -> None:
    page = client.get("/login?next=" + quote('/admin/"><script>alert(1)</script>', safe=""))
    assert "<script>alert(1)" not in page.text
    response = client.post(
        "/login?next=%2Fadmin%2Fstudies%2Fimport",
        data={"email": organiser.email, "password": PASSWORD},
    )
    assert response.headers["Location"] == "/admin/studies/import"


# ---------------------------------------------------------------- invitations


def new_invitation(app: Flask, study: StudyRef, email: str, days: int = 14) -> tuple[int, str]:
    """An invitation's id and token."""
    with app.app_context():
        invitation, token = create_invitation(db.session.get(Study, study.id), email, days=days)
        db.session.commit()
        return invitation.id, token


ACCEPT = {"name": "Dr First", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}


def test_an_invitation_link_works_once(app: Flask, study: StudyRef, clock: FakeClock) -> None:
    _, token = new_invitation(app, study, "first@example.org")
    assert token not in str(dump(app)) and hash_token(token) in str(dump(app))
    first = app.test_client()
    assert first.post(f"/invite/{token}", data=ACCEPT).status_code == 302
    # Whoever has the link later (a forwarded e-mail) can neither use it nor reset the password.
    intruder = app.test_client()
    assert intruder.get(f"/invite/{token}").status_code == 410
    second = {"name": "Intruder", "password": "intruder password", "confirm": "intruder password"}
    before = dump(app)
    response = intruder.post(f"/invite/{token}", data=second)
    assert response.status_code == 410 and "already been used" in response.text
    assert dump(app) == before
    assert not logged_in(intruder)
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email="first@example.org"))
        assert user.check_password(NEW_PASSWORD) and user.name == "Dr First"


def test_an_invitation_link_expires_to_the_second(
    app: Flask, study: StudyRef, clock: FakeClock
) -> None:
    invitation_id, token = new_invitation(app, study, "late@example.org", days=2)
    with app.app_context():
        expires = db.session.get(Invitation, invitation_id).expires_at
    client = app.test_client()
    clock.set(expires.replace(microsecond=0) - timedelta(seconds=1))
    assert client.get(f"/invite/{token}").status_code == 200
    clock.set(expires)
    before = dump(app)
    assert client.get(f"/invite/{token}").status_code == 410
    response = client.post(f"/invite/{token}", data=ACCEPT)
    assert response.status_code == 410 and "expired" in response.text
    assert dump(app) == before and not logged_in(client)


def test_a_revoked_or_altered_link_is_refused(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    invitation_id, token = new_invitation(app, study, "gone@example.org")
    staff = app.test_client()
    login(staff, organiser)
    staff.post(f"/admin/studies/{study.id}/invitations/{invitation_id}/revoke")
    client = app.test_client()
    assert client.get(f"/invite/{token}").status_code == 404
    _, live = new_invitation(app, study, "live@example.org")
    for altered in (live[:-1], live + "x", live.upper(), live[::-1]):
        before = dump(app)
        assert client.post(f"/invite/{quote(altered)}", data=ACCEPT).status_code == 404
        assert dump(app) == before


# ---------------------------------------------------------------- size limits


def test_an_upload_over_the_limit_is_413_and_writes_nothing(
    app: Flask, organiser: UserRef, login: Callable, tmp_path: Path, scratch: Path
) -> None:
    client = app.test_client()
    login(client, organiser)
    archive = zip_of(make_bundle(tmp_path / "big", cases=3, seed=12, pool=8))
    app.config["MAX_CONTENT_LENGTH"] = len(archive) // 2
    before = dump(app)
    response = client.post(
        "/admin/studies/import",
        data={"name": "Too big", "upload": (io.BytesIO(archive), "bundle.zip")},
    )
    assert response.status_code == 413
    assert dump(app) == before
    assert files_under(Path(app.config["STUDY_IMAGES"])) == files_under(tmp_path / "none")
    assert files_under(scratch) == []


@pytest.mark.parametrize(
    "member",
    [
        "../zipslip",
        "bundle/../../zipslip",
        "/tmp/zipslip-secbir",
        "..\\zipslip",
        "bundle\\..\\..\\zipslip",
        "C:/zipslip",
        "bundle/../../../zipslip",
    ],
)
def test_an_unsafe_member_path_is_refused(
    app: Flask, organiser: UserRef, login: Callable, tmp_path: Path, scratch: Path, member: str
) -> None:
    bundle = make_bundle(tmp_path / "sneaky", cases=3, seed=13, pool=8)
    archive = zip_of(bundle, {member: b"overwrite me"})
    client = app.test_client()
    login(client, organiser)
    before = dump(app)
    response = client.post(
        "/admin/studies/import",
        data={"name": "Sneaky", "upload": (io.BytesIO(archive), "bundle.zip")},
    )
    if member.startswith("C:"):  # a harmless relative folder named "C:" on POSIX: allowed
        assert response.status_code in (302, 400)
    else:
        assert response.status_code == 400 and "unsafe path" in response.text
        assert dump(app) == before
    for folder in (scratch, tmp_path, tmp_path.parent):
        assert not (folder / "zipslip").exists()
    assert not Path("/tmp/zipslip-secbir").exists()
    assert files_under(scratch) == []


def test_a_symbolic_link_member_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("bundle/manifest.json")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        extract_zip(io.BytesIO(buffer.getvalue()), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_a_zip_claiming_more_than_the_unpacked_limit_is_refused_unopened(tmp_path: Path) -> None:
    archive = zip_of(make_bundle(tmp_path / "b", cases=3, seed=14, pool=8), {"bomb": b"0" * 1000})
    forged = declared_size(archive, "bomb", 0xFFFFFFFF)  # 4 GB, above the 2 GB limit
    with pytest.raises(BundleError, match="more than"):
        extract_zip(io.BytesIO(forged), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_a_member_larger_than_it_claims_is_refused(tmp_path: Path) -> None:
    # A zip bomb that lies about its size: unpacking stops at the claimed size and fails.
    archive = zip_of(
        make_bundle(tmp_path / "b", cases=3, seed=15, pool=8), {"bundle/bomb.bin": bytes(20 << 20)}
    )
    forged = declared_size(archive, "bundle/bomb.bin", 100)
    with pytest.raises(BundleError):
        extract_zip(io.BytesIO(forged), tmp_path / "out")
    assert sum(p.stat().st_size for p in files_under(tmp_path / "out")) < 2 << 20


def test_a_member_larger_than_any_bundle_file_is_refused_before_unpacking(
    app: Flask, organiser: UserRef, login: Callable, tmp_path: Path, scratch: Path
) -> None:
    archive = zip_of(
        make_bundle(tmp_path / "b", cases=3, seed=16, pool=8), {"bundle/huge.bin": b"0" * 1000}
    )
    forged = declared_size(archive, "bundle/huge.bin", 1 << 30)  # claims 1 GB: a zip bomb
    client = app.test_client()
    login(client, organiser)
    before = dump(app)
    response = client.post(
        "/admin/studies/import", data={"name": "Bomb", "upload": (io.BytesIO(forged), "b.zip")}
    )
    assert response.status_code == 400
    assert dump(app) == before


@pytest.mark.parametrize(
    "name, size, message",
    [
        ("manifest.json", (1 << 20) + 1, "manifest.json is larger than 1 MB"),
        ("queries.json", (32 << 20) + 1, "queries.json is larger than 32 MB"),
        ("image", (8 << 20) + 1, "larger than 8 MB"),
    ],
)
def test_oversized_bundle_files_are_refused_before_reading(
    app: Flask, tmp_path: Path, name: str, size: int, message: str
) -> None:
    folder = make_bundle(tmp_path / "fat", cases=3, seed=17, pool=8)
    target = folder / name if name != "image" else sorted((folder / "images").iterdir())[0]
    os.truncate(target, size)  # sparse: costs no disk and no time
    before = dump(app)
    with app.app_context(), pytest.raises(BundleError, match=re.escape(message)):
        import_bundle(folder, "Fat", app.config["STUDY_IMAGES"])
    assert dump(app) == before
    assert files_under(Path(app.config["STUDY_IMAGES"])) == []


@pytest.mark.parametrize(
    "field, value", [("name", "n" * 201), ("information", "i" * 20001), ("washout_hours", "1e9")]
)
def test_study_settings_have_limits(
    app: Flask, study: StudyRef, organiser: UserRef, login: Callable, field: str, value: str
) -> None:
    client = app.test_client()
    login(client, organiser)
    data = {"name": "Fine", "cases_per_reader": "5", "washout_hours": "1", "sampling": "random"}
    before = dump(app)
    assert client.post(f"/admin/studies/{study.id}", data={**data, field: value}).status_code == 400
    assert dump(app) == before


# ---------------------------------------------------------------- what a reader receives

METADATA_MARKERS = {0xE1: "APP1 (EXIF/XMP)", 0xE2: "APP2", 0xED: "APP13 (IPTC)", 0xFE: "COM"}


def jpeg_metadata(data: bytes) -> list[str]:
    """The metadata segments of a JPEG before its image data."""
    found, position = [], 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:
            break
        if marker in METADATA_MARKERS or 0xE3 <= marker <= 0xEF:
            found.append(METADATA_MARKERS.get(marker, f"APP{marker - 0xE0}"))
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return found


def secret_strings(app: Flask, study: StudyRef) -> set[str]:
    """Every id and case key a reader must not receive, in the forms they could appear."""
    with app.app_context():
        cases = db.session.scalars(select(Case).where(Case.study_id == study.id)).all()
        found = set()
        for case in cases:
            found |= {case.image_id, case.lesion_id, case.case_key}
            found |= {n.image_id for n in case.neighbours} | {n.lesion_id for n in case.neighbours}
    return found | {s.lower() for s in found}


def test_images_headers_and_static_files_reveal_no_ids(world: World, clock: FakeClock) -> None:
    secrets = secret_strings(world.app, world.study)
    kept = reader_walk(world, clock)
    client = world.client("newcomer")
    image_urls = set()
    query_images, neighbour_images = set(), set()
    for _, response in kept:
        html = response.get_data(as_text=True)
        # Similar images are shown as right-sized copies (?w=240): those are fetched too.
        image_urls |= set(re.findall(r'src="(/images/[0-9a-f]{32}\.jpg(?:\?w=\d+)?)"', html))
        section = re.search(r'<section class="neighbours".*?</section>', html, re.S)
        if section:
            # Compared by file, whatever size is asked for.
            named = r'src="(/images/[0-9a-f]{32}\.jpg)'
            neighbour_images |= set(re.findall(named, section.group(0)))
            query_images |= set(re.findall(named, html)) - set(re.findall(named, section.group(0)))
        headers = str(response.headers)
        assert not [s for s in secrets if s in headers], headers
    assert len(image_urls) > 20
    # A labelled neighbour is never the very file shown as a query (its label would be the truth).
    assert query_images and neighbour_images and not query_images & neighbour_images
    for url in sorted(image_urls):
        image = client.get(url)
        assert image.status_code == 200, url
        body = image.data
        assert jpeg_metadata(body) == [], (url, jpeg_metadata(body))
        for secret in secrets:
            for encoding in ("ascii", "utf-16-le", "utf-16-be"):
                assert secret.encode(encoding) not in body, (url, secret)
        assert not [s for s in secrets if s in str(image.headers)], image.headers
        assert "Content-Disposition" not in image.headers
    statics = sorted(p for p in STATIC.rglob("*") if p.is_file())
    assert statics
    for path in statics:
        response = client.get("/static/" + path.relative_to(STATIC).as_posix())
        assert response.status_code == 200, path
        # Text files, and the favicon (bytes: read as Latin-1 to search them all the same).
        text = response.get_data().decode("latin-1") + str(response.headers)
        assert not [s for s in secrets if s in text], path
        assert "ISIC_" not in text and "HAM_" not in text, path


def test_a_bundle_image_with_metadata_is_never_served(app: Flask, tmp_path: Path) -> None:
    # Ids hidden in an image's EXIF or comment would reach readers: the import refuses them.
    folder = make_bundle(tmp_path / "exif", cases=3, seed=18, pool=8)
    queries = (folder / "queries.json").read_text()
    name = re.search(r'"images/([0-9a-f]{32}\.jpg)"', queries).group(1)
    path = folder / "images" / name
    data = path.read_bytes()
    comment = b"ISIC_Q1800000"
    tagged = data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
    path.write_bytes(tagged)
    with app.app_context(), pytest.raises(BundleError):
        import_bundle(folder, "Tagged", app.config["STUDY_IMAGES"])
    assert count(app, Study) == 0 and count(app, Neighbour) == 0
