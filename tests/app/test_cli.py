"""The `flask` commands: users, study import and invite, demo."""

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from app.extensions import db
from app.models import Invitation, Role, Study, StudyStatus, User
from app.survey.enrolment import conditions_of
from tests.app.bundle_factory import make_bundle_v2


def test_create_admin_asks_for_the_password(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(
        args=["users", "create-admin", "--email", "Boss@Example.org"],
        input="a long password\na long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.org" in result.output
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.role == Role.ADMIN and user.check_password("a long password")


def test_create_admin_from_a_password_file(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from the file 123\n")
    args = ["users", "create-admin", "--email", "a@example.org", "--password-file", str(secret)]
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=args)
    assert again.exit_code == 1 and "already exists" in again.output
    secret.write_text("short\n")
    short = runner.invoke(
        args=["users", "create-admin", "--email", "b@example.org", "--password-file", str(secret)]
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    with app.app_context():
        assert db.session.scalar(select(User)).check_password("from the file 123")


def test_create_organiser_and_reader(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(
        args=["users", "create", "--role", "organiser", "--email", "o@example.org"],
        input="organiser pass\norganiser pass\n",
    )
    assert result.exit_code == 0, result.output
    reader = runner.invoke(
        args=["users", "create", "--role", "reader", "--email", "r@example.org", "--no-password"]
    )
    assert reader.exit_code == 0 and re.search(r"\(R-[0-9A-F]{6}\)", reader.output)
    bad = runner.invoke(
        args=["users", "create", "--role", "reader", "--email", "x", "--no-password"]
    )
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output


def test_study_import_and_reimport(runner: FlaskCliRunner, app: Flask, bundle_dir: Path) -> None:
    first = runner.invoke(args=["study", "import", str(bundle_dir), "--name", "CLI study"])
    assert first.exit_code == 0, first.output
    assert "Imported study 1 “CLI study”: 30 cases." in first.output
    second = runner.invoke(args=["study", "import", str(bundle_dir), "--name", "Again"])
    assert second.exit_code == 0 and "nothing changed" in second.output
    listing = runner.invoke(args=["study", "list"])
    assert "1\tdraft\t30 cases\tCLI study" in listing.output


def test_study_import_refuses_a_broken_bundle(
    runner: FlaskCliRunner, app: Flask, bundle_dir: Path
) -> None:
    (bundle_dir / "manifest.json").write_text("[]")
    result = runner.invoke(args=["study", "import", str(bundle_dir), "--name", "Broken"])
    assert result.exit_code == 1
    assert "The bundle was not imported: manifest.json must hold a JSON object." in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Study.id))) == 0


def test_study_invite_prints_a_working_link(runner: FlaskCliRunner, app: Flask, study) -> None:
    result = runner.invoke(
        args=["study", "invite", str(study.id), "x@example.org", "--base-url", "https://s.org"]
    )
    assert result.exit_code == 0, result.output
    link = re.search(r"https://s\.org/invite/\S+", result.output).group(0)
    client = app.test_client()
    assert client.get(link.removeprefix("https://s.org")).status_code == 200
    missing = runner.invoke(args=["study", "invite", "999", "x@example.org"])
    assert missing.exit_code == 1 and "There is no study 999" in missing.output


def test_demo_is_idempotent(runner: FlaskCliRunner, app: Flask, bundle_dir: Path) -> None:
    first = runner.invoke(args=["demo", "--bundle", str(bundle_dir)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo", "--bundle", str(bundle_dir)])
    assert second.exit_code == 0 and second.output == first.output
    logins = re.findall(r"(admin|organiser|reader)\s+(\S+@demo\.local)\s+(\S+)", first.output)
    # The admin too: only an admin creates the organiser accounts the Team page asks for.
    assert [role for role, _, _ in logins] == ["admin", "organiser", "reader", "reader"]
    assert "flask users create --role organiser" in first.output
    assert "no three-arm demo study" in first.output  # a format-1 bundle: SE-CBIR only
    with app.app_context():
        study = db.session.scalar(select(Study))
        assert study.status == StudyStatus.OPEN and study.washout_hours == 0
        assert study.cases_per_reader == 20
        assert db.session.scalar(select(func.count(User.id))) == 4
        assert db.session.scalar(select(func.count(Invitation.id))) == 2
    client = app.test_client()
    for role, email, password in logins:
        response = client.post("/login", data={"email": email, "password": password})
        assert response.status_code == 302
        expected = "/admin/" if role != "reader" else f"/survey/{study.id}/continue"
        assert response.headers["Location"] == expected
        if role == "reader":
            assert client.get(f"/survey/{study.id}/").status_code == 200
        client.post("/logout")


def test_demo_adds_a_three_arm_crossover_on_a_bundle_with_cbir(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    bundle = make_bundle_v2(tmp_path / "bundle", cases=12, seed=4)
    first = runner.invoke(args=["demo", "--bundle", str(bundle), "--cases", "6"])
    assert first.exit_code == 0, first.output
    assert "sequential replay, open" in first.output
    assert "“Demo three-arm study”: 12 cases, counterbalanced crossover, open" in first.output
    second = runner.invoke(args=["demo", "--bundle", str(bundle), "--cases", "6"])
    assert second.exit_code == 0 and second.output == first.output
    with app.app_context():
        replay, crossover = db.session.scalars(select(Study).order_by(Study.id)).all()
        assert [c.key for c in conditions_of(replay)] == ["unaided", "se_cbir"]
        assert crossover.design == "crossover"
        assert [(c["aid"], c["k"]) for c in crossover.conditions] == [
            ("unaided", 0),
            ("cbir", 6),
            ("se_cbir", 6),
        ]
        assert crossover.bundle_digest == replay.bundle_digest
        for record in (replay, crossover):
            assert record.status == StudyStatus.OPEN and record.cases_per_reader == 6
        assert db.session.scalar(select(func.count(Invitation.id))) == 4
    logins = re.findall(r"(reader)\s+(\S+@demo\.local)\s+(\S+)", first.output)
    client = app.test_client()
    for _, email, password in logins:
        response = client.post("/login", data={"email": email, "password": password})
        assert response.headers["Location"] == "/survey/"  # two open studies: the list
        home = client.get("/survey/").get_data(as_text=True)
        assert "Demo study" in home and "Demo three-arm study" in home
        assert client.get(f"/survey/{crossover.id}/").status_code == 200
        client.post("/logout")


def test_study_open_and_no_invitation_into_a_draft(
    runner: FlaskCliRunner, app: Flask, bundle_dir: Path
) -> None:
    assert runner.invoke(args=["study", "import", str(bundle_dir), "--name", "CLI"]).exit_code == 0
    refused = runner.invoke(args=["study", "invite", "1", "x@example.org"])
    assert refused.exit_code == 1
    assert "Study 1 is still a draft: open it first (flask study open 1)" in refused.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Invitation.id))) == 0
        record = db.session.get_one(Study, 1)
        record.probe_share = 0.1  # probes the information text does not disclose
        db.session.commit()
    undisclosed = runner.invoke(args=["study", "open", "1"])
    assert undisclosed.exit_code == 1 and "misleading-aid probes" in undisclosed.output
    with app.app_context():
        record = db.session.get_one(Study, 1)
        assert record.status == StudyStatus.DRAFT
        record.probe_share = 0.0
        db.session.commit()
    opened = runner.invoke(args=["study", "open", "1"])
    assert opened.exit_code == 0 and "is open" in opened.output
    assert runner.invoke(args=["study", "invite", "1", "x@example.org"]).exit_code == 0
    assert runner.invoke(args=["study", "open", "9"]).exit_code == 1
