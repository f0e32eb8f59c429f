"""A study's answers leaving the database: one query, then the files organisers download.

`_study_answers` is the only place that filters answers for the results: the dashboard
analyses `analysis_columns` (the columns the analysis needs, as numbers) and every export
below writes `response_rows` (through `_answers_query`, with cases and readers joined).
Readers appear under their pseudonym; with `pseudonymise=False` (staff asked for it) a
`reader_email` column is added.

Formats (all UTF-8):

- responses CSV: one row per answer with everything stored about it. Its first seven columns
  are the analysis's required ones, so `python -m app.analysis responses.csv` runs on it
  (with `--levels N`, the study's number of confidence levels, every level gets a row even
  where no one chose it); `confidence_label` is the confidence's label on the study's scale;
  `majority_vote` is the vote of the aid the answer's condition shows, at its k
  (`shown_votes`), and the case's SE-CBIR vote at the study's k where nothing is shown.
- summary CSV: thesis Table 4.II for the pair of conditions the dashboard's tables compare
  (its `pair` argument; a study's two conditions when it has two): one row per reader, then
  the pooled row and the mean and sample SD of the readers' accuracies (fractions 0-1). The
  `task1_*`/`task2_*` columns are the pair's first and second condition, and every row says
  which: `task1_condition`/`task2_condition` (keys) and `task1_name`/`task2_name` (the names
  the page shows). Summary JSON: `analyse(...)` for that pair, its tables written under the
  thesis's `task1`/`task2` as the pair's first and second condition (`thesis_keyed`; its
  `pair` says which; `readers[*].conditions` has every condition's figures).
  The summary JSON carries the study's confidence scale (`scale`: levels and labels).
- iMRMC input file (`.imrmc`), for the FDA's iMRMC (Java program or R package): proportion
  correct as binary MRMC data, one modality per condition numbered in the analysis's order
  (its header lists them; the thesis: unaided = 1, se_cbir = 2). RJafroc reads this file
  only for fully crossed designs; the thesis design (each reader a different random subset
  of cases) does not load in RJafroc.
- MRMCaov CSV and R script (R package MRMCaov): one row per reader x case x test, `test` the
  condition, `truth` 1 and `rating` 1 when right, plus one truth-0 placeholder row per
  reader x test so that `mrmc(binary_sens(truth, rating), test, reader, case, data =
  read.csv(...))` loads as it is; the script runs every endpoint MRMCaov has.
  The iMRMC and MRMCaov files hold the answers the dashboard analyses (`study_responses`):
  probes and the readers the analysis leaves out are not in them; the script names those.

The formats are written by `app.analysis.files` (pure, shared with `python -m app.analysis
--exports DIR`). Every CSV cell a spreadsheet would run as a formula gets a leading '.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import chain, groupby
from operator import attrgetter
from typing import Any

from sqlalchemy import Select, select

from app.analysis import (
    COLUMNS,
    HAM10000_TAXONOMY,
    AnalysisResult,
    Responses,
    Scale,
    Taxonomy,
    files,
    thesis_keyed,
)
from app.analysis.tables import sides
from app.extensions import db
from app.models import Answer, Assignment, Case, Enrolment, Neighbour, Study, User
from app.survey.conditions import Condition
from app.survey.enrolment import conditions_of
from app.survey.presentation import likert_of
from studybundle.limits import CONTEXT_FIELDS, MIN_LIKERT
from studybundle.vote import majority_vote

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
    "reader_withdrawn_at",  # empty unless the reader withdrew (their answers are kept)
    # The study design's record of each reading (app/survey/conditions.py names them).
    "condition",
    "session",  # the same as `task`: the reader's session (Task 1, Task 2, ...)
    "aid",
    "k",
    "labelled",
    "classifier",
    "probe",
    "probe_class",
    "saliency",  # 1 when the reading offered the saliency map over the case
    "saliency_views",  # how often the reader laid it over the case ('' when not counted)
    "initial_diagnosis",
    "initial_confidence",
    "confidence_label",  # the label of `confidence` on the study's scale
    # The patient context shown beside the case ('' when none was, or the value is unknown).
    "context_shown",  # 1 when the reading showed the patient's age, sex and body site
    "context_age",
    "context_sex",
    "context_site",
)
TASK_FIELDS = (
    "answers",
    "correct",
    "accuracy",
    "confidence",
    "confidence_correct",
    "confidence_wrong",
)
# Wide, one file per pair, the pair named on every row. Wide keeps the columns scripts
# already read (`task2_accuracy`) and the page's table as it is; the naming columns come last
# so that no column moves, and are on every row so that the files of several pairs, stacked,
# still say which figure is which. Keys are for scripts, names for people.
PAIR_COLUMNS: tuple[str, ...] = ("task1_condition", "task1_name", "task2_condition", "task2_name")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "row",
    "reader",
    "cases",
    "paired_cases",
    "majority_vote_accuracy",
    *(f"task{t}_{field}" for t in (1, 2) for field in TASK_FIELDS),
    *PAIR_COLUMNS,
)
MRMCAOV_COLUMNS = files.MRMCAOV_COLUMNS
IMRMC_PLACEHOLDERS = files.IMRMC_PLACEHOLDERS


def iso_utc(moment: datetime | None) -> str:
    """A naive-UTC timestamp as ISO-8601 with a Z ('' when missing)."""
    if moment is None:
        return ""
    # Stored naive, always UTC: the naive ISO form plus "Z" (and fast: 20,000 per export).
    return moment.isoformat(timespec="milliseconds") + "Z"


def study_taxonomy(study: Study) -> Taxonomy:
    """The study's own classes (its bundle's taxonomy, with the malignant flags); HAM10000's
    for a study stored without classes."""
    if not study.classes:
        return HAM10000_TAXONOMY
    return Taxonomy.from_classes(
        {"code": c.code, "name": c.name, "malignant": c.malignant} for c in study.classes
    )


def study_scale(study: Study) -> Scale | None:
    """The study's confidence scale: its bundle's labels, as the survey's form shows them;
    None for a study without a scale of its own (fewer than two labels: the analysis then
    takes the levels present)."""
    labels = likert_of(study)
    return Scale.of_labels(labels) if len(labels) >= MIN_LIKERT else None


def _study_answers(
    study: Study, columns: Sequence[Any], completed_only: bool, reader: str | None
) -> Select[Any]:
    """`columns` of `study`'s answers (Answer ⋈ Assignment ⋈ Enrolment), filtered: the one
    place the results' filters are written."""
    query = (
        select(*columns)
        .select_from(Answer)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
        # Session 0 is the practice set: never analysed, never exported.
        .where(Enrolment.study_id == study.id, Assignment.session >= 1)
    )
    if completed_only:
        query = query.where(Enrolment.finished_at.is_not(None))
    if reader:
        reader_id = select(User.id).where(User.pseudonym == reader).scalar_subquery()
        query = query.where(Enrolment.user_id == reader_id)
    return query


