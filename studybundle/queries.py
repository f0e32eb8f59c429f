"""Checks of queries.json, formats 1 and 2: one problem per query, every query looked at."""

import math
from typing import Any

from studybundle.errors import BundleError, Problems
from studybundle.jsonio import finite_number
from studybundle.limits import (
    CASE_KEY,
    CONTEXT_FIELDS,
    IMAGE_PATH,
    MAX_AGE,
    MAX_QUERIES,
    MAX_SITE,
    PROBABILITY_TOLERANCE,
    SEXES,
)
from studybundle.manifest import Layout, text
from studybundle.vocabulary import CLASSIFIERS, NEIGHBOUR_AIDS
from studybundle.vote import majority_vote

Seen = dict[str, set[str]]


def image_name(value: Any, where: str) -> str:
    """An image path ("images/<32 hex>.jpg") reduced to its file name."""
    if not isinstance(value, str) or not IMAGE_PATH.match(value):
        raise BundleError(
            f"{where} is {value!r}: images must be named by content hash, like images/<hex>.jpg"
        )
    return value.removeprefix("images/")


def _class(value: Any, where: str, codes: tuple[str, ...]) -> str:
    """One of the taxonomy's class codes."""
    if not isinstance(value, str) or value not in codes:
        raise BundleError(f"{where} is {value!r}, not a class of the study: {', '.join(codes)}")
    return value


def _check_neighbours(
    neighbours: Any, where: str, count: int, lesion_id: str, codes: tuple[str, ...]
) -> tuple[set[str], list[str]]:
    """A neighbour list of exactly `count` in rank order; its image names and truths."""
    if not isinstance(neighbours, list) or len(neighbours) != count:
        got = len(neighbours) if isinstance(neighbours, list) else "no list"
        raise BundleError(f"{where} must have exactly {count} neighbours, not {got}")
    images: set[str] = set()
    truths: list[str] = []
    lesions = {lesion_id}
    previous = math.inf
    for rank, neighbour in enumerate(neighbours, start=1):
        there = f"{where}[{rank - 1}]"
        if not isinstance(neighbour, dict):
            raise BundleError(f"{there} must be an object")
        if neighbour.get("rank") != rank:
            raise BundleError(f"{there}.rank must be {rank} (neighbours in rank order)")
        text(neighbour.get("image_id"), f"{there}.image_id")
        neighbour_lesion = text(neighbour.get("lesion_id"), f"{there}.lesion_id")
        if neighbour_lesion in lesions:
            raise BundleError(f"{there} repeats a lesion already shown for this query")
        lesions.add(neighbour_lesion)
        truths.append(_class(neighbour.get("truth"), f"{there}.truth", codes))
        similarity = neighbour.get("similarity")
        if not finite_number(similarity):
            raise BundleError(f"{there}.similarity must be a finite number")
        if similarity > previous:
            raise BundleError(f"{there}.similarity increases with rank")
        previous = similarity
        images.add(image_name(neighbour.get("image"), f"{there}.image"))
    return images, truths


def _check_votes(votes: Any, where: str, truths: list[str], codes: tuple[str, ...]) -> None:
    """The aid's rank-weighted majority vote at every k from 1 to its list's length."""
    wanted = [str(k) for k in range(1, len(truths) + 1)]
    if not isinstance(votes, dict) or sorted(votes, key=str) != sorted(wanted):
        raise BundleError(f"{where} must map every k from 1 to {len(truths)} to a class code")
    for k in wanted:
        _class(votes[k], f"{where}[{k!r}]", codes)
        expected = majority_vote(truths[: int(k)])
        if votes[k] != expected:
            raise BundleError(
                f"{where}[{k!r}] is {votes[k]!r}, but the rank-weighted vote of the first {k} "
                f"neighbours is {expected!r}"
            )


def _check_probabilities(value: Any, where: str, codes: tuple[str, ...]) -> None:
    """One probability per class for each classifier, in [0, 1], summing to 1."""
    if not isinstance(value, dict) or sorted(value) != sorted(CLASSIFIERS):
        raise BundleError(f"{where} must hold exactly {' and '.join(CLASSIFIERS)}")
    for model in CLASSIFIERS:
        vector, there = value[model], f"{where}.{model}"
        if not isinstance(vector, list) or len(vector) != len(codes):
            raise BundleError(f"{there} must list one probability per class ({len(codes)})")
        if not all(finite_number(p) and 0 <= p <= 1 for p in vector):
            raise BundleError(f"{there} must hold numbers from 0 to 1")
        total = math.fsum(vector)
        if abs(total - 1) > PROBABILITY_TOLERANCE:
            raise BundleError(f"{there} sums to {total:.6g}, not 1")


