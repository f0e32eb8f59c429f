"""Study bundles: validate one completely, then import it as a study (never half of it).

A bundle is a folder written by the training pipeline (format in docs/bundle.md):

    manifest.json   format_version, classes [{code, name, colour, definition}], likert [5],
                    neighbours (6), provenance {...}, counts {...}
    queries.json    [{case_key, image_id, lesion_id, truth, majority_vote, image, image_rotated,
                      neighbours: [{rank, image_id, lesion_id, truth, similarity, image}]}]
    images/<first 32 hex digits of the file's sha256>.jpg

This module must not import TensorFlow or `training`: the web app checks bundles on its own.
"""

import hashlib
import hmac
import io
import json
import math
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy
from flask import current_app
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import CLASS_CODES, Case, Neighbour, Study, StudyStatus, User

SUPPORTED_FORMATS = (1,)
NEIGHBOURS = 6
MAX_MANIFEST_BYTES = 1 << 20
MAX_QUERIES_BYTES = 64 << 20
MAX_IMAGE_BYTES = 8 << 20
MAX_QUERIES = 20000
# Web-ready images are screen-sized: a larger one is a mistake or a decompression bomb.
MAX_IMAGE_PIXELS = 2048 * 2048
QUERY_FILES = ("image", "image_rotated")
MAX_ZIP_BYTES = 2 << 30  # uncompressed total of an uploaded bundle
MAX_ZIP_MEMBERS = 200000
SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what zip tools write
UNPACK_CHUNK = 1 << 20
IMAGE_NAME = re.compile(r"^[0-9a-f]{32}\.jpg\Z")  # what /images/<name> accepts
IMAGE_PATH = re.compile(r"^images/[0-9a-f]{32}\.jpg\Z")
FILE_NAME = IMAGE_NAME
CASE_KEY = re.compile(r"^[0-9a-f]{16,64}\Z")
HEX_ONLY = re.compile(r"^[0-9a-f]+\Z")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}\Z")
UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_KEY = 64
MAX_JSON_DEPTH = 32  # docs/bundle.md needs 4 levels; provenance may add a few
MAX_REPORTED = 10
LIKERT = (
    "not confident at all",
    "slightly confident",
    "somewhat confident",
    "fairly confident",
    "completely confident",
)
METADATA_MARKERS = {0xE1: "APP1 EXIF/XMP", 0xE2: "APP2 ICC", 0xED: "APP13 IPTC", 0xFE: "COM"}


class BundleError(ValueError):
    """A bundle cannot be imported; the message lists the problems found (one line)."""


@dataclass(frozen=True)
class ValidBundle:
    """A bundle that passed every check, with what the import needs."""

    folder: Path
    manifest: dict[str, Any]
    queries: list[dict[str, Any]]
    digest: str
    images: frozenset[str]


class Problems(list[str]):
    """Violations collected while checking, so that one message can name all of them."""

    def raise_if_any(self) -> None:
        """Raise one BundleError naming the problems (the first ten, then how many more)."""
        if self:
            shown = "; ".join(self[:MAX_REPORTED])
            more = f" (and {len(self) - MAX_REPORTED} more)" if len(self) > MAX_REPORTED else ""
            raise BundleError(f"{shown}{more}.")


