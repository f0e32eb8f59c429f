"""Flask-WTF forms for accounts and organisers (the survey's answer form lives elsewhere)."""

import re
from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    Field,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    AnyOf,
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from app.mail.addresses import AddressError, deliverable_address, pasted_entries
from app.models import Sampling
from studybundle.vocabulary import CONDITION_AIDS, Aid, Classifier, Design

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

    def __call__(self, form: Form, field: Field) -> None:
        if not (isinstance(field.data, int) and self.min <= field.data <= self.max):
            raise ValidationError(self.message)


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


class LoginForm(FlaskForm):
    """E-mail and password."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254), email_address])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Log in")


class PasswordChangeForm(FlaskForm):
    """The current password, and the new one twice."""

    current = PasswordField("Current password", validators=[DataRequired()])
    password, confirm = new_password_fields()
    submit = SubmitField("Change password")


class PasswordResetRequestForm(FlaskForm):
    """The address to send a password-reset link to."""

    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254), email_address])
    submit = SubmitField("Send me a link")


class PasswordResetForm(FlaskForm):
    """A new password, twice, chosen from a reset link."""

    password, confirm = new_password_fields()
    submit = SubmitField("Set the new password")


class AcceptInvitationForm(FlaskForm):
    """A new reader's name and password, set from an invitation link."""

    name = StringField("Your name", validators=[Optional(), Length(max=120)])
    password, confirm = new_password_fields()
    submit = SubmitField("Set password and continue")


class JoinStudyForm(FlaskForm):
    """An existing account joins another study: its password proves who is joining."""

    current = PasswordField("Your password", validators=[DataRequired()])
    submit = SubmitField("Join the study")


class ImportBundleForm(FlaskForm):
    """A study's name and its bundle: an uploaded .zip or a folder on the server."""

    name = StringField("Study name", validators=[DataRequired(), Length(max=200)])
    upload = FileField(
        "Bundle (.zip)", validators=[FileAllowed(["zip"], "Upload a .zip of the bundle folder.")]
    )
    # Checked in the view: the folder must be one of those offered under BUNDLE_ROOT.
    server_path = SelectField(
        "…or a bundle folder on the server", choices=[], default="", validate_choice=False
    )
    submit = SubmitField("Import")

    def validate_upload(self, field: FileField) -> None:
        """Exactly one source: an upload or a server folder."""
        has_upload = bool(field.data and getattr(field.data, "filename", ""))
        if has_upload == bool(self.server_path.data):
            raise ValidationError("Upload a .zip or choose a server folder (one of the two).")


class StudySettingsForm(FlaskForm):
    """The settings an organiser may change (some lock once a reader has enrolled)."""

    name = StringField("Study name", validators=[DataRequired(), Length(max=200)])
    cases_per_reader = IntegerField(
        "Cases per reader",
        validators=[InputRequired(), WholeNumberRange(1, 100000)],
        description="Each reader answers this many cases in each task.",
    )
    washout_hours = DecimalField(
        "Wash-out between Task 1 and Task 2 (hours)",
        places=None,  # 0.02 stays 0.02 (one place showed "0.0")
        validators=[InputRequired(), finite_number, NumberRange(min=0, max=24 * 365)],
        description="0 lets a reader start Task 2 right after Task 1.",
    )
    sampling = SelectField(
        "How cases are drawn",
        choices=[
            SelectChoice(Sampling.RANDOM.value, "Simple random sample (as in the thesis)"),
            SelectChoice(
                Sampling.STRATIFIED.value, "Stratified by class (proportional to the pool)"
            ),
        ],
    )
    reshuffle_task2 = BooleanField("Task 2 shows the cases in a new order")
    information = TextAreaField(
        "Information and consent text shown to readers",
        validators=[Optional(), Length(max=20000)],
        description="A changed text becomes a new version; each reader's record keeps the "
        "version they agreed to.",
    )
    reminder_days = IntegerField(
        "Remind again after (days)",
        validators=[Optional(), WholeNumberRange(0, 60)],
        description="Readers get an e-mail when Task 2 opens; while they have not finished, "
        "another every this many days (at most 3). 0: only the first.",
    )
    submit = SubmitField("Save settings")


