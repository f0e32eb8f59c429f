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
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

import studybundle
from studybundle import BundleError, ValidBundle
from studybundle.images import bundle_jpeg, content_name, web_sized
from studybundle.jsonio import dump_json
from studybundle.limits import CONTEXT_FIELDS, FORMAT1_NEIGHBOURS, LATEST_FORMAT
from studybundle.taxonomy import HAM10000, LIKERT
from studybundle.vote import majority_vote
from training.errors import PipelineError

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
    """One query of the pool with its SE-CBIR neighbours (and CBIR ones, when retrieved)."""

    image_id: str
    lesion_id: str
    truth: str
    majority_vote: str  # SE-CBIR's rank-weighted vote over all its neighbours
    neighbours: tuple[Neighbour, ...]
    cbir: tuple[Neighbour, ...] = ()
    # Per aid ("se_cbir", "cbir") and class, the query's nearest bank images of that class
    # (the bundle's class_neighbours, what probes show); empty when not retrieved.
    class_neighbours: Mapping[str, Mapping[str, tuple[Neighbour, ...]]] = field(
        default_factory=dict
    )


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


# bank rows per query, their similarities
Candidates = tuple[NDArray[np.int64], NDArray[np.float32] | None]


def _choose(
    rows: NDArray[np.int64], skipped: set[str], bank_lesions: Sequence[str], count: int, rule: str
) -> list[int] | str:
    """Column positions of `count` neighbours of distinct other lesions, or why there are none.

    `skipped` holds every query's lesion: another photograph of a lesion some reader
    diagnoses would show them its truth, and the import refuses it (an image-level split,
    the thesis's, puts such photographs in the bank). Rule "lesion": walk the candidates,
    skipping those lesions and lesions already chosen. Rule "thesis": the first `count`
    candidates not of those lesions, refused if two of them share a lesion.
    """
    chosen: list[int] = []
    shown_lesions: set[str] = set()
    for column, row in enumerate(rows):
        if len(chosen) == count:
            break
        if row < 0:
            continue
        candidate_lesion = str(bank_lesions[row])
        if candidate_lesion in skipped:
            continue
        if candidate_lesion in shown_lesions:
            if rule == "thesis":
                return DROP_SHARED.format(n=count)
            continue
        shown_lesions.add(candidate_lesion)
        chosen.append(column)
    return chosen if len(chosen) == count else DROP_TOO_FEW.format(n=count)


def _neighbours(
    candidates: Candidates, q: int, chosen: list[int], bank: tuple[Sequence[str], ...]
) -> tuple[Neighbour, ...]:
    """The chosen candidates of query row `q` as ranked neighbours."""
    index, similarities = candidates
    bank_ids, bank_lesions, bank_truth = bank
    return tuple(
        Neighbour(
            rank=rank,
            image_id=str(bank_ids[index[q][column]]),
            lesion_id=str(bank_lesions[index[q][column]]),
            truth=str(bank_truth[index[q][column]]),
            similarity=(
                round(float(similarities[q][column]), 6) if similarities is not None else 0.0
            ),
        )
        for rank, column in enumerate(chosen, start=1)
    )


# Per aid, per class: the candidates of that class only (rows into the whole bank).
ByClass = Mapping[str, Mapping[str, Candidates]]


def _nearest_of_class(
    candidates: Candidates,
    q: int,
    skipped: set[str],
    bank: tuple[Sequence[str], ...],
    depth: int,
) -> tuple[Neighbour, ...]:
    """Up to `depth` of query row `q`'s candidates of one class, of distinct lesions none in
    `skipped` (every query's lesion, and those of the aid's other classes' lists, which this
    adds to), ranked as found. Fewer when the class runs short: a probe then falls back."""
    rows = candidates[0][q]
    chosen: list[int] = []
    for column, row in enumerate(rows):
        if len(chosen) == depth:
            break
        if row < 0 or str(bank[1][row]) in skipped:
            continue
        skipped.add(str(bank[1][row]))
        chosen.append(column)
    return _neighbours(candidates, q, chosen, bank)


def _class_lists(
    by_class: ByClass, q: int, query_lesions: set[str], bank: tuple[Sequence[str], ...], depth: int
) -> dict[str, dict[str, tuple[Neighbour, ...]]]:
    """Query row `q`'s nearest images of every class, per aid."""
    out: dict[str, dict[str, tuple[Neighbour, ...]]] = {}
    for aid, classes in by_class.items():
        skipped = set(query_lesions)
        out[aid] = {
            code: _nearest_of_class(candidates, q, skipped, bank, depth)
            for code, candidates in sorted(classes.items())
        }
    return out


