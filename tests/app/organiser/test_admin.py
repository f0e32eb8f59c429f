"""Organisers' pages: who may see them, importing, settings, opening, invitations, progress."""

import io
import re
import zipfile

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Enrolment, Invitation, Sampling, Study, StudyStatus
from tests.app.bundle_factory import make_bundle
from tests.app.checks import zipped


def pages(study_id: int) -> list[str]:
    """Every GET page of the admin blueprint for one study."""
    return [
        "/admin/",
        "/admin/studies/import",
        f"/admin/studies/{study_id}",
        f"/admin/studies/{study_id}/invitations",
        f"/admin/studies/{study_id}/readers",
    ]


def test_anonymous_users_are_sent_to_login(client: FlaskClient, study) -> None:
    for path in pages(study.id):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_readers_are_forbidden(client: FlaskClient, study, reader, other_reader, login) -> None:
    for user in (reader, other_reader):
        login(client, user)
        for path in pages(study.id):
            assert client.get(path).status_code == 403, path
        assert client.post(f"/admin/studies/{study.id}/open").status_code == 403
        client.post("/logout")


@pytest.mark.parametrize("role", ["organiser", "admin"])
def test_staff_see_every_page(
    client: FlaskClient, study, other_study, login, role: str, request
) -> None:
    login(client, request.getfixturevalue(role))
    for path in pages(study.id):
        assert client.get(path).status_code == 200, path
    listing = client.get("/admin/").text
    assert "Test study" in listing and "Other study" in listing
    assert client.get("/admin/studies/9999").status_code == 404


