"""Read and validate the long-format responses: one row per answer.

Columns (others are kept out of the way and ignored): `reader`, `image_id`, `truth`, `task`
(1 or 2), `diagnosis`, `confidence` (1-5), `majority_vote`. Class codes are the seven HAM10000
classes; they are matched case-insensitively and surrounding spaces are ignored.

Every problem stops the read with one `ResponsesError` that names the row and the column.
Rows are counted from 1 without the header; for a CSV file the message also gives the line
in the file (the header is line 1), which is what a spreadsheet calls the row.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
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
CONFIDENCE_LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)

_CLASS_INDEX = {code: i for i, code in enumerate(CLASSES)}


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
    appearance); `truth`, `diagnosis` and `majority_vote` index `CLASSES`.
    """

    readers: tuple[str, ...]
    image_ids: tuple[str, ...]
    reader: np.ndarray
    image: np.ndarray
    truth: np.ndarray
    task: np.ndarray
    diagnosis: np.ndarray
    confidence: np.ndarray
    majority_vote: np.ndarray

    def __len__(self) -> int:
        """Number of answers."""
        return int(self.reader.shape[0])

    def rows(self) -> Iterator[dict[str, Any]]:
        """The answers back as dicts with the standard columns (e.g. to write a CSV)."""
        for k in range(len(self)):
            yield {
                "reader": self.readers[self.reader[k]],
                "image_id": self.image_ids[self.image[k]],
                "truth": CLASSES[self.truth[k]],
                "task": int(self.task[k]),
                "diagnosis": CLASSES[self.diagnosis[k]],
                "confidence": int(self.confidence[k]),
                "majority_vote": CLASSES[self.majority_vote[k]],
            }


class _Builder:
    """Validates rows one at a time and accumulates them column by column."""

    def __init__(self) -> None:
        self.reader_index: dict[str, int] = {}
        self.image_index: dict[str, int] = {}
        # Per image: (truth, majority vote, first row) so contradictions name both rows.
        self.image_facts: list[tuple[int, int, int]] = []
        self.seen: dict[tuple[int, int, int], int] = {}
        self.columns: dict[str, list[int]] = {
            name: [] for name in ("reader", "image", "truth", "task", "diagnosis", "conf", "mv")
        }

    def add(self, values: Mapping[str, Any], row: int, line: int | None) -> None:
        """Validate one answer and append it."""

        def fail(column: str, message: str) -> ResponsesError:
            return ResponsesError(message, row=row, column=column, line=line)

        def text(column: str) -> str:
            value = values.get(column)
            if value is None or str(value).strip() == "":
                raise fail(column, "empty value")
            return str(value).strip()

        def label(column: str) -> int:
            value = text(column)
            index = _CLASS_INDEX.get(value.lower())
            if index is None:
                raise fail(
                    column, f"unknown class {value!r} (expected one of {', '.join(CLASSES)})"
                )
            return index

        def integer(column: str, allowed: tuple[int, ...], what: str) -> int:
            value = values.get(column)
            raw = text(column)
            try:
                number = value if isinstance(value, int) else int(raw)
            except ValueError:
                raise fail(column, f"{what} must be a whole number, got {raw!r}") from None
            if isinstance(number, bool) or number not in allowed:
                raise fail(column, f"{what} must be one of {allowed}, got {raw!r}")
            return int(number)

        reader_name = text("reader")
        image_id = text("image_id")
        truth = label("truth")
        task = integer("task", TASKS, "task")
        diagnosis = label("diagnosis")
        confidence = integer("confidence", CONFIDENCE_LEVELS, "confidence")
        majority = label("majority_vote")

        reader = self.reader_index.setdefault(reader_name, len(self.reader_index))
        image = self.image_index.get(image_id)
        if image is None:
            image = self.image_index[image_id] = len(self.image_index)
            self.image_facts.append((truth, majority, row))
        else:
            known_truth, known_majority, first = self.image_facts[image]
            if truth != known_truth:
                raise fail(
                    "truth",
                    f"image {image_id!r} is {CLASSES[truth]} here but "
                    f"{CLASSES[known_truth]} in row {first}",
                )
            if majority != known_majority:
                raise fail(
                    "majority_vote",
                    f"image {image_id!r} has majority vote {CLASSES[majority]} here but "
                    f"{CLASSES[known_majority]} in row {first}",
                )
        key = (reader, image, task)
        if key in self.seen:
            raise fail(
                "task",
                f"duplicate answer: reader {reader_name!r} already answered image "
                f"{image_id!r} in task {task} in row {self.seen[key]}",
            )
        self.seen[key] = row

        cols = self.columns
        cols["reader"].append(reader)
        cols["image"].append(image)
        cols["truth"].append(truth)
        cols["task"].append(task)
        cols["diagnosis"].append(diagnosis)
        cols["conf"].append(confidence)
        cols["mv"].append(majority)

    def build(self) -> Responses:
        """Freeze the accumulated answers into arrays."""
        cols = self.columns
        return Responses(
            readers=tuple(self.reader_index),
            image_ids=tuple(self.image_index),
            reader=np.asarray(cols["reader"], dtype=np.int64),
            image=np.asarray(cols["image"], dtype=np.int64),
            truth=np.asarray(cols["truth"], dtype=np.int8),
            task=np.asarray(cols["task"], dtype=np.int8),
            diagnosis=np.asarray(cols["diagnosis"], dtype=np.int8),
            confidence=np.asarray(cols["conf"], dtype=np.int8),
            majority_vote=np.asarray(cols["mv"], dtype=np.int8),
        )


