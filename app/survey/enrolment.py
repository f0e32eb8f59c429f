"""A reader's enrolment and position: drawing their cases, where they stand, where to go next."""

import hashlib
import hmac
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.clock import now
from app.consent import record_current
from app.extensions import db
from app.models import Answer, Assignment, Case, Enrolment, Neighbour, ReaderRole, Study, User
from app.survey import conditions, designs, probes, sampling
from app.survey.conditions import Condition
from app.survey.designs import Design
from studybundle.vote import majority_vote


def enrolment_of(study_id: int, user_id: int) -> Enrolment | None:
    """The user's enrolment in the study, if they have consented already."""
    return db.session.scalar(
        select(Enrolment).where(Enrolment.study_id == study_id, Enrolment.user_id == user_id)
    )


def conditions_of(study: Study) -> list[Condition]:
    """The study's conditions in the design's order (when none are set, the thesis's two,
    SE-CBIR at the bundle's k)."""
    listed = [conditions.parse(item) for item in study.conditions]
    return listed or conditions.thesis(study.neighbours_shown or conditions.DEFAULT_K)


PRACTICE = 0  # the session ("task") of the practice cases, before Task 1; never analysed


def design_of(study: Study) -> Design:
    """The study's design."""
    return Design(study.design)


def sessions_of(study: Study) -> int:
    """How many sessions ("tasks") each reader has: one per condition, or one in all."""
    if design_of(study) in (Design.PER_CASE, Design.INITIAL_REVISED):
        return 1
    return len(conditions_of(study))


def next_arm_index(study: Study) -> int:
    """The place in the randomisation of the next reader to enrol."""
    last = db.session.scalar(
        select(func.max(Enrolment.arm_index)).where(Enrolment.study_id == study.id)
    )
    return 0 if last is None else last + 1


def plan_assignments(
    study: Study, seed: int, arm_index: int, cases: list[int], practice: Sequence[int] = ()
) -> list[Assignment]:
    """The reader's assignments: the design's plan over their cases, with the probes marked,
    after the practice cases (session 0).

    `cases` are the drawn case ids in canonical order. Probes are drawn among the readings
    whose condition shows an aid that can mislead (neighbours or probabilities), each with the
    class it points to and the case whose genuine aid it shows (app.survey.probes). Practice
    cases show the reader's conditions in the order they will meet them, one after the other,
    upright and never as probes: the same pages as the study's own cases.
    """
    listed = conditions_of(study)
    sessions = designs.plan(
        design_of(study),
        cases,
        len(listed),
        arm_index=arm_index,
        study_seed=study.seed,
        reader_seed=seed,
        reshuffle=study.reshuffle_later_sessions,
        rotate_later_sessions=study.rotate_later_sessions,
    )
    out = []
    for session, readings in enumerate(sessions, start=1):
        for position, reading in enumerate(readings):
            out.append(
                Assignment(
                    case_id=reading.case,
                    session=session,
                    position=position,
                    rotation=reading.rotation,
                    condition=reading.condition,
                )
            )
    mark_probes(study, seed, cases, out)
    order = list(dict.fromkeys(a.condition for a in out))
    trial = [
        Assignment(
            case_id=case_id,
            session=PRACTICE,
            position=position,
            rotation=0,
            condition=order[position % len(order)],
        )
        for position, case_id in enumerate(practice)
    ]
    return trial + out


def aid_suggestions(study: Study, indices: list[int]) -> dict[int, dict[int, str]]:
    """What each listed condition's genuine aid suggests for every case of the study (case id
    -> class): the rank-weighted vote of its first k neighbours, or the most probable class."""
    listed = conditions_of(study)
    codes = [item.code for item in study.classes]
    lists: dict[tuple[int, str], list[str]] = {}
    rows = db.session.execute(
        select(Neighbour.case_id, Neighbour.aid, Neighbour.truth)
        .join(Case, Case.id == Neighbour.case_id)
        .where(Case.study_id == study.id)
        .order_by(Neighbour.case_id, Neighbour.aid, Neighbour.rank)
    )
    for case_id, aid, truth in rows:
        lists.setdefault((case_id, aid), []).append(truth)
    vectors = {
        case_id: vector
        for case_id, vector in db.session.execute(
            select(Case.id, Case.probabilities).where(Case.study_id == study.id)
        )
    }
    out: dict[int, dict[int, str]] = {}
    for index in indices:
        condition = listed[index]
        found: dict[int, str] = {}
        if condition.shows_neighbours:
            for (case_id, aid), truths in lists.items():
                if aid == condition.aid and truths:
                    found[case_id] = majority_vote(truths[: condition.k])
        else:
            for case_id, vector in vectors.items():
                values = (vector or {}).get(condition.classifier)
                if values:
                    found[case_id] = probes.ranked_by_probability(values, codes)[0]
        out[index] = found
    return out


