"""Database models (SQLAlchemy 2, typed). Every timestamp is naive UTC from `app.clock.now`.

The shape of a study:

    Study ─┬─ StudyClass (the study's own taxonomy, display order)
           ├─ Case ── Neighbour (per aid, se_cbir and cbir, rank order)
           ├─ StudyMember (the organisers who run it: one owner, collaborators)
           ├─ Invitation (single-use link for one reader)
           └─ Enrolment (one reader in one study, with the seed that drew the cases)
                 └─ Assignment (one case in one session at one position)
                       └─ Answer (at most one: unique on assignment_id, so exactly once)
"""

import enum
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.clock import now
from app.extensions import Model


class Role(enum.StrEnum):
    """What a user may do: admins manage accounts and every study, organisers run the studies
    they are members of, readers answer."""

    ADMIN = "admin"
    ORGANISER = "organiser"
    READER = "reader"


class StudyStatus(enum.StrEnum):
    """A study is set up as a draft, opened for readers, then closed."""

    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class ReaderRole(enum.StrEnum):
    """A reader's training, asked at consent: results are split by it."""

    DERMATOLOGIST = "dermatologist"  # board-certified
    RESIDENT = "resident"
    GENERAL_PRACTITIONER = "general_practitioner"
    OTHER = "other"


READER_ROLE_LABELS = {
    ReaderRole.DERMATOLOGIST: "Board-certified dermatologist",
    ReaderRole.RESIDENT: "Resident in dermatology",
    ReaderRole.GENERAL_PRACTITIONER: "General practitioner",
    ReaderRole.OTHER: "Other",
}


class Sampling(enum.StrEnum):
    """How a reader's cases are drawn from the pool."""

    RANDOM = "random"  # simple random sample, as in the thesis
    STRATIFIED = "stratified"  # proportional to the pool's class shares


class User(UserMixin, Model):
    """An account. Readers get theirs from an invitation link and set the password there."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    # Stable pseudonym for exports ("R-3F9A2C"); never derived from the email.
    pseudonym: Mapped[str] = mapped_column(String(16), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # No longer decide the lock (app/auth/throttle.py counts attempts per e-mail in
    # attempt_counter, so that unknown addresses lock alike); reset on a good login, kept for
    # old tools and rows.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    # Part of the id kept in session cookies: raising it (logout, new password) makes every
    # cookie issued before worthless, even a copied one. Only a server default, so that rows
    # can be written through these models before migration 0003 (the migration test does).
    session_version: Mapped[int] = mapped_column(Integer, server_default="0")
    # The survey's single-key shortcuts (1-7, A S D F G, Enter); a reader who uses speech
    # input or a switch may turn them off (WCAG 2.1.4). A server default for the same reason.
    shortcuts_enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())

    enrolments: Mapped[list["Enrolment"]] = relationship(back_populates="user")

    # Read session_version when it is used, not through INSERT ... RETURNING: that names the
    # column, which a database before migration 0003 does not have. (Not a ClassVar:
    # DeclarativeBase declares it as a plain attribute.)
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012

    def set_password(self, password: str) -> None:
        """Store a salted hash of `password`, never the password."""
        method = "scrypt"
        if has_app_context():
            method = current_app.config.get("PASSWORD_HASH_METHOD", method)
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        """Whether `password` matches the stored hash (False when none is set yet)."""
        return self.password_hash is not None and check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """The session's user id, "<id>:<session_version>" (Flask-Login stores it)."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login asks this
        return self.active

    @property
    def is_staff(self) -> bool:
        """Organisers and admins: they run studies (organisers only those they are members of)."""
        return self.role in (Role.ADMIN, Role.ORGANISER)

    @property
    def is_admin(self) -> bool:
        """Admins: they manage accounts and every study."""
        return self.role == Role.ADMIN


