"""Studies' teams: an organiser runs the studies they own or collaborate on, nothing else;
the owner (or an admin) changes the team; admins see every study."""

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Role, Study, StudyMember
from tests.app.checks import zipped
from tests.app.conftest import StudyRef, UserRef


def members(app: Flask, study: StudyRef) -> dict[str, bool]:
    """E-mail -> owner, for a study's members."""
    with app.app_context():
        rows = db.session.scalars(select(StudyMember).filter_by(study_id=study.id)).all()
        return {row.user.email: row.owner for row in rows}


def test_the_owner_adds_and_removes_a_collaborator(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    organiser: UserRef,
    other_organiser: UserRef,
    login,
) -> None:
    other = app.test_client()
    login(other, other_organiser)
    assert other.get(f"/admin/studies/{study.id}").status_code == 404
    login(client, organiser)
    url = f"/admin/studies/{study.id}/team"
    response = client.post(url, data={"email": other_organiser.email.upper()})
    assert response.status_code == 302
    assert members(app, study) == {organiser.email: True, other_organiser.email: False}
    # The collaborator now runs the study, but does not change its team.
    assert other.get(f"/admin/studies/{study.id}").status_code == 200
    assert other.get(f"/dashboard/{study.id}/").status_code == 200
    assert other.post(url, data={"email": "admin@example.org"}).status_code == 403
    with app.app_context():
        member_id = db.session.scalar(
            select(StudyMember.id).filter_by(study_id=study.id, owner=False)
        )
    assert client.post(f"{url}/{member_id}/remove").status_code == 302
    assert members(app, study) == {organiser.email: True}
    assert other.get(f"/admin/studies/{study.id}").status_code == 404


def test_only_active_staff_accounts_join_a_team(
    app: Flask, client: FlaskClient, study: StudyRef, organiser: UserRef, reader, make_user, login
) -> None:
    login(client, organiser)
    url = f"/admin/studies/{study.id}/team"
    for email in (reader.email, "nobody@example.org"):
        response = client.post(url, data={"email": email})
        assert response.status_code == 400 and "No active organiser" in response.text
    assert members(app, study) == {organiser.email: True}


def test_an_admin_sees_and_hands_over_any_study(
    app: Flask, client: FlaskClient, study: StudyRef, admin: UserRef, make_user, login
) -> None:
    newcomer = make_user("new.organiser@example.org", Role.ORGANISER)
    login(client, admin)
    assert client.get(f"/admin/studies/{study.id}/team").status_code == 200
    assert (
        client.post(f"/admin/studies/{study.id}/team", data={"email": newcomer.email}).status_code
        == 302
    )
    assert members(app, study)[newcomer.email] is False


def test_a_bundle_another_organiser_imported_is_not_handed_out(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    other_organiser: UserRef,
    bundle_cache: dict[int, Path],
    login,
) -> None:
    # Uploading the same bundle again must not lead into a study the uploader does not run,
    # nor tell them it exists: they get a new study of their own (organiser/test_input_bounds).
    login(client, other_organiser)
    response = client.post(
        "/admin/studies/import",
        data={"name": "Copy", "upload": (zipped(bundle_cache[0]), "bundle.zip")},
    )
    assert response.status_code == 302
    assert response.headers["Location"] != f"/admin/studies/{study.id}"
    assert members(app, study).get(other_organiser.email) is None


def test_an_imported_study_belongs_to_its_importer(
    app: Flask, client: FlaskClient, other_organiser: UserRef, bundle_cache, login
) -> None:
    login(client, other_organiser)
    response = client.post(
        "/admin/studies/import",
        data={"name": "Mine", "upload": (zipped(bundle_cache[1]), "bundle.zip")},
    )
    assert response.status_code == 302
    with app.app_context():
        study = db.session.scalar(select(Study).filter_by(name="Mine"))
        assert [(m.user.email, m.owner) for m in study.members] == [(other_organiser.email, True)]


def test_the_cli_gives_a_study_an_owner(app: Flask, runner, bundle_cache, organiser) -> None:
    result = runner.invoke(
        args=["study", "import", str(bundle_cache[1]), "--name", "CLI", "--owner", organiser.email]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        study = db.session.scalar(select(Study).filter_by(name="CLI"))
        ref = StudyRef(study.id, study.name, "", "", 0)
    assert members(app, ref) == {organiser.email: True}
    refused = runner.invoke(args=["study", "add-member", str(ref.id), "nobody@example.org"])
    assert refused.exit_code != 0 and "No active organiser" in refused.output