def _answers_query(
    study: Study, columns: Sequence[Any], completed_only: bool, reader: str | None, probes: bool
) -> Select[Any]:
    """`columns` of `study`'s answers with their cases and readers (⋈ Case ⋈ User), filtered,
    ordered by reader pseudonym, task and position in the task."""
    query = (
        _study_answers(study, columns, completed_only, reader)
        .join(Case, Case.id == Assignment.case_id)
        .join(User, User.id == Enrolment.user_id)
        .order_by(User.pseudonym, Assignment.session, Assignment.position)
    )
    if not probes:  # the primary analysis leaves the misleading-aid probes out
        query = query.where(Assignment.probe.is_(False))
    return query


def shown_votes(study: Study) -> dict[int, list[str]]:
    """Per case id, the majority vote that each condition's aid shows at its k (indexed like
    the study's conditions): the vote beside the case when the reader answered. Conditions
    without neighbours get the case's own vote (SE-CBIR at the study's k, the thesis's).

    The bundle's vote at that k where it has one; computed from the stored neighbours where it
    has not (format 1 carries SE-CBIR's vote at its own k only).
    """
    listed = conditions_of(study)
    cases = db.session.execute(
        select(Case.id, Case.votes, Case.majority_vote).where(Case.study_id == study.id)
    ).all()
    neighbours = study_neighbours(study, [c for c in listed if c.shows_neighbours])
    out: dict[int, list[str]] = {}
    for case_id, votes, own in cases:
        row = []
        for condition in listed:
            vote = own
            if condition.shows_neighbours:
                vote = (votes or {}).get(condition.aid, {}).get(str(condition.k)) or ""
                if not vote:
                    truths = neighbours.get((case_id, condition.aid), [])[: condition.k]
                    vote = (majority_vote(truths) if truths else None) or own
            row.append(vote)
        out[case_id] = row
    return out