def _check_candidates(candidates: Candidates, count: int, name: str) -> Candidates:
    """Neighbour indices (and similarities) of one retrieval, checked for shape."""
    index = np.asarray(candidates[0])
    if len(index) != count:
        raise PipelineError(
            f"{name}: query ids, lesions, labels and neighbour rows differ in length"
        )
    if candidates[1] is not None and np.shape(candidates[1]) != index.shape:
        raise PipelineError(f"{name}: similarities and neighbour indices differ in shape")
    return index, candidates[1]


def build_query_pool(
    query_ids: Sequence[str],
    query_lesions: Sequence[str],
    query_truth: Sequence[str],
    neighbour_index: NDArray[np.int64],
    bank_ids: Sequence[str],
    bank_lesions: Sequence[str],
    bank_truth: Sequence[str],
    similarities: NDArray[np.float32] | None = None,
    neighbours: int = 6,
    rule: str = "lesion",
    vote: Callable[[Sequence[str]], str] | None = None,
    cbir: Candidates | None = None,
    by_class: ByClass | None = None,
    class_depth: int = 6,
) -> QueryPool:
    """Keep one query per lesion and pick `neighbours` neighbours of distinct other lesions.

    `neighbour_index[q]` lists SE-CBIR's bank rows most similar first (negative = no
    candidate); pass more than `neighbours` columns so a skipped candidate gives its place to
    the next one. `cbir` gives plain CBIR's (index, similarities) the same way: its list is
    filtered by the same rule, and a query is kept only if both lists can be filled. The
    image of a lesion that stays is its first by image id. See `_choose` for the two rules.

    `by_class[aid][code]` gives an aid's candidates among the bank's images of one class
    (bank rows, most similar first, as above): each query keeps up to `class_depth` of them
    per class, of lesions no query has and no other class's list of the aid holds (its
    `class_neighbours`). A probe fills a genuine list's class-by-rank pattern with them, so
    that its misleading list is still retrieved for its own picture (app.survey.probes).
    """
    if rule not in ("lesion", "thesis"):
        raise PipelineError(f"query filter must be 'lesion' or 'thesis', not {rule!r}")
    count = len(query_ids)
    if not len(query_lesions) == len(query_truth) == count:
        raise PipelineError("query ids, lesions, labels and neighbour rows differ in length")
    if not len(bank_ids) == len(bank_lesions) == len(bank_truth):
        raise PipelineError("bank ids, lesions and labels differ in length")
    lists = {"se_cbir": _check_candidates((neighbour_index, similarities), count, "SE-CBIR")}
    if cbir is not None:
        lists["cbir"] = _check_candidates(cbir, count, "CBIR")
    bank = (bank_ids, bank_lesions, bank_truth)
    vote = vote or majority_vote

    dropped: Counter[str] = Counter()
    seen_lesions: set[str] = set()
    query_lesions_set = {str(lesion) for lesion in query_lesions}
    kept: list[Query] = []
    # Image-id order decides which image of a lesion represents it, whatever the input order.
    for q in sorted(range(count), key=lambda i: str(query_ids[i])):
        lesion = str(query_lesions[q])
        if lesion in seen_lesions:
            dropped[DROP_DUPLICATE] += 1
            continue
        seen_lesions.add(lesion)
        found: dict[str, tuple[Neighbour, ...]] = {}
        for name, candidates in lists.items():
            chosen = _choose(candidates[0][q], query_lesions_set, bank_lesions, neighbours, rule)
            if isinstance(chosen, str):
                dropped[chosen if name == "se_cbir" else f"{chosen} (CBIR)"] += 1
                break
            found[name] = _neighbours(candidates, q, chosen, bank)
        if len(found) < len(lists):
            continue
        classes = _class_lists(by_class or {}, q, query_lesions_set, bank, class_depth)
        kept.append(
            Query(
                image_id=str(query_ids[q]),
                lesion_id=lesion,
                truth=str(query_truth[q]),
                majority_vote=vote([n.truth for n in found["se_cbir"]]),
                neighbours=found["se_cbir"],
                cbir=found.get("cbir", ()),
                class_neighbours=classes,
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
                "cbir": [dataclasses.asdict(n) for n in q.cbir],
                "class_neighbours": {
                    aid: {
                        code: [dataclasses.asdict(n) for n in items] for code, items in by.items()
                    }
                    for aid, by in q.class_neighbours.items()
                },
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
            cbir=tuple(Neighbour(**n) for n in q.get("cbir", ())),
            class_neighbours={
                aid: {code: tuple(Neighbour(**n) for n in items) for code, items in by.items()}
                for aid, by in q.get("class_neighbours", {}).items()
            },
        )
        for q in data["queries"]
    )
    counts = data["counts"]
    return QueryPool(queries=queries, before=counts["queries_before"], dropped=counts["dropped"])


