"""Who may reach which route: the expected status of every (endpoint, method, role) and the
requests that ask them (the access matrix's test walks it, the CSRF test posts every one of its
POSTs)."""

from collections.abc import Iterator

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.app.conftest import StudyRef
from tests.app.world import World

ROLES = ("anonymous", "reader", "other_reader", "organiser", "other_organiser", "admin")


METHODS = ("GET", "POST")


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
