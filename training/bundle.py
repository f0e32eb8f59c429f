"""The query pool and the study bundle: what the web app imports for the reader study.

The query pool keeps one query per lesion and shows six neighbours of six different lesions,
none of the query's own (thesis section 3.4, with a stricter, documented rule). The bundle is
a folder: `manifest.json`, `queries.json` and web-ready JPEGs in `images/` named by content
hash. `docs/bundle.md` is the format's reference; `validate_bundle` checks all of it.

No TensorFlow here: the pool is a pure function on ids, lesions, labels and neighbour indices.
"""

import dataclasses
import hashlib
import hmac
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from training.errors import PipelineError

FORMAT_VERSION = 1
CLASS_CODES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")  # same order as data.CLASSES
JPEG_QUALITY = 90
CASE_KEY_HEX = 24  # 96 bits: unguessable, short enough for a URL
NAME_HEX = 32  # image file names: the first 32 hex digits of the sha256 of the bytes


@dataclass(frozen=True)
class ClassInfo:
    """How a diagnostic class is shown to readers."""

    code: str
    name: str
    colour: str  # frame and button colour, Okabe-Ito (colour-blind safe)
    text_colour: str  # the one of black/white that reads best on `colour` (WCAG contrast)
    definition: str


# Okabe-Ito colours. Malignant classes get the warm colours the thesis used for them (orange,
# vermillion) or black; benign ones the cool ones. Yellow, the palette's least readable frame
# on a white page, is left out.
CLASS_INFO: tuple[ClassInfo, ...] = (
    ClassInfo(
        "akiec",
        "Actinic keratosis / intraepithelial carcinoma (Bowen's disease)",
        "#E69F00",
        "#000000",
        "Actinic (solar) keratoses and intraepithelial carcinoma (Bowen's disease): common "
        "non-invasive variants of squamous cell carcinoma that can be treated locally without "
        "surgery.",
    ),
    ClassInfo(
        "bcc",
        "Basal cell carcinoma",
        "#D55E00",
        "#000000",
        "A common variant of epithelial skin cancer that rarely metastasises but grows "
        "destructively if untreated. It causes the second most skin-cancer deaths after "
        "melanoma.",
    ),
    ClassInfo(
        "bkl",
        "Benign keratosis",
        "#009E73",
        "#000000",
        "A generic class for seborrhoeic keratoses (senile warts), solar lentigines and "
        "lichen planus-like keratoses. They may look different under the dermatoscope but are "
        "biologically similar and often reported under the same term by histopathology.",
    ),
    ClassInfo(
        "df",
        "Dermatofibroma",
        "#56B4E9",
        "#000000",
        "A benign skin lesion, regarded either as a benign proliferation or as an inflammatory "
        "reaction to minimal trauma.",
    ),
    ClassInfo(
        "mel",
        "Melanoma",
        "#000000",
        "#FFFFFF",
        "A malignant neoplasm of melanocytes that appears in different variants; invasive and "
        "in-situ melanomas are included (not non-pigmented, subungual, ocular or mucosal ones). "
        "Melanomas cause about three quarters of all skin-cancer deaths.",
    ),
    ClassInfo(
        "nv",
        "Melanocytic nevus",
        "#0072B2",
        "#FFFFFF",
        "Benign neoplasms of melanocytes in a myriad of variants, which can differ markedly "
        "under the dermatoscope. Nevi that resemble melanoma are over-represented.",
    ),
    ClassInfo(
        "vasc",
        "Vascular lesion",
        "#CC79A7",
        "#000000",
        "Vascular skin lesions, from cherry angiomas to angiokeratomas and pyogenic granulomas, "
        "and also haemorrhages.",
    ),
)

# Thesis section 3.4: the confidence scale, 1 to 5.
LIKERT: tuple[str, ...] = (
    "not confident at all",
    "slightly confident",
    "somewhat confident",
    "fairly confident",
    "completely confident",
)

# Why a test image did not become a query (keys of `counts.dropped` in the manifest).
DROP_DUPLICATE = "same lesion as an earlier query"
DROP_TOO_FEW = "fewer than {n} distinct-lesion neighbours among the candidates"
DROP_SHARED = "two of the top {n} neighbours show the same lesion (thesis rule)"


@dataclass(frozen=True)
class Neighbour:
    """One retrieved image shown beside a query."""

    rank: int
    image_id: str
    lesion_id: str
    truth: str
    similarity: float