def _refuse_constant(name: str) -> Any:
    """json's hook for NaN, Infinity and -Infinity: not JSON, and PostgreSQL refuses them."""
    raise BundleError(f"holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    """json's hook for decimals: a literal such as 1e999 would become infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise BundleError(f"holds {text}, a number too large for a float")
    return value


def _depth(document: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON document (iteratively)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in value)
    return deepest


def _unstorable_text(document: Any) -> str | None:
    """The first string (key or value) PostgreSQL cannot store or a page cannot encode, if any:
    a NUL, another control character or half a surrogate pair, anywhere in the document."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and UNSTORABLE.search(value):
            return value
    return None


def _load_json(path: Path, limit: int) -> Any:
    """A JSON file's content, refusing missing, oversized, unparsable or odd files."""
    if not path.is_file():
        raise BundleError(f"{path.name} is missing from the bundle folder.")
    if path.stat().st_size > limit:
        raise BundleError(f"{path.name} is larger than {limit // (1 << 20)} MB.")
    try:
        document = json.loads(
            path.read_bytes(), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except BundleError as problem:
        raise BundleError(f"{path.name} {problem}.") from None
    except RecursionError:
        raise BundleError(f"{path.name} nests lists or objects too deeply.") from None
    except ValueError as exc:  # not JSON, not UTF-8, or an integer of thousands of digits
        raise BundleError(f"{path.name} is not valid JSON ({exc}).") from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise BundleError(f"{path.name} nests lists or objects more than {MAX_JSON_DEPTH} deep.")
    bad = _unstorable_text(document)
    if bad is not None:
        # Even in free-form fields (provenance): stored, it would break every page showing it.
        raise BundleError(
            f"{path.name} holds a control character or a lone surrogate in {bad[:40]!r}."
        )
    return document


def _text(value: Any, where: str, max_length: int = MAX_KEY) -> str:
    """A non-empty string no longer than `max_length`."""
    if not isinstance(value, str) or not value.strip():
        raise BundleError(f"{where} must be a non-empty text.")
    if len(value) > max_length:
        raise BundleError(f"{where} is longer than {max_length} characters.")
    if UNSTORABLE.search(value):  # PostgreSQL can store neither a NUL nor half a surrogate pair
        raise BundleError(f"{where} holds a control character or a lone surrogate.")
    return value


def _class(value: Any, where: str) -> str:
    """One of the seven class codes."""
    if value not in CLASS_CODES:
        raise BundleError(f"{where} is {value!r}, not one of {', '.join(CLASS_CODES)}.")
    return value


def _image_name(value: Any, where: str) -> str:
    """An image path ("images/<32 hex>.jpg") reduced to its file name."""
    if not isinstance(value, str) or not IMAGE_PATH.match(value):
        raise BundleError(
            f"{where} is {value!r}: images must be named by content hash, like images/<hex>.jpg."
        )
    return value.removeprefix("images/")


def _fits_a_float(value: int | float) -> bool:
    """Whether a number is finite as a float (an integer like 10**400 is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_manifest(manifest: Any) -> None:
    """Check manifest.json: format, the seven classes, the Likert labels, neighbours, counts."""
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json must hold a JSON object.")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMATS:
        raise BundleError(
            f"manifest.json has format_version {version!r}; this app reads "
            f"{', '.join(map(str, SUPPORTED_FORMATS))}."
        )
    problems = Problems()
    classes = manifest.get("classes")
    if not isinstance(classes, list) or len(classes) != len(CLASS_CODES):
        problems.append(f"manifest.json must list exactly {len(CLASS_CODES)} classes")
        classes = []
    codes, colours = [], []
    for index, entry in enumerate(classes):
        where = f"manifest.json classes[{index}]"
        try:
            if not isinstance(entry, dict):
                raise BundleError(f"{where} must be an object with code, name, colour, definition")
            codes.append(_class(entry.get("code"), f"{where}.code"))
            _text(entry.get("name"), f"{where}.name", 200)
            _text(entry.get("definition"), f"{where}.definition", 4000)
            for key in ("colour", "text_colour"):
                if not isinstance(entry.get(key), str) or not COLOUR.match(entry[key]):
                    raise BundleError(f"{where}.{key} must be a colour like #1F77B4")
            colours.append(entry["colour"].lower())
        except BundleError as problem:
            problems.append(str(problem).rstrip("."))
    if len(codes) == len(CLASS_CODES) and tuple(codes) != CLASS_CODES:
        problems.append(f"manifest.json classes must be {', '.join(CLASS_CODES)}, in this order")
    if len(set(colours)) != len(colours):
        problems.append("manifest.json class colours must be distinct")
    if manifest.get("likert") != list(LIKERT):
        problems.append("manifest.json likert must be the five labels of docs/bundle.md")
    if manifest.get("neighbours") != NEIGHBOURS:
        problems.append(f"manifest.json neighbours must be {NEIGHBOURS}")
    if not _positive_int(manifest.get("web_image_size")):
        problems.append("manifest.json web_image_size must be a positive integer")
    if not isinstance(manifest.get("provenance"), dict):
        problems.append("manifest.json provenance must be an object")
    counts = manifest.get("counts")
    dropped = counts.get("dropped") if isinstance(counts, dict) else None
    if (
        not isinstance(counts, dict)
        or not isinstance(dropped, dict)
        or not all(isinstance(counts.get(key), int) for key in ("queries_before", "queries_after"))
        or not all(isinstance(value, int) for value in dropped.values())
    ):
        problems.append("manifest.json counts must hold queries_before, queries_after, dropped")
    elif counts["queries_before"] != counts["queries_after"] + sum(dropped.values()):
        problems.append("manifest.json counts do not add up (before != after + dropped)")
    problems.raise_if_any()


def _check_query(query: Any, where: str, seen: dict[str, set[str]]) -> set[str]:
    """Check one query (raising on its first problem); the image names it references."""
    if not isinstance(query, dict):
        raise BundleError(f"{where} must be an object")
    key = _text(query.get("case_key"), f"{where}.case_key")
    image_id = _text(query.get("image_id"), f"{where}.image_id")
    lesion_id = _text(query.get("lesion_id"), f"{where}.lesion_id")
    if not CASE_KEY.match(key):
        raise BundleError(f"{where}.case_key must be 16 to 64 lowercase hex digits")
    if image_id.lower() in key or lesion_id.lower() in key:
        raise BundleError(f"{where}.case_key contains the query's id")
    for field, value in (("case_key", key), ("image_id", image_id), ("lesion_id", lesion_id)):
        if value in seen[field]:
            raise BundleError(f"{where}.{field} {value!r} appears twice")
        seen[field].add(value)
    _class(query.get("truth"), f"{where}.truth")
    _class(query.get("majority_vote"), f"{where}.majority_vote")
    images = {
        _image_name(query.get("image"), f"{where}.image"),
        _image_name(query.get("image_rotated"), f"{where}.image_rotated"),
    }
    neighbours = query.get("neighbours")
    if not isinstance(neighbours, list) or len(neighbours) != NEIGHBOURS:
        raise BundleError(f"{where} must have exactly {NEIGHBOURS} neighbours")
    lesions = {lesion_id}
    previous = math.inf
    for rank, neighbour in enumerate(neighbours, start=1):
        there = f"{where}.neighbours[{rank - 1}]"
        if not isinstance(neighbour, dict):
            raise BundleError(f"{there} must be an object")
        if neighbour.get("rank") != rank:
            raise BundleError(f"{there}.rank must be {rank} (neighbours in rank order)")
        _text(neighbour.get("image_id"), f"{there}.image_id")
        neighbour_lesion = _text(neighbour.get("lesion_id"), f"{there}.lesion_id")
        if neighbour_lesion in lesions:
            raise BundleError(f"{there} repeats a lesion already shown for this query")
        lesions.add(neighbour_lesion)
        _class(neighbour.get("truth"), f"{there}.truth")
        similarity = neighbour.get("similarity")
        if (
            isinstance(similarity, bool)
            or not isinstance(similarity, int | float)
            or not _fits_a_float(similarity)
        ):
            raise BundleError(f"{there}.similarity must be a finite number")
        if similarity > previous:
            raise BundleError(f"{there}.similarity increases with rank")
        previous = similarity
        images.add(_image_name(neighbour.get("image"), f"{there}.image"))
    return images


def check_queries(queries: Any, manifest: dict[str, Any] | None = None) -> set[str]:
    """Check queries.json query by query; the set of image file names it references."""
    if not isinstance(queries, list) or not queries:
        raise BundleError("queries.json must hold a non-empty list of queries.")
    if len(queries) > MAX_QUERIES:
        raise BundleError(f"queries.json has more than {MAX_QUERIES} queries.")
    problems = Problems()
    counts = (manifest or {}).get("counts")
    if isinstance(counts, dict) and counts.get("queries_after") != len(queries):
        problems.append(f"manifest.json counts.queries_after is not {len(queries)}")
    seen: dict[str, set[str]] = {"case_key": set(), "image_id": set(), "lesion_id": set()}
    images: set[str] = set()
    for index, query in enumerate(queries):
        try:
            images |= _check_query(query, f"queries.json[{index}]", seen)
        except BundleError as problem:
            problems.append(str(problem).rstrip("."))
    problems.raise_if_any()
    problems.extend(_aids_showing_queries(queries))
    problems.raise_if_any()
    return images


def _aids_showing_queries(queries: list[dict[str, Any]]) -> list[str]:
    """Neighbours that are a query's picture: by image id, or by the same bytes (image files
    are named by their content hash, checked in check_image). Shown labelled in Task 2, such
    a neighbour would hand a reader the truth of a case they diagnose (their own or another)."""
    query_ids = {query["image_id"] for query in queries}
    query_files = {query[key] for query in queries for key in ("image", "image_rotated")}
    found = []
    for index, query in enumerate(queries):
        for rank, item in enumerate(query["neighbours"], start=1):
            where = f"queries.json[{index}] neighbour {rank}"
            if item["image_id"] in query_ids:
                found.append(f"{where} is the query image {item['image_id']} (by its id)")
            elif item["image"] in query_files:
                found.append(f"{where} shows a query's picture ({item['image']}, same bytes)")
    return found


def _metadata_segment(data: bytes) -> str | None:
    """The name of the first metadata segment (EXIF/XMP, ICC, IPTC, comment) before the scan."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the header is over
            return None
        if marker in METADATA_MARKERS:
            return METADATA_MARKERS[marker]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        position += 2 + length
    return None


def check_image(path: Path) -> Image.Image:
    """A referenced image: a plain file, small, a real JPEG without metadata, named by its hash."""
    name = f"images/{path.name}"
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{name} is referenced by queries.json but missing from the bundle")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise BundleError(f"{name} is larger than {MAX_IMAGE_BYTES // (1 << 20)} MB")
    data = path.read_bytes()
    if not data.startswith(b"\xff\xd8\xff"):
        raise BundleError(f"{name} is not a JPEG file")
    if not hashlib.sha256(data).hexdigest().startswith(path.stem):
        raise BundleError(f"{name} does not match its content hash (corrupted or renamed)")
    segment = _metadata_segment(data)
    if segment is not None:
        raise BundleError(f"{name} carries metadata ({segment}); bundles must strip it")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise BundleError(f"{name} is not a JPEG file")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise BundleError(f"{name} is larger than {MAX_IMAGE_PIXELS} pixels")
            image.load()
            return image.convert("RGB")
    except BundleError:
        raise
    except Exception as exc:  # Pillow raises many kinds on a broken file
        raise BundleError(f"{name} is not a readable JPEG ({exc})") from None


def _check_rotation(upright: Image.Image, rotated: Image.Image, where: str) -> None:
    """`rotated` must be `upright` turned by 180 degrees (with JPEG's tolerance)."""
    if upright.size != rotated.size:
        raise BundleError(f"{where}.image_rotated has another size than its upright image")
    first = numpy.asarray(upright, dtype=numpy.int16)
    second = numpy.asarray(rotated, dtype=numpy.int16)
    turned = numpy.abs(second - first[::-1, ::-1]).mean()
    unturned = numpy.abs(second - first).mean()
    if turned >= max(6.0, unturned / 3):
        raise BundleError(f"{where}.image_rotated is not its image turned by 180 degrees")


def check_images(root: Path, queries: list[dict[str, Any]], size: int, names: set[str]) -> None:
    """Check every referenced image, the query images' size and rotation, and the folder."""
    problems = Problems()
    # One image decoded at a time (two for a query and its rotation): holding every decoded
    # image of a bundle at once grew a worker by gigabytes.
    broken: set[str] = set()
    query_files = {query[key].removeprefix("images/") for query in queries for key in QUERY_FILES}
    for name in sorted(names - query_files):
        try:
            check_image(root / "images" / name).close()
        except BundleError as problem:
            problems.append(str(problem))
    for index, query in enumerate(queries):
        where = f"queries.json[{index}]"
        pair = []
        for key in QUERY_FILES:
            name = query[key].removeprefix("images/")
            try:
                pair.append(None if name in broken else check_image(root / "images" / name))
            except BundleError as problem:
                problems.append(str(problem))
                broken.add(name)
                pair.append(None)
        upright, rotated = pair
        if upright is None or rotated is None:
            continue
        try:
            if max(upright.size) != size:
                raise BundleError(f"{where}.image's longest side is not web_image_size {size}")
            _check_rotation(upright, rotated, where)
        except BundleError as problem:
            problems.append(str(problem))
    folder = root / "images"
    ids = {
        value.lower()
        for query in queries
        for value in (
            query["image_id"],
            query["lesion_id"],
            *(n[k] for n in query["neighbours"] for k in ("image_id", "lesion_id")),
        )
        if HEX_ONLY.match(value.lower())  # only such an id can hide in a hex file name
    }
    # Each name's substrings of the ids' lengths, looked up in the set: linear in the files
    # (comparing every id with every name held a worker for minutes on a crafted bundle).
    lengths = sorted({len(identifier) for identifier in ids if len(identifier) <= 32})
    for path in folder.iterdir() if folder.is_dir() else ():
        if not FILE_NAME.match(path.name):
            problems.append(f"images/{path.name} is not named <32 hex digits>.jpg")
        elif _contains_any(path.stem, ids, lengths):
            problems.append(f"images/{path.name} contains an image or lesion id")
    problems.raise_if_any()


def _contains_any(text: str, needles: set[str], lengths: list[int]) -> bool:
    """Whether `text` contains one of `needles` (whose lengths are `lengths`)."""
    return any(
        text[start : start + length] in needles
        for length in lengths
        for start in range(len(text) - length + 1)
    )


def digest_of(manifest: Any, queries: Any) -> str:
    """sha256 over the manifest and the query list (canonical JSON, so formatting is ignored)."""
    canonical = json.dumps(
        {"manifest": manifest, "queries": queries}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_bundle(folder: str | Path) -> ValidBundle:
    """Check everything about a bundle folder (docs/bundle.md); BundleError names the problems."""
    root = Path(folder)
    if not root.is_dir():
        raise BundleError(f"{root} is not a folder.")
    manifest = _load_json(root / "manifest.json", MAX_MANIFEST_BYTES)
    check_manifest(manifest)
    queries = _load_json(root / "queries.json", MAX_QUERIES_BYTES)
    images = check_queries(queries, manifest)
    check_images(root, queries, manifest["web_image_size"], images)
    return ValidBundle(root, manifest, queries, digest_of(manifest, queries), frozenset(images))


def served_name(name: str, secret: str | None = None) -> str:
    """The name a bundle image is stored and served under in this deployment.

    A bundle names images by a hash of their content, which anyone holding the public dataset
    and this open-source code can compute (and so map a URL to an image id and diagnosis).
    Served names are keyed by the deployment's SECRET_KEY instead: nobody computes them
    without it, and two deployments never share one. Fixed at import (stored in the rows), so
    a later change of SECRET_KEY does not move images.
    """
    secret_bytes = (secret or current_app.config["SECRET_KEY"]).encode()
    key = hmac.new(secret_bytes, b"secbir study image names", hashlib.sha256).digest()
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32] + ".jpg"


def _copy_images(bundle: ValidBundle, image_root: Path) -> tuple[Path, bool]:
    """Copy the images, under their served names, into image_root/<digest[:16]>/ atomically;
    whether we created that folder."""
    target = image_root / bundle.digest[:16]
    if target.is_dir():
        return target, False
    image_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=image_root))
    try:
        for name in bundle.images:
            shutil.copyfile(bundle.folder / "images" / name, staging / served_name(name))
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
            image=served_name(_image_name(query["image"], "image")),
            image_rotated=served_name(_image_name(query["image_rotated"], "image")),
        )
        case.neighbours = [
            Neighbour(
                rank=item["rank"],
                image_id=item["image_id"],
                lesion_id=item["lesion_id"],
                truth=item["truth"],
                similarity=float(item["similarity"]),
                image=served_name(_image_name(item["image"], "image")),
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


def _megabytes(limit: int) -> str:
    """A byte limit in whole megabytes, for messages."""
    return f"{limit // (1 << 20)} MB"


def _is_archiver_litter(path: PurePosixPath) -> bool:
    """Files that archivers add on their own (macOS Finder): skipped, never unpacked."""
    return "__MACOSX" in path.parts or path.name == ".DS_Store"


def _bundle_root(members: list[zipfile.ZipInfo]) -> PurePosixPath:
    """The folder inside the .zip that holds manifest.json (the shallowest one)."""
    manifests = [
        PurePosixPath(member.filename)
        for member in members
        if not member.is_dir() and PurePosixPath(member.filename).name == "manifest.json"
    ]
    if not manifests:
        raise BundleError("The .zip holds no manifest.json: zip the bundle folder itself.")
    depth = min(len(path.parts) for path in manifests)
    shallowest = [path for path in manifests if len(path.parts) == depth]
    if len(shallowest) > 1:
        raise BundleError("The .zip holds several bundles side by side: zip one bundle folder.")
    return shallowest[0].parent


def _member_limit(member: zipfile.ZipInfo, root: PurePosixPath) -> int | None:
    """The most bytes `member` may unpack to; None for a folder of the layout.

    BundleError for anything that is not part of a bundle (docs/bundle.md): only
    manifest.json, queries.json and images/<file> below the bundle's folder.
    """
    path = PurePosixPath(member.filename)
    relative = (
        path.parts[len(root.parts) :] if path.parts[: len(root.parts)] == root.parts else None
    )
    if member.is_dir():
        if path.parts == root.parts[: len(path.parts)] or relative in ((), ("images",)):
            return None
    elif relative == ("manifest.json",):
        return MAX_MANIFEST_BYTES
    elif relative == ("queries.json",):
        return MAX_QUERIES_BYTES
    elif relative is not None and len(relative) == 2 and relative[0] == "images":
        return MAX_IMAGE_BYTES
    raise BundleError(
        f"The .zip holds {member.filename!r}, which is not part of a study bundle "
        "(only manifest.json, queries.json and images/)."
    )


def _check_members(
    members: list[zipfile.ZipInfo],
) -> tuple[PurePosixPath, list[tuple[zipfile.ZipInfo, int | None]]]:
    """Check every member from the .zip's directory alone: the bundle's folder, and what to
    unpack with the most bytes each may hold (None for a folder)."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise BundleError("The .zip holds too many files to be a study bundle.")
    if sum(member.file_size for member in members) > MAX_ZIP_BYTES:
        raise BundleError(f"The .zip unpacks to more than {MAX_ZIP_BYTES >> 30} GB.")
    for member in members:
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
            raise BundleError(f"The .zip holds an unsafe path: {member.filename!r}.")
        if (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise BundleError(f"The .zip holds a symbolic link: {member.filename!r}.")
    wanted = [m for m in members if not _is_archiver_litter(PurePosixPath(m.filename))]
    root = _bundle_root(wanted)
    planned = []
    for member in wanted:
        limit = _member_limit(member, root)
        if limit is not None and member.file_size > limit:
            name = PurePosixPath(member.filename).name
            raise BundleError(f"{name} in the .zip is larger than {_megabytes(limit)}.")
        if member.flag_bits & 0x1:
            raise BundleError(f"The .zip holds an encrypted file: {member.filename!r}.")
        if member.compress_type not in SUPPORTED_COMPRESSION:
            raise BundleError(
                f"The .zip uses a compression this app cannot read: {member.filename!r}."
            )
        planned.append((member, limit))
    return root, planned


def _unpack(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int, target: Path) -> None:
    """Unpack one file, counting the bytes really read: declared sizes can lie."""
    allowed = min(limit, member.file_size)
    written = 0
    with zipped.open(member) as source, target.open("wb") as sink:
        while chunk := source.read(UNPACK_CHUNK):
            written += len(chunk)
            if written > allowed:
                raise BundleError(
                    f"{PurePosixPath(member.filename).name} in the .zip unpacks to more than "
                    "its declared size."
                )
            sink.write(chunk)


def extract_zip(archive: Any, into: Path) -> Path:
    """Unpack an uploaded bundle .zip safely; the folder that holds manifest.json.

    Everything is checked from the .zip's directory before a byte is unpacked (paths, the
    bundle layout, each file's size against the largest a bundle file may have, the total);
    while unpacking, the bytes actually read are bounded too. A refusal leaves nothing behind.
    """
    created: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as zipped:
            root, planned = _check_members(zipped.infolist())
            for member, limit in planned:
                target = into.joinpath(*PurePosixPath(member.filename).parts)
                if limit is None:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                created.append(target)
                _unpack(zipped, member, limit, target)
    except BundleError:
        _remove(created)
        raise
    # Also a truncated or corrupted member, offsets that point nowhere (ValueError from seek),
    # encryption or a compression method zipfile does not implement.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ):
        _remove(created)
        raise BundleError("The upload is not a valid .zip file.") from None
    except BaseException:
        _remove(created)
        raise
    return into.joinpath(*root.parts)


def _remove(paths: list[Path]) -> None:
    """Delete files unpacked before a refusal."""
    for path in paths:
        path.unlink(missing_ok=True)
