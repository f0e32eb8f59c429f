"""Study bundles: validate one completely, then import it as a study (never half of it).

A bundle is a folder written by the training pipeline (format in docs/bundle.md):

    manifest.json   format_version, classes [{code, name, colour, definition}], likert [5],
                    neighbours (6), provenance {...}, counts {...}
    queries.json    [{case_key, image_id, lesion_id, truth, majority_vote, image, image_rotated,
                      neighbours: [{rank, image_id, lesion_id, truth, similarity, image}]}]
    images/<sha256 hex prefix>.jpg

This module must not import TensorFlow or `training`: the web app checks bundles on its own.
"""

import hashlib
import json
import math
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import CLASS_CODES, Case, Neighbour, Study, StudyStatus, User

SUPPORTED_FORMATS = (1,)
NEIGHBOURS = 6
LIKERT_POINTS = 5
MAX_MANIFEST_BYTES = 1 << 20
MAX_QUERIES_BYTES = 64 << 20
MAX_IMAGE_BYTES = 8 << 20
MAX_QUERIES = 20000
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_ZIP_BYTES = 2 << 30  # uncompressed total of an uploaded bundle
MAX_ZIP_MEMBERS = 200000
IMAGE_NAME = re.compile(r"^[0-9a-f]{16,64}\.jpg$")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_KEY = 64


class BundleError(ValueError):
    """A bundle cannot be imported; the message names the first problem found."""


@dataclass(frozen=True)
class ValidBundle:
    """A bundle that passed every check, with what the import needs."""

    folder: Path
    manifest: dict[str, Any]
    queries: list[dict[str, Any]]
    digest: str
    images: frozenset[str]


def _load_json(path: Path, limit: int) -> Any:
    """A JSON file's content, refusing missing, oversized or unparsable files."""
    if not path.is_file():
        raise BundleError(f"{path.name} is missing from the bundle folder.")
    if path.stat().st_size > limit:
        raise BundleError(f"{path.name} is larger than {limit // (1 << 20)} MB.")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path.name} is not valid JSON ({exc}).") from None


def _text(value: Any, where: str, max_length: int = MAX_KEY) -> str:
    """A non-empty string no longer than `max_length`."""
    if not isinstance(value, str) or not value.strip():
        raise BundleError(f"{where} must be a non-empty text.")
    if len(value) > max_length:
        raise BundleError(f"{where} is longer than {max_length} characters.")
    return value


def _class(value: Any, where: str) -> str:
    """One of the seven class codes."""
    if value not in CLASS_CODES:
        raise BundleError(f"{where} is {value!r}, not one of {', '.join(CLASS_CODES)}.")
    return value


def _image_name(value: Any, where: str) -> str:
    """An image reference ("images/<hash>.jpg" or "<hash>.jpg") reduced to its file name."""
    if not isinstance(value, str):
        raise BundleError(f"{where} must name an image file.")
    path = PurePosixPath(value)
    if len(path.parts) == 2 and path.parts[0] == "images":
        path = PurePosixPath(path.name)
    name = str(path)
    if not IMAGE_NAME.match(name):
        raise BundleError(
            f"{where} is {value!r}: images must be named by content hash, like images/<hex>.jpg."
        )
    return name