def mark_probes(study: Study, seed: int, cases: list[int], out: list[Assignment]) -> None:
    """Mark the reader's probes among `out`: readings whose condition can mislead, each with
    the wrong class it points to and the case whose genuine aid it borrows."""
    listed = conditions_of(study)
    misleadable = [a for a in out if listed[a.condition].can_mislead]
    if study.probe_share == 0 or not misleadable:
        return
    suggested = aid_suggestions(study, sorted({a.condition for a in misleadable}))
    truths = {
        case_id: truth
        for case_id, truth in db.session.execute(
            select(Case.id, Case.truth).where(Case.id.in_(cases))
        )
    }
    placed = designs.probe_positions(
        [a.condition for a in misleadable],
        study.probe_share,
        seed,
        truths=[truths[a.case_id] for a in misleadable],
        mix={c: Counter(by_case.values()) for c, by_case in suggested.items()},
    )
    sources = probes.choose_sources(
        placed,
        [(a.condition, a.case_id) for a in misleadable],
        suggested,
        set(cases),
        sampling.stream(seed, "probe sources"),
    )
    for index, wrong in placed.items():
        misleadable[index].probe = True
        misleadable[index].probe_class = wrong
        misleadable[index].probe_source = sources[index]


@dataclass(frozen=True)
class Profile:
    """What a reader tells about themselves at consent."""

    role: ReaderRole
    years: int  # of dermoscopy practice
    exams_per_week: int  # dermoscopic examinations in a typical week


ENROL_ATTEMPTS = 5  # readers consenting at the same moment race for the next arm_index


def enrol(study: Study, user: User, profile: Profile | None = None) -> Enrolment:
    """Enrol `user` in `study`: draw their cases with a fresh seed and lay out the design.

    Everything is written in one transaction. If a concurrent request enrolled the same
    reader first, the unique constraints refuse this second draw and the first one is kept;
    if another reader took the same place in the randomisation, the next place is tried.
    """
    for _ in range(ENROL_ATTEMPTS):
        existing = enrolment_of(study.id, user.id)
        if existing is not None:
            return existing
        rows = db.session.execute(
            select(Case.position, Case.id, Case.truth).where(Case.study_id == study.id)
        ).all()
        pool = {position: truth for position, _, truth in rows}
        case_ids = {position: case_id for position, case_id, _ in rows}
        count = min(study.cases_per_reader, len(pool))
        seed = sampling.new_seed()
        chosen = sampling.draw_set(pool, count, seed, str(study.sampling))
        moment = now()
        arm_index = next_arm_index(study)
        enrolment = Enrolment(
            study_id=study.id,
            user_id=user.id,
            seed=seed,
            arm_index=arm_index,
            created_at=moment,
            consented_at=moment,
            consent_version=study.consent_version,  # the text this reader agreed to
        )
        record_current(study)
        if profile is not None:
            enrolment.profile_role = profile.role
            enrolment.profile_years = profile.years
            enrolment.profile_exams_per_week = profile.exams_per_week
        cases = [case_ids[position] for position in chosen]
        trial = sampling.practice_set(list(pool), chosen, study.practice_cases, seed)
        enrolment.assignments.extend(
            plan_assignments(study, seed, arm_index, cases, [case_ids[p] for p in trial])
        )
        db.session.add(enrolment)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        return enrolment
    existing = enrolment_of(study.id, user.id)
    if existing is None:
        raise RuntimeError("could not enrol the reader: too many readers enrolled at once")
    return existing


@dataclass(frozen=True)
class Standing:
    """Where a reader is: the current assignment (None when all is answered) and the lock."""

    current: Assignment | None
    opens_at: datetime | None  # when the current session opens (None in session 1)
    locked: bool  # the current session has not opened yet (the wash-out has not passed)


def session_end(enrolment: Enrolment, session: int) -> datetime | None:
    """When the reader answered the last case of `session` (None when it is not complete)."""
    if session == 1:
        return enrolment.first_session_done_at
    return db.session.scalar(
        select(func.max(Answer.answered_at))
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(Assignment.enrolment_id == enrolment.id, Assignment.session == session)
    )


def standing(enrolment: Enrolment) -> Standing:
    """The reader's current assignment: the first unanswered one, session by session."""
    current = db.session.scalar(
        select(Assignment)
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .where(Assignment.enrolment_id == enrolment.id, Answer.id.is_(None))
        .order_by(Assignment.session, Assignment.position)
        .limit(1)
    )
    if current is not None and current.session > 1 and enrolment.first_session_done_at is None:
        # Defensive: session 1 is complete but the moment was not recorded; record it now.
        enrolment.first_session_done_at = now()
        db.session.commit()
    if current is None or current.session <= 1:  # the practice set and Task 1 are always open
        return Standing(current, None, False)
    ended = session_end(enrolment, current.session - 1)
    opens_at = None if ended is None else ended + enrolment.study.washout
    # A task the reader has started stays open, whatever the wash-out became since: a longer
    # one set mid-task must not lock them out of it (app/washout.py).
    started = current.position > 0 or current.shown_at is not None
    locked = opens_at is not None and now() < opens_at and not started
    return Standing(current, opens_at, locked)


