"""A study's answers leaving the database: one query, then the files organisers download.

`response_rows` is the only place that reads answers for the results: the dashboard analyses
its rows and every export below writes them. Readers appear under their pseudonym; with
`pseudonymise=False` (staff asked for it) a `reader_email` column is added.

Formats (all UTF-8):

- responses CSV: one row per answer with everything stored about it. Its first seven columns
  are the analysis's required ones, so `python -m app.analysis responses.csv` runs on it.
- summary CSV: thesis Table 4.II, one row per reader, then the pooled row and the mean and
  sample SD of the readers' accuracies (fractions 0-1). Summary JSON: `analyse(...)` as is.
- iMRMC input file (`.imrmc`), for the FDA's iMRMC (Java program or R package) and RJafroc's
  reader: a free-text header, `N0:`/`N1:`/`NR:`/`NM:` lines, `BEGIN DATA:`, then rows
  `readerID,caseID,modalityID,score`. iMRMC analyses ROC data (diseased vs non-diseased
  cases), so proportion correct is written the way iMRMC's documentation describes for
  binary data ("MRMC analysis of binary data"): every real lesion is a "diseased" case
  (truth row `-1,case,0,1`), a reader's score is 1 if the diagnosis was right and 0 if
  not; five placeholder "non-diseased" cases are scored 0.5 by every reader in both tasks.
  Each reader's AUC, the chance that a lesion outscores a placeholder, is then exactly that
  reader's proportion correct, and iMRMC's MRMC variance is that of the accuracy. Modality
  1 is Task 1 (without the retrieved images), modality 2 Task 2 (with them). Readers and
  cases are numbered from 1 (RJafroc needs whole numbers); the header lists what each
  number stands for.
- MRMCaov CSV (R package MRMCaov): columns `reader, case, test, truth, rating`, one row per
  reader x case x test. `test` is `task1`/`task2`, `truth` is 1 for every lesion and
  `rating` 1 if the diagnosis was right, else 0, so `binary_sens(truth, rating)` is the
  proportion correct: `mrmc(binary_sens(truth, rating), test, reader, case, data = df)`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.analysis import COLUMNS
from app.extensions import db
from app.models import Answer, Assignment, Case, Enrolment, Study, User

RESPONSE_COLUMNS: tuple[str, ...] = (
    *COLUMNS,  # reader, image_id, truth, task, diagnosis, confidence, majority_vote
    "case_key",
    "lesion_id",
    "position",
    "correct",
    "neighbours_shown",
    "rotation",
    "shown_at",
    "answered_at",
    "seconds",
    "hidden_seconds",  # of `seconds`, the page was hidden: time on case is the difference
    "reader_role",
    "reader_years",
    "reader_exams_per_week",
)
TASK_FIELDS = (
    "answers",
    "correct",
    "accuracy",
    "confidence",
    "confidence_correct",
    "confidence_wrong",
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "row",
    "reader",
    "cases",
    "paired_cases",
    "majority_vote_accuracy",
    *(f"task{t}_{field}" for t in (1, 2) for field in TASK_FIELDS),
)
MRMCAOV_COLUMNS: tuple[str, ...] = ("reader", "case", "test", "truth", "rating")
# iMRMC's placeholder "non-diseased" cases: iMRMC needs more than two of each truth per reader.
IMRMC_PLACEHOLDERS = 5
IMRMC_PLACEHOLDER_SCORE = "0.5"
# iMRMC reads these as sizes wherever they appear in a header line: keep them out of free text.
IMRMC_SIZE_TOKENS = ("N0:", "N1:", "NR:", "NM:")


def iso_utc(moment: datetime | None) -> str:
    """A naive-UTC timestamp as ISO-8601 with a Z ('' when missing)."""
    if moment is None:
        return ""
    # Stored naive, always UTC: the naive ISO form plus "Z" (and fast: 20,000 per export).
    return moment.isoformat(timespec="milliseconds") + "Z"


def response_rows(
    study: Study,
    completed_only: bool = False,
    reader: str | None = None,
    pseudonymise: bool = True,
) -> list[dict[str, Any]]:
    """Every answer of `study` (Answer ⋈ Assignment ⋈ Enrolment ⋈ Case ⋈ User) as dicts.

    `completed_only` keeps readers who finished both tasks; `reader` keeps one pseudonym.
    Rows come ordered by reader pseudonym, task and position in the task.
    """
    query = (
        select(
            User.pseudonym,
            User.email,
            Case.case_key,
            Case.image_id,
            Case.lesion_id,
            Case.truth,
            Case.majority_vote,
            Assignment.task,
            Assignment.position,
            Answer.diagnosis,
            Answer.confidence,
            Answer.neighbours_shown,
            Answer.rotation,
            Answer.shown_at,
            Answer.answered_at,
            Answer.seconds,
            Answer.hidden_seconds,
            Enrolment.profile_role,
            Enrolment.profile_years,
            Enrolment.profile_exams_per_week,
        )
        .select_from(Answer)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
        .join(Case, Case.id == Assignment.case_id)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.study_id == study.id)
        .order_by(User.pseudonym, Assignment.task, Assignment.position)
    )
    if completed_only:
        query = query.where(Enrolment.task2_completed_at.is_not(None))
    if reader:
        query = query.where(User.pseudonym == reader)
    rows = []
    # Core rows unpacked as tuples (no ORM row processing): this runs on every dashboard view.
    for (
        pseudonym,
        email,
        case_key,
        image_id,
        lesion_id,
        truth,
        majority_vote,
        task,
        position,
        diagnosis,
        confidence,
        neighbours_shown,
        rotation,
        shown_at,
        answered_at,
        seconds,
        hidden_seconds,
        role,
        years,
        exams_per_week,
    ) in db.session.connection().execute(query).all():
        row = {
            "reader": pseudonym,
            "image_id": image_id,
            "truth": truth,
            "task": task,
            "diagnosis": diagnosis,
            "confidence": confidence,
            "majority_vote": majority_vote,
            "case_key": case_key,
            "lesion_id": lesion_id,
            "position": position + 1,  # 1-based, as the reader saw it ("case 3 of 100")
            "correct": int(diagnosis == truth),
            "neighbours_shown": ";".join(neighbours_shown or []),
            "rotation": rotation,
            "shown_at": iso_utc(shown_at),
            "answered_at": iso_utc(answered_at),
            "seconds": round(float(seconds), 3),
            "hidden_seconds": round(float(hidden_seconds or 0.0), 3),
            "reader_role": role.value if role is not None else "",
            "reader_years": "" if years is None else years,
            "reader_exams_per_week": "" if exams_per_week is None else exams_per_week,
        }
        if not pseudonymise:
            row["reader_email"] = email
        rows.append(row)
    return rows


def _csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as CSV text with a header (missing values empty, extra keys ignored)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _identified(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the rows carry readers' e-mail addresses."""
    return bool(rows) and "reader_email" in rows[0]