class Study(Model):
    """One reader study, imported from a study bundle, with its settings."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[StudyStatus] = mapped_column(
        Enum(StudyStatus, native_enum=False, length=16), default=StudyStatus.DRAFT
    )
    cases_per_reader: Mapped[int] = mapped_column(Integer, default=100)
    washout_hours: Mapped[float] = mapped_column(Float, default=24.0)
    sampling: Mapped[Sampling] = mapped_column(
        Enum(Sampling, native_enum=False, length=16), default=Sampling.RANDOM
    )
    reshuffle_later_sessions: Mapped[bool] = mapped_column(Boolean, default=True)
    # The design (app/survey/designs.py) and its conditions, in the design's order: dicts of
    # app/survey/conditions.py. The thesis: sequential, unaided then SE-CBIR at k = 6.
    design: Mapped[str] = mapped_column(String(32), default="sequential")
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Later sessions show the query turned by 180 degrees (the thesis's second look).
    rotate_later_sessions: Mapped[bool] = mapped_column(Boolean, default=True)
    # Share of aided readings that show a deliberately misleading aid (0: none).
    probe_share: Mapped[float] = mapped_column(Float, default=0.0)
    # Permutes the blocks that randomise readers to condition orders (never shown to anyone).
    seed: Mapped[int] = mapped_column(Integer, default=lambda: secrets.randbelow(2**31))
    information: Mapped[str] = mapped_column(Text, default="")  # welcome / consent text
    # The version of `information` readers agree to now; every change of the text adds one
    # (ConsentVersion keeps each text, Enrolment.consent_version what each reader agreed to).
    # Server defaults only, and deferred: rows can be read and written through these models
    # on a database before migration 0008 (the migration test does).
    consent_version: Mapped[int] = mapped_column(Integer, server_default="1", deferred=True)
    # Remind readers again every this many days while they have not finished (0: never).
    reminder_days: Mapped[int] = mapped_column(Integer, server_default="0", deferred=True)
    # Practice cases each reader reads before Task 1 (session 0, never analysed; 0: none),
    # drawn from the pool's cases outside that reader's own draw.
    practice_cases: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Whether a reader who has finished sees their own score per condition and which of
    # their cases were probes (off unless the organiser allows it).
    feedback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)  # the bundle's manifest, as imported
    # The confidence scale's labels, level 1 first (the bundle's; format 1: the thesis's five).
    likert: Mapped[list[Any]] = mapped_column(JSON)
    # How many SE-CBIR neighbours Task 2 shows (the bundle's `neighbours`; format 1: 6).
    neighbours_shown: Mapped[int] = mapped_column(Integer, default=6)
    # sha256 over the bundle's manifest and query list: re-importing the same bundle is a no-op
    # (it returns the first study of that digest); a copied study shares its source's digest.
    bundle_digest: Mapped[str] = mapped_column(String(64), index=True)
    image_folder: Mapped[str] = mapped_column(String(500))  # where its images were copied
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    classes: Mapped[list["StudyClass"]] = relationship(
        back_populates="study", order_by="StudyClass.position", cascade="all, delete-orphan"
    )
    cases: Mapped[list["Case"]] = relationship(
        back_populates="study", order_by="Case.position", cascade="all, delete-orphan"
    )
    enrolments: Mapped[list["Enrolment"]] = relationship(
        back_populates="study", cascade="all, delete-orphan"
    )
    invitations: Mapped[list["Invitation"]] = relationship(
        back_populates="study", cascade="all, delete-orphan"
    )
    members: Mapped[list["StudyMember"]] = relationship(
        back_populates="study", cascade="all, delete-orphan"
    )

    # Read the server defaults when used, not through INSERT ... RETURNING (migration 0008).
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012

    __table_args__ = (
        CheckConstraint("cases_per_reader > 0", name="cases_positive"),
        CheckConstraint("washout_hours >= 0", name="washout_not_negative"),
        CheckConstraint("probe_share >= 0 AND probe_share <= 0.5", name="probe_share_range"),
        CheckConstraint("neighbours_shown >= 0", name="neighbours_shown_not_negative"),
        CheckConstraint("practice_cases >= 0", name="practice_cases_not_negative"),
    )

    @property
    def washout(self) -> timedelta:
        """The minimum time between finishing Task 1 and starting Task 2."""
        return timedelta(hours=self.washout_hours)


class DesignFreeze(Model):
    """A study's design as it was when the study first opened: its canonical JSON (the exact
    text hashed) and that text's SHA-256, so that a reviewer can check the study ran as
    registered (app/organiser/design_freeze.py). Written once; reopening a closed study keeps it.

    `seed_salt` salts the hash of the study's randomisation seed inside the design: the seed
    itself would let anyone who sees the design predict the next reader's arm, and an
    unsalted hash of a 31-bit number is undone by trying them all. It stays here, never in
    the design's JSON.
    """

    __tablename__ = "design_freeze"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), unique=True)
    frozen_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    design: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    seed_salt: Mapped[str] = mapped_column(String(64))


class StudyMember(Model):
    """An organiser (or admin) who runs a study: its owner, or a collaborator the owner added.

    Organisers see and change only the studies they are members of; admins see every study.
    Only the owner (or an admin) adds and removes collaborators.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    owner: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=now)

    study: Mapped[Study] = relationship(back_populates="members")
    user: Mapped[User] = relationship()

    __table_args__ = (UniqueConstraint("study_id", "user_id"),)