def case_key(secret: bytes, image_id: str) -> str:
    """An opaque, stable key for a query: a keyed hash, so the image id cannot be recovered."""
    return hmac.new(secret, image_id.encode(), hashlib.sha256).hexdigest()[:CASE_KEY_HEX]


def web_pixels(path: Path, size: int) -> NDArray[np.uint8]:
    """The image's RGB pixels resized so that its longest side is `size`."""
    try:
        with Image.open(path) as image:
            return np.asarray(web_sized(image, size), dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise PipelineError(f"cannot read image {path}: {error}") from error


def _write_image(images_dir: Path, data: bytes) -> str:
    """Store `data` under its content name (once) and return its path in the bundle."""
    name = content_name(data)
    target = images_dir / name
    if not target.exists():
        target.write_bytes(data)
    return f"images/{name}"


@dataclass(frozen=True)
class QueryAids:
    """Format 2's aids besides the neighbour lists, per query image id."""

    probabilities: Mapping[str, Mapping[str, Sequence[float]]]  # {"rgb": [...], ...} per class
    saliency: Mapping[str, NDArray[np.uint8]]  # the query's saliency map, uint8, any size


def saliency_overlay(pixels: NDArray[np.uint8], saliency_map: NDArray[Any]) -> NDArray[np.uint8]:
    """The query's pixels with its saliency map laid over: red to yellow where the map is
    high, opaque in proportion to it, so the image stays visible where the model looked."""
    height, width = pixels.shape[:2]
    resized = Image.fromarray(np.asarray(saliency_map, dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    heat = np.asarray(resized, dtype=np.float32)[..., None] / 255.0
    colour = np.concatenate([np.ones_like(heat), heat, np.zeros_like(heat)], axis=-1) * 255.0
    alpha = 0.6 * heat
    overlaid: NDArray[np.uint8] = np.round(pixels * (1.0 - alpha) + colour * alpha).astype(np.uint8)
    return overlaid


class _ImageStore:
    """Writes the bundle's images once each, named by content hash."""

    def __init__(self, folder: Path, sources: Mapping[str, Path], size: int) -> None:
        self.folder, self.sources, self.size = folder, sources, size
        self.stored: dict[str, str] = {}  # image id -> bundle path
        folder.mkdir(parents=True, exist_ok=True)

    def pixels(self, image_id: str) -> NDArray[np.uint8]:
        """The web-sized pixels of a source image."""
        if image_id not in self.sources:
            raise PipelineError(f"no source image given for {image_id}")
        return web_pixels(Path(self.sources[image_id]), self.size)

    def write(self, pixels: NDArray[np.uint8]) -> str:
        """Store pixels as a JPEG; its path in the bundle."""
        return _write_image(self.folder, bundle_jpeg(pixels))

    def image(self, image_id: str) -> str:
        """The bundle path of a source image, written on first use."""
        if image_id not in self.stored:
            self.stored[image_id] = self.write(self.pixels(image_id))
        return self.stored[image_id]

    def neighbours(self, items: Sequence[Neighbour]) -> list[dict[str, Any]]:
        """Neighbour records with their images."""
        return [{**dataclasses.asdict(n), "image": self.image(n.image_id)} for n in items]


def _query_v1(query: Query, store: _ImageStore, shown: int) -> dict[str, Any]:
    """Format 1's record: the first `shown` SE-CBIR neighbours and their vote."""
    first = query.neighbours[:shown]
    return {
        "majority_vote": majority_vote([n.truth for n in first]),
        "neighbours": store.neighbours(first),
    }


def _neighbour_aid(
    items: Sequence[Neighbour],
    store: _ImageStore,
    by_class: Mapping[str, Sequence[Neighbour]] | None = None,
) -> dict[str, Any]:
    """One neighbour aid: the list and its rank-weighted vote at every k; with `by_class`,
    the class_neighbours extension (one list per class of the taxonomy, maybe empty)."""
    truths = [n.truth for n in items]
    votes = {str(k): majority_vote(truths[:k]) for k in range(1, len(items) + 1)}
    out = {"neighbours": store.neighbours(items), "majority_vote": votes}
    if by_class is not None:
        out["class_neighbours"] = {
            info.code: store.neighbours(by_class.get(info.code, ())) for info in HAM10000
        }
    return out


def _query_v2(
    query: Query, store: _ImageStore, upright: NDArray[np.uint8], aids: QueryAids | None
) -> dict[str, Any]:
    """Format 2's record: every aid the pipeline has for this query."""
    classes = query.class_neighbours
    if classes and not {"se_cbir", *(["cbir"] if query.cbir else [])} <= set(classes):
        raise PipelineError(f"{query.image_id}: class_neighbours lack one of its aids")
    found: dict[str, Any] = {
        "se_cbir": _neighbour_aid(query.neighbours, store, classes.get("se_cbir"))
    }
    if query.cbir:
        found["cbir"] = _neighbour_aid(query.cbir, store, classes.get("cbir"))
    if aids is not None:
        found["probabilities"] = {
            model: [round(float(p), 6) for p in values]
            for model, values in aids.probabilities[query.image_id].items()
        }
        overlay = saliency_overlay(upright, aids.saliency[query.image_id])
        found["saliency"] = {
            "image": store.write(overlay),
            "image_rotated": store.write(np.rot90(overlay, 2)),
        }
    return {"aids": found}


def write_bundle(
    out_dir: Path,
    pool: QueryPool,
    image_paths: Mapping[str, Path],
    secret: bytes,
    web_image_size: int,
    provenance: Mapping[str, Any],
    version: int = LATEST_FORMAT,
    shown: int = FORMAT1_NEIGHBOURS,
    aids: QueryAids | None = None,
    context: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write the study bundle (manifest, queries, images) into `out_dir` and validate it.

    `image_paths` maps every query and neighbour image id to its source file; `secret` keys
    the case keys (keep it outside the bundle). Format 2 (the default) carries every aid the
    pool and `aids` hold, Task 2 showing `shown` SE-CBIR neighbours; format 1 the first six
    SE-CBIR neighbours only. With `context` (image id -> age, sex and site, as
    `training.data.patient_context` reads them), a format-2 bundle carries the `context`
    extension: every query's patient context. The output depends only on the arguments.
    """
    if context is not None and version < 2:
        raise PipelineError("the patient context is an extension of format 2, not format 1")
    if not pool.queries:
        raise PipelineError("the query pool is empty: no query kept after filtering")
    with_classes = version >= 2 and any(q.class_neighbours for q in pool.queries)
    if with_classes and not all(q.class_neighbours for q in pool.queries):
        raise PipelineError("class_neighbours must be given for every query or for none")
    out_dir.mkdir(parents=True, exist_ok=True)
    store = _ImageStore(out_dir / "images", image_paths, web_image_size)
    records = []
    for query in sorted(pool.queries, key=lambda q: q.image_id):
        image = store.image(query.image_id)
        pixels = store.pixels(query.image_id)
        record: dict[str, Any] = {
            "case_key": case_key(secret, query.image_id),
            "image_id": query.image_id,
            "lesion_id": query.lesion_id,
            "truth": query.truth,
            "image": image,
            "image_rotated": store.write(np.rot90(pixels, 2)),
        }
        if version == 1:
            record.update(_query_v1(query, store, shown))
        else:
            record.update(_query_v2(query, store, pixels, aids))
        if context is not None:
            if query.image_id not in context:
                raise PipelineError(f"no patient context given for {query.image_id}")
            found = context[query.image_id]
            record["context"] = {name: found.get(name) for name in CONTEXT_FIELDS}
        records.append(record)

    manifest: dict[str, Any] = {
        "format_version": version,
        "classes": [info.as_json(with_malignant=version >= 2) for info in HAM10000],
        "likert": list(LIKERT),
        "neighbours": shown,
        "web_image_size": web_image_size,
        "provenance": dict(provenance),
        "counts": {**pool.counts(), "images": len(list(store.folder.glob("*.jpg")))},
    }
    if version >= 2:
        manifest["aids"] = list(records[0]["aids"])
        manifest["max_neighbours"] = len(pool.queries[0].neighbours)
    extensions = [
        name
        for name, on in (("context", context is not None), ("class_neighbours", with_classes))
        if on
    ]
    if extensions:
        manifest["extensions"] = extensions
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