def _check_aids(query: dict[str, Any], where: str, layout: Layout) -> set[str]:
    """Format 2's `aids` object: exactly the manifest's aids; the image names they reference."""
    aids = query.get("aids")
    if not isinstance(aids, dict):
        raise BundleError(f"{where}.aids must be an object")
    missing = [aid for aid in layout.aids if aid not in aids]
    if missing:
        raise BundleError(f"{where}.aids lacks {', '.join(missing)}, which the manifest lists")
    extra = sorted(str(aid) for aid in aids if aid not in layout.aids)
    if extra:
        raise BundleError(
            f"{where}.aids holds {', '.join(extra)}, which the manifest does not list"
        )
    images: set[str] = set()
    for aid in layout.aids:
        there = f"{where}.aids.{aid}"
        value = aids[aid]
        if aid in NEIGHBOUR_AIDS:
            if not isinstance(value, dict):
                raise BundleError(f"{there} must be an object with neighbours and majority_vote")
            names, truths = _check_neighbours(
                value.get("neighbours"),
                f"{there}.neighbours",
                layout.max_neighbours,
                query["lesion_id"],
                layout.codes,
            )
            _check_votes(value.get("majority_vote"), f"{there}.majority_vote", truths, layout.codes)
            images |= names | _check_class_neighbours(value, there, layout, query["lesion_id"])
        elif aid == "probabilities":
            _check_probabilities(value, there, layout.codes)
        else:  # saliency
            if not isinstance(value, dict):
                raise BundleError(f"{there} must be an object with image and image_rotated")
            images.add(image_name(value.get("image"), f"{there}.image"))
            images.add(image_name(value.get("image_rotated"), f"{there}.image_rotated"))
    return images


def _check_class_neighbours(
    aid: dict[str, Any], where: str, layout: Layout, lesion_id: str
) -> set[str]:
    """The `class_neighbours` extension of one neighbour aid: for every class of the taxonomy,
    up to `max_neighbours` of the query's nearest images of that class, each a neighbour as
    in the aid's list (rank order, similarity not increasing, not the query's lesion), no
    lesion twice in the whole object; present exactly when the manifest lists it. Its images.
    """
    there = f"{where}.class_neighbours"
    if "class_neighbours" not in layout.extensions:
        if "class_neighbours" in aid:
            raise BundleError(f"{there} needs the manifest's extensions to list class_neighbours")
        return set()
    value = aid.get("class_neighbours")
    if not isinstance(value, dict) or sorted(value) != sorted(layout.codes):
        raise BundleError(f"{there} must be an object with one list per class of the study")
    images: set[str] = set()
    lesions: set[str] = set()
    for code in layout.codes:
        items = value[code]
        if not isinstance(items, list) or len(items) > layout.max_neighbours:
            raise BundleError(f"{there}.{code} must be a list of at most {layout.max_neighbours}")
        names, truths = _check_neighbours(
            items, f"{there}.{code}", len(items), lesion_id, layout.codes
        )
        if any(truth != code for truth in truths):
            raise BundleError(f"{there}.{code} holds an image of another class")
        shown = {item["lesion_id"] for item in items}
        if shown & lesions:
            raise BundleError(f"{there}.{code} repeats a lesion of another class's list")
        lesions |= shown
        images |= names
    return images


def _check_context(query: dict[str, Any], where: str, layout: Layout) -> None:
    """The `context` extension: the patient's age, sex and body site, each null when unknown;
    present exactly when the manifest lists the extension."""
    if "context" not in layout.extensions:
        if "context" in query:
            raise BundleError(f"{where}.context needs the manifest's extensions to list context")
        return
    value = query.get("context")
    if not isinstance(value, dict) or sorted(value) != sorted(CONTEXT_FIELDS):
        raise BundleError(f"{where}.context must be an object with exactly age, sex and site")
    age, sex, site = (value[field] for field in CONTEXT_FIELDS)
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= MAX_AGE
    ):
        raise BundleError(f"{where}.context.age must be null or a whole number from 0 to {MAX_AGE}")
    if sex is not None and sex not in SEXES:
        raise BundleError(f"{where}.context.sex must be null or one of {', '.join(SEXES)}")
    if site is not None:
        text(site, f"{where}.context.site", MAX_SITE)


