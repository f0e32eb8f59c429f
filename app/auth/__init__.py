"""Accounts: log in and out, change a password, accept an invitation; who may see which study.

The blueprint's modules: `views` (the pages), `accounts` (new users, invitations, ending
sessions), `access` (who may see what, safe redirects, typed text) and `throttle` (password
guessing slowed per e-mail and per network address). The names the rest of the app and the
tests use are exported here.
"""

from flask import Blueprint

from app.auth.access import (
    is_safe_next,
    managed_enrolment_or_404,
    managed_study_ids,
    managed_study_or_404,
    may_manage_study,
    may_see_study,
    owns_study,
    reader_study_ids,
    refuse_control_characters,
    staff_required,
)
from app.auth.accounts import (
    create_invitation,
    create_user,
    end_sessions,
    hash_token,
    normalise_email,
)
from app.auth.throttle import IP_MAX_FAILURES, MAX_FAILURES, PAIR_MAX, email_key

bp = Blueprint("auth", __name__)

# After `bp`: importing the views registers their routes on it.
from app.auth import reset, views  # noqa: E402

__all__ = [
    "IP_MAX_FAILURES",
    "MAX_FAILURES",
    "PAIR_MAX",
    "bp",
    "create_invitation",
    "create_user",
    "email_key",
    "end_sessions",
    "hash_token",
    "is_safe_next",
    "managed_enrolment_or_404",
    "managed_study_ids",
    "managed_study_or_404",
    "may_manage_study",
    "may_see_study",
    "normalise_email",
    "owns_study",
    "reader_study_ids",
    "refuse_control_characters",
    "reset",
    "staff_required",
    "views",
]
