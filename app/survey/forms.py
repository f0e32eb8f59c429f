"""Forms of the survey: consent, and the answer to one case."""

from collections.abc import Sequence
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, IntegerField, RadioField, StringField

# WTForms 3.3 added SelectChoice; typeshed's types-WTForms (3.2.1) does not have it yet.
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import AnyOf, DataRequired, InputRequired, ValidationError

from app.forms import WholeNumberRange
from app.models import READER_ROLE_LABELS

MAX_YEARS = 70
MAX_EXAMS_PER_WEEK = 1000

MAX_CONFIDENCE_DIGITS = 3  # "9" is the highest level; "005" still reads as 5


class ConsentForm(FlaskForm):
    """The welcome page's consent: the reader's profile, one checkbox and a button."""

    role = RadioField(
        "Your role",
        choices=[SelectChoice(role.value, label) for role, label in READER_ROLE_LABELS.items()],
        validators=[InputRequired("Please choose your role.")],
    )
    years = IntegerField(
        "Years of dermoscopy practice",
        validators=[
            InputRequired("Please give your years of dermoscopy practice (0 if under one)."),
            WholeNumberRange(0, MAX_YEARS, f"Please give a whole number from 0 to {MAX_YEARS}."),
        ],
    )
    exams_per_week = IntegerField(
        "Dermoscopic examinations in a typical week",
        validators=[
            InputRequired("Please give how many dermoscopic examinations you do a week."),
            WholeNumberRange(
                0, MAX_EXAMS_PER_WEEK, f"Please give a whole number from 0 to {MAX_EXAMS_PER_WEEK}."
            ),
        ],
    )
    consent = BooleanField(
        "I have read the information above and agree to take part in this study.",
        validators=[DataRequired("Please tick the box to give your consent.")],
    )


class AnswerForm(FlaskForm):
    """One diagnosis and its confidence, with the opaque token of the case it answers.

    The page renders both as radio buttons by hand (styled as the class buttons and the
    Likert scale); here they are plain values checked against the allowed ones.
    """

    diagnosis = StringField("Diagnosis", validators=[InputRequired("Please choose a diagnosis.")])
    confidence = StringField(
        "Confidence",
        validators=[InputRequired("Please choose how confident you are.")],
    )
    token = HiddenField(validators=[DataRequired()])
    # Milliseconds the page was hidden, counted by static/js/activetime.js (empty without it).
    hidden_ms = HiddenField()
    # How often the reader laid the saliency map over the case (static/js/viewer.js; empty
    # without script or without the map).
    saliency_views = HiddenField()

    def __init__(self, classes: Sequence[dict[str, Any]], levels: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        # Only the study's own classes and confidence levels: anything else is refused.
        self.allowed_codes = [item["code"] for item in classes]
        self.levels = levels

    def validate_diagnosis(self, field: Field) -> None:
        """The diagnosis must be one of the study's classes."""
        if field.data not in self.allowed_codes:
            raise ValidationError(f"Please choose one of the {len(self.allowed_codes)} classes.")

    def validate_confidence(self, field: Field) -> None:
        """The confidence must be a whole number from 1 to the study's number of levels."""
        text = str(field.data or "").strip()
        # Length first: int() refuses a text of more than 4300 digits with a ValueError (a
        # server error, found by the fuzz test); no level needs more than a few digits.
        short = len(text) <= MAX_CONFIDENCE_DIGITS
        if not (short and text.isascii() and text.isdigit() and 1 <= int(text) <= self.levels):
            raise ValidationError(f"Please choose a confidence from 1 to {self.levels}.")

    def validate_hidden_ms(self, field: Field) -> None:
        """The hidden time is empty or a whole, non-negative number of milliseconds."""
        text = str(field.data or "").strip()
        if text and not (text.isascii() and text.isdigit() and len(text) <= 12):
            raise ValidationError("The page sent a time that is not a number; please answer again.")

    def hidden_seconds(self, elapsed: float) -> float:
        """The hidden time in seconds, at most the `elapsed` seconds the server measured."""
        text = str(self.hidden_ms.data or "").strip()
        hidden = int(text) / 1000 if text else 0.0
        return min(hidden, max(0.0, elapsed))

    def saliency_count(self) -> int | None:
        """How often the saliency map was shown; None when the page did not count (no script)
        or sent something that is not a count (a tampered form loses nothing else)."""
        text = str(self.saliency_views.data or "").strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 6:
            return None
        return int(text)

    @property
    def level(self) -> int:
        """The confidence as a number (only after validation)."""
        return int(str(self.confidence.data).strip())


class ShortcutsForm(FlaskForm):
    """Turn the single-key shortcuts on ("1") or off ("0"), then go back to `next`."""

    enabled = HiddenField(validators=[AnyOf(("0", "1"), "Choose on (1) or off (0).")])
    next = HiddenField()
