"""Who may reach which route: every endpoint of `app.url_map`, for GET and POST, per role.

The table below names the expected status of every (endpoint, method, role). The test walks
the application's URL map, so a route added later without a row here makes it fail, as does
a row whose route was removed. URLs are built with real ids: the study, a case image, a
fresh invitation token or id per request. Readers never reach the organisers' pages, the
dashboard or its downloads; a reader of another study reaches none of this study's pages
or images.

The sessions and URLs come from the shared `world` fixture (tests/app/world.py, built in
conftest); `requests_of` is reused by test_security (CSRF, headers, markup of every page).
"""

from collections.abc import Iterator

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import db
from app.models import Invitation
from tests.app.conftest import StudyRef
from tests.app.world import World

ROLES = ("anonymous", "reader", "other_reader", "organiser", "other_organiser", "admin")
METHODS = ("GET", "POST")
READERS = ("reader", "other_reader")
NO = 405  # the route does not take this method

# Expected status per role, in the order of ROLES. The organiser owns the study, the other
# organiser runs only the other study: to them this study does not exist (404); admins see all.
STAFF_PAGE = (302, 403, 403, 200, 404, 200)
STAFF_FORM_POST = (302, 403, 403, 400, 404, 400)  # an empty form: refused, nothing written
STAFF_ACTION_POST = (302, 403, 403, 302, 404, 302)
STAFF_ANY_PAGE = (302, 403, 403, 200, 200, 200)  # not about one study
READER_PAGE = (302, 200, 404, 403, 403, 403)
# What a study's readers and its staff both see: staff through "preview as a reader".
SHOWN_PAGE = (302, 200, 404, 200, 404, 200)
# The preview's forms keep nothing: staff of the study go on to the next page.
PREVIEW_POST = (302, 403, 403, 303, 404, 303)
NOT_ALLOWED = (NO,) * 6

