"""Read and validate the long-format responses: one row per answer.

Columns (others are kept out of the way and ignored): `reader`, `image_id`, `truth`, the
reading condition, `diagnosis`, `confidence` (1 to N), `majority_vote`. The condition is either
a `condition` column (any names, e.g. `unaided`, `cbir`, `se_cbir`, except those of the
tables' own figures such as `readers` or `mean`, `results.TABLE_FIELDS`) or the thesis's `task`
column (1 = `unaided`, 2 = `se_cbir`); `condition` wins when both are there. Optional:
`seconds` (time from the case appearing to the answer) less `hidden_seconds` (of it, the
page was hidden) feeds the reading-time figures; `reader_role` and `reader_years` (the
reader's profile, the same on every row of a reader) give the reader groupings. Class codes are
those of the study's taxonomy (`taxonomy.Taxonomy`; by default the seven HAM10000 classes);
they are matched case-insensitively and surrounding spaces are ignored.

Faulty-aid probes (a `probe` column, 1 on readings whose aid was made misleading on purpose,
as the app's responses export writes it) are left out of the primary analysis unless asked
for (`with_probes=True`); `Responses.probes_left_out` counts them. `Responses.probe_readings`
keeps what each probe reading was (with the misleading class from a `probe_class` column):
how readers fared against a misleading aid is a result of its own.

Every problem stops the read with one `ResponsesError` that names the row and the column.
Rows are counted from 1 without the header; for a CSV file the message also gives the line
in the file (the header is line 1), which is what a spreadsheet calls the row.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from app.analysis.results import TABLE_FIELDS
from app.analysis.taxonomy import HAM10000_TAXONOMY, Taxonomy
from studybundle.limits import MAX_LIKERT, MIN_LIKERT
from studybundle.vocabulary import THESIS_CONDITIONS, Aid

# A NumPy array of any shape and element type (the analysis's parallel columns).
Array = NDArray[Any]

# HAM10000's class codes: the default taxonomy's.
CLASSES: tuple[str, ...] = HAM10000_TAXONOMY.classes
COLUMNS: tuple[str, ...] = (
    "reader",
    "image_id",
    "truth",
    "task",
    "diagnosis",
    "confidence",
    "majority_vote",
)
TASKS: tuple[int, ...] = (1, 2)
# The thesis's two tasks as conditions: Task 1 read the lesion alone, Task 2 with SE-CBIR.
TASK_CONDITIONS: dict[int, str] = dict(enumerate(THESIS_CONDITIONS, start=1))
UNAIDED = Aid.UNAIDED.value
# An initial-then-revised answer's first look (without the aid) is a reading of its own, under
# the aid's condition with this suffix: "se_cbir_initial" (responses.py, `_with_first_looks`).
INITIAL_SUFFIX = "_initial"
FIRST_LOOK_COLUMNS = {"diagnosis": "initial_diagnosis", "confidence": "initial_confidence"}
# Columns besides the condition that every responses file needs.
REQUIRED: tuple[str, ...] = tuple(c for c in COLUMNS if c != "task")
# Every level of every confidence scale a study bundle allows; a study's own scale has 1 to N.
CONFIDENCE_LEVELS: tuple[int, ...] = tuple(range(1, MAX_LIKERT + 1))


class ResponsesError(ValueError):
    """A responses file or row set that cannot be analysed; names the row and the column."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.row = row
        self.column = column
        self.line = line
        where = []
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True, eq=False)
class Responses:
    """Validated answers as parallel NumPy arrays, one element per answer.

    `reader` and `image` index `readers` and `image_ids` (both in order of first
    appearance); `truth`, `diagnosis` and `majority_vote` index `taxonomy.classes`; `condition`
    indexes `conditions` (`unaided` first when present, then in order of first appearance; the
    thesis's `task` column read as its conditions, Task 1 = index 0). `seconds` is the time
    per answer (NaN where not recorded). `levels` is the length of the confidence scale the
    answers were checked against (None: any scale a bundle allows).
    """

    readers: tuple[str, ...]
    image_ids: tuple[str, ...]
    reader: Array
    image: Array
    truth: Array
    condition: Array
    diagnosis: Array
    confidence: Array
    majority_vote: Array
    conditions: tuple[str, ...] = tuple(TASK_CONDITIONS.values())
    seconds: Array | None = None
    levels: int | None = None
    groups: Mapping[str, Mapping[str, str]] | None = None
    probes_left_out: int = 0
    taxonomy: Taxonomy = HAM10000_TAXONOMY
    probe_readings: ProbeReadings | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """The class codes `truth`, `diagnosis` and `majority_vote` index."""
        return self.taxonomy.classes

    def __post_init__(self) -> None:
        """No recorded times: NaN for each answer."""
        if self.seconds is None:
            object.__setattr__(self, "seconds", np.full(len(self), np.nan))

    @property
    def answer_seconds(self) -> Array:
        """`seconds` as a (never None) array."""
        assert self.seconds is not None
        return self.seconds

    def __len__(self) -> int:
        """Number of answers."""
        return int(self.reader.shape[0])

    def rows(self) -> Iterator[dict[str, Any]]:
        """The answers back as dicts with the standard columns (e.g. to write a CSV)."""
        for k in range(len(self)):
            yield {
                "reader": self.readers[self.reader[k]],
                "image_id": self.image_ids[self.image[k]],
                "truth": self.classes[self.truth[k]],
                "task": int(self.condition[k]) + 1,  # the thesis's column
                "condition": self.conditions[self.condition[k]],
                "diagnosis": self.classes[self.diagnosis[k]],
                "confidence": int(self.confidence[k]),
                "majority_vote": self.classes[self.majority_vote[k]],
            }