def responses_from_rows(rows: Iterable[Mapping[str, Any]]) -> Responses:
    """Validate answers given as mappings (e.g. from the database); row 1 is the first mapping."""
    builder = _Builder()
    for row, values in enumerate(rows, start=1):
        missing = [c for c in COLUMNS if c not in values]
        if missing:
            raise ResponsesError("missing column", row=row, column=missing[0])
        builder.add(values, row, None)
    return builder.build()


def _open_text(path_or_file: str | os.PathLike[str] | IO[Any]) -> tuple[IO[str], bool]:
    """A text stream for a path or an open (text or binary) file, and whether we opened it."""
    if isinstance(path_or_file, str | os.PathLike):
        # utf-8-sig: spreadsheet programs often prepend a byte-order mark.
        return open(Path(path_or_file), encoding="utf-8-sig", newline=""), True
    if isinstance(path_or_file.read(0), bytes):
        return io.TextIOWrapper(path_or_file, encoding="utf-8-sig", newline=""), False
    return path_or_file, False


def read_responses(path_or_file: str | os.PathLike[str] | IO[Any]) -> Responses:
    """Read and validate a responses CSV (comma- or semicolon-separated) from a path or file."""
    stream, owned = _open_text(path_or_file)
    try:
        header_line = stream.readline()
        if not header_line.strip():
            raise ResponsesError("the file is empty: expected a header row", line=1)
        # Spreadsheets with a decimal comma (e.g. Swiss German locale) export with semicolons.
        delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
        header = [h.strip() for h in next(csv.reader([header_line], delimiter=delimiter))]
        for column in COLUMNS:
            if column not in header:
                raise ResponsesError(
                    f"missing column (the header has: {', '.join(header)})", column=column, line=1
                )
        positions = {column: header.index(column) for column in COLUMNS}
        reader = csv.reader(stream, delimiter=delimiter)
        builder = _Builder()
        row = 0
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue  # blank lines, e.g. a trailing newline from a spreadsheet
            row += 1
            line = reader.line_num + 1  # +1: the header was read before the csv reader
            values = {c: fields[i] if i < len(fields) else None for c, i in positions.items()}
            builder.add(values, row, line)
        return builder.build()
    finally:
        if owned:
            stream.close()
        elif stream is not path_or_file:
            stream.detach()  # leave the caller's binary file open