MATRIX: dict[str, dict[str, tuple[int, ...]]] = {
    "settings.change_status": {"GET": NOT_ALLOWED, "POST": STAFF_ACTION_POST},
    # A finished import of the study: its starter (and admins) go on to the study; for any
    # other organiser the job does not exist.
    "imports.import_job": {"GET": (302, 403, 403, 302, 404, 302), "POST": NOT_ALLOWED},
    "imports.import_study": {"GET": STAFF_ANY_PAGE, "POST": (302, 403, 403, 400, 400, 400)},
    "invitations.invitations": {"GET": STAFF_PAGE, "POST": STAFF_FORM_POST},
    "settings.confirm_close": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    # The design frozen at the first opening, as a download: staff of the study only.
    "settings.design_json": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    "readers.remind": {"GET": NOT_ALLOWED, "POST": STAFF_ACTION_POST},
    "readers.readers": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    # Without the confirmation's "yes", nothing is recorded.
    "readers.mark_withdrawn": {"GET": STAFF_PAGE, "POST": STAFF_FORM_POST},
    # An empty form: a new link, shown on the page (200) to staff of the study.
    "invitations.resend_invitation": {"GET": NOT_ALLOWED, "POST": (302, 403, 403, 200, 404, 200)},
    "invitations.revoke_invitation": {"GET": NOT_ALLOWED, "POST": STAFF_ACTION_POST},
    "studies.studies": {"GET": STAFF_ANY_PAGE, "POST": NOT_ALLOWED},
    # An empty form: no study chosen, nothing copied.
    "studies.new_study": {"GET": STAFF_ANY_PAGE, "POST": (302, 403, 403, 400, 400, 400)},
    "contact.reader_address": {"GET": STAFF_PAGE, "POST": STAFF_FORM_POST},
    "contact.invitation_address": {"GET": STAFF_PAGE, "POST": STAFF_FORM_POST},
    # No MAIL_SERVER here: the page says so, nothing is sent.
    "contact.send_message_now": {"GET": NOT_ALLOWED, "POST": (302, 403, 403, 303, 404, 303)},
    "favicon": {"GET": (200,) * 6, "POST": NOT_ALLOWED},
    "settings.study": {"GET": STAFF_PAGE, "POST": STAFF_FORM_POST},
    # Without MAIL_SERVER (as here) the page only says whom to ask: the same for everyone.
    "auth.forgot_password": {"GET": (200,) * 6, "POST": (200,) * 6},
    "auth.reset_password": {"GET": (200,) * 6, "POST": (400,) * 6},  # about the link only
    "auth.index": {"GET": (302,) * 6, "POST": NOT_ALLOWED},
    # The invitation page is about the link, not the visitor: everyone may open it.
    "auth.invitation": {"GET": (200,) * 6, "POST": (200,) * 6},
    "auth.login": {"GET": (200,) + (302,) * 5, "POST": (200,) + (302,) * 5},
    "auth.logout": {"GET": NOT_ALLOWED, "POST": (302,) * 6},
    "auth.password": {"GET": (302,) + (200,) * 5, "POST": (302,) + (200,) * 5},
    "dashboard.confusion_image": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    "dashboard.export": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    "dashboard.forest_image": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    "dashboard.index": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    # The self-contained study report (inline CSS allowed by its hash): staff of the study only.
    "dashboard.report": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    "dashboard.power_image": {"GET": STAFF_PAGE, "POST": NOT_ALLOWED},
    # The reader has enrolled, so the design is locked: a POST only redirects to the page.
    "design.edit": {"GET": STAFF_PAGE, "POST": (302, 403, 403, 303, 404, 303)},
    "design.preset": {"GET": NOT_ALLOWED, "POST": (302, 403, 403, 303, 404, 303)},
    # An empty form: nothing copied, back to the design page with a message.
    "design.copy": {"GET": NOT_ALLOWED, "POST": (302, 403, 403, 303, 404, 303)},
    "health.health": {"GET": (200,) * 6, "POST": NOT_ALLOWED},
    # Images answer 404 to everyone who may not see them: no hint that the name exists.
    "images.image": {"GET": (404, 200, 404, 200, 404, 200), "POST": NOT_ALLOWED},
    "static": {"GET": (200,) * 6, "POST": NOT_ALLOWED},
    # An empty answer form: the case token is missing, so nothing is stored.
    "survey.case": {"GET": READER_PAGE, "POST": (302, 400, 404, 403, 403, 403)},
    # The reader has not finished Task 1: no opening to put in a calendar yet.
    "survey.calendar": {"GET": (302, 404, 404, 403, 403, 403), "POST": NOT_ALLOWED},
    "survey.class_styles": {"GET": SHOWN_PAGE, "POST": NOT_ALLOWED},
    "survey.home": {"GET": (302,) + (200,) * 5, "POST": NOT_ALLOWED},
    "survey.information": {"GET": SHOWN_PAGE, "POST": NOT_ALLOWED},
    "survey.preview": {"GET": STAFF_PAGE, "POST": PREVIEW_POST},
    "survey.preview_case": {"GET": STAFF_PAGE, "POST": PREVIEW_POST},
    "survey.resume": {"GET": (302, 302, 404, 403, 403, 403), "POST": NOT_ALLOWED},
    # Any account's own preference; an empty form is refused.
    "survey.shortcuts": {"GET": NOT_ALLOWED, "POST": (302,) + (400,) * 5},
    "survey.task": {"GET": READER_PAGE, "POST": NOT_ALLOWED},
    "survey.task_end": {"GET": (302, 302, 404, 403, 403, 403), "POST": NOT_ALLOWED},
    # The reader is enrolled already: a second consent only redirects.
    # The confirmation page; a POST without its "yes" is refused and withdraws nobody.
    "survey.withdraw_page": {"GET": READER_PAGE, "POST": (302, 400, 404, 403, 403, 403)},
    "survey.welcome": {"GET": READER_PAGE, "POST": (302, 303, 404, 403, 403, 403)},
    # The owner and admins change the team; the owner's own row stays (a redirect, no change).
    "team.members": {"GET": STAFF_PAGE, "POST": STAFF_FORM_POST},
    "team.remove": {"GET": NOT_ALLOWED, "POST": STAFF_ACTION_POST},
}
STAFF_BLUEPRINTS = ("admin", "contact", "dashboard", "design", "team")


def endpoints_of(app: Flask) -> dict[str, set[str]]:
    """Every endpoint of the URL map with the methods it takes (HEAD/OPTIONS aside)."""
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        found.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return found


def send(client: FlaskClient, method: str, url: str) -> TestResponse:
    """One request with an empty form (POST) or none (GET)."""
    return client.open(url, method=method, data={} if method == "POST" else None)


def requests_of(
    world: World, study: StudyRef | None = None, roles: tuple[str, ...] = ROLES
) -> Iterator[tuple[str, str, str, str, TestResponse]]:
    """Every (endpoint, method, role, url, response) of the matrix, in a stable order."""
    for endpoint in sorted(MATRIX):
        for method in METHODS:
            for role in roles:
                for values in world.url_values(endpoint, study):
                    url = world.url(endpoint, values)
                    response = send(world.client(role), method, url)
                    if endpoint == "auth.logout" and method == "POST":
                        world.log_in_again(role)
                    yield endpoint, method, role, url, response


