"""The second attack's smaller holes (docs/deployment.md, "Second attack: smaller holes"):
huge numbers in forms, invitation floods, loosely checked addresses, links under
BUNDLE_ROOT, the import's conflict message and leftover unpacked folders."""

import html
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from app.auth import may_manage_study
from app.extensions import db
from app.mail import send_queued
from app.mail.addresses import AddressError, deliverable_address, pasted_entry
from app.models import Invitation, Study, User
from app.organiser import import_jobs
from tests.app.bundle_factory import make_bundle
from tests.app.checks import zip_of
from tests.app.conftest import FakeClock, StudyRef, UserRef
from tests.app.smtp import SmtpServer
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


# ---------------------------------------------------------------- invitations: how many


def invitations_made(app: Flask) -> list[str]:
    """The addresses of every invitation, in the order they were made."""
    with app.app_context():
        return list(db.session.scalars(select(Invitation.email).order_by(Invitation.id)))


def test_one_form_invites_at_most_invitations_per_request(
    app: Flask, client: FlaskClient, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    # One POST used to create 9000 invitations and queue 9000 e-mails in 24 s.
    app.config["INVITATIONS_PER_REQUEST"] = 20
    login(client, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    listed = "\n".join(f"reader{number}@example.org" for number in range(21))
    response = client.post(url, data={"email": listed, "days": "7", "send": "y"})
    assert response.status_code == 400
    assert "at most 20 can be invited at once" in field_error(response.text, "email")
    assert invitations_made(app) == []
    fewer = "\n".join(listed.splitlines()[:20])
    assert client.post(url, data={"email": fewer, "days": "7"}).status_code == 200
    assert len(invitations_made(app)) == 20


def test_an_organiser_invites_at_most_invitations_per_hour(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    study: StudyRef,
    organiser: UserRef,
    login: Callable,
) -> None:
    app.config["INVITATIONS_PER_HOUR"] = 5
    login(client, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    first = "a@example.org\nb@example.org\nc@example.org"
    assert client.post(url, data={"email": first, "days": "7"}).status_code == 200
    clock.advance(minutes=30)
    more = "d@example.org\ne@example.org\nf@example.org"
    refused = client.post(url, data={"email": more, "days": "7"})
    assert refused.status_code == 429
    assert "at most 5 invitations an hour and have 2 left" in field_error(refused.text, "email")
    assert len(invitations_made(app)) == 3
    clock.advance(minutes=31)  # the first three are more than an hour old
    assert client.post(url, data={"email": more, "days": "7"}).status_code == 200
    assert len(invitations_made(app)) == 6


# ---------------------------------------------------------------- invitations: which addresses


@pytest.mark.parametrize(
    ("pasted", "stored"),
    [
        ("Jane.Doe@Example.org", "jane.doe@example.org"),
        ("Jane Doe <Jane.Doe@Example.org>", "jane.doe@example.org"),
        ('"Doe, Jane" <jane@example.org>,', "jane@example.org"),
        ("jane@example.org;", "jane@example.org"),
        ("  <jane@example.org> ; ", "jane@example.org"),
        ("jane@bücher.example", "jane@bücher.example"),
        ("reader@rt.test", "reader@rt.test"),
    ],
)
def test_what_organisers_paste_is_stored_as_the_bare_address(pasted: str, stored: str) -> None:
    assert deliverable_address(pasted_entry(pasted)) == stored


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("x@evil.example,foo", "invalid characters"),
        ('=HYPERLINK("http://evil")@rt.test', "invalid characters"),
        ("ω@rt.test", "outside ASCII before the @"),
        ("a@example.org b@example.org", "invalid characters"),
        ("Jane <jane@example.org> extra", "anything after"),
        ('"quoted"@example.org', "Quoting"),
        ("jane@[192.0.2.1]", "bracketed IP address"),
        ("jane@localhost", "period"),
        ("a" * 250 + "@example.org", "too long"),
    ],
)
def test_an_address_the_app_cannot_deliver_to_exactly_is_refused(pasted: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        deliverable_address(pasted_entry(pasted))


def test_the_invitation_form_stores_bare_addresses_and_names_the_bad_lines(
    app: Flask, client: FlaskClient, study: StudyRef, organiser: UserRef, login: Callable
) -> None:
    login(client, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    listed = 'x@evil.example,foo\n=HYPERLINK("http://evil")@rt.test\nω@rt.test\nok@example.org'
    refused = client.post(url, data={"email": listed, "days": "7"})
    assert refused.status_code == 400
    errors = field_error(refused.text, "email")
    for number in (1, 2, 3):
        assert f"Line {number}:" in errors
    assert "Line 4" not in errors and "ask for another address" in errors
    assert invitations_made(app) == []  # nothing half-done
    pasted = "Jane Doe <Jane.Doe@Example.org>,\nbob@example.org;\njane.doe@example.org"
    assert client.post(url, data={"email": pasted, "days": "7"}).status_code == 200
    assert invitations_made(app) == ["jane.doe@example.org", "bob@example.org"]


def test_the_invitation_goes_to_exactly_the_stored_address(
    app: Flask,
    client: FlaskClient,
    smtp: SmtpServer,
    study: StudyRef,
    organiser: UserRef,
    login: Callable,
) -> None:
    login(client, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    pasted = "Jane Doe <Jane.Doe@Example.org>;"
    assert client.post(url, data={"email": pasted, "days": "7", "send": "y"}).status_code == 200
    with app.app_context():
        assert len(send_queued().sent) == 1
    (message,) = smtp.sink.messages
    assert message["To"] == "jane.doe@example.org"  # no display name, nothing else


def test_the_commands_check_addresses_the_same_way(
    app: Flask, runner: FlaskCliRunner, study: StudyRef
) -> None:
    refused = runner.invoke(args=["study", "invite", str(study.id), "x@evil.example,foo"])
    assert refused.exit_code == 1 and "invalid characters" in refused.output
    made = runner.invoke(args=["study", "invite", str(study.id), "Jane <Jane@Example.org>"])
    assert made.exit_code == 0, made.output
    new = ["users", "create", "--role", "reader", "--no-password", "--email", "ω@rt.test"]
    assert runner.invoke(args=new).exit_code == 1
    assert invitations_made(app) == ["jane@example.org"]


# ---------------------------------------------------------------- links under BUNDLE_ROOT


def test_a_linked_folder_under_bundle_root_is_not_offered(
    app: Flask, client: FlaskClient, organiser: UserRef, login: Callable, tmp_path: Path
) -> None:
    root = tmp_path / "bundles"
    make_bundle(root / "here", cases=4, seed=3)
    elsewhere = make_bundle(tmp_path / "elsewhere" / "bundle", cases=4, seed=4)
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (root / "run").mkdir()
    (root / "run" / "linked").symlink_to(elsewhere, target_is_directory=True)
    app.config["BUNDLE_ROOT"] = str(root)
    login(client, organiser)
    page = client.get("/admin/studies/import").text
    assert 'value="here"' in page
    assert 'value="linked"' not in page and 'value="run/linked"' not in page
    for linked in ("linked", "run/linked"):
        response = client.post("/admin/studies/import", data={"name": "X", "server_path": linked})
        assert response.status_code == 400


@pytest.mark.parametrize("linked", ["manifest.json", "queries.json", "images"])
def test_a_linked_file_in_a_bundle_is_refused_without_quoting_its_target(
    app: Flask,
    client: FlaskClient,
    organiser: UserRef,
    login: Callable,
    tmp_path: Path,
    linked: str,
) -> None:
    root = tmp_path / "bundles"
    bundle = make_bundle(root / "here", cases=4, seed=3)
    elsewhere = make_bundle(tmp_path / "elsewhere", cases=4, seed=3)  # the same bundle
    target = elsewhere / linked
    if linked != "images":  # a file of the server's that is not a bundle's
        target = tmp_path / "secret.json"
        target.write_text(json.dumps({"password": "TOPSECRET-1\u0001"}))
    path = bundle / linked
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.symlink_to(target, target_is_directory=target.is_dir())
    app.config["BUNDLE_ROOT"] = str(root)
    login(client, organiser)
    response = client.post("/admin/studies/import", data={"name": "X", "server_path": "here"})
    assert response.status_code == 400
    assert f"{linked} is a symbolic link" in response.text
    assert "TOPSECRET" not in response.text
    with app.app_context():
        assert db.session.scalar(select(Study.id)) is None


# ---------------------------------------------------------------- the import's conflict


def test_a_bundle_in_other_organisers_studies_becomes_a_study_of_ones_own(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    other_organiser: UserRef,
    login: Callable,
    bundle_cache: dict[int, Path],
) -> None:
    # The import used to answer 409: "This bundle was imported before, into a study you are
    # not a member of", telling one organiser what another's study holds.
    login(client, other_organiser)
    response = client.post(
        "/admin/studies/import",
        data={"name": "Mine", "upload": (io.BytesIO(zip_of(bundle_cache[0])), "b.zip")},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Imported “Mine” with 30 cases." in response.text
    assert "imported before" not in response.text and study.name not in response.text
    with app.app_context():
        mine = db.session.scalar(select(Study).where(Study.name == "Mine"))
        assert mine is not None and mine.id != study.id
        assert (mine.bundle_digest, mine.image_folder) == (study.bundle_digest, study.image_folder)
        assert may_manage_study(db.session.get(User, other_organiser.id), mine.id)
        assert not may_manage_study(db.session.get(User, other_organiser.id), study.id)
    again = client.post(
        "/admin/studies/import",
        data={"name": "Again", "upload": (io.BytesIO(zip_of(bundle_cache[0])), "b.zip")},
        follow_redirects=True,
    )
    assert "This bundle was imported before, as “Mine”: nothing changed." in again.text


# ---------------------------------------------------------------- unpacked folders left behind


def leftover(app: Flask, name: str, age: timedelta) -> Path:
    """An `unpacked-*` folder in IMPORT_UPLOADS as a dead worker leaves it, `age` old."""
    folder = Path(app.config["IMPORT_UPLOADS"]) / name
    (folder / "bundle" / "images").mkdir(parents=True)
    (folder / "bundle" / "manifest.json").write_text("{}")
    moment = time.time() - age.total_seconds()
    os.utime(folder, (moment, moment))
    return folder


def test_scratch_folders_a_dead_import_left_are_removed_when_a_day_old(
    app: Flask, organiser: UserRef
) -> None:
    """Imports keep their files in `job-<id>` now (deleted with the job, see test_imports);
    the `unpacked-*` folders that imports before kept go once no import can use them."""
    hour_old = leftover(app, "unpacked-hour", timedelta(hours=1))
    day_old = leftover(app, "unpacked-day", timedelta(days=1, minutes=1))
    with app.app_context():
        import_jobs.settle()
    assert hour_old.exists() and not day_old.exists()