def next_opening(enrolment: Enrolment) -> tuple[int, datetime] | None:
    """The session the reader reads next and when it opens (or opened), for a session after
    the first; None while in session 1 or once every session is answered."""
    where = standing(enrolment)
    if where.current is None or where.opens_at is None:
        return None
    return where.current.session, where.opens_at


@dataclass(frozen=True)
class SessionProgress:
    """How far a reader is in one session ("task"), for the organiser's pages."""

    session: int
    answered: int
    assigned: int
    completed_at: datetime | None  # the last answer of a complete session
    opens_at: datetime | None  # sessions after the first: the previous one's end + wash-out

    @property
    def complete(self) -> bool:
        """Whether every case of the session is answered."""
        return self.assigned > 0 and self.answered == self.assigned


def session_progress(study: Study, enrolment_ids: list[int]) -> dict[int, list[SessionProgress]]:
    """Each enrolment's progress in every session of the study, in one query."""
    found: dict[tuple[int, int], tuple[int, int, datetime | None]] = {}
    if enrolment_ids:
        rows = db.session.execute(
            select(
                Assignment.enrolment_id,
                Assignment.session,
                func.count(Assignment.id),
                func.count(Answer.id),
                func.max(Answer.answered_at),
            )
            .outerjoin(Answer, Answer.assignment_id == Assignment.id)
            .where(Assignment.enrolment_id.in_(enrolment_ids))
            .group_by(Assignment.enrolment_id, Assignment.session)
        )
        for enrolment_id, task, assigned, answered, last in rows:
            found[(enrolment_id, task)] = (assigned, answered, last)
    out: dict[int, list[SessionProgress]] = {}
    for enrolment_id in enrolment_ids:
        sessions: list[SessionProgress] = []
        previous_end: datetime | None = None
        for session in range(1, sessions_of(study) + 1):
            assigned, answered, last = found.get((enrolment_id, session), (0, 0, None))
            ended = last if assigned and answered == assigned else None
            opens = previous_end + study.washout if previous_end and session > 1 else None
            sessions.append(SessionProgress(session, answered, assigned, ended, opens))
            previous_end = ended
        out[enrolment_id] = sessions
    return out


def has_practice(enrolment: Enrolment) -> bool:
    """Whether the reader has practice cases (session 0) before Task 1."""
    return task_size(enrolment, PRACTICE) > 0


def condition_orders(study: Study, enrolment_ids: list[int]) -> dict[int, list[str]]:
    """Each reader's conditions in the order of their tasks, in a few words each ("Unaided",
    "SE-CBIR 6"); a task whose cases mix conditions says so. One query."""
    listed = conditions_of(study)
    found: dict[tuple[int, int], set[int]] = {}
    if enrolment_ids:
        rows = db.session.execute(
            select(Assignment.enrolment_id, Assignment.session, Assignment.condition)
            .where(Assignment.enrolment_id.in_(enrolment_ids))
            .distinct()
        )
        for enrolment_id, task, condition in rows:
            found.setdefault((enrolment_id, task), set()).add(condition)
    out: dict[int, list[str]] = {}
    for enrolment_id in enrolment_ids:
        words = []
        for task in range(1, sessions_of(study) + 1):
            indices = found.get((enrolment_id, task), set())
            if len(indices) == 1:
                (index,) = indices
                words.append(listed[index].short if index < len(listed) else f"#{index}")
            elif indices:
                words.append("mixed: " + ", ".join(listed[i].short for i in sorted(indices)))
        out[enrolment_id] = words
    return out


def task_size(enrolment: Enrolment, task: int) -> int:
    """How many cases the reader has in `task`."""
    return db.session.execute(
        select(func.count(Assignment.id)).where(
            Assignment.enrolment_id == enrolment.id, Assignment.session == task
        )
    ).scalar_one()


def case_token(assignment: Assignment, phase: str = "") -> str:
    """An opaque token binding a form to one assignment (an HMAC; no image id in it).

    `phase` tells the forms of one assignment apart: "initial" for the unaided first answer
    of an initial-then-revised reading, "" for the final answer.
    """
    message = f"survey-case:{assignment.enrolment_id}:{assignment.id}:{assignment.session}"
    if phase:
        message += f":{phase}"
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def where_to(study_id: int, enrolment: Enrolment | None) -> str:
    """The URL of the page the reader should see next."""
    if enrolment is None or enrolment.withdrawn_at is not None:
        return url_for("survey.welcome", study_id=study_id)
    state = standing(enrolment)
    current = state.current
    if current is None:
        return url_for("survey.task_end", study_id=study_id, task=sessions_of(enrolment.study))
    if current.position == 0 and current.shown_at is None:
        if state.locked:
            return url_for("survey.task_end", study_id=study_id, task=current.session - 1)
        return url_for("survey.task", study_id=study_id, task=current.session)
    return url_for(
        "survey.case", study_id=study_id, task=current.session, number=current.position + 1
    )
