"""A study's analysis, computed once per answer set, not once per dashboard view.

The key names the answer set exactly. Answers are final: the survey inserts an answer once
and never changes or deletes it (a study's answers go only with the whole study), so a
study's answers are the same set exactly when their count and their largest id are the
same. A reader's completion of the last session, which the "completed readers" filter reads,
is written in the same commit as that reader's last answer. The key also holds the study's
creation time (in case a deleted study's id is used again), the filters, the bootstrap
size and the pairs of conditions whose tables the result holds (a study without answers may
change its design). A new answer changes the key, so a stale result is never served; what an old key
held simply ages out of the cache.

Where it lives: in the memory of each gunicorn worker, a small LRU on the app object. With W
workers a new answer set is analysed at most W times (each worker on its first view), and no
database table, migration or serialisation is needed. Reading the key costs two aggregate
queries. Results are shared between requests: callers must not change them.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, g, has_request_context
from sqlalchemy import func, select

from app.analysis import AnalysisResult, Responses, analyse, responses_from_columns
from app.analysis.responses import INITIAL_SUFFIX, analysed
from app.extensions import db
from app.models import Answer, Assignment, Enrolment, Study
from app.organiser.exports import analysis_columns, study_scale, study_taxonomy
from app.survey.conditions import UNAIDED, Condition
from app.survey.designs import Design
from app.survey.enrolment import conditions_of, design_of

# Entries per worker: the page and the downloads under a few filters of a few studies.
CACHE_SIZE = 16


@dataclass(frozen=True)
class AnswerSet:
    """What names a study's answers at one moment (see the module docstring)."""

    study_id: int
    created_at: datetime | None
    answers: int
    last_answer: int | None
    completed_readers: int


@dataclass(frozen=True)
class StudyResult:
    """The analysis of a study's answers under some filters (of no answers when there are none)."""

    answers: int
    result: AnalysisResult


class ResultCache:
    """A thread-safe least-recently-used map (gunicorn threads share a worker's cache)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[object, ...], StudyResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> StudyResult | None:
        """The entry under `key`, now the most recently used; None when absent."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[object, ...], entry: StudyResult) -> None:
        """Keep `entry`, dropping the least recently used beyond the size."""
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (reference counting still frees memory).

    Reading 80,000 answers allocates a few hundred thousand rows, tuples and lists, none in
    a reference cycle; each allocation burst set off full collections that walked every
    object of the worker and took half of the time of a first view.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def answer_set(study: Study) -> AnswerSet:
    """The key of `study`'s answers as they are now: two aggregate queries."""
    answers, last = db.session.execute(
        select(func.count(Answer.id), func.max(Answer.id))
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .join(Enrolment, Enrolment.id == Assignment.enrolment_id)
        .where(Enrolment.study_id == study.id)
    ).one()
    completed = db.session.scalar(
        select(func.count(Enrolment.id)).where(
            Enrolment.study_id == study.id, Enrolment.finished_at.is_not(None)
        )
    )
    return AnswerSet(study.id, study.created_at, int(answers), last, int(completed or 0))


def request_answer_set(study: Study) -> AnswerSet:
    """`answer_set(study)`, read once per request: a page shows several analyses of one
    answer set (the page's own, the figures' and the downloads'), and each read scans the
    answers.
    Outside a request (a command, a test's app context) it is read every time."""
    if not has_request_context():
        return answer_set(study)
    known: dict[int, AnswerSet] = g.setdefault("answer_sets", {})
    if study.id not in known:
        known[study.id] = answer_set(study)
    return known[study.id]


def _cache() -> ResultCache:
    """This app's cache (one per app object: tests build several apps in one process)."""
    cache: ResultCache = current_app.extensions.setdefault("study_results", ResultCache())
    return cache


def study_pairs(study: Study) -> list[tuple[Condition, Condition]]:
    """Every pair of the study's conditions that the dashboard's thesis-layout tables may
    compare, each with `unaided` first (the analysis's order), else as listed."""
    listed = conditions_of(study)
    return [ordered(a, b) for i, a in enumerate(listed) for b in listed[i + 1 :]]


def ordered(a: Condition, b: Condition) -> tuple[Condition, Condition]:
    """Two conditions with `unaided` first (the analysis's order), else as listed."""
    return (b, a) if b.aid == UNAIDED and not b.aided else (a, b)


def study_result(
    study: Study,
    completed_only: bool,
    reader: str | None,
    bootstrap: int,
) -> StudyResult:
    """The analysis of `study`'s answers (probes left out) under the filters, from the cache
    when this answer set was analysed before. Its `pairs` hold the thesis-layout tables and
    secondary statistics of every pair of the study's conditions (`study_pairs`), computed in
    the one run, so that the dashboard shows any pair without analysing again; its top level
    is the first two conditions', and its primary analysis covers every condition."""
    pairs = [(a.key, b.key) for a, b in study_pairs(study)]
    # The pairs too: a study without answers may change its design between two views.
    key = (request_answer_set(study), completed_only, reader or "", bootstrap, tuple(pairs))
    cache = _cache()
    entry = cache.get(key)
    if entry is None:
        with cyclic_gc_paused():
            columns = analysis_columns(study, completed_only=completed_only, reader=reader)
            scale = study_scale(study)
            responses = responses_from_columns(
                columns, taxonomy=study_taxonomy(study), levels=scale.levels if scale else None
            )
            del columns
            names = condition_names(study)
            result = analyse(
                responses, bootstrap=bootstrap, seed=0, names=names, pairs=pairs, scale=scale
            )
            entry = StudyResult(len(responses), result)
        cache.put(key, entry)
    return entry


def condition_names(study: Study) -> dict[str, str]:
    """Condition key -> the name pages show ("SE-CBIR 6"); an initial-then-revised study's
    first looks and revised answers named as what they are."""
    names = {condition.key: condition.short for condition in conditions_of(study)}
    if design_of(study) == Design.INITIAL_REVISED:
        names = {
            **{
                f"{key}{INITIAL_SUFFIX}": f"First look before {name}" for key, name in names.items()
            },
            **{key: f"{name} + second look" for key, name in names.items()},
        }
    return names


def study_responses(
    study: Study, completed_only: bool = False, reader: str | None = None
) -> tuple[Responses, list[dict[str, str]]]:
    """The answers the analysis of `study` reads (probes and readers without a condition
    left out), and the readers left out with the reason: what the MRMC tools' files hold."""
    columns = analysis_columns(study, completed_only=completed_only, reader=reader)
    scale = study_scale(study)
    responses = responses_from_columns(
        columns, taxonomy=study_taxonomy(study), levels=scale.levels if scale else None
    )
    return analysed(responses, condition_names(study))
