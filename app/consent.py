"""The versions of a study's information and consent text: what each reader agreed to.

`Study.consent_version` names the text readers agree to now; each version's text is kept in
`ConsentVersion`. A changed text becomes a new version; readers who agreed before keep the
version they agreed to (`Enrolment.consent_version`).
"""

import re

from sqlalchemy import select

from app.clock import now
from app.extensions import db
from app.models import ConsentVersion, Study, User


def record_current(study: Study, by: User | None = None) -> ConsentVersion:
    """The row of the study's current version, added with the current text if missing."""
    found = db.session.scalar(
        select(ConsentVersion).where(
            ConsentVersion.study_id == study.id, ConsentVersion.version == study.consent_version
        )
    )
    if found is not None:
        return found
    row = ConsentVersion(
        study_id=study.id,
        version=study.consent_version,
        text=study.information or "",
        created_at=now(),
        created_by_id=by.id if by is not None else None,
    )
    db.session.add(row)
    return row


TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def normalised(text: str) -> str:
    """The text as it is stored and compared: Unix line ends (a browser sends CR LF), no
    spaces at the ends of lines or blank lines at the end. Two texts that differ only there
    are the same text, and saving a page untouched makes no new version."""
    unix = text.replace("\r\n", "\n").replace("\r", "\n")
    return TRAILING_SPACE.sub("", unix).strip("\n")


def change_text(study: Study, text: str, by: User | None = None) -> bool:
    """Set a new information text; a different text becomes the next version. Whether it did."""
    text = normalised(text)
    if normalised(study.information or "") == text:
        return False
    record_current(study)  # the old text stays on record under its version
    study.information = text
    study.consent_version = (study.consent_version or 1) + 1
    record_current(study, by)
    return True
