"""The second attack's smaller holes (docs/deployment.md, "Second attack: smaller holes"):
huge numbers in forms, invitation floods, loosely checked addresses, links under
BUNDLE_ROOT, the import's conflict message and leftover unpacked folders."""

import html
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.app.conftest import StudyRef, UserRef
from tests.app.world import CONSENT

HUGE = "9" * 310  # more digits than a float holds: NumberRange's NaN check overflowed


def field_error(page: str, field: str) -> str:
    """The error shown under one field of a page (empty when there is none)."""
    found = re.search(rf'id="{re.escape(field)}-error"[^>]*>([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


# ---------------------------------------------------------------- numbers of 310 digits


@pytest.mark.parametrize(
    ("field", "message"),
    [("years", "from 0 to 70"), ("exams_per_week", "from 0 to 1000")],
)
def test_a_huge_number_in_the_readers_profile_is_an_error_at_its_field(
    client: FlaskClient,
    reader: UserRef,
    study: StudyRef,
    login: Callable,
    field: str,
    message: str,
) -> None:
    login(client, reader)
    response = client.post(f"/survey/{study.id}/", data={**CONSENT, field: HUGE})
    assert response.status_code == 400
    assert message in field_error(response.text, field)


@pytest.mark.parametrize(
    ("field", "message"),
    [("reminder_days", "from 0 to 60"), ("cases_per_reader", "from 1 to 100000")],
)
def test_a_huge_number_in_the_study_settings_is_an_error_at_its_field(
    client: FlaskClient,
    study: StudyRef,
    organiser: UserRef,
    login: Callable,
    field: str,
    message: str,
) -> None:
    login(client, organiser)
    settings = {
        "name": "Test study",
        "washout_hours": "1",
        "cases_per_reader": "5",
        "sampling": "random",
        "information": "",
    }
    response = client.post(f"/admin/studies/{study.id}", data={**settings, field: HUGE})
    assert response.status_code == 400
    assert message in field_error(response.text, field)


def test_a_huge_number_of_days_for_invitations_is_an_error_at_its_field(
    client: FlaskClient, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    login(client, organiser)
    response = client.post(
        f"/admin/studies/{study.id}/invitations", data={"email": "a@example.org", "days": HUGE}
    )
    assert response.status_code == 400
    assert "from 1 to 90" in field_error(response.text, "days")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("conditions-0-k", HUGE, "from 1 to 50"), ("probe_share", "sNaN", "Enter a number.")],
)
def test_odd_numbers_in_the_design_are_errors_at_their_field(
    client: FlaskClient,
    study: StudyRef,
    organiser: UserRef,
    login: Callable,
    field: str,
    value: str,
    message: str,
) -> None:
    login(client, organiser)
    design = {
        "design": "sequential",
        "conditions-0-aid": "unaided",
        "conditions-1-aid": "se_cbir",
        "conditions-1-k": "6",
        "probe_share": "0",
    }
    response = client.post(f"/admin/studies/{study.id}/design", data={**design, field: value})
    assert response.status_code == 400
    assert message in field_error(response.text, field)