def study_neighbours(study: Study, listed: list[Condition]) -> dict[tuple[int, str], list[str]]:
    """The truths of the neighbours of the aids of `listed`, per (case id, aid), by rank: one
    query for the whole study (one per case took a fifth of a dashboard's first view)."""
    aids = sorted({condition.aid for condition in listed})
    if not aids:
        return {}
    rows = db.session.execute(
        select(Neighbour.case_id, Neighbour.aid, Neighbour.truth)
        .join(Case, Case.id == Neighbour.case_id)
        .where(Case.study_id == study.id, Neighbour.aid.in_(aids))
        .order_by(Neighbour.case_id, Neighbour.aid, Neighbour.rank)
    ).all()
    out: dict[tuple[int, str], list[str]] = {}
    for case_id, aid, truth in rows:
        out.setdefault((case_id, aid), []).append(truth)
    return out


def analysis_columns(
    study: Study, completed_only: bool = False, reader: str | None = None
) -> dict[str, list[Any]]:
    """What the analysis reads of `study`'s answers, column by column (readers by pseudonym):
    for `analysis.responses_from_columns`, which leaves the faulty-aid probes (`probe` 1, at
    the end, with the misleading `probe_class` they showed) out of all but their own figures.

    The rows and their order are `response_rows`'s, without what only the responses file
    needs. Built for a dashboard's first view of a large study: the answers are read as
    numbers only (enrolment, case, condition, ...) in the order of their unique index, and
    the few hundred readers' and cases' texts are read once each and looked up; what was
    shown (JSON) is decoded for the probes only.
    """
    # Read by name (row.probe, row.id, ...): the rows are SQLAlchemy's named tuples.
    columns = (
        Assignment.enrolment_id,
        Assignment.case_id,
        Assignment.session,
        Assignment.condition,
        Answer.diagnosis,
        Answer.confidence,
        Answer.seconds,
        Answer.hidden_seconds,
        Assignment.probe,
        Answer.id,
        Assignment.initial_diagnosis,
        Assignment.initial_confidence,
    )
    query = _study_answers(study, columns, completed_only, reader).order_by(
        Assignment.enrolment_id, Assignment.session, Assignment.position
    )
    rows = db.session.connection().execute(query).all()
    readers = db.session.execute(
        select(Enrolment.id, User.pseudonym, Enrolment.profile_role, Enrolment.profile_years)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.study_id == study.id)
    ).all()
    pseudonym = {enrolment: name for enrolment, name, _, _ in readers}
    # Each reader's answers are one run of rows: put the runs in pseudonym order, the order
    # of the exports (the bootstrap resamples readers by their order of appearance).
    runs = {
        enrolment: list(run) for enrolment, run in groupby(rows, key=attrgetter("enrolment_id"))
    }
    ordered = list(chain.from_iterable(runs[e] for e in sorted(runs, key=pseudonym.__getitem__)))
    answers = [row for row in ordered if not row.probe]
    probes = [row for row in ordered if row.probe]
    shown = probe_shown([row.id for row in probes])
    ordered = answers + probes
    cases = {
        case_id: (image_id, truth)
        for case_id, image_id, truth in db.session.execute(
            select(Case.id, Case.image_id, Case.truth).where(Case.study_id == study.id)
        )
    }
    votes = shown_votes(study)
    keys = [c.key for c in conditions_of(study)]
    role = {e: "" if value is None else value.value for e, _, value, _ in readers}
    years = {e: "" if value is None else value for e, _, _, value in readers}
    first_looks: dict[str, list[Any]] = {}
    if any(row.initial_diagnosis for row in ordered):  # initial-then-revised: first looks
        first_looks = {
            "initial_diagnosis": [row.initial_diagnosis or "" for row in ordered],
            "initial_confidence": [
                "" if row.initial_confidence is None else row.initial_confidence for row in ordered
            ],
        }
    return {
        **first_looks,
        "reader": [pseudonym[row.enrolment_id] for row in ordered],
        "image_id": [cases[row.case_id][0] for row in ordered],
        "truth": [cases[row.case_id][1] for row in ordered],
        "majority_vote": [votes[row.case_id][row.condition] for row in ordered],
        "task": [row.session for row in ordered],
        "condition": [keys[row.condition] for row in ordered],
        "diagnosis": [row.diagnosis for row in ordered],
        "confidence": [row.confidence for row in ordered],
        "seconds": [row.seconds for row in ordered],
        "hidden_seconds": [row.hidden_seconds or 0.0 for row in ordered],
        "probe": [0] * len(answers) + [1] * len(probes),
        "probe_class": [""] * len(answers) + [item.get("probe_class") or "" for item in shown],
        "reader_role": [role[row.enrolment_id] for row in ordered],
        "reader_years": [years[row.enrolment_id] for row in ordered],
    }


