"""The study report of a study in the database: its flow counts and its registered design,
gathered here for `app.analysis.html_report` (which knows no database).

The flow follows CONSORT's and STARD's diagrams: readers invited, enrolled (consented),
withdrawn, completed and analysed; cases in the pool, read by at least one reader, analysed,
and the faulty-aid probe readings analysed apart. The design is the one frozen when the study
first opened (`app.organiser.design_freeze`), checked against its hash and against the design now.
"""

from __future__ import annotations

from sqlalchemy import Select, distinct, func, select

from app.analysis import AnalysisResult
from app.analysis.html_report import Flow, Registration, Report, render_report
from app.clock import now
from app.extensions import db
from app.models import Answer, Assignment, Case, Enrolment, Invitation, Study
from app.organiser.design_freeze import freeze_state

PARTIAL_READERS = (
    "Readers are analysed on every answer they gave: a reader who stopped before the last "
    "session is analysed when they answered under every condition, and left out (beside the "
    "line) when not."
)


def _count(query: Select[tuple[int]]) -> int:
    """The number a count query returns (0 for none)."""
    return int(db.session.scalar(query) or 0)


def study_flow(study: Study, result: AnalysisResult) -> Flow:
    """The flow counts of `study`, with the analysis's own counts of readers and cases."""
    enrolments = select(func.count(Enrolment.id)).where(Enrolment.study_id == study.id)
    read = (
        select(func.count(distinct(Assignment.case_id)))
        .join(Answer, Answer.assignment_id == Assignment.id)
        .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
        .where(Enrolment.study_id == study.id)
    )
    return Flow(
        invited=_count(
            select(func.count(distinct(func.lower(Invitation.email)))).where(
                Invitation.study_id == study.id
            )
        ),
        enrolled=_count(enrolments),
        withdrawn=_count(enrolments.where(Enrolment.withdrawn_at.is_not(None))),
        completed=_count(enrolments.where(Enrolment.finished_at.is_not(None))),
        analysed=result["pooled"]["readers"],
        left_out=list(result["left_out"]["readers"]),
        pool=_count(select(func.count(Case.id)).where(Case.study_id == study.id)),
        cases_shown=_count(read),
        cases_analysed=result["pooled"]["images"],
        probes=result["probes_left_out"],
        notes=[PARTIAL_READERS],
    )


def study_registration(study: Study) -> Registration:
    """The study's registered design: frozen at its first opening, or, for a study not opened
    since freezes began, its design now without a fingerprint (nothing to check it against)."""
    state = freeze_state(study)
    if state.record is None:
        return Registration(
            state.current,
            None,
            "This study has not opened since designs are frozen at opening: the design "
            "described is the one it has now, and it has no registered fingerprint.",
        )
    return Registration(
        state.design,
        state.record.sha256,
        "The design frozen when the study first opened",
        frozen_at=state.record.frozen_at.strftime("%Y-%m-%d %H:%M UTC"),
        intact=state.intact,
        changed=state.changed,
    )


def study_report(study: Study, result: AnalysisResult) -> Report:
    """The study report of `study` from the analysis of all its answers."""
    return render_report(
        result,
        study_registration(study),
        study_flow(study, result),
        study.name,
        now().strftime("%Y-%m-%d %H:%M UTC"),
    )