# An import job's states before its outcome; "done", "failed" and "conflict" come after.
UNFINISHED = ("queued", "running")
_UNFINISHED_SQL = text("state IN ({})".format(", ".join(f"'{state}'" for state in UNFINISHED)))


class ImportJob(Model):
    """A bundle import running in the background (app.organiser.import_jobs): its progress and
    outcome.

    Kept in the database, not in a process, so any web worker can show its progress page.
    The caps on imports at once are two unique indexes over the unfinished jobs, so that the
    database, not a count before an insert, refuses one too many: one unfinished job per
    organiser, and each unfinished job holds one of IMPORT_MAX_RUNNING numbered slots.
    `pid` and `host` name the job's process, so that a look from any worker on that host can
    tell whether it still runs.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(1000))  # an uploaded .zip or a bundle folder
    uploaded: Mapped[bool] = mapped_column(Boolean, default=False)  # source is ours to delete
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(200), default="Waiting to start")
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[str | None] = mapped_column(Text)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("study.id", ondelete="SET NULL"))
    created_study: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    slot: Mapped[int | None] = mapped_column(Integer)  # 1..IMPORT_MAX_RUNNING while unfinished
    pid: Mapped[int | None] = mapped_column(Integer)  # the import's process, once started
    host: Mapped[str | None] = mapped_column(String(255))  # where that process runs

    __table_args__ = (
        Index(
            "uq_import_job_unfinished_created_by_id",
            "created_by_id",
            unique=True,
            sqlite_where=_UNFINISHED_SQL,
            postgresql_where=_UNFINISHED_SQL,
        ),
        Index(
            "uq_import_job_unfinished_slot",
            "slot",
            unique=True,
            sqlite_where=_UNFINISHED_SQL,
            postgresql_where=_UNFINISHED_SQL,
        ),
    )


class StudyClass(Model):
    """One diagnostic class of a study's own taxonomy, as its bundle describes it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # display order, 0 first
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    colour: Mapped[str] = mapped_column(String(7))
    text_colour: Mapped[str] = mapped_column(String(7))
    definition: Mapped[str] = mapped_column(Text)
    malignant: Mapped[bool] = mapped_column(Boolean)

    study: Mapped[Study] = relationship(back_populates="classes")

    __table_args__ = (
        UniqueConstraint("study_id", "code"),
        UniqueConstraint("study_id", "position"),
    )