def analysed(
    responses: Responses, names: Mapping[str, str] | None = None
) -> tuple[Responses, list[dict[str, str]]]:
    """The answers every figure and every export is computed from, and the readers left out.

    A reader with no answer in one of the conditions has no figure there, so no comparison
    (MRMCaov refuses such data: "not a supported study design"); the reader's answers are left
    out of everything, and named with the reason (conditions by `names` where given). Every
    other answer is kept: a reader part-way through a condition counts with the cases read.
    """
    conditions = len(responses.conditions)
    seen = np.zeros((len(responses.readers), max(conditions, 1)), dtype=bool)
    seen[responses.reader, responses.condition] = True
    missing = ~seen[:, :conditions]
    lacking = np.flatnonzero(missing.any(axis=1) & seen.any(axis=1))
    if not lacking.size:
        return responses, []
    names = names or {}
    left_out = [
        {
            "reader": responses.readers[j],
            "reason": "no answers in "
            + ", ".join(
                names.get(c, c)
                for c, gap in zip(responses.conditions, missing[j], strict=True)
                if gap
            ),
        }
        for j in lacking
    ]
    return without_readers(responses, {item["reader"] for item in left_out}), left_out


def without_readers(responses: Responses, dropped: set[str]) -> Responses:
    """`responses` without the answers (and probe readings) of the readers in `dropped`."""
    keep_reader = np.array([name not in dropped for name in responses.readers], dtype=bool)
    rows = keep_reader[responses.reader]
    new_index = np.cumsum(keep_reader) - 1
    probes = responses.probe_readings
    if probes is not None:
        kept = [k for k, name in enumerate(probes.reader) if name not in dropped]
        probes = (
            ProbeReadings(*(tuple(getattr(probes, f)[k] for k in kept) for f in _PROBE_FIELDS))
            if kept
            else None
        )
    return replace(
        responses,
        readers=tuple(n for n, keep in zip(responses.readers, keep_reader, strict=True) if keep),
        reader=new_index[responses.reader[rows]],
        image=responses.image[rows],
        truth=responses.truth[rows],
        diagnosis=responses.diagnosis[rows],
        confidence=responses.confidence[rows],
        majority_vote=responses.majority_vote[rows],
        condition=responses.condition[rows],
        seconds=responses.answer_seconds[rows],
        probe_readings=probes,
    )


def _class_parser(taxonomy: Taxonomy) -> Callable[[Any], int]:
    """A parser of class codes into positions in `taxonomy` (ValueError naming the classes)."""

    def parse(value: Any) -> int:
        text = _parse_text(value)
        index = taxonomy.index(text)
        if index is None:
            expected = ", ".join(taxonomy.classes)
            raise ValueError(f"unknown class {text!r} (expected one of {expected})")
        return index

    return parse


