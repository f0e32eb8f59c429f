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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import studybundle
from studybundle import BundleError, ValidBundle
from studybundle.images import content_name
from studybundle.jsonio import dump_json
from studybundle.taxonomy import HAM10000, LIKERT
from training.errors import PipelineError

JPEG_QUALITY = 90
CASE_KEY_HEX = 24  # 96 bits: unguessable, short enough for a URL

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


def _write_image(images_dir: Path, data: bytes) -> str:
    """Store `data` under its content name (once) and return its path in the bundle."""
    name = content_name(data)
    target = images_dir / name
    if not target.exists():
        target.write_bytes(data)
    return f"images/{name}"


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
        "format_version": 1,
        "classes": [info.as_json(with_malignant=False) for info in HAM10000],
        "likert": list(LIKERT),
        "neighbours": neighbour_count,
        "web_image_size": web_image_size,
        "provenance": dict(provenance),
        "counts": {**pool.counts(), "images": len(list(images_dir.glob("*.jpg")))},
    }
    dump_json(out_dir / "queries.json", records)
    # The manifest last: its presence marks a complete bundle (the pipeline's skip test).
    dump_json(out_dir / "manifest.json", manifest)
    validate_bundle(out_dir)
    return out_dir


def validate_bundle(folder: Path) -> ValidBundle:
    """Check a written bundle with the one validator the app uses too; PipelineError if bad."""
    try:
        return studybundle.validate_bundle(folder)
    except BundleError as problem:
        raise PipelineError(f"invalid study bundle {folder}: {problem}") from None
