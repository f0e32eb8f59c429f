"""What the survey pages show: the study's classes and labels, the page context, the case page."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from app.clock import duration_words
from app.errors import error_response
from app.extensions import db
from app.models import Assignment, Case, ClassNeighbour, Enrolment, Neighbour, Study
from app.survey import conditions, probes
from app.survey.conditions import PROBABILITIES, Condition
from app.survey.designs import Design
from app.survey.enrolment import (
    PRACTICE,
    case_token,
    conditions_of,
    design_of,
    sessions_of,
    task_size,
)
from app.survey.forms import AnswerForm
from studybundle.taxonomy import readable_text_colour
from studybundle.vocabulary import CLASSIFIERS, Classifier
from studybundle.vote import majority_vote

CONFIDENCE_KEYS = ("a", "s", "d", "f", "g", "h", "j", "k", "l")  # home row, level 1 first
HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}\Z")
FALLBACK_COLOUR = "#595959"

Page = Response | str | tuple[Response | str, int]
# A probe takes the wrong class's images from the case's own list (this deep), then the bank.
MAX_PROBE_OWN = 50
PROBE_BANK_LIMIT = 200


def closed() -> tuple[Response | str, int]:
    """The page for an attempt to answer in a closed study."""
    return error_response(403, "This study is closed: no more answers are taken.")


def classes_of(study: Study) -> list[dict[str, Any]]:
    """The study's own classes in display order, with safe colours and a readable text colour."""
    out = []
    for item in study.classes:
        colour = item.colour if HEX_COLOUR.match(item.colour) else FALLBACK_COLOUR
        text = item.text_colour
        text = text if HEX_COLOUR.match(text) else readable_text_colour(colour)
        out.append(
            {
                "code": item.code,
                "name": item.name,
                "definition": item.definition,
                "malignant": item.malignant,
                "colour": colour,
                "text_colour": text,
            }
        )
    return out


def likert_of(study: Study) -> list[str]:
    """The study's confidence labels, level 1 first."""
    return [str(label) for label in study.likert][: len(CONFIDENCE_KEYS)]


def image_url(name: str) -> str:
    """The URL of a study image by its content-hash file name."""
    return url_for("images.image", name=name.removesuffix(".jpg"))


def paragraphs(text: str) -> list[str]:
    """Plain text split into paragraphs at blank lines."""
    return [part.strip() for part in re.split(r"\n\s*\n", text or "") if part.strip()]


def case_count(study: Study) -> int:
    """How many cases the study's pool holds."""
    return db.session.scalar(select(func.count(Case.id)).where(Case.study_id == study.id)) or 0


def page_context(study: Study, **extra: object) -> dict[str, Any]:
    """What every survey page of a study shows."""
    pool = case_count(study)
    cases = min(study.cases_per_reader, pool)
    practice = min(study.practice_cases or 0, pool - cases)
    return {
        "study": study,
        "classes": classes_of(study),
        "likert": likert_of(study),
        "information": paragraphs(study.information),
        "cases": cases,
        "practice": practice_text(practice) if practice > 0 else None,
        "keys": CONFIDENCE_KEYS[: len(study.likert)],
        **extra,
    }


def case_neighbours(case: Case, aid: str, k: int) -> list[Neighbour]:
    """The first `k` neighbours of one retrieval aid, rank 1 first."""
    return case.neighbours_of(aid, k)


def class_lists(case: Case, aid: str) -> dict[str, list[ClassNeighbour]]:
    """The case's nearest images of each class by one retrieval aid, most similar first
    (the bundle's class_neighbours; empty when its study's bundle has none)."""
    out: dict[str, list[ClassNeighbour]] = {}
    for item in case.class_neighbours:  # ordered by aid, class, rank
        if item.aid == aid:
            out.setdefault(item.truth, []).append(item)
    return out


def probe_bank(study: Study, aid: str, wrong: str, case: Case) -> list[Neighbour]:
    """The study's neighbour images of class `wrong` from `aid`'s lists, most similar first."""
    return list(
        db.session.scalars(
            select(Neighbour)
            .join(Case, Case.id == Neighbour.case_id)
            .where(
                Case.study_id == study.id,
                Case.id != case.id,
                Neighbour.aid == aid,
                Neighbour.truth == wrong,
            )
            .order_by(Neighbour.similarity.desc(), Neighbour.id)
            .limit(PROBE_BANK_LIMIT)
        )
    )