@dataclass(frozen=True)
class Query:
    """One query of the pool with the neighbours readers see in Task 2."""

    image_id: str
    lesion_id: str
    truth: str
    majority_vote: str
    neighbours: tuple[Neighbour, ...]


@dataclass(frozen=True)
class QueryPool:
    """The queries kept, and how many candidates were dropped for which reason."""

    queries: tuple[Query, ...]
    before: int
    dropped: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Counts before and after filtering, for the manifest; they always add up."""
        return {
            "queries_before": self.before,
            "queries_after": len(self.queries),
            "dropped": dict(sorted(self.dropped.items())),
        }


def _default_vote(labels: Sequence[str]) -> str:
    """The rank-weighted majority vote of `metrics` (imported late: it may be optional)."""
    from training.metrics import majority_vote

    return majority_vote(labels)


def build_query_pool(
    query_ids: Sequence[str],
    query_lesions: Sequence[str],
    query_truth: Sequence[str],
    neighbour_index: np.ndarray,
    bank_ids: Sequence[str],
    bank_lesions: Sequence[str],
    bank_truth: Sequence[str],
    similarities: np.ndarray | None = None,
    neighbours: int = 6,
    rule: str = "lesion",
    vote: Callable[[Sequence[str]], str] | None = None,
) -> QueryPool:
    """Keep one query per lesion and pick `neighbours` neighbours of distinct other lesions.

    `neighbour_index[q]` lists bank rows most similar first (negative = no candidate); pass
    more than `neighbours` columns so a skipped candidate gives its place to the next one.
    The image of a lesion that stays is its first by image id. Rule "lesion": walk the
    candidates, skipping the query's lesion and lesions already shown; drop the query if
    fewer than `neighbours` remain. Rule "thesis": take the first `neighbours` candidates
    not of the query's lesion and drop the query if two of them share a lesion.
    """
    if rule not in ("lesion", "thesis"):
        raise PipelineError(f"query filter must be 'lesion' or 'thesis', not {rule!r}")
    count = len(query_ids)
    neighbour_index = np.asarray(neighbour_index)
    if not (len(query_lesions) == len(query_truth) == count == len(neighbour_index)):
        raise PipelineError("query ids, lesions, labels and neighbour rows differ in length")
    if not len(bank_ids) == len(bank_lesions) == len(bank_truth):
        raise PipelineError("bank ids, lesions and labels differ in length")
    if similarities is not None and np.shape(similarities) != neighbour_index.shape:
        raise PipelineError("similarities and neighbour indices differ in shape")
    vote = vote or _default_vote
    too_few = DROP_TOO_FEW.format(n=neighbours)
    shared = DROP_SHARED.format(n=neighbours)

    dropped: Counter[str] = Counter()
    seen_lesions: set[str] = set()
    kept: list[Query] = []
    # Image-id order decides which image of a lesion represents it, whatever the input order.
    for q in sorted(range(count), key=lambda i: str(query_ids[i])):
        lesion = str(query_lesions[q])
        if lesion in seen_lesions:
            dropped[DROP_DUPLICATE] += 1
            continue
        seen_lesions.add(lesion)

        chosen: list[int] = []  # column positions in neighbour_index[q]
        shown_lesions: set[str] = set()
        duplicate_in_top = False
        for column, row in enumerate(neighbour_index[q]):
            if len(chosen) == neighbours:
                break
            if row < 0:
                continue
            candidate_lesion = str(bank_lesions[row])
            if candidate_lesion == lesion:
                continue
            if candidate_lesion in shown_lesions:
                if rule == "thesis":
                    duplicate_in_top = True
                    break
                continue
            shown_lesions.add(candidate_lesion)
            chosen.append(column)
        if duplicate_in_top:
            dropped[shared] += 1
            continue
        if len(chosen) < neighbours:
            dropped[too_few] += 1
            continue

        shown = tuple(
            Neighbour(
                rank=rank,
                image_id=str(bank_ids[neighbour_index[q][column]]),
                lesion_id=str(bank_lesions[neighbour_index[q][column]]),
                truth=str(bank_truth[neighbour_index[q][column]]),
                similarity=(
                    round(float(similarities[q][column]), 6) if similarities is not None else 0.0
                ),
            )
            for rank, column in enumerate(chosen, start=1)
        )
        kept.append(
            Query(
                image_id=str(query_ids[q]),
                lesion_id=lesion,
                truth=str(query_truth[q]),
                majority_vote=vote([n.truth for n in shown]),
                neighbours=shown,
            )
        )
    return QueryPool(queries=tuple(kept), before=count, dropped=dict(dropped))


def pool_to_json(pool: QueryPool) -> dict[str, Any]:
    """The query pool as JSON-ready data (the pipeline's `query_pool.json`)."""
    return {
        "counts": pool.counts(),
        "queries": [
            {
                "image_id": q.image_id,
                "lesion_id": q.lesion_id,
                "truth": q.truth,
                "majority_vote": q.majority_vote,
                "neighbours": [dataclasses.asdict(n) for n in q.neighbours],
            }
            for q in pool.queries
        ],
    }


def pool_from_json(data: Mapping[str, Any]) -> QueryPool:
    """The query pool back from `pool_to_json`'s output."""
    queries = tuple(
        Query(
            image_id=q["image_id"],
            lesion_id=q["lesion_id"],
            truth=q["truth"],
            majority_vote=q["majority_vote"],
            neighbours=tuple(Neighbour(**n) for n in q["neighbours"]),
        )
        for q in data["queries"]
    )
    counts = data["counts"]
    return QueryPool(queries=queries, before=counts["queries_before"], dropped=counts["dropped"])


def case_key(secret: bytes, image_id: str) -> str:
    """An opaque, stable key for a query: a keyed hash, so the image id cannot be recovered."""
    return hmac.new(secret, image_id.encode(), hashlib.sha256).hexdigest()[:CASE_KEY_HEX]


def web_pixels(path: Path, size: int) -> np.ndarray:
    """The image's RGB pixels resized so that its longest side is `size`."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError) as error:
        raise PipelineError(f"cannot read image {path}: {error}") from error
    width, height = rgb.size
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if target != rgb.size:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def encode_jpeg(pixels: np.ndarray) -> bytes:
    """Baseline JPEG of raw pixels: a fresh image, so no EXIF, ICC profile or comment."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode="RGB").save(
        buffer, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False
    )
    return buffer.getvalue()