def probe_shown(answer_ids: list[int]) -> list[dict[str, Any]]:
    """What was shown with each of these answers (their `shown` JSON), in their order."""
    shown: dict[int, dict[str, Any]] = {}
    for start in range(0, len(answer_ids), 500):
        chunk = answer_ids[start : start + 500]
        query = select(Answer.id, Answer.shown).where(Answer.id.in_(chunk))
        shown.update({answer_id: value for answer_id, value in db.session.execute(query)})
    return [shown[answer_id] or {} for answer_id in answer_ids]


def response_rows(
    study: Study,
    completed_only: bool = False,
    reader: str | None = None,
    pseudonymise: bool = True,
    with_probes: bool = True,
) -> list[dict[str, Any]]:
    """Every answer of `study` with everything stored about it, as dicts.

    `completed_only` keeps readers who finished both tasks; `reader` keeps one pseudonym.
    Rows come ordered by reader pseudonym, task and position in the task.
    """
    columns = (
        User.pseudonym,
        User.email,
        Case.case_key,
        Case.image_id,
        Case.lesion_id,
        Case.truth,
        Assignment.session,
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
        Enrolment.withdrawn_at,
        Answer.shown,
        Assignment.condition,
        Assignment.probe,
        Assignment.initial_diagnosis,
        Assignment.initial_confidence,
        Case.id,
        Answer.context,
    )
    query = _answers_query(study, columns, completed_only, reader, probes=with_probes)
    listed = conditions_of(study)
    votes = shown_votes(study)
    scale = study_scale(study)
    rows = []
    # Core rows unpacked as tuples (no ORM row processing): this runs on every dashboard view.
    for (
        pseudonym,
        email,
        case_key,
        image_id,
        lesion_id,
        truth,
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
        withdrawn_at,
        shown,
        condition_index,
        probe,
        initial_diagnosis,
        initial_confidence,
        case_id,
        context,
    ) in db.session.connection().execute(query).all():
        row = {
            "reader": pseudonym,
            "image_id": image_id,
            "truth": truth,
            "task": task,
            "diagnosis": diagnosis,
            "confidence": confidence,
            "majority_vote": votes[case_id][condition_index],
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
            "reader_withdrawn_at": iso_utc(withdrawn_at),
            **reading_columns(shown or {}, listed[condition_index], probe),
            "session": task,
            "initial_diagnosis": initial_diagnosis or "",
            "initial_confidence": "" if initial_confidence is None else initial_confidence,
            "confidence_label": scale.label(confidence)
            if scale is not None and confidence <= scale.levels
            else "",
            **context_columns(context),
        }
        if not pseudonymise:
            row["reader_email"] = email
        rows.append(row)
    return rows


def reading_columns(shown: Mapping[str, Any], condition: Condition, probe: bool) -> dict[str, Any]:
    """The condition columns of one answer: what it recorded, or (answers stored before
    conditions were recorded) what its assignment's condition showed."""
    if not shown:
        shown = {**condition.to_json(), "condition": condition.key, "probe": probe}
    return {
        "condition": shown["condition"],
        "aid": shown.get("aid", ""),
        "k": shown.get("k") or "",
        "labelled": int(bool(shown.get("labelled", True))) if shown.get("k") else "",
        "classifier": shown.get("classifier", ""),
        "probe": int(bool(shown.get("probe"))),
        "probe_class": shown.get("probe_class") or "",
        "saliency": int(bool(shown.get("saliency"))),
        "saliency_views": "" if shown.get("saliency_views") is None else shown["saliency_views"],
    }


