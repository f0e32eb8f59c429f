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

from flask import Flask

from app.extensions import db
from app.models import Invitation
from tests.app.conftest import StudyRef
from tests.app.route_matrix import MATRIX, METHODS, NO, NOT_ALLOWED, ROLES, requests_of, send
from tests.app.world import World

READERS = ("reader", "other_reader")


STAFF_BLUEPRINTS = ("admin", "contact", "dashboard", "design", "team")


def endpoints_of(app: Flask) -> dict[str, set[str]]:
    """Every endpoint of the URL map with the methods it takes (HEAD/OPTIONS aside)."""
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        found.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return found


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