def _parse_text(value: Any) -> str:
    """A non-empty, stripped string."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValueError("empty value")
    return text


def _parse_int(allowed: tuple[int, ...], what: str) -> Any:
    """A parser for a whole number restricted to `allowed`."""

    def parse(value: Any) -> int:
        raw = _parse_text(value)
        if isinstance(value, bool):
            raise ValueError(f"{what} must be one of {allowed}, got {raw!r}")
        try:
            number = value if isinstance(value, int) else int(raw)
        except ValueError:
            raise ValueError(f"{what} must be a whole number, got {raw!r}") from None
        if number not in allowed:
            raise ValueError(f"{what} must be one of {allowed}, got {raw!r}")
        return int(number)

    return parse


def _parse_confidence(levels: int | None) -> Callable[[Any], int]:
    """A parser of confidences, whole numbers from 1 to `levels` (the study's scale; None: to
    the longest scale a study bundle allows); its errors name the range."""
    top = len(CONFIDENCE_LEVELS) if levels is None else levels
    if not MIN_LIKERT <= top <= MAX_LIKERT:
        raise ValueError(f"a confidence scale has {MIN_LIKERT} to {MAX_LIKERT} levels, not {top}")
    scale = "the longest scale a study bundle allows" if levels is None else "the study's scale"
    allowed = f"a whole number from 1 to {top} ({scale})"

    def parse(value: Any) -> int:
        raw = _parse_text(value)
        try:
            number = value if type(value) is int else int(raw)  # not a bool: True is no level
        except ValueError:
            raise ValueError(f"confidence must be {allowed}, got {raw!r}") from None
        if not 1 <= number <= top:
            raise ValueError(f"confidence must be {allowed}, got {raw!r}")
        return int(number)

    return parse


def experience_band(years: int) -> str:
    """Years of dermoscopy practice as a band (the reader groups of the experience split)."""
    if years < 2:
        return "under 2 years"
    if years < 5:
        return "2-4 years"
    if years < 10:
        return "5-9 years"
    return "10 years or more"


def _reader_groups(
    columns: dict[str, list[Any]], reader: Array, readers: tuple[str, ...]
) -> dict[str, dict[str, str]] | None:
    """Reader groupings from the optional profile columns (first non-empty value per reader)."""
    groups: dict[str, dict[str, str]] = {}
    for column, grouping in (("reader_role", "role"), ("reader_years", "experience")):
        values = columns.get(column)
        if values is None:
            continue
        found: dict[str, str] = {}
        # A reader's profile is the same on each of the reader's rows: look at each distinct
        # (reader, value) pair once, in order of first appearance.
        for j, value in dict.fromkeys(zip(reader.tolist(), values, strict=True)):
            if readers[j] not in found:
                text = _profile_text(column, value)
                if text:
                    found[readers[j]] = text
        if found:
            groups[grouping] = {name: found.get(name, "not given") for name in readers}
    return groups or None


def _profile_text(column: str, value: Any) -> str:
    """A profile cell as its group label ('' when empty or, for years, not a number)."""
    text = "" if value is None else str(value).strip()
    if text and column == "reader_years":
        try:
            return experience_band(int(float(text)))
        except ValueError:
            return ""
    return text


_FLAGS = {"1": True, "0": False, "": False, "true": True, "false": False, "yes": True, "no": False}


def _parse_probe(value: Any) -> bool:
    """Whether a reading was a faulty-aid probe: 1/0, true/false, yes/no (empty: no)."""
    text = "" if value is None else str(value).strip().lower()
    if text not in _FLAGS:
        raise ValueError(f"probe must be 1 or 0 (or empty), got {text!r}")
    return _FLAGS[text]


@dataclass(frozen=True)
class ProbeReadings:
    """The faulty-aid probe readings of the input, one element per reading: the reader, the
    condition, and the truth, the answer and the misleading class shown as class positions
    (-1 where the probe's class was not recorded)."""

    reader: tuple[str, ...]
    condition: tuple[str, ...]
    truth: tuple[int, ...]
    diagnosis: tuple[int, ...]
    probe_class: tuple[int, ...]


_PROBE_FIELDS = tuple(f.name for f in dataclasses.fields(ProbeReadings))


@dataclass(frozen=True)
class _Split:
    """The columns without the left-out probe rows, and what the probe rows held."""

    columns: dict[str, list[Any]]
    kept: list[int] | None  # the kept rows' original indices (None: all kept)
    left_out: int
    probe_index: list[int]  # the probe rows' original indices (kept or not)
    probe_columns: dict[str, list[Any]]


def _drop_probes(columns: dict[str, list[Any]], with_probes: bool) -> _Split:
    """Split off the probe rows (left out unless `with_probes`)."""
    values = columns.pop("probe", None)
    probe_classes = columns.pop("probe_class", None)
    if values is None:
        return _Split(columns, None, 0, [], {})
    flags: dict[Any, bool] = {}
    for value in dict.fromkeys(values):
        try:
            flags[value] = _parse_probe(value)
        except ValueError as problem:
            index = values.index(value)
            raise ResponsesError(str(problem), row=index + 1, column="probe") from None
    probe_index = [i for i, value in enumerate(values) if flags[value]]
    listed = {**columns, "probe_class": probe_classes or [""] * len(values)}
    probe_columns = {c: [column[i] for i in probe_index] for c, column in listed.items()}
    if with_probes or not probe_index:
        return _Split(columns, None, 0, probe_index, probe_columns)
    kept = [i for i, value in enumerate(values) if not flags[value]]
    kept_columns = {c: [column[i] for i in kept] for c, column in columns.items()}
    return _Split(kept_columns, kept, len(probe_index), probe_index, probe_columns)


def _probe_readings(
    split: _Split, parse_class: Callable[[Any], int], condition_column: str
) -> tuple[ProbeReadings | None, tuple[int, str, str] | None]:
    """The probe readings parsed, or the first problem (original row index, column, words)."""
    if not split.probe_index:
        return None, None
    rows = split.probe_columns
    parsed: dict[str, list[Any]] = {}
    for column in ("reader", "truth", "diagnosis", "probe_class", condition_column):
        parse: Callable[[Any], Any] = {
            "reader": _parse_text,
            "probe_class": lambda v: -1 if not str(v or "").strip() else parse_class(v),
            "task": lambda v: TASK_CONDITIONS[_PARSERS["task"](v)],
            "condition": _parse_text,
        }.get(column, parse_class)
        parsed[column] = []
        for index, value in zip(split.probe_index, rows[column], strict=True):
            try:
                parsed[column].append(parse(value))
            except ValueError as problem:
                return None, (index, column, str(problem))
    readings = ProbeReadings(
        reader=tuple(parsed["reader"]),
        condition=tuple(parsed[condition_column]),
        truth=tuple(parsed["truth"]),
        diagnosis=tuple(parsed["diagnosis"]),
        probe_class=tuple(parsed["probe_class"]),
    )
    return readings, None


def _parse_seconds(value: Any) -> float:
    """Seconds spent on an answer: a finite number >= 0, or NaN when the cell is empty."""
    text = "" if value is None else str(value).strip()
    if not text:
        return float("nan")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"seconds must be a number, got {text!r}") from None
    if not (number >= 0 and number < float("inf")):
        raise ValueError(f"seconds must be a finite number >= 0, got {text!r}")
    return number


