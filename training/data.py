"""HAM10000 on disk: the metadata CSV, the image folders, and reading images as arrays.

Everything is validated before any training starts, and every problem found is reported
in one `PipelineError`, so a user fixes a broken download in one go instead of one file
per run.
"""

import _csv
import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from studybundle.limits import MAX_AGE, MAX_SITE, SEXES
from studybundle.taxonomy import HAM10000_CODES
from training.errors import PipelineError

# Display order and label index, everywhere.
CLASSES: tuple[str, ...] = HAM10000_CODES  # the class order of labels and model outputs

METADATA_NAME = "HAM10000_metadata.csv"
REQUIRED_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "image_id",
    "dx",
    "dx_type",
    "age",
    "sex",
    "localization",
)
# Columns that identify a row; they must never be empty.
KEY_COLUMNS: tuple[str, ...] = ("lesion_id", "image_id", "dx")
IMAGE_SUFFIX = ".jpg"
# Sub-folders of the data folder that may hold images, besides the data folder itself:
# the official release ships two parts, the Kaggle mirror spells them without underscores.
IMAGE_FOLDER_PREFIX = "ham10000_images"
PLAIN_IMAGE_FOLDER = "images"


@dataclass(frozen=True)
class Record:
    """One image of the dataset: its id, its lesion, its diagnosis and where it is."""

    image_id: str
    lesion_id: str
    dx: str
    path: Path


def row_value(row: Mapping[str, str] | Record, name: str) -> str:
    """`name` of a metadata row dict or of a Record, so callers accept either."""
    if isinstance(row, Record):
        value: str = getattr(row, name)
        return value
    return row[name]


def load_metadata(csv_path: Path) -> list[dict[str, str]]:
    """The rows of a HAM10000 metadata CSV, after checking columns, keys and duplicates."""
    csv_path = Path(csv_path)
    reader = csv.reader(_read_metadata_text(csv_path).splitlines())
    header = [name.strip() for name in next(reader)]
    _check_header(csv_path, header)
    rows, problems = _parse_rows(reader, header)
    if problems:
        raise PipelineError(
            f"metadata file {csv_path} has {len(problems)} malformed row(s): " + "; ".join(problems)
        )
    if not rows:
        raise PipelineError(f"metadata file {csv_path} has a header but no rows")
    return rows


def _read_metadata_text(csv_path: Path) -> str:
    """The CSV's text (a byte-order mark dropped), or one sentence naming why it cannot be
    read: a missing, unreadable or empty file is a broken download, not a bug."""
    if not csv_path.is_file():
        raise PipelineError(f"metadata file not found: {csv_path}")
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"cannot read metadata file {csv_path}: {error}") from error
    if not text.strip():
        raise PipelineError(f"metadata file {csv_path} is empty (expected a header row)")
    return text