def context_columns(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The patient-context columns of one answer: what was shown with it (Answer.context),
    '' where nothing or an unknown value was."""
    if not context:
        return {"context_shown": 0, "context_age": "", "context_sex": "", "context_site": ""}
    return {
        "context_shown": 1,
        **{
            f"context_{name}": "" if context.get(name) is None else context[name]
            for name in CONTEXT_FIELDS
        },
    }


_csv = files.write_csv
_identified = files.identified
mrmcaov_csv = files.mrmcaov_csv


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
    """Table 4.II of the result's pair as flat rows: readers, then 'pooled', then the readers'
    'mean' and 'sd'; each row names the pair (PAIR_COLUMNS). The `task1_*`/`task2_*` columns
    are the figures under the pair's first and second condition's key."""
    pair = result["pair"]
    first_key, second_key = sides(pair)
    columns = {"task1": first_key, "task2": second_key}
    named = {
        "task1_condition": pair["first"] or "",
        "task1_name": pair["names"][0] or "",
        "task2_condition": pair["second"] or "",
        "task2_name": pair["names"][1] or "",
    }

    def flat(kind: str, reader: str, block: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "row": kind,
            "reader": reader,
            "cases": block.get("cases", ""),
            "paired_cases": block.get("paired_cases", ""),
            "majority_vote_accuracy": _number(block.get("majority_vote_accuracy")),
        }
        for task, key in columns.items():
            for field in TASK_FIELDS:
                value = block[key].get(field)
                row[f"{task}_{field}"] = (
                    value if field in ("answers", "correct") else _number(value)
                )
        row.update(named)
        if emails is not None:
            row["reader_email"] = emails.get(reader, "")
        return row

    rows = [flat("reader", r["reader"], r) for r in result["readers"]]
    rows.append(flat("pooled", "", result["pooled"]))
    for kind in ("mean", "sd"):
        figures = result["pooled"][kind]
        row: dict[str, Any] = {"row": kind, "reader": ""}
        row["majority_vote_accuracy"] = _number(figures["majority_vote_accuracy"])
        row["task1_accuracy"] = _number(figures[first_key])
        row["task2_accuracy"] = _number(figures[second_key])
        row.update(named)
        rows.append(row)
    return rows


def summary_csv(result: Mapping[str, Any], emails: Mapping[str, str] | None = None) -> str:
    """Table 4.II as CSV (accuracies as fractions 0-1)."""
    columns = [*SUMMARY_COLUMNS, "reader_email"] if emails is not None else SUMMARY_COLUMNS
    return _csv(columns, summary_rows(result, emails))


def summary_json(result: AnalysisResult) -> str:
    """The analysis result as indented JSON (strict: no NaN), its pair's tables under the
    thesis's `task1`/`task2` as the download has always had them (`thesis_keyed`)."""
    return json.dumps(thesis_keyed(result), indent=2, allow_nan=False) + "\n"


def reader_emails(rows: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """Pseudonym -> e-mail when the rows were read identified, else None."""
    if not _identified(rows):
        return None
    return {row["reader"]: row["reader_email"] for row in rows}


def study_title(study: Study) -> str:
    """The title the MRMC tools' files carry."""
    return f"SE-CBIR reader study {study.id}: {study.name}"


def imrmc_text(study: Study, responses: Responses, emails: Mapping[str, str] | None = None) -> str:
    """The analysed answers as an iMRMC input file (see `app.analysis.files.imrmc_text`)."""
    return files.imrmc_text(study_title(study), responses, emails)


def mrmcaov_script(study: Study, left_out: Sequence[Mapping[str, str]] = ()) -> str:
    """The one-file R script that reproduces the primary analysis on the MRMCaov CSV."""
    return files.mrmcaov_script(
        study_title(study),
        csv_name=f"study-{study.id}-mrmcaov.csv",
        taxonomy=study_taxonomy(study),
        left_out=left_out,
    )