def responses_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The long responses table (one row per answer)."""
    columns = [*RESPONSE_COLUMNS, "reader_email"] if _identified(rows) else RESPONSE_COLUMNS
    return _csv(columns, rows)


def _number(value: float | None) -> str | float | None:
    """A fraction or mean for a CSV cell: 6 decimals, '' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return round(float(value), 6)


def summary_rows(
    result: Mapping[str, Any], emails: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Table 4.II as flat rows: readers, then 'pooled', then the readers' 'mean' and 'sd'."""

    def flat(kind: str, reader: str, block: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "row": kind,
            "reader": reader,
            "cases": block.get("cases", ""),
            "paired_cases": block.get("paired_cases", ""),
            "majority_vote_accuracy": _number(block.get("majority_vote_accuracy")),
        }
        for task in ("task1", "task2"):
            for field in TASK_FIELDS:
                value = block[task].get(field)
                row[f"{task}_{field}"] = (
                    value if field in ("answers", "correct") else _number(value)
                )
        if emails is not None:
            row["reader_email"] = emails.get(reader, "")
        return row

    rows = [flat("reader", r["reader"], r) for r in result["readers"]]
    rows.append(flat("pooled", "", result["pooled"]))
    for kind in ("mean", "sd"):
        figures = result["pooled"][kind]
        row = {"row": kind, "reader": ""}
        row["majority_vote_accuracy"] = _number(figures["majority_vote_accuracy"])
        row["task1_accuracy"] = _number(figures["task1"])
        row["task2_accuracy"] = _number(figures["task2"])
        rows.append(row)
    return rows


def summary_csv(result: Mapping[str, Any], emails: Mapping[str, str] | None = None) -> str:
    """Table 4.II as CSV (accuracies as fractions 0-1)."""
    columns = [*SUMMARY_COLUMNS, "reader_email"] if emails is not None else SUMMARY_COLUMNS
    return _csv(columns, summary_rows(result, emails))


def summary_json(result: Mapping[str, Any]) -> str:
    """The analysis result as indented JSON (strict: no NaN)."""
    return json.dumps(result, indent=2, allow_nan=False) + "\n"


def reader_emails(rows: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Pseudonym -> e-mail when the rows were read identified, else None."""
    if not _identified(rows):
        return None
    return {row["reader"]: row["reader_email"] for row in rows}


def _header_safe(text: str) -> str:
    """A free-text header line that iMRMC cannot mistake for a size line."""
    if any(token in text.upper() for token in IMRMC_SIZE_TOKENS):
        text = text.replace(":", ";")
    return text


def imrmc_text(study: Study, rows: Sequence[Mapping[str, Any]]) -> str:
    """The answers as an iMRMC input file: proportion correct, Task 1 vs Task 2 (see above)."""
    readers = list(dict.fromkeys(row["reader"] for row in rows))
    images = sorted({row["image_id"] for row in rows})
    reader_no = {name: i for i, name in enumerate(readers, start=1)}
    case_no = {image: i for i, image in enumerate(images, start=1)}
    placeholders = range(len(images) + 1, len(images) + 1 + IMRMC_PLACEHOLDERS)
    emails = reader_emails(rows) or {}
    first = placeholders[0]
    last = placeholders[-1]
    header = [
        f"SE-CBIR reader study {study.id}: Task 1 (no help) vs Task 2 (retrieved similar images)",
        "Figure of merit: proportion of lesions diagnosed correctly (seven classes),"
        " analysed as binary MRMC data.",
        "Modality 1 = Task 1 (the lesion alone); modality 2 = Task 2 (with six labelled"
        " similar images).",
        f"Cases 1 to {len(images)} are the study's lesions, all marked as diseased (truth 1);"
        " a reader's score is 1 when the diagnosis was right and 0 when it was wrong.",
        f"Cases {first} to {last} are placeholders, not lesions: marked non-diseased (truth 0)"
        f" and scored {IMRMC_PLACEHOLDER_SCORE} by every reader in both modalities; so each"
        " reader's AUC equals that reader's proportion correct.",
        "For R's iMRMC::uStat11.conditionalD use the reader rows of cases"
        f" 1 to {len(images)} only (drop the truth rows and the placeholders).",
        "Readers (number = pseudonym):",
        *(
            _header_safe(f"  {number} = {name}" + (f" <{emails[name]}>" if name in emails else ""))
            for name, number in reader_no.items()
        ),
        "Cases (number = image id):",
        *(_header_safe(f"  {number} = {image}") for image, number in case_no.items()),
        f"NR: {len(readers)}",
        f"N0: {IMRMC_PLACEHOLDERS}",
        f"N1: {len(images)}",
        "NM: 2",
        "BEGIN DATA:",
    ]
    data = [f"-1,{case_no[image]},0,1" for image in images]
    data += [f"-1,{case},0,0" for case in placeholders]
    seen: dict[int, set[int]] = {}  # reader number -> tasks read
    for row in rows:
        number = reader_no[row["reader"]]
        seen.setdefault(number, set()).add(int(row["task"]))
        correct = int(row["diagnosis"] == row["truth"])
        data.append(f"{number},{case_no[row['image_id']]},{int(row['task'])},{correct}")
    for number, tasks in seen.items():
        for task in sorted(tasks):
            data += [f"{number},{case},{task},{IMRMC_PLACEHOLDER_SCORE}" for case in placeholders]
    return "\n".join(header + data) + "\n"


def mrmcaov_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per reader x case x test for MRMCaov's binary_sens (truth 1, rating = correct)."""
    identified = _identified(rows)
    out = []
    for row in rows:
        item = {
            "reader": row["reader"],
            "case": row["image_id"],
            "test": f"task{int(row['task'])}",
            "truth": 1,
            "rating": int(row["diagnosis"] == row["truth"]),
        }
        if identified:
            item["reader_email"] = row["reader_email"]
        out.append(item)
    return out


def mrmcaov_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The MRMCaov long table as CSV."""
    columns = [*MRMCAOV_COLUMNS, "reader_email"] if _identified(rows) else MRMCAOV_COLUMNS
    return _csv(columns, mrmcaov_rows(rows))