def test_the_matrix_names_every_route_and_method(app: Flask) -> None:
    routes = endpoints_of(app)
    assert set(MATRIX) == set(routes), (
        f"routes missing from MATRIX: {sorted(set(routes) - set(MATRIX))}; "
        f"rows without a route: {sorted(set(MATRIX) - set(routes))}"
    )
    for endpoint, methods in routes.items():
        assert set(MATRIX[endpoint]) == set(METHODS), endpoint
        assert methods <= set(METHODS), (endpoint, "a new method needs a column in MATRIX")
        for method in METHODS:
            expected = MATRIX[endpoint][method]
            assert len(expected) == len(ROLES), endpoint
            assert (expected == NOT_ALLOWED) == (method not in methods), (endpoint, method)


def test_the_matrix_keeps_readers_out_of_staff_pages_and_other_studies(app: Flask) -> None:
    # The table itself must not be loosened: these rules hold for whatever is added to it.
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    for endpoint, row in MATRIX.items():
        for method, statuses in row.items():
            by_role = dict(zip(ROLES, statuses, strict=True))
            if endpoint.split(".")[0] in STAFF_BLUEPRINTS:
                assert all(by_role[r] in (403, NO) for r in READERS), (endpoint, method)
                assert by_role["anonymous"] in (302, NO), (endpoint, method)
            if "study_id" in rules[endpoint].arguments or endpoint == "images.image":
                assert by_role["other_reader"] in (403, 404, NO), (endpoint, method)
                assert by_role["other_organiser"] in (403, 404, NO), (endpoint, method)
                assert by_role["anonymous"] in (302, 404, NO), (endpoint, method)


def test_every_route_answers_every_role_as_the_matrix_says(world: World) -> None:
    wrong = []
    for endpoint, method, role, url, response in requests_of(world):
        expected = MATRIX[endpoint][method][ROLES.index(role)]
        if response.status_code != expected:
            wrong.append(f"{method} {url} as {role}: {response.status_code}, expected {expected}")
        if role == "anonymous" and response.status_code == 302 and endpoint != "auth.index":
            location = response.headers["Location"]
            assert location.startswith("/login"), (url, location)
        if role in (*READERS, "other_organiser") and endpoint.split(".")[0] in STAFF_BLUEPRINTS:
            # Not even a redirect that could carry data: the refusal is a bare 403 page.
            assert response.mimetype != "text/csv" and not response.headers.get(
                "Content-Disposition"
            ), (url, role)
    assert not wrong, "\n".join(wrong)


def test_a_reader_reaches_nothing_of_another_study(world: World) -> None:
    # The mirror image: this study's reader against the other study's pages and images.
    reached = []
    for endpoint, method, _, url, response in requests_of(world, world.other_study, ("reader",)):
        rule = next(world.app.url_map.iter_rules(endpoint))
        scoped = "study_id" in rule.arguments or endpoint == "images.image"
        if scoped and response.status_code not in (403, 404, NO):
            reached.append(f"{method} {url}: {response.status_code}")
    assert not reached, reached


def test_an_organiser_reaches_the_study_they_run_and_no_other(world: World) -> None:
    # The other organiser collaborates on the other study: its pages open, this study's do not.
    client = world.client("other_organiser")
    for study, expected in ((world.other_study, 200), (world.study, 404)):
        for url in (
            f"/admin/studies/{study.id}",
            f"/admin/studies/{study.id}/invitations",
            f"/admin/studies/{study.id}/readers",
            f"/admin/studies/{study.id}/team",
            f"/dashboard/{study.id}/",
            f"/dashboard/{study.id}/export/responses?emails=1",
        ):
            assert client.get(url).status_code == expected, url
    listing = client.get("/admin/").get_data(as_text=True)
    assert "Other study" in listing and "Test study" not in listing
    everything = world.client("admin").get("/admin/").get_data(as_text=True)
    assert "Other study" in everything and "Test study" in everything


def test_staff_get_404_for_a_study_that_does_not_exist(world: World) -> None:
    missing = StudyRef(987654, "missing", "", "", 0)
    for role in ("organiser", "admin"):
        client = world.client(role)
        for endpoint in sorted(MATRIX):
            rule = next(world.app.url_map.iter_rules(endpoint))
            if "study_id" not in rule.arguments or endpoint.startswith("survey."):
                continue
            for method in sorted(rule.methods & set(METHODS)):
                for values in world.url_values(endpoint, missing):
                    if endpoint in (
                        "invitations.revoke_invitation",
                        "invitations.resend_invitation",
                    ):
                        values = {**values, "study_id": missing.id}
                    url = world.url(endpoint, values)
                    assert send(client, method, url).status_code == 404, (role, method, url)


def test_an_invitation_of_one_study_cannot_be_revoked_through_another(world: World) -> None:
    invitation_id, _ = world.fresh_invitation()
    client = world.client("organiser")
    url = f"/admin/studies/{world.other_study.id}/invitations/{invitation_id}/revoke"
    assert client.post(url).status_code == 404
    with world.app.app_context():
        assert db.session.get(Invitation, invitation_id) is not None