class Case(Model):
    """One query of the pool: the lesion a reader diagnoses (truth never sent to readers)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the bundle
    case_key: Mapped[str] = mapped_column(String(64))  # opaque, from the bundle
    image_id: Mapped[str] = mapped_column(String(64))
    lesion_id: Mapped[str] = mapped_column(String(64))
    truth: Mapped[str] = mapped_column(String(16))
    # SE-CBIR's rank-weighted vote over the neighbours Task 2 shows (the study's k).
    majority_vote: Mapped[str] = mapped_column(String(16))
    image: Mapped[str] = mapped_column(String(80))  # content-hash file name, upright
    image_rotated: Mapped[str] = mapped_column(String(80))  # turned by 180 degrees
    # Each neighbour aid's vote by k: {"se_cbir": {"1": code, ...}, "cbir": {...}}.
    votes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Each classifier's class probabilities in taxonomy order: {"rgb": [...], ...} or {}.
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    saliency: Mapped[str | None] = mapped_column(String(80))  # overlay, upright
    saliency_rotated: Mapped[str | None] = mapped_column(String(80))  # overlay, turned
    # The patient's age, sex and body site (the bundle's `context` extension; None without
    # it): {"age": 45 | None, "sex": "male" | None, "site": "back" | None}.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    study: Mapped[Study] = relationship(back_populates="cases")
    neighbours: Mapped[list["Neighbour"]] = relationship(
        back_populates="case",
        order_by="(Neighbour.aid, Neighbour.rank)",
        cascade="all, delete-orphan",
    )
    # The bundle's class_neighbours: per aid and class, the case's nearest images of that
    # class, which a probe shows (app.survey.probes.own_in_pattern); empty without them.
    class_neighbours: Mapped[list["ClassNeighbour"]] = relationship(
        back_populates="case",
        order_by="(ClassNeighbour.aid, ClassNeighbour.truth, ClassNeighbour.rank)",
        cascade="all, delete-orphan",
    )

    __table_args__ = (
        UniqueConstraint("study_id", "case_key"),
        UniqueConstraint("study_id", "position"),
    )

    def neighbours_of(self, aid: str, k: int) -> list["Neighbour"]:
        """The first `k` neighbours of one aid ("se_cbir" or "cbir"), rank 1 first."""
        return [n for n in self.neighbours if n.aid == aid][:k]


class Neighbour(Model):
    """A retrieved similar image shown (with its label) beside a case in Task 2."""

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    aid: Mapped[str] = mapped_column(String(16), default="se_cbir")  # which retrieval found it
    rank: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[str] = mapped_column(String(64))
    lesion_id: Mapped[str] = mapped_column(String(64))
    truth: Mapped[str] = mapped_column(String(16))
    similarity: Mapped[float] = mapped_column(Float)
    image: Mapped[str] = mapped_column(String(80))

    case: Mapped[Case] = relationship(back_populates="neighbours")

    __table_args__ = (UniqueConstraint("case_id", "aid", "rank"),)


class ClassNeighbour(Model):
    """One of a case's nearest images of one class, by one retrieval aid (the bundle's
    `class_neighbours`): never shown as such, only in a probe's list, labelled like any
    neighbour, in the class-by-rank pattern of another case's genuine list."""

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    aid: Mapped[str] = mapped_column(String(16))  # which retrieval found it
    rank: Mapped[int] = mapped_column(Integer)  # within its class, 1 = most similar
    image_id: Mapped[str] = mapped_column(String(64))
    lesion_id: Mapped[str] = mapped_column(String(64))
    truth: Mapped[str] = mapped_column(String(16))  # the list's class
    similarity: Mapped[float] = mapped_column(Float)
    image: Mapped[str] = mapped_column(String(80))

    case: Mapped[Case] = relationship(back_populates="class_neighbours")

    __table_args__ = (UniqueConstraint("case_id", "aid", "truth", "rank"),)


