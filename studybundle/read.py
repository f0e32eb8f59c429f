"""Reading a valid bundle the same way whatever its format: format 1 seen as format 2.

Format 1 is the thesis's study: HAM10000's seven classes, the five Likert labels, and one aid,
six SE-CBIR neighbours with their vote at k = 6. These helpers give both formats one shape.
"""

from typing import Any

from studybundle.limits import CONTEXT_FIELDS, FORMAT1_NEIGHBOURS
from studybundle.taxonomy import HAM10000_MALIGNANT
from studybundle.vocabulary import NEIGHBOUR_AIDS


def classes(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The taxonomy in display order, each class with its `malignant` flag."""
    return [
        {**entry, "malignant": entry.get("malignant", entry["code"] in HAM10000_MALIGNANT)}
        for entry in manifest["classes"]
    ]


def likert(manifest: dict[str, Any]) -> list[str]:
    """The confidence labels, level 1 first."""
    return list(manifest["likert"])


def aids(manifest: dict[str, Any]) -> list[str]:
    """The aids every query of the bundle carries."""
    return list(manifest["aids"]) if manifest["format_version"] >= 2 else ["se_cbir"]


def shown_neighbours(manifest: dict[str, Any]) -> int:
    """How many neighbours Task 2 shows by default (the study's k)."""
    return int(manifest.get("neighbours") or 0)


def max_neighbours(manifest: dict[str, Any]) -> int:
    """The length of every neighbour list of the bundle (0 without neighbour aids)."""
    if manifest["format_version"] == 1:
        return FORMAT1_NEIGHBOURS
    return int(manifest.get("max_neighbours") or 0)


def neighbour_lists(
    manifest: dict[str, Any], query: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """A query's neighbour lists by aid, rank order (format 1: its six as `se_cbir`)."""
    if manifest["format_version"] == 1:
        return {"se_cbir": query["neighbours"]}
    found = query["aids"]
    return {aid: found[aid]["neighbours"] for aid in NEIGHBOUR_AIDS if aid in found}


def class_neighbours(
    manifest: dict[str, Any], query: dict[str, Any]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each neighbour aid's `class_neighbours` (the extension): class code -> the query's
    nearest images of that class, rank order. Empty without the extension."""
    if "class_neighbours" not in (manifest.get("extensions") or []):
        return {}
    found = query["aids"]
    return {
        aid: {code: list(items) for code, items in found[aid]["class_neighbours"].items()}
        for aid in NEIGHBOUR_AIDS
        if aid in found
    }


def votes(manifest: dict[str, Any], query: dict[str, Any]) -> dict[str, dict[int, str]]:
    """Each neighbour aid's rank-weighted majority vote by k (format 1: se_cbir at 6 only)."""
    if manifest["format_version"] == 1:
        return {"se_cbir": {FORMAT1_NEIGHBOURS: query["majority_vote"]}}
    found = query["aids"]
    return {
        aid: {int(k): code for k, code in found[aid]["majority_vote"].items()}
        for aid in NEIGHBOUR_AIDS
        if aid in found
    }


def probabilities(manifest: dict[str, Any], query: dict[str, Any]) -> dict[str, list[float]]:
    """Each classifier's class probabilities in taxonomy order (empty without that aid)."""
    if manifest["format_version"] == 1:
        return {}
    return dict(query["aids"].get("probabilities") or {})


def saliency(manifest: dict[str, Any], query: dict[str, Any]) -> tuple[str, str] | None:
    """The saliency overlay's file names, upright and rotated (None without that aid)."""
    if manifest["format_version"] == 1 or "saliency" not in query["aids"]:
        return None
    overlay = query["aids"]["saliency"]
    return (
        overlay["image"].removeprefix("images/"),
        overlay["image_rotated"].removeprefix("images/"),
    )


def context(manifest: dict[str, Any], query: dict[str, Any]) -> dict[str, Any] | None:
    """The patient's age, sex and body site of a query (the `context` extension; None without
    it). Each value is None when the dataset does not know it."""
    if "context" not in (manifest.get("extensions") or []):
        return None
    return {field: query["context"][field] for field in CONTEXT_FIELDS}
