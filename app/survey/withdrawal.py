"""A reader's withdrawal from a study, asked by the reader or recorded by an organiser.

Its own module because it reaches across two floors: it records the withdrawal on the
enrolment and gives up the reminders queued in the outbox (app.mail.reminders, which itself
reads the survey's enrolments).
"""

from app.clock import now
from app.mail.reminders import drop_queued
from app.models import Enrolment

WITHDRAWN_BY = ("reader", "organiser")


def withdraw(enrolment: Enrolment, by: str) -> bool:
    """Record that the reader withdrew (`by` the reader or an organiser) and drop the reminders
    still queued for them (the caller commits); False if they had withdrawn already.

    Their answers so far are kept (the study information says what is done with them); no
    further case is shown and no reminder is sent.
    """
    if by not in WITHDRAWN_BY:
        raise ValueError(f"withdrawn by {by!r}; expected one of {WITHDRAWN_BY}")
    if enrolment.withdrawn_at is not None:
        return False
    enrolment.withdrawn_at = now()
    enrolment.withdrawn_by = by
    drop_queued(enrolment)
    return True