def check_manifest(manifest: Any) -> None:
    """Check manifest.json: format, the seven classes, the Likert labels, neighbours."""
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json must hold a JSON object.")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMATS:
        raise BundleError(
            f"manifest.json has format_version {version!r}; this app reads "
            f"{', '.join(map(str, SUPPORTED_FORMATS))}."
        )
    classes = manifest.get("classes")
    if not isinstance(classes, list) or len(classes) != len(CLASS_CODES):
        raise BundleError(f"manifest.json must list exactly {len(CLASS_CODES)} classes.")
    codes = []
    for index, entry in enumerate(classes):
        where = f"manifest.json classes[{index}]"
        if not isinstance(entry, dict):
            raise BundleError(f"{where} must be an object with code, name, colour, definition.")
        codes.append(_class(entry.get("code"), f"{where}.code"))
        _text(entry.get("name"), f"{where}.name", 100)
        colour = entry.get("colour")
        if not isinstance(colour, str) or not COLOUR.match(colour):
            raise BundleError(f"{where}.colour must be a colour like #1f77b4.")
        _text(entry.get("definition"), f"{where}.definition", 2000)
    if sorted(codes) != sorted(CLASS_CODES):
        raise BundleError(f"manifest.json classes must be {', '.join(CLASS_CODES)}, each once.")
    likert = manifest.get("likert")
    if not isinstance(likert, list) or len(likert) != LIKERT_POINTS:
        raise BundleError(f"manifest.json likert must list {LIKERT_POINTS} labels.")
    for index, label in enumerate(likert):
        _text(label, f"manifest.json likert[{index}]", 100)
    if manifest.get("neighbours") != NEIGHBOURS:
        raise BundleError(f"manifest.json neighbours must be {NEIGHBOURS}.")
    for key in ("provenance", "counts"):
        if not isinstance(manifest.get(key), dict):
            raise BundleError(f"manifest.json {key} must be an object.")


def check_queries(queries: Any) -> set[str]:
    """Check queries.json entry by entry; the set of image file names it references."""
    if not isinstance(queries, list) or not queries:
        raise BundleError("queries.json must hold a non-empty list of queries.")
    if len(queries) > MAX_QUERIES:
        raise BundleError(f"queries.json has more than {MAX_QUERIES} queries.")
    keys: set[str] = set()
    images: set[str] = set()
    for index, query in enumerate(queries):
        where = f"queries.json[{index}]"
        if not isinstance(query, dict):
            raise BundleError(f"{where} must be an object.")
        key = _text(query.get("case_key"), f"{where}.case_key")
        if key in keys:
            raise BundleError(f"{where}.case_key {key!r} appears twice.")
        keys.add(key)
        _text(query.get("image_id"), f"{where}.image_id")
        _text(query.get("lesion_id"), f"{where}.lesion_id")
        _class(query.get("truth"), f"{where}.truth")
        _class(query.get("majority_vote"), f"{where}.majority_vote")
        images.add(_image_name(query.get("image"), f"{where}.image"))
        images.add(_image_name(query.get("image_rotated"), f"{where}.image_rotated"))
        neighbours = query.get("neighbours")
        if not isinstance(neighbours, list) or len(neighbours) != NEIGHBOURS:
            raise BundleError(f"{where} must have exactly {NEIGHBOURS} neighbours.")
        for rank, neighbour in enumerate(neighbours, start=1):
            there = f"{where}.neighbours[{rank - 1}]"
            if not isinstance(neighbour, dict):
                raise BundleError(f"{there} must be an object.")
            if neighbour.get("rank") != rank:
                raise BundleError(f"{there}.rank must be {rank} (neighbours in rank order).")
            _text(neighbour.get("image_id"), f"{there}.image_id")
            _text(neighbour.get("lesion_id"), f"{there}.lesion_id")
            _class(neighbour.get("truth"), f"{there}.truth")
            similarity = neighbour.get("similarity")
            if (
                isinstance(similarity, bool)
                or not isinstance(similarity, int | float)
                or not math.isfinite(similarity)
            ):
                raise BundleError(f"{there}.similarity must be a finite number.")
            images.add(_image_name(neighbour.get("image"), f"{there}.image"))
    return images


