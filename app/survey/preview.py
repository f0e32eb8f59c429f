"""Preview as a reader: a study's consent page and a sample case of each of its conditions,
shown to its organisers (and admins) with the readers' own templates, storing nothing.

A sample reading is an Assignment built in memory and never added to the database session
(no enrolment, assignment, answer or timing row); the pages' forms post back here, where
nothing is kept and the organiser goes on to the next sample. Each request ends with a
rollback, so that nothing the rendering may have touched is written either.
"""

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from app.auth import managed_study_or_404, staff_required
from app.extensions import db
from app.models import Assignment, Case, Study
from app.survey.blueprint import bp
from app.survey.conditions import Condition
from app.survey.designs import Design
from app.survey.enrolment import conditions_of, design_of, sessions_of
from app.survey.forms import AnswerForm, ConsentForm
from app.survey.presentation import Page, case_context, case_count, how_it_works, page_context

NOTHING_SAVED = "Preview: nothing was saved."


@dataclass(frozen=True)
class Sample:
    """One sample page: a condition of the study, in a task, at a phase of the reading."""

    index: int  # into conditions_of(study)
    condition: Condition
    task: int
    rotation: int
    first_look: bool = False  # the unaided first answer of an initial-then-revised reading
    revised: bool = False  # its second answer, with the aid in view

    @property
    def label(self) -> str:
        """The sample in words, for the preview's own navigation."""
        if self.first_look:
            return f"{self.condition.label}: first look, before the aid"
        if self.revised:
            return f"{self.condition.label}: answer revised with the aid"
        return self.condition.label


def samples_of(study: Study) -> list[Sample]:
    """The sample pages of a study's design: one per condition, two (first look, revised) per
    condition of an initial-then-revised design; later sessions turned as readers get them."""
    design = design_of(study)
    listed = conditions_of(study)
    out = []
    for index, condition in enumerate(listed):
        if design == Design.INITIAL_REVISED:
            out.append(Sample(index, condition, 1, 0, first_look=True))
            out.append(Sample(index, condition, 1, 0, revised=True))
            continue
        task = index + 1 if sessions_of(study) > 1 else 1
        turned = task > 1 and study.rotate_later_sessions
        out.append(Sample(index, condition, task, 180 if turned else 0))
    return out


def sample_case(study: Study, number: int) -> Case | None:
    """The pool's case for sample `number` (a different one for each, in bundle order)."""
    count = case_count(study)
    if count == 0:
        return None
    return db.session.scalar(
        select(Case)
        .where(Case.study_id == study.id)
        .order_by(Case.position, Case.id)
        .offset((number - 1) % count)
        .limit(1)
    )


def preview_nav(study: Study, current: int) -> dict[str, Any]:
    """The preview's banner: where the organiser is, the other pages, the way back."""
    samples = samples_of(study)
    consent = url_for("survey.preview", study_id=study.id)
    pages = [{"label": "Information and consent", "url": consent}]
    pages += [
        {
            "label": f"Sample {number}: {sample.label}",
            "url": url_for("survey.preview_case", study_id=study.id, number=number),
        }
        for number, sample in enumerate(samples, start=1)
    ]
    return {
        "pages": pages,
        "current": current,
        "back": url_for("settings.study", study_id=study.id),
        # The page's form posts back to it; the POST keeps nothing and goes on to the next.
        "action": pages[current]["url"],
    }


def next_url(study: Study, current: int) -> str:
    """Where a form of page `current` (0 = consent) goes: the next sample, then the study."""
    if current < len(samples_of(study)):
        return url_for("survey.preview_case", study_id=study.id, number=current + 1)
    return url_for("survey.preview", study_id=study.id)


@bp.route("/<int:study_id>/preview/", methods=["GET", "POST"])
@staff_required
def preview(study_id: int) -> Page:
    """The study's welcome and consent page as a reader sees it before agreeing."""
    study = managed_study_or_404(study_id)
    form = ConsentForm()
    if form.is_submitted():
        db.session.rollback()
        flash(NOTHING_SAVED, "info")
        return redirect(next_url(study, 0), 303)
    cases = min(study.cases_per_reader, case_count(study))
    context = page_context(
        study,
        form=form,
        enrolment=None,
        steps=how_it_works(study, None, cases),
        preview=preview_nav(study, 0),
    )
    page = render_template("survey/welcome.html", **context)
    db.session.rollback()
    return page


@bp.route("/<int:study_id>/preview/case/<int:number>", methods=["GET", "POST"])
@staff_required
def preview_case(study_id: int, number: int) -> Page:
    """Sample case `number` of the study's design, shown as its readers get it."""
    study = managed_study_or_404(study_id)
    samples = samples_of(study)
    if not 1 <= number <= len(samples):
        return redirect(url_for("survey.preview", study_id=study.id))
    form = AnswerForm([], len(study.likert))
    if form.is_submitted():
        db.session.rollback()
        flash(NOTHING_SAVED, "info")
        return redirect(next_url(study, number), 303)
    case = sample_case(study, number)
    if case is None:
        flash("The study has no cases yet: there is nothing to preview.", "warning")
        return redirect(url_for("survey.preview", study_id=study.id))
    sample = samples[number - 1]
    # Built in memory only: never added to the session, so never flushed.
    reading = Assignment(
        session=sample.task,
        position=0,
        rotation=sample.rotation,
        condition=sample.index,
        probe=False,
    )
    reading.case = case
    form.token.data = f"preview-{study.id}-{number}"
    size = min(study.cases_per_reader, case_count(study))
    context = case_context(study, reading, form, size, sample.first_look)
    page = render_template("survey/case.html", preview=preview_nav(study, number), **context)
    db.session.rollback()
    return page
