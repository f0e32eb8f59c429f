"""Form pieces every blueprint shares: validators, the new-password pair, and the button-only
forms. Each blueprint keeps its own forms beside its views (app/auth/forms.py, the organiser's
modules, app/survey/forms.py)."""

import re
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import (
    DecimalField,
    Field,
    HiddenField,
    PasswordField,
    StringField,
    SubmitField,
)
from wtforms.form import BaseForm
from wtforms.validators import (
    AnyOf,
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    StopValidation,
    ValidationError,
)

MIN_PASSWORD = 10
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")


def email_address(form: FlaskForm, field: StringField) -> None:
    """A plausible e-mail address (one @, a dot in the domain, no spaces)."""
    if not EMAIL_PATTERN.match((field.data or "").strip()):
        raise ValidationError("Enter an e-mail address such as name@hospital.org.")


def finite_number(form: FlaskForm, field: DecimalField) -> None:
    """A number, not NaN or infinity (Decimal parses "NaN", "sNaN", "Infinity": comparing a
    signalling NaN with a bound raises, which was a server error)."""
    if isinstance(field.data, Decimal) and not field.data.is_finite():
        field.errors = []
        raise StopValidation("Enter a number.")


class WholeNumberRange(NumberRange):
    """NumberRange for an IntegerField, compared as whole numbers.

    wtforms' NumberRange converts the value to a float to look for NaN, which raises
    OverflowError (a server error) for an integer of more than 308 digits; IntegerField reads
    one of up to 4300 digits. Here any value out of range, however long, is a form error.
    """

    def __init__(self, min: int, max: int, message: str | None = None) -> None:
        super().__init__(min, max, message or f"Enter a whole number from {min} to {max}.")

    def __call__(self, form: BaseForm, field: Field) -> None:
        low, high = self.min, self.max
        assert low is not None and high is not None  # __init__ always sets both
        if not (isinstance(field.data, int) and low <= field.data <= high):
            raise ValidationError(self.message or "")


def new_password_fields() -> tuple[PasswordField, PasswordField]:
    """A new password and its confirmation."""
    return (
        PasswordField(
            "New password",
            validators=[
                DataRequired(),
                Length(min=MIN_PASSWORD, max=200, message="Use at least 10 characters."),
            ],
            description="At least 10 characters.",
        ),
        PasswordField(
            "Repeat the new password",
            validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
        ),
    )


class EmptyForm(FlaskForm):
    """A form with only its CSRF token, for button-only POSTs (logout, open, close)."""

    submit = SubmitField("Confirm")


class ConfirmForm(FlaskForm):
    """The button of a confirmation page for what cannot be undone (a withdrawal): it sends
    an explicit "yes", so that a bare POST to the address changes nothing."""

    confirm = HiddenField(default="yes", validators=[InputRequired(), AnyOf(["yes"])])
