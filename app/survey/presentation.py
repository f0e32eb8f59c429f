"""What the survey pages show: the study's classes and labels, the page context, the case page."""

import re

from flask import Response, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.errors import error_response
from app.extensions import db
from app.models import CLASS_CODES, Assignment, Case, Enrolment, Study
from app.survey.enrolment import case_token, task_size
from app.survey.forms import AnswerForm

CONFIDENCE_KEYS = ("a", "s", "d", "f", "g")  # home row: confidence 1-5 without looking
HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}\Z")
FALLBACK_COLOUR = "#595959"

Page = Response | str | tuple[Response | str, int]


def closed() -> tuple[Response | str, int]:
    """The page for an attempt to answer in a closed study."""
    return error_response(403, "This study is closed: no more answers are taken.")


def classes_of(study: Study) -> list[dict]:
    """The study's classes in display order, with safe colours and a readable text colour."""
    out = []
    for item in study.manifest.get("classes", []):
        if item.get("code") not in CLASS_CODES:
            continue  # the database refuses other diagnoses, so they are never offered
        colour = item.get("colour", "")
        colour = colour if HEX_COLOUR.match(colour) else FALLBACK_COLOUR
        text = item.get("text_colour", "")
        text = text if HEX_COLOUR.match(text) else readable_text_colour(colour)
        out.append({**item, "colour": colour, "text_colour": text})
    return out


def readable_text_colour(colour: str) -> str:
    """Black or white, whichever contrasts more with `colour` (WCAG relative luminance)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # Contrast with black is (L + .05) / .05, with white 1.05 / (L + .05).
    return "#000000" if (luminance + 0.05) ** 2 > 0.05 * 1.05 else "#FFFFFF"


def likert_of(study: Study) -> list[str]:
    """The five confidence labels, level 1 first."""
    labels = list(study.manifest.get("likert", []))
    return labels if len(labels) == 5 else ["1", "2", "3", "4", "5"]


def image_url(name: str) -> str:
    """The URL of a study image by its content-hash file name."""
    return url_for("images.image", name=name.removesuffix(".jpg"))


def paragraphs(text: str) -> list[str]:
    """Plain text split into paragraphs at blank lines."""
    return [part.strip() for part in re.split(r"\n\s*\n", text or "") if part.strip()]


def case_count(study: Study) -> int:
    """How many cases the study's pool holds."""
    return db.session.scalar(select(func.count(Case.id)).where(Case.study_id == study.id)) or 0


def page_context(study: Study, **extra: object) -> dict:
    """What every survey page of a study shows."""
    return {
        "study": study,
        "classes": classes_of(study),
        "likert": likert_of(study),
        "information": paragraphs(study.information),
        "cases": min(study.cases_per_reader, case_count(study)),
        "keys": CONFIDENCE_KEYS,
        **extra,
    }


def render_case(
    study: Study, enrolment: Enrolment, assignment: Assignment, form: AnswerForm, status: int = 200
) -> tuple[str, int]:
    """The case page: the query (turned in Task 2), its neighbours in Task 2, the answer form."""
    form.token.data = case_token(assignment)
    classes = classes_of(study)
    by_code = {item["code"]: item for item in classes}
    neighbours = []
    query_image = assignment.case.image
    if assignment.task == 2:
        query_image = assignment.case.image_rotated
        neighbours = [
            {"rank": n.rank, "url": image_url(n.image), "cls": by_code.get(n.truth)}
            for n in assignment.case.neighbours
        ]
    context = page_context(
        study,
        form=form,
        task=assignment.task,
        number=assignment.position + 1,
        size=task_size(enrolment, assignment.task),
        query_url=image_url(query_image),
        neighbours=neighbours,
        shortcuts=current_user.shortcuts_enabled,
    )
    return render_template("survey/case.html", **context), status