def _seconds_array(values: Sequence[Any]) -> Array | None:
    """A column of seconds as numbers when every value is a valid float or int (a database
    query's column), checked at once; None otherwise, to be parsed value by value (text, empty
    cells, and every problem to report)."""
    if not set(map(type, values)) <= {float, int}:
        return None
    array = np.array(values, dtype=np.float64)
    if not np.all((array >= 0) & (array < np.inf)):
        return None
    return array


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "reader": _parse_text,
    "image_id": _parse_text,
    "task": _parse_int(TASKS, "task"),
    "condition": _parse_text,
    "seconds": _parse_seconds,
    "hidden_seconds": _parse_seconds,
}
# Optional numeric columns, validated when present; the profile columns are read as text.
OPTIONAL_NUMBERS: tuple[str, ...] = ("seconds", "hidden_seconds")
OPTIONAL_TEXT: tuple[str, ...] = (
    "reader_role",
    "reader_years",
    "probe",
    "probe_class",
    "initial_diagnosis",
    "initial_confidence",
)


@dataclass(frozen=True)
class _FirstLooks:
    """Where the first-look readings were appended: from row `start` on, one per `origin` row."""

    start: int
    origin: list[int]


def _with_first_looks(
    columns: dict[str, list[Any]],
) -> tuple[dict[str, list[Any]], _FirstLooks | None]:
    """The columns with each initial-then-revised answer's first look as a reading of its own.

    An answer with an `initial_diagnosis` was first given without the aid, then revised with it
    in the same sitting: its unaided answer becomes a reading under `<condition>_initial`
    (diagnosis and confidence from `initial_diagnosis` and `initial_confidence`, no time of its
    own), so that each aid is compared with the first looks at the same cases. The readings are
    appended after the answers; errors in them name the answer's row and the initial column.
    """
    initial = columns.pop("initial_diagnosis", None)
    confidence = columns.pop("initial_confidence", None)
    if initial is None:
        return columns, None
    origin = [i for i, value in enumerate(initial) if str(value or "").strip()]
    if not origin:
        return columns, None
    if "condition" not in columns:
        raise ResponsesError(
            "initial answers need a condition column (which aid each answer was revised with)",
            row=origin[0] + 1,
            column="initial_diagnosis",
        )
    start = len(initial)
    added: dict[str, list[Any]] = {}
    for column, values in columns.items():
        if column == "condition":
            added[column] = [f"{str(values[i]).strip()}{INITIAL_SUFFIX}" for i in origin]
        elif column == "diagnosis":
            added[column] = [initial[i] for i in origin]
        elif column == "confidence":
            added[column] = [None if confidence is None else confidence[i] for i in origin]
        elif column in ("seconds", "hidden_seconds"):
            added[column] = [""] * len(origin)
        else:
            added[column] = [values[i] for i in origin]
    return {c: values + added[c] for c, values in columns.items()}, _FirstLooks(start, origin)


