"""Feedback at the end, where the organiser allows it (Study.feedback): a reader who has
finished sees their own score per condition and which of their cases were misleading-aid
probes. Read from their own answers only; the practice set (session 0) never counts.

Scores leave the probes out, as the study's primary analysis does, and give no case's
diagnosis: a probe is shown with the class its aid pointed to, never with the truth.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Study
from app.survey.conditions import PROBABILITIES, UNAIDED, Condition
from app.survey.designs import Design
from app.survey.enrolment import conditions_of, design_of
from app.survey.presentation import classes_of, image_url, session_name
from studybundle.vocabulary import Aid


@dataclass(frozen=True)
class Score:
    """A reader's answers under one condition: how many, how many right."""

    name: str
    answered: int
    correct: int

    @property
    def percent(self) -> int:
        """The share right, rounded to a whole percent."""
        return round(100 * self.correct / self.answered) if self.answered else 0


@dataclass(frozen=True)
class Probe:
    """One of the reader's readings that showed a deliberately misleading aid."""

    where: str  # "Task 2, case 5"
    image: str  # the case image as it was shown
    pointed_to: str  # the class name the misleading aid favoured
    answered: str  # the class name the reader chose
    followed: bool  # whether the reader chose the class the aid pointed to


@dataclass(frozen=True)
class Feedback:
    """What a finished reader is shown about their own answers."""

    scores: list[Score]
    probes: list[Probe]


def reader_words(condition: Condition) -> str:
    """A condition as a reader knows it: by what they saw, not by its key."""
    extras = []
    if condition.shows_neighbours:
        kind = Aid(condition.aid).short
        text = f"With {condition.k} similar images ({kind})"
        if not condition.labelled:
            text += " without their classes"
    elif condition.aid == PROBABILITIES:
        model = "image and saliency" if condition.classifier == "rgb_saliency" else "image only"
        text = f"With the AI's class probabilities ({model})"
    elif condition.saliency:
        text = "With the AI's saliency map"
    else:
        text = "Without the AI's help"
    if condition.saliency and condition.aid != UNAIDED:
        extras.append("its saliency map")
    if condition.context:
        extras.append("the patient's age, sex and body site")
    if not extras:
        return text
    joiner = ", with " if not condition.aided else " and "
    return text + joiner + " and ".join(extras)


def reader_feedback(study: Study, enrolment: Enrolment) -> Feedback:
    """The reader's own scores per condition (probes left out) and their probes."""
    listed = conditions_of(study)
    names = {item["code"]: item["name"] for item in classes_of(study)}
    assignments = db.session.scalars(
        select(Assignment)
        .join(Answer, Answer.assignment_id == Assignment.id)
        .where(Assignment.enrolment_id == enrolment.id, Assignment.session >= 1)
        .order_by(Assignment.session, Assignment.position)
        .options(selectinload(Assignment.case), selectinload(Assignment.answer))
    ).all()
    counts: dict[str, list[int]] = {}
    probes = []
    first_looks = design_of(study) == Design.INITIAL_REVISED
    for assignment in assignments:
        answer, case = assignment.answer, assignment.case
        assert answer is not None  # joined on it
        if assignment.probe:
            pointed = (answer.shown or {}).get("probe_class") or ""
            probes.append(
                Probe(
                    where=f"{session_name(assignment.session)}, case {assignment.position + 1}",
                    image=image_url(case.image_rotated if assignment.rotation else case.image),
                    pointed_to=names.get(pointed, pointed),
                    answered=names.get(answer.diagnosis, answer.diagnosis),
                    followed=answer.diagnosis == pointed,
                )
            )
            continue
        condition = listed[assignment.condition]
        if first_looks and assignment.initial_diagnosis is not None:
            tally = counts.setdefault("Your first look, before the AI's help", [0, 0])
            tally[0] += 1
            tally[1] += int(assignment.initial_diagnosis == case.truth)
        tally = counts.setdefault(reader_words(condition), [0, 0])
        tally[0] += 1
        tally[1] += int(answer.diagnosis == case.truth)
    scores = [Score(name, answered, correct) for name, (answered, correct) in counts.items()]
    return Feedback(scores, probes)