def _check_header(csv_path: Path, header: list[str]) -> None:
    """Refuse a header without every required column or with a column twice: rows are read
    as dicts by column name, so either would silently lose or mix values."""
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise PipelineError(
            f"metadata file {csv_path}: missing column(s) {', '.join(missing)} "
            f"(header is: {','.join(header)}; expected {','.join(REQUIRED_COLUMNS)}"
            f"[,dataset])"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise PipelineError(f"metadata file {csv_path}: repeated column(s) {', '.join(repeated)}")


def _parse_rows(reader: _csv.Reader, header: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    """The well-formed rows after the header, and one problem per malformed row, so that a
    broken download is reported in one go rather than one row per run."""
    rows: list[dict[str, str]] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for fields in reader:
        if not any(field.strip() for field in fields):
            continue  # blank lines (e.g. a trailing newline) carry no row
        row, problem = _parse_row(fields, header, reader.line_num, first_line)
        if problem is not None:
            problems.append(problem)
        elif row is not None:
            first_line[row["image_id"]] = reader.line_num
            rows.append(row)
    return rows, problems


def _parse_row(
    fields: list[str], header: list[str], line: int, first_line: Mapping[str, int]
) -> tuple[dict[str, str] | None, str | None]:
    """One CSV line as a row dict, or the problem with it (wrong field count, an empty key,
    an image_id already seen on `first_line`)."""
    if len(fields) != len(header):
        return None, f"line {line}: {len(fields)} fields, expected {len(header)}"
    row = {name: value.strip() for name, value in zip(header, fields, strict=True)}
    empty = [name for name in KEY_COLUMNS if not row[name]]
    if empty:
        return None, f"line {line}: empty {', '.join(empty)}"
    image_id = row["image_id"]
    if image_id in first_line:
        return None, (
            f"line {line}: duplicate image_id {image_id} (first on line {first_line[image_id]})"
        )
    return row, None


# What HAM10000 writes for a value it does not know.
UNKNOWN_VALUES = ("", "unknown", "nan", "na", "n/a")


def patient_context(rows: Iterable[Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Each image's patient context for the bundle's `context` extension (docs/bundle.md):
    age in whole years, sex and body site, from the metadata's age, sex and localization
    columns; None where HAM10000 does not know it ("unknown", empty) or the value is not one
    the bundle can carry (an age outside 0 to 120, a site longer than 100 characters)."""
    out = {}
    for row in rows:
        age_text = row["age"].strip().lower()
        age: int | None = None
        if age_text not in UNKNOWN_VALUES:
            try:
                years = float(age_text)
            except ValueError:
                years = -1.0
            if 0 <= years <= MAX_AGE:
                age = round(years)
        sex = row["sex"].strip().lower()
        site = " ".join(row["localization"].split())
        out[row["image_id"]] = {
            "age": age,
            "sex": sex if sex in SEXES else None,
            "site": site if site.lower() not in UNKNOWN_VALUES and len(site) <= MAX_SITE else None,
        }
    return out


def class_problems(rows: Iterable[Mapping[str, str] | Record]) -> list[str]:
    """One message per row whose diagnosis is not one of CLASSES."""
    return [
        f"{row_value(row, 'image_id')} has unknown class {row_value(row, 'dx')!r}"
        for row in rows
        if row_value(row, "dx") not in CLASSES
    ]


def check_classes(rows: Sequence[Mapping[str, str] | Record], source: Path | str) -> None:
    """Raise one PipelineError naming every row of `source` with an unknown class."""
    problems = class_problems(rows)
    if problems:
        raise PipelineError(
            f"{source}: {len(problems)} image(s) with an unknown class "
            f"(expected one of {', '.join(CLASSES)}): " + "; ".join(problems)
        )


def image_folders(data_dir: Path) -> list[Path]:
    """Folders that may hold images: HAM10000_images*/ and images/ sub-folders, then data_dir."""
    data_dir = Path(data_dir)
    subfolders = sorted(
        (entry for entry in data_dir.iterdir() if entry.is_dir()), key=lambda path: path.name
    )
    named = [
        folder
        for folder in subfolders
        if folder.name.lower().startswith(IMAGE_FOLDER_PREFIX)
        or folder.name.lower() == PLAIN_IMAGE_FOLDER
    ]
    return [*named, data_dir]


def index_images(folders: Sequence[Path]) -> dict[str, Path]:
    """Map image id (file name without `.jpg`) to its path; the first folder listed wins."""
    found: dict[str, Path] = {}
    for folder in folders:
        # os.scandir is several times faster than Path.glob on a 10,000-file folder.
        with os.scandir(folder) as entries:
            names = sorted(
                entry.name
                for entry in entries
                if entry.name.lower().endswith(IMAGE_SUFFIX) and entry.is_file()
            )
        for name in names:
            found.setdefault(name[: -len(IMAGE_SUFFIX)], folder / name)
    return found


def check_readable(path: Path) -> str | None:
    """None if `path` decodes as an image, else why not (catches truncated JPEGs too)."""
    try:
        with Image.open(path) as image:
            # Decoding at 1/8 scale still reads every byte, so truncation is caught, quickly.
            image.draft("RGB", (1, 1))
            image.load()
    except Exception as error:  # Pillow raises many types for broken files; all mean the same.
        return f"{type(error).__name__}: {error}"
    return None


def load_dataset(data_dir: Path) -> list[Record]:
    """Every image of the HAM10000 release (or a synthetic one) in `data_dir`, all checked."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PipelineError(f"data folder not found: {data_dir}")
    csv_path = data_dir / METADATA_NAME
    if not csv_path.is_file():
        raise PipelineError(f"{METADATA_NAME} not found in {data_dir}")
    rows = load_metadata(csv_path)
    folders = image_folders(data_dir)
    found = index_images(folders)

    unknown = class_problems(rows)
    missing: list[str] = []
    unreadable: list[str] = []
    records: list[Record] = []
    for row in rows:
        image_id = row["image_id"]
        path = found.get(image_id)
        if path is None:
            missing.append(image_id + IMAGE_SUFFIX)
            continue
        reason = check_readable(path)
        if reason is not None:
            unreadable.append(f"{path.relative_to(data_dir)} ({reason})")
            continue
        records.append(Record(image_id, row["lesion_id"], row["dx"], path))

    parts: list[str] = []
    if missing:
        where = ", ".join(str(folder) for folder in folders)
        parts.append(f"{len(missing)} missing image(s) [looked in {where}]: " + ", ".join(missing))
    if unreadable:
        parts.append(f"{len(unreadable)} unreadable image(s): " + ", ".join(unreadable))
    if unknown:
        parts.append(
            f"{len(unknown)} image(s) with an unknown class (expected one of "
            f"{', '.join(CLASSES)}): " + "; ".join(unknown)
        )
    if parts:
        raise PipelineError(f"dataset {data_dir} is not usable: " + " | ".join(parts))
    return records


def read_image(path: Path, size: int) -> NDArray[np.uint8]:
    """The image at `path` as uint8 RGB of shape (size, size, 3), squashed to a square."""
    try:
        with Image.open(path) as image:
            # JPEG decoding at a reduced scale first makes large images several times faster.
            image.draft("RGB", (size, size))
            rgb = image.convert("RGB")
    except Exception as error:  # Pillow raises many types for broken files; all mean the same.
        raise PipelineError(f"cannot read image {path}: {error}") from error
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def read_images(paths: Sequence[Path], size: int) -> NDArray[np.uint8]:
    """The images at `paths` stacked as uint8 of shape (N, size, size, 3)."""
    batch = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for index, path in enumerate(paths):
        batch[index] = read_image(path, size)
    return batch


def label_indices(records: Iterable[Record | Mapping[str, Any]]) -> NDArray[np.int64]:
    """The class index in CLASSES of each record, as int64 of shape (N,)."""
    position = {name: index for index, name in enumerate(CLASSES)}
    labels = []
    for record in records:
        dx = row_value(record, "dx")
        if dx not in position:
            raise PipelineError(f"{row_value(record, 'image_id')} has unknown class {dx!r}")
        labels.append(position[dx])
    return np.asarray(labels, dtype=np.int64)
