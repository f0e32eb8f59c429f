"""Forms of the survey: consent, and the answer to one case."""

from collections.abc import Sequence

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, ValidationError

from app.models import CLASS_CODES

LIKERT_LEVELS = (1, 2, 3, 4, 5)


class ConsentForm(FlaskForm):
    """The welcome page's consent: one checkbox and a button."""

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
        validators=[InputRequired("Please choose how confident you are (1 to 5).")],
    )
    token = HiddenField(validators=[DataRequired()])

    def __init__(self, classes: Sequence[dict], **kwargs: object) -> None:
        super().__init__(**kwargs)
        # Only the study's classes that the database accepts: anything else is refused.
        self.allowed_codes = [item["code"] for item in classes if item["code"] in CLASS_CODES]

    def validate_diagnosis(self, field: Field) -> None:
        """The diagnosis must be one of the study's seven classes."""
        if field.data not in self.allowed_codes:
            raise ValidationError("Please choose one of the seven classes.")

    def validate_confidence(self, field: Field) -> None:
        """The confidence must be a whole number from 1 to 5."""
        text = str(field.data or "").strip()
        if not (text.isascii() and text.isdigit() and int(text) in LIKERT_LEVELS):
            raise ValidationError("Please choose a confidence from 1 to 5.")

    @property
    def level(self) -> int:
        """The confidence as a number (only after validation)."""
        return int(str(self.confidence.data).strip())