@dataclass(frozen=True)
class _Rows:
    """Where a row of the parsed columns came from, to name it in an error: the input's rows
    less the left-out probes (`kept`), then the first looks appended (`first_looks`)."""

    line_of: Callable[[int], int] | None
    kept: list[int] | None
    first_looks: _FirstLooks | None

    def error_at(self, message: str, original: int, column: str) -> ResponsesError:
        """A problem in row `original` of the input (0-based)."""
        line = None if self.line_of is None else self.line_of(original)
        return ResponsesError(message, row=original + 1, column=column, line=line)

    def error(self, message: str, index: int, column: str) -> ResponsesError:
        """A problem in row `index` of the rows kept (a first look: its answer's row)."""
        looks = self.first_looks
        if looks is not None and index >= looks.start:
            index = looks.origin[index - looks.start]
            column = FIRST_LOOK_COLUMNS.get(column, column)
        return self.error_at(message, index if self.kept is None else self.kept[index], column)


def _split(
    columns: dict[str, list[Any]], with_probes: bool, line_of: Callable[[int], int] | None
) -> _Split:
    """`_drop_probes`, its error given the line in the file."""
    try:
        return _drop_probes(columns, with_probes)
    except ResponsesError as problem:
        if line_of is None or problem.row is None:
            raise problem from None
        line = line_of(problem.row - 1)
        raise ResponsesError(problem.message, row=problem.row, column="probe", line=line) from None


def _parsers(taxonomy: Taxonomy, levels: int | None) -> dict[str, Callable[[Any], Any]]:
    """A parser for every column: the fixed ones, the study's confidence scale and classes."""
    class_code = _class_parser(taxonomy)
    return {
        **_PARSERS,
        "confidence": _parse_confidence(levels),
        "truth": class_code,
        "diagnosis": class_code,
        "majority_vote": class_code,
    }


def _parse_values(
    values: list[Any], parse: Callable[[Any], Any]
) -> tuple[dict[Any, Any], tuple[int, str] | None]:
    """Each distinct value parsed once: value -> parsed, and the first bad row with its
    problem (None when every value parsed)."""
    table: dict[Any, Any] = {}
    bad: dict[Any, str] = {}
    for value in set(values):
        try:
            table[value] = parse(value)
        except ValueError as problem:
            bad[value] = str(problem)
    if not bad:
        return table, None
    index = next(i for i, v in enumerate(values) if v in bad)
    return table, (index, bad[values[index]])


@dataclass(frozen=True)
class _Parsed:
    """The columns' values parsed: a table per column (raw value -> parsed), or, for a column
    of times that arrived as numbers, the numbers themselves."""

    columns: dict[str, list[Any]]
    tables: dict[str, dict[Any, Any]]
    numbers: dict[str, Array]

    def indexed(self, column: str) -> tuple[Array, tuple[str, ...]]:
        """Names numbered in order of first appearance (readers, images, conditions); raw
        spellings that differ only by surrounding spaces share a number."""
        table, values = self.tables[column], self.columns[column]
        names: dict[str, int] = {}
        code_of = {raw: names.setdefault(table[raw], len(names)) for raw in dict.fromkeys(values)}
        codes = np.fromiter(map(code_of.__getitem__, values), dtype=np.int64, count=len(values))
        return codes, tuple(names)

    def coded(self, column: str) -> Array:
        """Small whole numbers (class positions, confidences, tasks) as int8."""
        table, values = self.tables[column], self.columns[column]
        return np.fromiter(map(table.__getitem__, values), dtype=np.int8, count=len(values))

    def number(self, column: str) -> Array:
        """A column of times as float64."""
        if column in self.numbers:
            return self.numbers[column]
        table, values = self.tables[column], self.columns[column]
        return np.fromiter(map(table.__getitem__, values), dtype=np.float64, count=len(values))

    def seconds(self) -> Array | None:
        """Time per answer less the time the page was hidden (None when not recorded)."""
        if "seconds" not in self.columns:
            return None
        seconds = self.number("seconds")
        if "hidden_seconds" in self.columns:
            seconds = np.maximum(seconds - np.nan_to_num(self.number("hidden_seconds")), 0.0)
        return seconds

    def conditions(self, column: str) -> tuple[Array, tuple[str, ...]]:
        """Each answer's condition index, and the conditions (`task`: the thesis's two)."""
        if column == "task":
            return self.coded("task") - 1, tuple(TASK_CONDITIONS.values())
        return _conditions(self.indexed("condition"))