@dataclass(frozen=True)
class AidView:
    """What a reading shows beside the query, and what is recorded of it."""

    condition: Condition
    neighbours: Sequence[Neighbour | ClassNeighbour] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    classifier: str = ""
    probe_class: str | None = None

    def record(self) -> dict[str, Any]:
        """What the answer stores of it: the condition, the probe, the neighbours' ids."""
        return {
            "condition": self.condition.key,
            **self.condition.to_json(),
            "probe": self.probe_class is not None,
            "probe_class": self.probe_class,
            "neighbours": [n.image_id for n in self.neighbours],
            "probabilities": [round(p, 6) for p in self.probabilities],
        }


def aid_view(study: Study, assignment: Assignment, condition: Condition) -> AidView:
    """The aid of one reading under `condition`: the real one, or a probe's misleading one
    (`probe_list`; another case's genuine probabilities, or the case's own with the wrong
    class on top)."""
    case = assignment.case
    codes = [item["code"] for item in classes_of(study)]
    source = None
    if assignment.probe and assignment.probe_source is not None:
        found = db.session.get(Case, assignment.probe_source)
        source = found if found is not None and found.study_id == study.id else None
    if condition.shows_neighbours:
        listed = case_neighbours(case, condition.aid, MAX_PROBE_OWN)
        if not assignment.probe:
            return AidView(condition, listed[: condition.k])
        wrong = assignment.probe_class or probes.wrong_class(
            case.truth, [n.truth for n in listed], codes
        )
        shown = probe_list(study, case, condition, listed, wrong, source)
        return AidView(condition, shown, probe_class=wrong)
    if condition.aid == PROBABILITIES:
        real = case_probabilities(case, condition.classifier)
        if not assignment.probe or not real:
            return AidView(condition, probabilities=real, classifier=condition.classifier)
        wrong = assignment.probe_class or probes.wrong_class(
            case.truth, probes.ranked_by_probability(real, codes), codes
        )
        borrowed = case_probabilities(source, condition.classifier) if source is not None else []
        faulty = borrowed or probes.misleading_probabilities(real, codes, wrong)
        return AidView(
            condition, probabilities=faulty, classifier=condition.classifier, probe_class=wrong
        )
    return AidView(condition)


def shown_context(condition: Condition, case: Case) -> dict[str, Any] | None:
    """The patient context a reading of `case` under `condition` shows (age, sex, body site),
    None when the condition hides it or the case has none: shown and recorded alike."""
    if not condition.context or not case.context:
        return None
    return dict(case.context)


SEX_WORDS = {"female": "Female", "male": "Male"}


