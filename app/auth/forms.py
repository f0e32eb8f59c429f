"""The account forms: logging in, passwords, accepting an invitation, joining a study."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from app.forms import email_address, new_password_fields


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