def _parse(
    columns: dict[str, list[Any]],
    parsers: Mapping[str, Callable[[Any], Any]],
    present: list[str],
    rows: _Rows,
) -> _Parsed:
    """Parse every column in `present`; of several bad values, the earliest row's is reported
    (and of one row's, the first column's)."""
    tables: dict[str, dict[Any, Any]] = {}
    numbers: dict[str, Array] = {}
    first: tuple[int, int, str, str] | None = None  # (row index, column order, column, words)
    for order, column in enumerate(present):
        values = columns[column]
        array = _seconds_array(values) if column in OPTIONAL_NUMBERS else None
        if array is not None:
            numbers[column] = array
            continue
        tables[column], problem = _parse_values(values, parsers[column])
        if problem is not None:
            candidate = (problem[0], order, column, problem[1])
            if first is None or candidate[:2] < first[:2]:
                first = candidate
    if first is not None:
        index, _, column, message = first
        raise rows.error(message, index, column)
    return _Parsed(columns, tables, numbers)


def _build(
    columns: dict[str, list[Any]],
    line_of: Callable[[int], int] | None = None,
    with_probes: bool = False,
    taxonomy: Taxonomy | None = None,
    levels: int | None = None,
) -> Responses:
    """Validate raw columns (one list per required column) and turn them into Responses,
    faulty-aid probe rows left out unless `with_probes`.

    Each distinct value is parsed once, which keeps 200,000 answers fast. Values are checked
    first, then duplicates and contradicting truths or majority votes; of several problems
    of one kind, the one in the earliest row is reported.
    """
    split = _split(columns, with_probes, line_of)
    columns, first_looks = _with_first_looks(split.columns)
    rows = _Rows(line_of, split.kept, first_looks)
    taxonomy = taxonomy or HAM10000_TAXONOMY
    parsers = _parsers(taxonomy, levels)
    condition_column = "condition" if "condition" in columns else "task"
    present = [c if c != "task" else condition_column for c in COLUMNS]
    present += [c for c in OPTIONAL_NUMBERS if c in columns]
    parsed = _parse(columns, parsers, present, rows)
    probe_readings, probe_problem = _probe_readings(split, parsers["truth"], condition_column)
    if probe_problem is not None:
        original, column, message = probe_problem
        raise rows.error_at(message, original, column)
    reader, readers = parsed.indexed("reader")
    image, image_ids = parsed.indexed("image_id")
    condition, conditions = parsed.conditions(condition_column)
    responses = Responses(
        readers=readers,
        image_ids=image_ids,
        reader=reader,
        image=image,
        truth=parsed.coded("truth"),
        condition=condition.astype(np.int8),
        diagnosis=parsed.coded("diagnosis"),
        confidence=parsed.coded("confidence"),
        majority_vote=parsed.coded("majority_vote"),
        conditions=conditions,
        seconds=parsed.seconds(),
        levels=levels,
        groups=_reader_groups(columns, reader, readers),
        probes_left_out=split.left_out,
        taxonomy=taxonomy,
        probe_readings=probe_readings,
    )
    problems = [
        *_contradictions(responses),
        *_duplicates(responses, condition_column),
        *_table_names(responses),
    ]
    if problems:
        i, column, message = min(problems, key=lambda p: p[0])
        raise rows.error(message, i, column)
    return responses


# A problem found across rows: (row index among the rows kept, column, words).
_Problem = tuple[int, str, str]


def _contradictions(responses: Responses) -> list[_Problem]:
    """One truth per image, and one majority vote per image and condition (each aid shows its
    own vote at its own k): each row compared with the first row of its image (and condition);
    the earliest contradicting row of each kind."""
    image, condition, classes = responses.image, responses.condition, responses.classes
    per_condition = image.astype(np.int64) * max(len(responses.conditions), 1) + condition
    problems = []
    for column, codes, group in (
        ("truth", responses.truth, image),
        ("majority_vote", responses.majority_vote, per_condition),
    ):
        if len(responses) == 0 or _one_code_per_group(group, codes, len(classes)):
            continue
        _, first_of_group, member_of = np.unique(group, return_index=True, return_inverse=True)
        first = first_of_group[member_of]
        mismatch = np.flatnonzero(codes != codes[first])
        if not mismatch.size:
            continue
        i = int(mismatch[0])
        what = "is" if column == "truth" else "has majority vote"
        where = "" if column == "truth" else f" under {responses.conditions[condition[i]]!r}"
        problems.append(
            (
                i,
                column,
                f"image {responses.image_ids[image[i]]!r} {what} {classes[codes[i]]}{where}"
                f" here but {classes[codes[first[i]]]} in row {first[i] + 1}",
            )
        )
    return problems