class Invitation(Model):
    """A single-use, expiring link that lets one reader join one study and set a password."""

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # Only a hash of the token is stored: a database dump does not hand out valid links.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    study: Mapped[Study] = relationship(back_populates="invitations")


class Enrolment(Model):
    """A reader's place in a study: the seed of their draw and how far they got."""

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    seed: Mapped[int] = mapped_column(Integer)  # drew the cases and both orders
    # The order in which readers enrolled in the study (0, 1, ...): their place in the
    # randomisation of condition orders. None for enrolments made before designs existed.
    arm_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    consented_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Study.consent_version when the reader agreed (None: enrolled before versions existed).
    consent_version: Mapped[int | None] = mapped_column(Integer, deferred=True)
    # The end of the first session, and the end of the reader's last session (the study done).
    first_session_done_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The reader's profile, given at consent (None for enrolments made before it was asked).
    profile_role: Mapped[ReaderRole | None] = mapped_column(
        Enum(ReaderRole, native_enum=False, length=32)
    )
    profile_years: Mapped[int | None] = mapped_column(Integer)  # years of dermoscopy practice
    profile_exams_per_week: Mapped[int | None] = mapped_column(Integer)  # dermoscopies a week
    # When the reader withdrew (or an organiser recorded that they did), and who recorded it
    # ("reader" or "organiser"). Their answers so far are kept; nothing more is asked or sent.
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime, deferred=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(16), deferred=True)

    study: Mapped[Study] = relationship(back_populates="enrolments")
    user: Mapped[User] = relationship(back_populates="enrolments")
    assignments: Mapped[list["Assignment"]] = relationship(
        back_populates="enrolment",
        order_by="(Assignment.session, Assignment.position)",
        cascade="all, delete-orphan",
    )

    __table_args__ = (
        UniqueConstraint("study_id", "user_id"),
        UniqueConstraint("study_id", "arm_index"),
    )

    @property
    def second_session_opens_at(self) -> datetime | None:
        """When Task 2 unlocks: the end of Task 1 plus the study's wash-out."""
        if self.first_session_done_at is None:
            return None
        return self.first_session_done_at + self.study.washout


class Assignment(Model):
    """One case of a reader's draw in one session ("task"), at a fixed position of its order,
    to be read under one of the study's conditions. Session 0 is the practice set before
    Task 1: read on the same page, never analysed or exported."""

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    session: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # 0-based within the session
    rotation: Mapped[int] = mapped_column(Integer, default=0)  # 180 in Task 2
    condition: Mapped[int] = mapped_column(Integer, default=0)  # index into Study.conditions
    probe: Mapped[bool] = mapped_column(Boolean, default=False)  # shows a misleading aid
    # A probe's wrong class, drawn at enrolment (app.survey.probes), and the case whose genuine
    # aid it shows (None: the case's own list with its majority moved to that class). A plain
    # id, not a foreign key: a second key to `case` would make every join of an assignment to
    # its case ambiguous. Both None on assignments made before probes were drawn this way.
    probe_class: Mapped[str | None] = mapped_column(String(16))
    probe_source: Mapped[int | None] = mapped_column(Integer)
    shown_at: Mapped[datetime | None] = mapped_column(DateTime)  # first time served
    # Initial then revised: the unaided first answer, stored before the aid is shown.
    initial_diagnosis: Mapped[str | None] = mapped_column(String(16))
    initial_confidence: Mapped[int | None] = mapped_column(Integer)
    initial_at: Mapped[datetime | None] = mapped_column(DateTime)

    enrolment: Mapped[Enrolment] = relationship(back_populates="assignments")
    case: Mapped[Case] = relationship()
    answer: Mapped["Answer | None"] = relationship(back_populates="assignment", uselist=False)

    __table_args__ = (
        UniqueConstraint("enrolment_id", "session", "position"),
        UniqueConstraint("enrolment_id", "session", "case_id"),
        CheckConstraint("session >= 0", name="session_not_negative"),
    )