def content_name(data: bytes) -> str:
    """The file name of an image in the bundle: a prefix of the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:NAME_HEX] + ".jpg"


def _write_image(images_dir: Path, data: bytes) -> str:
    """Store `data` under its content name (once) and return its path in the bundle."""
    name = content_name(data)
    target = images_dir / name
    if not target.exists():
        target.write_bytes(data)
    return f"images/{name}"


def _dump_json(path: Path, value: Any) -> None:
    """Write JSON deterministically: sorted keys, fixed indentation, trailing newline."""
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_bundle(
    out_dir: Path,
    pool: QueryPool,
    image_paths: Mapping[str, Path],
    secret: bytes,
    web_image_size: int,
    provenance: Mapping[str, Any],
) -> Path:
    """Write the study bundle (manifest, queries, images) into `out_dir` and validate it.

    `image_paths` maps every query and neighbour image id to its source file; `secret` keys
    the case keys (keep it outside the bundle). The output depends only on the arguments.
    """
    if not pool.queries:
        raise PipelineError("the query pool is empty: no query kept after filtering")
    out_dir.mkdir(parents=True, exist_ok=True)
    images_dir = out_dir / "images"
    images_dir.mkdir(exist_ok=True)
    stored: dict[str, str] = {}  # image id -> bundle path, so shared neighbours encode once

    def upright(image_id: str) -> tuple[str, np.ndarray]:
        if image_id not in image_paths:
            raise PipelineError(f"no source image given for {image_id}")
        pixels = web_pixels(Path(image_paths[image_id]), web_image_size)
        if image_id not in stored:
            stored[image_id] = _write_image(images_dir, encode_jpeg(pixels))
        return stored[image_id], pixels

    records = []
    for query in sorted(pool.queries, key=lambda q: q.image_id):
        image, pixels = upright(query.image_id)
        rotated = _write_image(images_dir, encode_jpeg(np.rot90(pixels, 2)))
        neighbours = []
        for neighbour in query.neighbours:
            if neighbour.image_id not in stored:
                upright(neighbour.image_id)
            neighbours.append(
                {
                    "rank": neighbour.rank,
                    "image_id": neighbour.image_id,
                    "lesion_id": neighbour.lesion_id,
                    "truth": neighbour.truth,
                    "similarity": neighbour.similarity,
                    "image": stored[neighbour.image_id],
                }
            )
        records.append(
            {
                "case_key": case_key(secret, query.image_id),
                "image_id": query.image_id,
                "lesion_id": query.lesion_id,
                "truth": query.truth,
                "majority_vote": query.majority_vote,
                "image": image,
                "image_rotated": rotated,
                "neighbours": neighbours,
            }
        )

    neighbour_count = len(pool.queries[0].neighbours)
    manifest = {
        "format_version": FORMAT_VERSION,
        "classes": [
            {
                "code": info.code,
                "name": info.name,
                "colour": info.colour,
                "text_colour": info.text_colour,
                "definition": info.definition,
            }
            for info in CLASS_INFO
        ],
        "likert": list(LIKERT),
        "neighbours": neighbour_count,
        "web_image_size": web_image_size,
        "provenance": dict(provenance),
        "counts": {**pool.counts(), "images": len(list(images_dir.glob("*.jpg")))},
    }
    _dump_json(out_dir / "queries.json", records)
    # The manifest last: its presence marks a complete bundle (the pipeline's skip test).
    _dump_json(out_dir / "manifest.json", manifest)
    validate_bundle(out_dir)
    return out_dir


# --- validation -------------------------------------------------------------------------

_IMAGE_PATH = re.compile(rf"^images/([0-9a-f]{{{NAME_HEX}}})\.jpg$")
_CASE_KEY = re.compile(r"^[0-9a-f]{16,64}$")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
# JPEG segments that carry metadata: APP1 (EXIF, XMP), APP2 (ICC), APP13 (IPTC), COM.
_METADATA_MARKERS = {0xE1: "EXIF/XMP", 0xE2: "ICC profile", 0xED: "IPTC", 0xFE: "comment"}
_MAX_PROBLEMS = 20
# image_rotated must match the upright image turned by 180 degrees to within a mean absolute
# difference of this many levels, or a third of its difference to the unturned image (two
# JPEG encodings of a noisy image differ by more than a few levels; a wrong orientation of a
# non-symmetric image by far more).
ROTATION_TOLERANCE = 6.0


def jpeg_metadata(data: bytes) -> list[str]:
    """The metadata segments (EXIF, ICC, IPTC, comments) found in a JPEG's header."""
    found = []
    position = 2  # after SOI
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the header is over
            break
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _METADATA_MARKERS:
            found.append(_METADATA_MARKERS[marker])
        position += 2 + length
    return found