def _duplicates(responses: Responses, condition_column: str) -> list[_Problem]:
    """One answer per reader, image and condition: the earliest repeated answer (as a list of
    at most one problem), named by the thesis's task or by the condition."""
    reader, image, condition = responses.reader, responses.image, responses.condition
    answer_key = (reader * len(responses.image_ids) + image) * max(
        len(responses.conditions), 1
    ) + condition
    if len(responses) == 0 or _all_distinct(answer_key):
        return []
    ranked = np.argsort(answer_key, kind="stable")
    repeated = np.flatnonzero(answer_key[ranked][1:] == answer_key[ranked][:-1])
    later = ranked[repeated + 1]
    i = int(later.min())
    earlier = int(ranked[repeated[np.argmin(later)]])
    where = (
        f"task {condition[i] + 1}"
        if condition_column == "task"
        else f"condition {responses.conditions[condition[i]]!r}"
    )
    return [
        (
            i,
            condition_column,
            f"duplicate answer: reader {responses.readers[reader[i]]!r} already answered "
            f"image {responses.image_ids[image[i]]!r} in {where} in row {earlier + 1}",
        )
    ]


def _table_names(responses: Responses) -> list[_Problem]:
    """No condition named as a figure of the tables that key the others by condition
    (`results.TABLE_FIELDS`): the first answer under such a name (as a list of at most one)."""
    taken = [i for i, key in enumerate(responses.conditions) if key in TABLE_FIELDS]
    if not taken:
        return []
    i = int(np.flatnonzero(np.isin(responses.condition, taken))[0])
    name = responses.conditions[responses.condition[i]]
    return [
        (
            i,
            "condition",
            f"a condition may not be called {name!r}: the analysis's tables use that name "
            "for a figure of their own",
        )
    ]


def _one_code_per_group(group: Array, codes: Array, classes: int) -> bool:
    """Whether every group (small non-negative ints) holds a single code (0..classes-1),
    counted in one pass; the caller finds the first offending row only when it does not."""
    groups = int(group.max()) + 1 if group.size else 0
    counts = np.bincount(group.astype(np.int64) * classes + codes, minlength=groups * classes)
    return bool(((counts.reshape(-1, classes) > 0).sum(axis=1) <= 1).all())


def _all_distinct(keys: Array) -> bool:
    """Whether the non-negative int `keys` are all different: counted in one pass when their
    range is small (a study's readers x images x conditions), sorted otherwise."""
    if keys.size == 0:
        return True
    if int(keys.max()) <= 8 * keys.size + 1_000_000:
        return bool(np.bincount(keys).max() <= 1)
    ordered = np.sort(keys)
    return not bool((ordered[1:] == ordered[:-1]).any())


def _conditions(indexed: tuple[Array, tuple[str, ...]]) -> tuple[Array, tuple[str, ...]]:
    """Renumber conditions so that `unaided` (the control) comes first, and each aid's first
    looks (`<aid>_initial`) right before the aid; the rest in order of first appearance."""
    codes, names = indexed
    firsts = [n for n in names if n.endswith(INITIAL_SUFFIX) and n[: -len(INITIAL_SUFFIX)] in names]
    listed = [n for n in names if n != UNAIDED and n not in firsts]
    wanted: list[str] = [UNAIDED] if UNAIDED in names else []
    for name in listed:
        if name + INITIAL_SUFFIX in firsts:
            wanted.append(name + INITIAL_SUFFIX)
        wanted.append(name)
    if tuple(wanted) == names:
        return codes, names
    order = [names.index(n) for n in wanted]
    remap = np.empty(len(names), dtype=np.int64)
    remap[order] = np.arange(len(names))
    return remap[codes], tuple(wanted)


def _wanted_columns(available: Iterable[str]) -> list[str]:
    """The columns to read: the required ones, `condition` or else `task`, and `seconds`."""
    have = set(available)
    wanted = list(REQUIRED)
    wanted.append("condition" if "condition" in have else "task")
    wanted += [c for c in (*OPTIONAL_NUMBERS, *OPTIONAL_TEXT) if c in have]
    return wanted


def responses_from_rows(
    rows: Iterable[Mapping[str, Any]],
    with_probes: bool = False,
    taxonomy: Taxonomy | None = None,
    levels: int | None = None,
) -> Responses:
    """Validate answers given as mappings (e.g. from the database); row 1 is the first mapping.
    Faulty-aid probes (`probe` 1) are left out unless `with_probes`; class codes are those of
    `taxonomy` (default HAM10000's), confidences 1 to `levels` (default: any bundle scale)."""
    rows = list(rows)
    wanted = _wanted_columns(rows[0].keys() if rows else COLUMNS)
    columns: dict[str, list[Any]] = {c: [] for c in wanted}
    for row, values in enumerate(rows, start=1):
        for column in wanted:
            try:
                columns[column].append(values[column])
            except KeyError:
                raise ResponsesError("missing column", row=row, column=column) from None
    return _build(columns, with_probes=with_probes, taxonomy=taxonomy, levels=levels)