def context_rows(context: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The patient context as (label, value) rows in a reader's words."""
    if context is None:
        return []
    age, sex, site = context.get("age"), context.get("sex"), context.get("site")
    unknown = "not recorded"
    return [
        ("Age", unknown if age is None else f"{age} years"),
        ("Sex", SEX_WORDS.get(sex or "", unknown)),
        ("Body site", unknown if not site else str(site)[:1].upper() + str(site)[1:]),
    ]


def probe_list(
    study: Study,
    case: Case,
    condition: Condition,
    listed: list[Neighbour],
    wrong: str,
    source: Case | None,
) -> Sequence[Neighbour | ClassNeighbour]:
    """A probe's neighbour list: a genuine list's class-by-rank pattern that votes `wrong`,
    filled with the case's own nearest images of each class (probes.own_in_pattern).

    The pattern is the source case's list (another case whose aid suggests `wrong`), or
    without one the case's own list with its voted class and `wrong` trading places. Where the
    bundle has no images by class, or too few of a class, the source's list itself, or the
    case's own list with its majority moved (`moved_list`): the probes of before.
    """
    own = class_lists(case, condition.aid)
    donor = case_neighbours(source, condition.aid, condition.k) if source is not None else []
    if donor:
        pattern = [n.truth for n in donor]
    else:
        pattern = probes.swapped_pattern([n.truth for n in listed[: condition.k]], wrong)
    filled = probes.own_in_pattern(pattern, own) if own else None
    return filled or donor or moved_list(study, case, condition, listed, wrong)


def moved_list(
    study: Study, case: Case, condition: Condition, listed: list[Neighbour], wrong: str
) -> list[Neighbour]:
    """The case's own list with its majority moved to `wrong` (probes.moved_majority), or,
    where the study holds too few images of a class for that, k images of `wrong`."""
    own = listed[: condition.k]
    voted = majority_vote([n.truth for n in own])
    bank = [
        *probe_bank(study, condition.aid, wrong, case),
        *probe_bank(study, condition.aid, voted, case),
    ]
    moved = probes.moved_majority(own, wrong, bank, [case.image_id])
    if moved is not None:
        return moved
    bank = probe_bank(study, condition.aid, wrong, case)
    return probes.misleading_neighbours(wrong, listed, bank, condition.k, [case.image_id])


def case_probabilities(case: Case, classifier: str) -> list[float]:
    """One classifier's class probabilities for the case, in taxonomy order ([] if none)."""
    return [float(p) for p in (case.probabilities or {}).get(classifier, [])]


def render_case(
    study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm, status: int = 200
) -> tuple[str, int]:
    """The case page: the query (turned in later sessions), the reading's aid, the form.

    In an initial-then-revised reading, the aid appears only once the initial answer is
    stored; until then the page is the unaided first look.
    """
    first_look = is_first_look(study, assignment)
    form.token.data = case_token(assignment, "initial" if first_look else "")
    if not first_look and assignment.initial_diagnosis is not None and not form.is_submitted():
        form.diagnosis.data = assignment.initial_diagnosis
        form.confidence.data = str(assignment.initial_confidence)
    size = task_size(enrolment, assignment.session)
    context = case_context(study, assignment, form, size, first_look)
    return render_template("survey/case.html", **context), status


def case_context(
    study: Study, assignment: Assignment, form: AnswerForm, size: int, first_look: bool
) -> dict[str, Any]:
    """What the case template shows of one reading: the query, its aid, the form.

    Reads nothing but the assignment's case and the study, and writes nothing: the
    organisers' preview builds it for an assignment that is never stored.
    """
    condition = conditions_of(study)[assignment.condition]
    classes = classes_of(study)
    by_code = {item["code"]: item for item in classes}
    view = AidView(conditions.Condition()) if first_look else aid_view(study, assignment, condition)
    tiles = [
        {
            "rank": rank,
            "url": image_url(n.image),
            "cls": by_code.get(n.truth) if condition.labelled else None,
        }
        for rank, n in enumerate(view.neighbours, start=1)
    ]
    bars = [
        {"cls": item, "percent": round(100 * p)}
        for item, p in zip(classes, view.probabilities, strict=False)
    ]
    case = assignment.case
    overlay = case.saliency_rotated if assignment.rotation else case.saliency
    return page_context(
        study,
        form=form,
        task=assignment.session,
        session_name=session_name(assignment.session),
        number=assignment.position + 1,
        size=size,
        query_url=image_url(case.image_rotated if assignment.rotation else case.image),
        rotated=bool(assignment.rotation),
        saliency_url=image_url(overlay) if overlay and view.condition.saliency else None,
        neighbours=tiles,
        labelled=condition.labelled,
        probabilities=bars,
        classifier=Classifier(view.classifier).reader if view.classifier in CLASSIFIERS else "",
        first_look=first_look,
        patient=context_rows(shown_context(condition, case)),
        revising=design_of(study) == Design.INITIAL_REVISED and not first_look,
        shortcuts=current_user.shortcuts_enabled,
    )


def session_name(task: int) -> str:
    """A session as readers see it named: "Practice" before Task 1, then "Task 1", ..."""
    return "Practice" if task == PRACTICE else f"Task {task}"


def practice_text(size: int) -> str:
    """The practice set's instructions."""
    cases = "one case" if size == 1 else f"{size} cases"
    return (
        f"Before Task 1 you practise on {cases} that are not part of the study, on the same"
        " page as the study's cases, to get to know it: the image viewer, the help beside the"
        " case, the answer buttons. Your practice answers are not counted, and no diagnosis is"
        " shown afterwards."
    )


def is_first_look(study: Study, assignment: Assignment) -> bool:
    """Whether the reading is the unaided first answer of an initial-then-revised reading."""
    return design_of(study) == Design.INITIAL_REVISED and assignment.initial_diagnosis is None


def aid_words(condition: Condition) -> str:
    """What a reading under `condition` shows beside the case, in a reader's words."""
    text = main_aid_words(condition)
    if not condition.saliency:
        return text
    overlay = "a map of where the AI looked, which you can lay over the case"
    return overlay if condition.aid == conditions.UNAIDED else f"{text}, and {overlay}"


def main_aid_words(condition: Condition) -> str:
    """What the condition's aid (neighbours, probabilities or none) shows, in words."""
    if condition.shows_neighbours:
        most = (
            "the most similar image"
            if condition.k == 1
            else f"the {condition.k} most similar images"
        )
        text = f"{most} of a reference collection, found by the retrieval system"
        if condition.labelled:
            return text + (
                ", each framed in the colour of its class, with its class name and its rank"
                " (#1 is the most similar)"
            )
        return text + ", most similar first, without their classes"
    if condition.aid == PROBABILITIES:
        return "an AI classifier's estimate of how likely each class is"
    return "no help"


def one_of(items: list[str]) -> str:
    """Items joined as "a, b or c"."""
    unique = list(dict.fromkeys(items))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


def session_text(study: Study, size: int, task: int, condition: Condition | None) -> str:
    """The instructions of a session ("task"); `condition` None when readers' orders differ."""
    design = design_of(study)
    listed = conditions_of(study)
    aided = [c for c in listed if c.aided]
    choose = "Choose the class you think it shows and how confident you are."
    if design == Design.INITIAL_REVISED:
        return (
            f"You will see {size} dermoscopic images, one at a time. For each, first give your"
            " own diagnosis and confidence; then the AI's help appears beside the case ("
            + one_of([aid_words(c) for c in aided])
            + ") and you confirm or change your answer, with a new confidence."
        )
    if design == Design.PER_CASE:
        shown = one_of([aid_words(c) for c in aided]) if aided else "no help"
        alone = "Some are shown alone; beside others" if len(aided) < len(listed) else "Beside each"
        return (
            f"You will see {size} dermoscopic images, one at a time. {alone} you see {shown}. "
            + choose
        )
    if task == 1:
        intro = f"You will see {size} dermoscopic images, one at a time"
    else:
        turned = ", turned by 180 degrees," if study.rotate_later_sessions else ""
        intro = f"You will see the same {size} lesions again{turned} in a new order"
    if condition is None:
        return (
            intro
            + ", with one of these kinds of help: "
            + one_of([aid_words(c) for c in listed])
            + ". "
            + choose
        )
    if not condition.aided:
        return intro + ", without any help. " + choose
    return f"{intro}. Beside each you see {aid_words(condition)}. " + choose


def session_condition(enrolment: Enrolment | None, task: int) -> Condition | None:
    """The condition of a reader's session when one condition holds for all its cases."""
    if enrolment is None:
        return None
    indices = set(
        db.session.scalars(
            select(Assignment.condition).where(
                Assignment.enrolment_id == enrolment.id, Assignment.session == task
            )
        )
    )
    if len(indices) != 1:
        return None
    return conditions_of(enrolment.study)[indices.pop()]


def how_it_works(study: Study, enrolment: Enrolment | None, cases: int) -> list[str]:
    """One sentence per session of the reader's (or, before consent, any reader's) study."""
    sessions = sessions_of(study)
    design = design_of(study)
    out = []
    for task in range(1, sessions + 1):
        condition = session_condition(enrolment, task)
        if condition is None and design == Design.SEQUENTIAL:
            condition = conditions_of(study)[task - 1]
        text = session_text(study, cases, task, condition)
        if task > 1:
            pause = (
                f"{duration_words(study.washout_hours)} after you finish Task {task - 1}"
                if study.washout_hours > 0
                else f"as soon as you finish Task {task - 1}"
            )
            text = f"It opens {pause}. " + text
        out.append(text)
    return out