def test_import_an_uploaded_zip(
    client: FlaskClient, app: Flask, organiser, login, tmp_path
) -> None:
    login(client, organiser)
    bundle = make_bundle(tmp_path / "b", cases=12, seed=5)
    response = client.post(
        "/admin/studies/import",
        data={"name": "Uploaded", "upload": (zipped(bundle), "study.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        study = db.session.scalar(select(Study).where(Study.name == "Uploaded"))
        assert len(study.cases) == 12 and study.created_by_id == organiser.id
    assert response.headers["Location"] == f"/admin/studies/{study.id}"
    again = client.post(
        "/admin/studies/import",
        data={"name": "Again", "upload": (zipped(bundle), "study.zip")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "imported before" in again.text


def test_broken_upload_names_the_problem(
    client: FlaskClient, app: Flask, organiser, login, tmp_path
) -> None:
    login(client, organiser)
    bundle = make_bundle(tmp_path / "b", cases=12, seed=6)
    (bundle / "queries.json").write_text("[]")
    response = client.post(
        "/admin/studies/import",
        data={"name": "Broken", "upload": (zipped(bundle), "study.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "non-empty list of queries" in response.text
    not_zip = client.post(
        "/admin/studies/import",
        data={"name": "Broken", "upload": (io.BytesIO(b"not a zip"), "study.zip")},
        content_type="multipart/form-data",
    )
    assert not_zip.status_code == 400 and "not a valid .zip" in not_zip.text
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape/manifest.json", "{}")
    evil.seek(0)
    unsafe = client.post(
        "/admin/studies/import",
        data={"name": "Evil", "upload": (evil, "study.zip")},
        content_type="multipart/form-data",
    )
    assert unsafe.status_code == 400 and "unsafe path" in unsafe.text
    with app.app_context():
        assert db.session.scalar(select(func.count(Study.id))) == 0


def test_upload_size_limit(client: FlaskClient, app: Flask, organiser, login) -> None:
    login(client, organiser)
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post(
        "/admin/studies/import",
        data={"name": "Big", "upload": (io.BytesIO(b"x" * 5000), "study.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


def test_import_from_a_server_folder(
    client: FlaskClient, app: Flask, organiser, login, tmp_path
) -> None:
    root = tmp_path / "bundles"
    make_bundle(root / "run1" / "study", cases=10, seed=7)
    app.config["BUNDLE_ROOT"] = str(root)
    login(client, organiser)
    assert "run1/study" in client.get("/admin/studies/import").text
    response = client.post(
        "/admin/studies/import", data={"name": "From server", "server_path": "run1/study"}
    )
    assert response.status_code == 302
    outside = client.post("/admin/studies/import", data={"name": "X", "server_path": "../../etc"})
    assert outside.status_code == 400
    neither = client.post("/admin/studies/import", data={"name": "X"})
    assert neither.status_code == 400 and "one of the two" in neither.text


def test_settings_are_saved_and_capped(
    client: FlaskClient, app: Flask, study, organiser, login
) -> None:
    login(client, organiser)
    response = client.post(
        f"/admin/studies/{study.id}",
        data={
            "name": "Renamed",
            "cases_per_reader": 500,
            "washout_hours": "0",
            "sampling": "stratified",
            "information": "Welcome.",
        },
        follow_redirects=True,
    )
    assert "capped to the pool size: 30" in response.text
    with app.app_context():
        record = db.session.get(Study, study.id)
        assert record.name == "Renamed" and record.cases_per_reader == 30
        assert record.washout_hours == 0 and record.sampling == Sampling.STRATIFIED
        assert record.reshuffle_later_sessions is False and record.information == "Welcome."
    invalid = client.post(
        f"/admin/studies/{study.id}",
        data={"name": "X", "cases_per_reader": 0, "washout_hours": "-1", "sampling": "random"},
    )
    assert invalid.status_code == 400


def test_draw_settings_lock_once_a_reader_enrolled(
    client: FlaskClient, app: Flask, study, reader, organiser, login
) -> None:
    with app.app_context():
        db.session.add(Enrolment(study_id=study.id, user_id=reader.id, seed=1))
        db.session.commit()
    login(client, organiser)
    page = client.get(f"/admin/studies/{study.id}").text
    assert "are locked" in page and 'name="cases_per_reader"' not in page
    client.post(
        f"/admin/studies/{study.id}",
        data={
            "name": "Still",
            "cases_per_reader": 3,
            "washout_hours": "48",
            "sampling": "stratified",
        },
    )
    with app.app_context():
        record = db.session.get(Study, study.id)
        assert record.name == "Still" and record.washout_hours == 48
        assert record.cases_per_reader == 10 and record.sampling == Sampling.RANDOM
        assert record.reshuffle_later_sessions is True


def test_open_and_close(client: FlaskClient, app: Flask, study, organiser, login) -> None:
    login(client, organiser)
    assert client.get(f"/admin/studies/{study.id}/close").status_code == 405
    assert client.post(f"/admin/studies/{study.id}/close").status_code == 302
    with app.app_context():
        assert db.session.get(Study, study.id).status == StudyStatus.CLOSED
    client.post(f"/admin/studies/{study.id}/open")
    with app.app_context():
        assert db.session.get(Study, study.id).status == StudyStatus.OPEN
    assert client.post(f"/admin/studies/{study.id}/delete").status_code == 404


def test_invitation_link_is_shown_once_and_works(
    client: FlaskClient, app: Flask, study, organiser, login
) -> None:
    login(client, organiser)
    created = client.post(
        f"/admin/studies/{study.id}/invitations", data={"email": "Invitee@Example.org", "days": 7}
    )
    link = re.search(r'value="(http://localhost/invite/[^"]+)"', created.text).group(1)
    token = link.rsplit("/", 1)[1]
    listing = client.get(f"/admin/studies/{study.id}/invitations").text
    assert "invitee@example.org" in listing and token not in listing and "pending" in listing
    with app.app_context():
        stored = db.session.scalar(select(Invitation))
        assert token not in stored.token_hash
    client.post("/logout")
    assert (
        client.post(
            f"/invite/{token}", data={"password": "a fine password", "confirm": "a fine password"}
        ).headers["Location"]
        == f"/survey/{study.id}/"
    )
    client.post("/logout")
    login(client, organiser)
    assert "used" in client.get(f"/admin/studies/{study.id}/invitations").text
    bad = client.post(f"/admin/studies/{study.id}/invitations", data={"email": "nope", "days": 7})
    assert bad.status_code == 400


def test_revoked_invitation_stops_working(
    client: FlaskClient, app: Flask, study, other_study, organiser, login
) -> None:
    login(client, organiser)
    created = client.post(
        f"/admin/studies/{study.id}/invitations", data={"email": "r@example.org", "days": 7}
    )
    token = re.search(r"/invite/([^\"]+)\"", created.text).group(1)
    with app.app_context():
        invitation_id = db.session.scalar(select(Invitation.id))
    wrong_study = client.post(f"/admin/studies/{other_study.id}/invitations/{invitation_id}/revoke")
    assert wrong_study.status_code == 404
    client.post(f"/admin/studies/{study.id}/invitations/{invitation_id}/revoke")
    assert client.get(f"/invite/{token}").status_code == 404


def test_readers_progress(client: FlaskClient, app: Flask, study, reader, organiser, login) -> None:
    with app.app_context():
        db.session.add(Enrolment(study_id=study.id, user_id=reader.id, seed=1))
        db.session.commit()
    login(client, organiser)
    page = client.get(f"/admin/studies/{study.id}/readers").text
    assert reader.pseudonym in page and "0 / 0" in page


def test_a_pasted_list_invites_each_address_or_names_the_bad_lines(
    client: FlaskClient, app: Flask, study, organiser, login
) -> None:
    login(client, organiser)
    url = f"/admin/studies/{study.id}/invitations"
    bad = client.post(url, data={"email": "a@example.org\nnot an address\n\nb@x", "days": 7})
    assert bad.status_code == 400
    assert "Line 2: “not an address”" in bad.text and "Line 4: “b@x”" in bad.text
    with app.app_context():
        assert db.session.scalar(select(Invitation.id)) is None  # nothing half-done
    listed = "A@example.org\n  b@example.org \n\na@example.org\nc@example.org\n"
    made = client.post(url, data={"email": listed, "days": 7})
    assert made.status_code == 200
    assert made.text.count('data-copy="invitation-link-') == 3
    links = re.findall(r'value="(http://localhost/invite/[^"]+)"', made.text)
    assert len(links) == 3
    with app.app_context():
        emails = sorted(db.session.scalars(select(Invitation.email)))
    assert emails == ["a@example.org", "b@example.org", "c@example.org"]


def test_a_new_link_replaces_the_old_one(
    client: FlaskClient, app: Flask, study, organiser, login
) -> None:
    login(client, organiser)
    made = client.post(
        f"/admin/studies/{study.id}/invitations", data={"email": "r@example.org", "days": 7}
    )
    old = re.search(r'value="http://localhost(/invite/[^"]+)"', made.text).group(1)
    with app.app_context():
        invitation_id = db.session.scalar(select(Invitation.id))
    again = client.post(f"/admin/studies/{study.id}/invitations/{invitation_id}/resend")
    new = re.search(r'value="http://localhost(/invite/[^"]+)"', again.text).group(1)
    assert new != old
    client.post("/logout")
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_invitations_to_a_draft_study_are_refused_with_a_reason(
    client: FlaskClient, app: Flask, study, organiser, login
) -> None:
    with app.app_context():
        db.session.get(Study, study.id).status = StudyStatus.DRAFT
        db.session.commit()
    login(client, organiser)
    refused = client.post(
        f"/admin/studies/{study.id}/invitations", data={"email": "r@example.org", "days": 7}
    )
    assert refused.status_code == 400 and "still a draft: open it first" in refused.text
    with app.app_context():
        assert db.session.scalar(select(Invitation.id)) is None