def check_image(path: Path) -> None:
    """A referenced image: present, a plain file, small enough, a real JPEG, named by its hash."""
    name = f"images/{path.name}"
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{name} is referenced by queries.json but missing from the bundle.")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise BundleError(f"{name} is larger than {MAX_IMAGE_BYTES // (1 << 20)} MB.")
    data = path.read_bytes()
    if not data.startswith(b"\xff\xd8\xff"):
        raise BundleError(f"{name} is not a JPEG file.")
    if not hashlib.sha256(data).hexdigest().startswith(path.stem):
        raise BundleError(f"{name} does not match its content hash (corrupted or renamed).")
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                raise BundleError(f"{name} is not a JPEG file.")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise BundleError(f"{name} is larger than {MAX_IMAGE_PIXELS} pixels.")
            image.verify()
    except BundleError:
        raise
    except Exception as exc:  # Pillow raises many kinds on a broken file
        raise BundleError(f"{name} is not a readable JPEG ({exc}).") from None


def digest_of(manifest: Any, queries: Any) -> str:
    """sha256 over the manifest and the query list (canonical JSON, so formatting is ignored)."""
    canonical = json.dumps(
        {"manifest": manifest, "queries": queries}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_bundle(folder: str | Path) -> ValidBundle:
    """Check everything about a bundle folder; BundleError names the first problem."""
    root = Path(folder)
    if not root.is_dir():
        raise BundleError(f"{root} is not a folder.")
    manifest = _load_json(root / "manifest.json", MAX_MANIFEST_BYTES)
    check_manifest(manifest)
    queries = _load_json(root / "queries.json", MAX_QUERIES_BYTES)
    images = check_queries(queries)
    for name in sorted(images):
        check_image(root / "images" / name)
    return ValidBundle(root, manifest, queries, digest_of(manifest, queries), frozenset(images))


def _copy_images(bundle: ValidBundle, image_root: Path) -> tuple[Path, bool]:
    """Copy the images into image_root/<digest[:16]>/ atomically; whether we created it."""
    target = image_root / bundle.digest[:16]
    if target.is_dir():
        return target, False
    image_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=image_root))
    try:
        for name in bundle.images:
            shutil.copyfile(bundle.folder / "images" / name, staging / name)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, True


def import_bundle(
    folder: str | Path, name: str, image_root: str | Path, created_by: User | None = None
) -> tuple[Study, bool]:
    """Import a validated bundle as a draft study; the same bundle again returns the old one."""
    bundle = validate_bundle(folder)
    existing = db.session.scalar(select(Study).where(Study.bundle_digest == bundle.digest))
    if existing is not None:
        return existing, False
    target, created_folder = _copy_images(bundle, Path(image_root))
    study = Study(
        name=name.strip() or "Untitled study",
        status=StudyStatus.DRAFT,
        manifest=bundle.manifest,
        bundle_digest=bundle.digest,
        image_folder=str(target),
        created_by_id=created_by.id if created_by is not None else None,
    )
    study.cases_per_reader = min(100, len(bundle.queries))
    for position, query in enumerate(bundle.queries):
        case = Case(
            position=position,
            case_key=query["case_key"],
            image_id=query["image_id"],
            lesion_id=query["lesion_id"],
            truth=query["truth"],
            majority_vote=query["majority_vote"],
            image=_image_name(query["image"], "image"),
            image_rotated=_image_name(query["image_rotated"], "image"),
        )
        case.neighbours = [
            Neighbour(
                rank=item["rank"],
                image_id=item["image_id"],
                lesion_id=item["lesion_id"],
                truth=item["truth"],
                similarity=float(item["similarity"]),
                image=_image_name(item["image"], "image"),
            )
            for item in query["neighbours"]
        ]
        study.cases.append(case)
    db.session.add(study)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if created_folder:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return study, True


def extract_zip(archive: Any, into: Path) -> Path:
    """Unpack an uploaded bundle .zip safely; the folder that holds manifest.json."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise BundleError("The .zip holds too many files to be a study bundle.")
            if sum(member.file_size for member in members) > MAX_ZIP_BYTES:
                raise BundleError("The .zip unpacks to more than 2 GB.")
            for member in members:
                path = PurePosixPath(member.filename)
                if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
                    raise BundleError(f"The .zip holds an unsafe path: {member.filename!r}.")
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise BundleError(f"The .zip holds a symbolic link: {member.filename!r}.")
            zipped.extractall(into)
    except zipfile.BadZipFile:
        raise BundleError("The upload is not a valid .zip file.") from None
    manifests = sorted(into.rglob("manifest.json"), key=lambda path: len(path.parts))
    if not manifests:
        raise BundleError("The .zip holds no manifest.json: zip the bundle folder itself.")
    return manifests[0].parent
