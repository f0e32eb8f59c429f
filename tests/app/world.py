"""The shared `world` of the web app's tests: every role logged in, on two studies.

`build_world` logs in a reader of `study` and one of `other_study` (each enrolled in their own
study), an organiser and an admin, and keeps each one's session cookie; `World` hands out a
client per role and builds real URLs (study ids, a case image, fresh invitations) for any
endpoint. The `world` fixture in conftest builds one; test_authz_matrix, test_security and
test_fuzz use it.
"""

# StudyRef and UserRef are only annotations here: importing conftest at runtime would be a
# cycle, since conftest imports this module for its `world` fixture.
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from app.auth import create_invitation
from app.extensions import db
from app.models import Case, Enrolment, ImportJob, Study, StudyMember, User

if TYPE_CHECKING:
    from tests.app.conftest import StudyRef, UserRef

# The welcome page's form: the reader's profile and the consent.
CONSENT = {"role": "dermatologist", "years": "6", "exams_per_week": "40", "consent": "y"}

# Variants of one endpoint that must all behave alike (e.g. every download).
EXPORT_NAMES = ("responses", "summary-csv", "summary-json", "imrmc", "mrmcaov")


@dataclass
class World:
    """A study with a reader (enrolled), a reader of another study, staff, and their sessions."""

    app: Flask
    study: StudyRef
    other_study: StudyRef
    users: dict[str, UserRef | None]
    cookies: dict[str, str | None]
    image: str  # a case image of `study`, without ".jpg"
    other_image: str  # the same for `other_study`
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, role: str) -> FlaskClient:
        """A fresh client carrying `role`'s session."""
        client = self.app.test_client()
        cookie = self.cookies[role]
        if cookie is not None:
            client.set_cookie("session", cookie)
        return client

    def log_in_again(self, role: str) -> None:
        """A new session for `role`: a logout ends every session of its user, copies too."""
        user = self.users[role]
        if user is None:
            return
        client = self.app.test_client()
        csrf = self.app.config.get("WTF_CSRF_ENABLED", True)
        self.app.config["WTF_CSRF_ENABLED"] = False  # some tests turn it on meanwhile
        try:
            response = client.post("/login", data={"email": user.email, "password": user.password})
        finally:
            self.app.config["WTF_CSRF_ENABLED"] = csrf
        assert response.status_code == 302, role
        self.cookies[role] = client.get_cookie("session").value

    def fresh_invitation(self) -> tuple[int, str]:
        """A new pending invitation to `study`: its id and its token."""
        with self.app.app_context():
            invitation, token = create_invitation(
                db.session.get(Study, self.study.id), "invitee@example.org"
            )
            db.session.commit()
            return invitation.id, token

    def fresh_message(self) -> int:
        """A queued invitation e-mail of `study` (tied to a fresh invitation): its id."""
        from app.mail.outbox import About, queue_mail

        invitation_id, _ = self.fresh_invitation()
        with self.app.app_context():
            message = queue_mail(
                "invitee@example.org",
                "Invitation",
                "Hello",
                kind="invitation",
                about=About(invitation_id=invitation_id),
            )
            db.session.commit()
            return message.id

    def owner_member(self, study: StudyRef) -> int:
        """The id of the owner's membership of `study` (0 when it has none, e.g. no such study)."""
        with self.app.app_context():
            member_id = db.session.scalar(
                select(StudyMember.id).where(
                    StudyMember.study_id == study.id, StudyMember.owner.is_(True)
                )
            )
            return member_id or 0

    def enrolment_id(self, study: StudyRef) -> int:
        """The id of the reader's enrolment in `study` (0 when there is none)."""
        with self.app.app_context():
            found = db.session.scalar(select(Enrolment.id).where(Enrolment.study_id == study.id))
            return found or 0

    def finished_import(self) -> int:
        """The id of a finished import of `study`, started by the organiser."""
        organiser = self.users["organiser"]
        assert organiser is not None
        with self.app.app_context():
            job = ImportJob(
                created_by_id=organiser.id,
                name=self.study.name,
                source="(a bundle folder)",
                state="done",
                stage="Done",
                study_id=self.study.id,
            )
            db.session.add(job)
            db.session.commit()
            return job.id

    def reset_token(self, user_id: int | None = None) -> str:
        """A password-reset token (default: the other reader's), as the e-mailed link has it."""
        from app.auth.reset import reset_token

        other = self.users["other_reader"]
        assert other is not None
        with self.app.app_context():
            return reset_token(db.session.get(User, user_id or other.id))

    def url_values(self, endpoint: str, study: StudyRef | None = None) -> list[dict[str, Any]]:
        """The URL arguments of `endpoint` (several variants for some), with real ids."""
        study = study or self.study
        image = self.image if study == self.study else self.other_image
        by_study = {"study_id": study.id}
        if endpoint == "settings.change_status":
            return [{**by_study, "action": "open"}]  # the study is open: nothing changes
        if endpoint == "contact.send_message_now":
            return [{**by_study, "message_id": self.fresh_message()}]
        if endpoint in (
            "invitations.revoke_invitation",
            "invitations.resend_invitation",
            "contact.invitation_address",
        ):
            return [{**by_study, "invitation_id": self.fresh_invitation()[0]}]
        if endpoint == "design.preset":
            return [{**by_study, "preset": "thesis"}]
        if endpoint == "team.remove":
            # The owner's own membership: the owner stays, so nothing changes.
            return [{**by_study, "member_id": self.owner_member(study)}]
        if endpoint == "auth.invitation":
            return [{"token": self.fresh_invitation()[1]}]
        if endpoint in ("readers.remind", "readers.mark_withdrawn", "contact.reader_address"):
            return [{**by_study, "enrolment_id": self.enrolment_id(study)}]
        if endpoint == "imports.import_job":
            return [{"job_id": self.finished_import()}]
        if endpoint == "auth.reset_password":
            return [{"token": self.reset_token()}]
        if endpoint == "dashboard.confusion_image":
            return [{**by_study, "task": t, "kind": k} for t in (1, 2) for k in ("png", "svg")]
        if endpoint in ("dashboard.forest_image", "dashboard.power_image"):
            return [{**by_study, "kind": kind} for kind in ("png", "svg")]
        if endpoint == "dashboard.export":
            return [{**by_study, "name": name} for name in EXPORT_NAMES]
        if endpoint == "images.image":
            return [{"name": image}]
        if endpoint == "static":
            return [{"filename": "css/app.css"}, {"filename": "js/survey.js"}]
        if endpoint in ("survey.case",):
            return [{**by_study, "task": 1, "number": 1}]
        if endpoint == "survey.preview_case":
            return [{**by_study, "number": 1}]
        if endpoint in ("survey.task", "survey.task_end"):
            return [{**by_study, "task": 1}]
        rule = next(self.app.url_map.iter_rules(endpoint))
        return [by_study if "study_id" in rule.arguments else {}]

    def url(self, endpoint: str, values: dict[str, Any]) -> str:
        """The path of `endpoint` with `values`."""
        with self.app.test_request_context():
            return url_for(endpoint, **values)


def session_cookie(app: Flask, user: UserRef, login: Callable) -> str:
    """Log `user` in and keep the session cookie's value."""
    client = app.test_client()
    login(client, user)
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def first_case_image(app: Flask, study: StudyRef) -> str:
    """The upright image name of a study's first case, without ".jpg"."""
    with app.app_context():
        name = db.session.scalar(
            select(Case.image).where(Case.study_id == study.id).order_by(Case.position)
        )
        return name.removesuffix(".jpg")


def build_world(
    app: Flask,
    study: StudyRef,
    other_study: StudyRef,
    users: dict[str, UserRef],
    login: Callable,
) -> World:
    """Sessions for every role; both readers consented to their own study."""
    cookies: dict[str, str | None] = {"anonymous": None}
    for role, user in users.items():
        cookies[role] = session_cookie(app, user, login)
    world = World(
        app,
        study,
        other_study,
        {"anonymous": None, **users},
        cookies,
        first_case_image(app, study),
        first_case_image(app, other_study),
    )
    for role, target in (("reader", study), ("other_reader", other_study)):
        response = world.client(role).post(f"/survey/{target.id}/", data=CONSENT)
        assert response.status_code == 303, role
    return world