class InvitationForm(FlaskForm):
    """Invite readers: e-mail addresses, one per line (each line is checked on its own)."""

    email = TextAreaField(
        "Readers' e-mail addresses, one per line",
        validators=[DataRequired(), Length(max=100_000)],
        description="Paste a list; blank lines are skipped, repeated addresses invited once. "
        "“Name <address>”, several on a line as mail programs copy them (separated by commas "
        "or semicolons) and a separator at the end of a line are fine.",
    )
    days = IntegerField(
        "Links valid for (days)", validators=[InputRequired(), WholeNumberRange(1, 90)]
    )
    send = BooleanField("E-mail each reader their link", default=True)
    submit = SubmitField("Create invitation links")

    def addresses(self) -> tuple[list[str], list[str]]:
        """The bare, normalised addresses (first occurrence kept) and one error per bad line."""
        found: dict[str, None] = {}
        errors: list[str] = []
        for number, line in enumerate((self.email.data or "").splitlines(), start=1):
            for text in pasted_entries(line):
                try:
                    found.setdefault(deliverable_address(text))
                except AddressError as problem:
                    errors.append(
                        f"Line {number}: “{text[:80]}” is not an e-mail address. {problem}"
                    )
        return list(found), errors


class TeamMemberForm(FlaskForm):
    """Add an organiser to a study's team by e-mail address."""

    email = EmailField(
        "Organiser's e-mail", validators=[DataRequired(), Length(max=254), email_address]
    )
    submit = SubmitField("Add to the team")


# The design form's name for an unaided reading with the saliency overlay as its only aid.
SALIENCY_ONLY = "saliency_only"


class ConditionForm(Form):
    """One condition of a study's design (a row of the design form; no CSRF of its own)."""

    aid = SelectField(
        "Aid",
        choices=[
            SelectChoice("", "(not used)"),
            SelectChoice(Aid.UNAIDED.value, Aid.UNAIDED.label),
            SelectChoice(SALIENCY_ONLY, f"{Aid.SALIENCY.label} only"),
            *(SelectChoice(a, Aid(a).label) for a in CONDITION_AIDS if a != Aid.UNAIDED),
        ],
        default="",
    )
    k = IntegerField(
        "Similar images shown", default=6, validators=[Optional(), WholeNumberRange(1, 50)]
    )
    labelled = BooleanField("Similar images with their classes", default=True)
    classifier = SelectField(
        "Probabilities of",
        choices=[SelectChoice(model.value, f"the {model.label}") for model in Classifier],
        default=Classifier.RGB_SALIENCY.value,
    )
    saliency = BooleanField("Saliency map of the AI as a toggle on the case", default=False)
    context = BooleanField(
        "The patient's age, sex and body site beside the case",
        default=False,
        description="From the dataset's metadata, where the bundle carries it.",
    )


class CopyStudyForm(FlaskForm):
    """A second study on the same cases: the copy's name."""

    name = StringField("Name of the new study", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Copy into a new draft study")


MAX_PRACTICE_CASES = 20


class NewStudyForm(FlaskForm):
    """A new study on the cases of one the organiser runs: which, and the new one's name."""

    source = SelectField("The cases of", choices=[], coerce=int, validate_choice=True)
    name = StringField("Name of the new study", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Create the new draft study")


class DesignForm(FlaskForm):
    """A study's design: how conditions are laid out, the conditions, probes."""

    design = SelectField(
        "Design",
        choices=[SelectChoice(design.value, design.choice) for design in Design],
    )
    conditions = FieldList(FormField(ConditionForm), min_entries=4, max_entries=4)
    rotate_later_sessions = BooleanField("Later tasks show the case turned by 180 degrees")
    probe_share = DecimalField(
        "Share of aided readings with a deliberately misleading aid",
        places=2,
        validators=[InputRequired(), finite_number, NumberRange(min=0, max=0.5)],
        description="0 for none; 0.1 shows a misleading aid in one aided reading of ten.",
    )
    practice = BooleanField("Readers practise on a few cases before Task 1", default=False)
    practice_cases = IntegerField(
        "Practice cases",
        default=3,
        validators=[Optional()],
        description=(
            "Cases outside each reader's own draw, on the same page as the study's cases;"
            " never analysed or exported, and no diagnosis is shown afterwards."
        ),
    )
    feedback = BooleanField(
        "At the end, show each reader their own score per condition and which of their cases"
        " were misleading-aid probes",
        default=False,
    )
    submit = SubmitField("Save the design")

    def validate_practice_cases(self, field: IntegerField) -> None:
        """With practice ticked, 1 to MAX_PRACTICE_CASES cases (unticked: not looked at)."""
        if self.practice.data:
            WholeNumberRange(
                1, MAX_PRACTICE_CASES, f"Give 1 to {MAX_PRACTICE_CASES} practice cases."
            )(self, field)