def responses_from_columns(
    columns: Mapping[str, Sequence[Any]],
    with_probes: bool = False,
    taxonomy: Taxonomy | None = None,
    levels: int | None = None,
) -> Responses:
    """Validate answers given column by column (equal-length sequences, one per column name);
    the fastest way in from a database query. Row 1 is the first element. Faulty-aid probes
    (`probe` 1) are left out unless `with_probes`; confidences run from 1 to `levels`."""
    wanted = _wanted_columns(columns.keys())
    for column in wanted:
        if column not in columns:
            raise ResponsesError("missing column", column=column)
    lengths = {len(columns[c]) for c in wanted}
    if len(lengths) > 1:
        raise ResponsesError(f"columns of different lengths: {sorted(lengths)}")
    return _build(
        {c: list(columns[c]) for c in wanted},
        with_probes=with_probes,
        taxonomy=taxonomy,
        levels=levels,
    )


def _decode(data: bytes) -> str:
    """UTF-8 bytes as text (a leading byte-order mark dropped); ResponsesError otherwise."""
    # Spreadsheet programs often prepend a byte-order mark.
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as problem:
        before = body[: problem.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        raise ResponsesError(
            f"the file is not UTF-8 text (byte 0x{body[problem.start]:02x}): "
            'save it as "CSV UTF-8"',
            line=before.count(b"\n") + 1,
        ) from None


def _read_text(path_or_file: str | os.PathLike[str] | IO[Any]) -> str:
    """The whole text of a path or an open (text or binary) file; a caller's file stays open."""
    if isinstance(path_or_file, str | os.PathLike):
        return _decode(Path(path_or_file).read_bytes())
    try:
        data = path_or_file.read()
    except UnicodeDecodeError:  # a text stream the caller opened with another encoding
        raise ResponsesError('the file is not UTF-8 text: save it as "CSV UTF-8"') from None
    return _decode(data) if isinstance(data, bytes) else data


def _is_blank(fields: list[str]) -> bool:
    """A record from an empty or whitespace-only line."""
    return not fields or (len(fields) == 1 and not fields[0].strip())


def _line_finder(text: str, delimiter: str) -> Callable[[int], int]:
    """Maps a data row index to its line in the file (parsed again: only needed for errors)."""

    def line_of(index: int) -> int:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        next(reader)  # header
        seen = -1
        for fields in reader:
            if not _is_blank(fields):
                seen += 1
                if seen == index:
                    return reader.line_num
        raise IndexError(index)

    return line_of


def _records(text: str, delimiter: str) -> list[list[str]]:
    """Every CSV record of `text`; ResponsesError naming the line the csv module refused."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as problem:
        limit = csv.field_size_limit()
        message = str(problem)
        if "field larger than field limit" in message:
            message = f"a field is longer than {limit:,} characters"
        raise ResponsesError(f"not a readable CSV file ({message})", line=reader.line_num) from None
    return records


def read_responses(
    path_or_file: str | os.PathLike[str] | IO[Any],
    with_probes: bool = False,
    taxonomy: Taxonomy | None = None,
    levels: int | None = None,
) -> Responses:
    """Read and validate a responses CSV (comma- or semicolon-separated) from a path or file;
    faulty-aid probe rows (`probe` 1) are left out unless `with_probes`; confidences run from
    1 to `levels` (default: to the longest scale a bundle allows)."""
    # Old Mac files end lines with a bare carriage return, which the csv module refuses
    # outside quotes: every line end becomes "\n" (inside quotes too; notes are not analysed).
    text = _read_text(path_or_file).replace("\r\n", "\n").replace("\r", "\n")
    header_line = text.split("\n", 1)[0]
    if not header_line.strip():
        raise ResponsesError("the file is empty: expected a header row", line=1)
    # Spreadsheets with a decimal comma (e.g. Swiss German locale) export with semicolons.
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    records = _records(text, delimiter)
    header = [h.strip() for h in records[0]]
    wanted = _wanted_columns(header)
    for column in wanted:
        if column not in header:
            raise ResponsesError(
                f"missing column (the header has: {', '.join(header)})", column=column, line=1
            )
    # Blank lines (e.g. trailing ones from a spreadsheet) are not answers.
    records = [fields for fields in records[1:] if not _is_blank(fields)]
    width = len(header)
    if records and min(map(len, records)) < width:
        records = [fields + [""] * (width - len(fields)) for fields in records]
    positions = {c: header.index(c) for c in wanted}
    columns = {c: [fields[i] for fields in records] for c, i in positions.items()}
    return _build(columns, _line_finder(text, delimiter), with_probes, taxonomy, levels)