class Answer(Model):
    """A reader's final answer to one assignment, stored once when submitted."""

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: a double click or a resubmitted form can never store a second answer.
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"), unique=True)
    diagnosis: Mapped[str] = mapped_column(String(16))  # one of the study's class codes
    confidence: Mapped[int] = mapped_column(Integer)
    shown_at: Mapped[datetime] = mapped_column(DateTime)
    answered_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    seconds: Mapped[float] = mapped_column(Float)  # answered_at - shown_at
    # Of those seconds, how long the page was hidden (another tab, a locked screen, closed and
    # reopened later), as the reader's browser measured it; time on case = the difference.
    hidden_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Image ids of the neighbours on screen, in rank order (empty in Task 1).
    neighbours_shown: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Exactly what was shown: the condition's key and options, probe or not, the probe's class.
    shown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rotation: Mapped[int] = mapped_column(Integer, default=0)
    # The patient context shown beside the case (age, sex, body site), None when none was.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    assignment: Mapped[Assignment] = relationship(back_populates="answer")

    __table_args__ = (
        # The study's own scale and classes are checked by the answer form; these only
        # keep out what no study has.
        CheckConstraint("confidence BETWEEN 1 AND 9", name="confidence_1_to_9"),
        CheckConstraint("hidden_seconds >= 0", name="hidden_not_negative"),
        CheckConstraint("diagnosis <> ''", name="diagnosis_not_empty"),
    )


class AttemptCounter(Model):
    """How often something was tried within a fixed window (password checks per e-mail, failed
    logins per network address...): counted in the database, so every worker shares it.

    Raised by one INSERT ... ON CONFLICT DO UPDATE ... RETURNING (app/auth/throttle.py), so
    that simultaneous attempts each see their own number and none slips past a limit.
    """

    # e.g. "e:<HMAC of the e-mail>", "i:<network address>", "p:<address>:<HMAC>"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ConsentVersion(Model):
    """One version of a study's information and consent text, as readers saw it."""

    __tablename__ = "consent_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    __table_args__ = (UniqueConstraint("study_id", "version"),)


class MailStatus(enum.StrEnum):
    """Where an outgoing e-mail is: waiting, being sent by one sender, sent, or given up."""

    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    SENDING = "sending"  # claimed by one sender; stays here if that sender died mid-send
    SENT = "sent"
    FAILED = "failed"  # refused for good, or too many attempts


class OutboxMessage(Model):
    """An e-mail queued in the same transaction as what caused it; `flask mail send-queued`
    sends it (app/mail/outbox.py explains the claim-then-send-then-mark protocol)."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # [{"filename": ..., "content_type": ..., "data": text}] (calendar files are text).
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(32))  # "reset", "reminder", "invitation", "test"
    # What the message is about, for its delivery status on the organisers' pages and for
    # writing it afresh when it is sent (app.mail.outbox.REFRESHERS).
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitation.id", ondelete="SET NULL"), index=True
    )
    enrolment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrolment.id", ondelete="SET NULL"), index=True
    )
    # Set for messages that must be queued at most once (a due reminder): a second insert of
    # the same key fails, so two senders enqueueing at once still queue one message.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    status: Mapped[MailStatus] = mapped_column(
        Enum(MailStatus, native_enum=False, length=16), default=MailStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class AddressChange(Model):
    """A reader's e-mail address corrected by an organiser or an admin
    (app/organiser/contact.py), or repaired by a migration: the old and the new address, who
    changed it and when.

    Kept so that a reader who says "I never got the link" can be answered, and so that an
    address is never changed without a trace. `user_id` names the account whose address
    changed; `invitation_id` an unused invitation whose address was corrected instead.
    """

    __tablename__ = "address_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitation.id", ondelete="SET NULL"), index=True
    )
    old_email: Mapped[str] = mapped_column(String(254))
    new_email: Mapped[str] = mapped_column(String(254))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # None: a command
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=now)