def _relative_luminance(colour: str) -> float:
    """WCAG relative luminance of a #RRGGBB colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio between two #RRGGBB colours (1 to 21)."""
    a, b = sorted((_relative_luminance(first), _relative_luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


class _Problems:
    """Collects validation problems so one error can list them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.add(message)
        return condition

    def raise_if_any(self, folder: Path) -> None:
        if self.items:
            shown = self.items[:_MAX_PROBLEMS]
            more = len(self.items) - len(shown)
            tail = f"; and {more} more" if more else ""
            raise PipelineError(f"invalid study bundle {folder}: " + "; ".join(shown) + tail)


def _load_json(path: Path) -> Any:
    """Parse a JSON file of the bundle or raise a clear error."""
    if not path.is_file():
        raise PipelineError(f"invalid study bundle: {path.name} is missing in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PipelineError(f"invalid study bundle: {path} is not valid JSON ({error})") from error


def _check_manifest(manifest: Any, problems: _Problems) -> int:
    """Check the manifest's schema; returns the number of neighbours per query (0 if bad)."""
    if not problems.check(isinstance(manifest, dict), "manifest.json is not an object"):
        return 0
    problems.check(
        manifest.get("format_version") == FORMAT_VERSION,
        f"manifest format_version is {manifest.get('format_version')!r}, expected {FORMAT_VERSION}",
    )
    classes = manifest.get("classes")
    if problems.check(isinstance(classes, list), "manifest classes is not a list"):
        codes = [c.get("code") if isinstance(c, dict) else None for c in classes]
        problems.check(
            tuple(codes) == CLASS_CODES,
            f"manifest classes are {codes}, expected {list(CLASS_CODES)} in this order",
        )
        colours = []
        for entry in classes:
            if not problems.check(isinstance(entry, dict), "a manifest class is not an object"):
                continue
            code = entry.get("code")
            for key in ("name", "definition"):
                problems.check(
                    isinstance(entry.get(key), str) and entry[key].strip() != "",
                    f"class {code}: {key} is missing or empty",
                )
            for key in ("colour", "text_colour"):
                problems.check(
                    isinstance(entry.get(key), str) and bool(_COLOUR.match(entry[key])),
                    f"class {code}: {key} {entry.get(key)!r} is not #RRGGBB",
                )
            colours.append(str(entry.get("colour")).upper())
        problems.check(len(set(colours)) == len(colours), "class colours are not distinct")
    problems.check(
        manifest.get("likert") == list(LIKERT),
        f"manifest likert is {manifest.get('likert')!r}, expected {list(LIKERT)}",
    )
    size = manifest.get("web_image_size")
    problems.check(
        isinstance(size, int) and not isinstance(size, bool) and size > 0,
        f"manifest web_image_size {size!r} is not a positive integer",
    )
    problems.check(isinstance(manifest.get("provenance"), dict), "manifest provenance missing")
    counts = manifest.get("counts")
    if problems.check(isinstance(counts, dict), "manifest counts missing"):
        dropped = counts.get("dropped")
        before, after = counts.get("queries_before"), counts.get("queries_after")
        if problems.check(
            isinstance(dropped, dict)
            and isinstance(before, int)
            and isinstance(after, int)
            and all(isinstance(v, int) for v in dropped.values()),
            "manifest counts need integer queries_before, queries_after and dropped",
        ):
            problems.check(
                before == after + sum(dropped.values()),
                f"manifest counts do not add up: {before} before != {after} after "
                f"+ {sum(dropped.values())} dropped",
            )
    neighbours = manifest.get("neighbours")
    if not problems.check(
        isinstance(neighbours, int) and not isinstance(neighbours, bool) and neighbours > 0,
        f"manifest neighbours {neighbours!r} is not a positive integer",
    ):
        return 0
    return neighbours


def _check_image(
    folder: Path, reference: Any, where: str, problems: _Problems, cache: dict[str, Any]
) -> np.ndarray | None:
    """Check one referenced image (name, existence, JPEG, hash, metadata); return pixels."""
    if not isinstance(reference, str) or not (match := _IMAGE_PATH.match(reference)):
        problems.add(f"{where}: image reference {reference!r} is not images/<32 hex>.jpg")
        return None
    if reference in cache:
        return cache[reference]
    cache[reference] = None
    path = folder / reference
    if not problems.check(path.is_file(), f"{where}: {reference} does not exist"):
        return None
    data = path.read_bytes()
    if not problems.check(data[:3] == b"\xff\xd8\xff", f"{where}: {reference} is not a JPEG"):
        return None
    problems.check(
        hashlib.sha256(data).hexdigest()[:NAME_HEX] == match.group(1),
        f"{where}: {reference} is not named by its content hash",
    )
    metadata = jpeg_metadata(data)
    problems.check(not metadata, f"{where}: {reference} carries metadata ({', '.join(metadata)})")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if not problems.check(image.format == "JPEG", f"{where}: {reference} not a JPEG"):
                return None
            pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    except (OSError, ValueError) as error:
        problems.add(f"{where}: {reference} cannot be decoded ({error})")
        return None
    cache[reference] = pixels
    return pixels


def validate_bundle(folder: Path) -> dict[str, Any]:
    """Check a study bundle completely; return a summary or raise one PipelineError.

    Checks the manifest's schema and classes, every query and neighbour record, that every
    referenced image exists, is a metadata-free JPEG named by its content hash, that the
    rotated image is the upright one turned 180 degrees, that neighbours are of distinct
    lesions other than the query's, and that case keys, image ids and lesions are unique.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"study bundle folder {folder} does not exist")
    manifest = _load_json(folder / "manifest.json")
    queries = _load_json(folder / "queries.json")
    problems = _Problems()
    neighbours_expected = _check_manifest(manifest, problems)
    codes = set(CLASS_CODES)
    size = manifest.get("web_image_size") if isinstance(manifest, dict) else None

    if not problems.check(
        isinstance(queries, list) and len(queries) > 0, "queries.json is not a non-empty list"
    ):
        problems.raise_if_any(folder)
    cache: dict[str, Any] = {}
    case_keys: Counter[str] = Counter()
    query_ids: Counter[str] = Counter()
    query_lesions: Counter[str] = Counter()
    all_ids: set[str] = set()
    for number, query in enumerate(queries, start=1):
        where = f"query {number}"
        if not problems.check(isinstance(query, dict), f"{where} is not an object"):
            continue
        missing = [
            key
            for key in (
                "case_key",
                "image_id",
                "lesion_id",
                "truth",
                "majority_vote",
                "image",
                "image_rotated",
                "neighbours",
            )
            if key not in query
        ]
        if not problems.check(not missing, f"{where}: missing {', '.join(missing)}"):
            continue
        image_id, lesion = str(query["image_id"]), str(query["lesion_id"])
        where = f"query {number} ({image_id})"
        all_ids.update((image_id, lesion))
        key = query["case_key"]
        if problems.check(
            isinstance(key, str) and bool(_CASE_KEY.match(key)),
            f"{where}: case_key {key!r} is not 16-64 lowercase hex digits",
        ):
            case_keys[key] += 1
            problems.check(
                image_id.lower() not in key and lesion.lower() not in key,
                f"{where}: case_key contains an id",
            )
        query_ids[image_id] += 1
        query_lesions[lesion] += 1
        for label in ("truth", "majority_vote"):
            problems.check(query[label] in codes, f"{where}: {label} {query[label]!r} unknown")
        upright = _check_image(folder, query["image"], where, problems, cache)
        rotated = _check_image(folder, query["image_rotated"], where, problems, cache)
        if upright is not None and rotated is not None:
            if isinstance(size, int):
                problems.check(
                    max(upright.shape[:2]) == size,
                    f"{where}: image is {upright.shape[1]}x{upright.shape[0]}, "
                    f"longest side should be {size}",
                )
            turned = np.rot90(upright, 2)
            same_shape = turned.shape == rotated.shape
            unturned = float(np.abs(upright - rotated).mean()) if same_shape else 0.0
            # JPEG re-encoding moves pixels a little; a wrong rotation moves them a lot.
            problems.check(
                same_shape
                and float(np.abs(turned - rotated).mean()) < max(ROTATION_TOLERANCE, unturned / 3),
                f"{where}: image_rotated is not the image turned by 180 degrees",
            )
        shown = query["neighbours"]
        if not problems.check(
            isinstance(shown, list) and len(shown) == neighbours_expected,
            f"{where}: expected {neighbours_expected} neighbours",
        ):
            continue
        seen_lesions: set[str] = set()
        previous = math.inf
        for rank, neighbour in enumerate(shown, start=1):
            there = f"{where} neighbour {rank}"
            if not problems.check(
                isinstance(neighbour, dict)
                and all(
                    k in neighbour
                    for k in ("rank", "image_id", "lesion_id", "truth", "similarity", "image")
                ),
                f"{there}: needs rank, image_id, lesion_id, truth, similarity and image",
            ):
                continue
            problems.check(neighbour["rank"] == rank, f"{there}: rank {neighbour['rank']!r}")
            other = str(neighbour["lesion_id"])
            all_ids.update((str(neighbour["image_id"]), other))
            problems.check(other != lesion, f"{there} is of the query's own lesion {lesion}")
            problems.check(other not in seen_lesions, f"{there} repeats lesion {other}")
            seen_lesions.add(other)
            problems.check(
                neighbour["truth"] in codes, f"{there}: truth {neighbour['truth']!r} unknown"
            )
            similarity = neighbour["similarity"]
            if problems.check(
                isinstance(similarity, int | float)
                and not isinstance(similarity, bool)
                and math.isfinite(similarity),
                f"{there}: similarity {similarity!r} is not a number",
            ):
                problems.check(similarity <= previous + 1e-6, f"{there}: not in rank order")
                previous = similarity
            _check_image(folder, neighbour["image"], there, problems, cache)

    for name, counter in (
        ("case key", case_keys),
        ("query image id", query_ids),
        ("query lesion", query_lesions),
    ):
        repeated = sorted(k for k, n in counter.items() if n > 1)
        problems.check(not repeated, f"duplicate {name}: {', '.join(repeated[:5])}")
    if isinstance(manifest, dict) and isinstance(manifest.get("counts"), dict):
        after = manifest["counts"].get("queries_after")
        problems.check(
            after == len(queries), f"manifest says {after} queries, queries.json has {len(queries)}"
        )

    # Every file in images/ is a content-named JPEG; no file name carries an id.
    files = (
        sorted(p.name for p in (folder / "images").iterdir())
        if (folder / "images").is_dir()
        else []
    )
    problems.check(bool(files), "images/ is missing or empty")
    lowered = [i.lower() for i in all_ids if i]
    for name in files:
        problems.check(
            bool(_IMAGE_PATH.match(f"images/{name}")), f"images/{name} is not <32 hex>.jpg"
        )
        problems.check(not any(i in name.lower() for i in lowered), f"images/{name} contains an id")
    problems.raise_if_any(folder)
    return {
        "format_version": manifest["format_version"],
        "queries": len(queries),
        "images": len(files),
        "neighbours": neighbours_expected,
    }