def check_query(query: Any, where: str, layout: Layout, seen: Seen) -> set[str]:
    """Check one query (raising on its first problem); the image names it references."""
    if not isinstance(query, dict):
        raise BundleError(f"{where} must be an object")
    key = text(query.get("case_key"), f"{where}.case_key")
    image_id = text(query.get("image_id"), f"{where}.image_id")
    lesion_id = text(query.get("lesion_id"), f"{where}.lesion_id")
    if not CASE_KEY.match(key):
        raise BundleError(f"{where}.case_key must be 16 to 64 lowercase hex digits")
    if image_id.lower() in key or lesion_id.lower() in key:
        raise BundleError(f"{where}.case_key contains the query's id")
    for field, value in (("case_key", key), ("image_id", image_id), ("lesion_id", lesion_id)):
        if value in seen[field]:
            raise BundleError(f"{where}.{field} {value!r} appears twice")
        seen[field].add(value)
    _class(query.get("truth"), f"{where}.truth", layout.codes)
    images = {
        image_name(query.get("image"), f"{where}.image"),
        image_name(query.get("image_rotated"), f"{where}.image_rotated"),
    }
    _check_context(query, where, layout)
    if layout.version == 1:
        _class(query.get("majority_vote"), f"{where}.majority_vote", layout.codes)
        names, _ = _check_neighbours(
            query.get("neighbours"),
            f"{where}.neighbours",
            layout.max_neighbours,
            lesion_id,
            layout.codes,
        )
        return images | names
    return images | _check_aids(query, where, layout)


def check_queries(queries: Any, manifest: dict[str, Any], layout: Layout) -> set[str]:
    """Check queries.json query by query; the set of image file names it references."""
    if not isinstance(queries, list) or not queries:
        raise BundleError("queries.json must hold a non-empty list of queries.")
    if len(queries) > MAX_QUERIES:
        raise BundleError(f"queries.json has more than {MAX_QUERIES} queries.")
    problems = Problems()
    counts = manifest.get("counts")
    if isinstance(counts, dict) and counts.get("queries_after") != len(queries):
        problems.add(f"manifest.json counts.queries_after is not {len(queries)}")
    seen: Seen = {"case_key": set(), "image_id": set(), "lesion_id": set()}
    images: set[str] = set()
    for index, query in enumerate(queries):
        try:
            images |= check_query(query, f"queries.json[{index}]", layout, seen)
        except BundleError as problem:
            problems.add(problem)
    problems.raise_if_any()
    problems.extend(_aids_showing_queries(queries))
    problems.raise_if_any()
    return images


def _aids_showing_queries(queries: list[dict[str, Any]]) -> list[str]:
    """Neighbours that are a query's picture: by image id, or by the same bytes (image files
    are named by their content hash, checked in check_image), or that show a query's lesion
    (another photograph of it). Shown labelled in Task 2, such a neighbour would hand a reader
    the truth of a case they diagnose (their own or another). The app also compares the
    pictures themselves (app.imagehashes), for a query saved again under another id."""
    query_ids = {query["image_id"]: index for index, query in enumerate(queries)}
    query_files = {query[key] for query in queries for key in ("image", "image_rotated")}
    query_lesions = {query["lesion_id"]: index for index, query in enumerate(queries)}
    found = []
    for index, query in enumerate(queries):
        lists = {"neighbours": query.get("neighbours") or []}
        for aid in NEIGHBOUR_AIDS:
            value = (query.get("aids") or {}).get(aid)
            if isinstance(value, dict):
                lists[f"aids.{aid}.neighbours"] = value["neighbours"]
                for code, items in (value.get("class_neighbours") or {}).items():
                    lists[f"aids.{aid}.class_neighbours.{code}"] = items
        for field, items in lists.items():
            for rank, item in enumerate(items, start=1):
                where = f"queries.json[{index}].{field}[{rank - 1}]"
                if item["image_id"] in query_ids:
                    found.append(f"{where} is the query image {item['image_id']} (by its id)")
                elif item["image"] in query_files:
                    found.append(f"{where} shows a query's picture ({item['image']}, same bytes)")
                elif item["lesion_id"] in query_lesions:
                    other = queries[query_lesions[item["lesion_id"]]]
                    found.append(
                        f"{where} ({item['image_id']}) shows lesion {item['lesion_id']}, the"
                        f" lesion of query queries.json[{query_lesions[item['lesion_id']]}]"
                        f" ({other['image_id']})"
                    )
    return found
