"""The reader's way through a study: welcome and consent, Task 1, wash-out, Task 2, the end.

Where a reader stands is never kept in the session: it is always the first unanswered
assignment (Task 1 before Task 2), so a reader resumes exactly there after a logout or a closed
tab. Answers are stored once (Answer.assignment_id is unique) and never changed.

The blueprint's modules: `enrolment` (drawing a reader's cases, where they stand), `pages`
(the routes, on `blueprint`'s blueprint, as are `preview`'s), `answers` (storing an answer
once), `presentation` (what the pages show), `forms`, `withdrawal`, and `sampling` (the
seeded, pure draw of a reader's cases).
"""

from app.survey.enrolment import Standing, case_token, enrol, enrolment_of, standing, where_to
from app.survey.presentation import FALLBACK_COLOUR, classes_of
from studybundle.taxonomy import readable_text_colour

__all__ = [
    "FALLBACK_COLOUR",
    "Standing",
    "case_token",
    "classes_of",
    "enrol",
    "enrolment_of",
    "readable_text_colour",
    "standing",
    "where_to",
]
