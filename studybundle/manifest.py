"""Checks of manifest.json, formats 1 and 2; the layout that the query checks go by."""

from dataclasses import dataclass
from typing import Any, TypeGuard

from studybundle.errors import BundleError, Problems
from studybundle.limits import (
    CLASS_CODE,
    COLOUR,
    EXTENSIONS,
    FORMAT1_NEIGHBOURS,
    FORMAT_VERSIONS,
    MAX_CLASSES,
    MAX_CODE,
    MAX_DEFINITION,
    MAX_KEY,
    MAX_LIKERT,
    MAX_NAME,
    MAX_NEIGHBOURS,
    MIN_CLASSES,
    MIN_LIKERT,
    UNSTORABLE,
)
from studybundle.metrics import read_metrics
from studybundle.taxonomy import HAM10000_CODES, LIKERT
from studybundle.vocabulary import BUNDLE_AIDS, NEIGHBOUR_AIDS


@dataclass(frozen=True)
class Layout:
    """What a valid manifest says every query must look like."""

    version: int
    codes: tuple[str, ...]  # the taxonomy's class codes in display order
    aids: tuple[str, ...]  # format 2: the aids every query carries (format 1: se_cbir only)
    max_neighbours: int  # length of every neighbour list (format 1: 6)
    web_image_size: int
    extensions: tuple[str, ...] = ()  # format 2's optional extensions every query carries
    # What is wrong but does not stop an import: provenance.metrics's figures that do not
    # fit studybundle.metrics (the organisers' page shows them as missing).
    warnings: tuple[str, ...] = ()


def text(value: Any, where: str, max_length: int = MAX_KEY) -> str:
    """A non-empty, storable string no longer than `max_length`."""
    if not isinstance(value, str) or not value.strip():
        raise BundleError(f"{where} must be a non-empty text")
    if len(value) > max_length:
        raise BundleError(f"{where} is longer than {max_length} characters")
    if UNSTORABLE.search(value):
        raise BundleError(f"{where} holds a control character or a lone surrogate")
    return value


def positive_int(value: Any) -> TypeGuard[int]:
    """Whether a JSON value is an integer above zero (booleans are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_class(entry: Any, where: str, version: int) -> tuple[str, str]:
    """One class entry; its code and lower-case colour."""
    if not isinstance(entry, dict):
        raise BundleError(f"{where} must be an object with code, name, colour, definition")
    code = entry.get("code")
    if version == 1:
        if code not in HAM10000_CODES:
            raise BundleError(f"{where}.code is {code!r}, not one of {', '.join(HAM10000_CODES)}")
    elif not isinstance(code, str) or not CLASS_CODE.match(code):
        raise BundleError(
            f"{where}.code is {code!r}: a class code is a letter then up to {MAX_CODE - 1} "
            "letters, digits, - or _"
        )
    text(entry.get("name"), f"{where}.name", MAX_NAME)
    text(entry.get("definition"), f"{where}.definition", MAX_DEFINITION)
    for key in ("colour", "text_colour"):
        if not isinstance(entry.get(key), str) or not COLOUR.match(entry[key]):
            raise BundleError(f"{where}.{key} must be a colour like #1F77B4")
    if version >= 2 and not isinstance(entry.get("malignant"), bool):
        raise BundleError(f"{where}.malignant must be true or false")
    return code, entry["colour"].lower()


def _check_classes(manifest: dict[str, Any], version: int, problems: Problems) -> tuple[str, ...]:
    """The taxonomy: format 1 exactly HAM10000's seven, format 2 any 2 to 20 distinct codes."""
    classes = manifest.get("classes")
    low, high = (7, 7) if version == 1 else (MIN_CLASSES, MAX_CLASSES)
    if not isinstance(classes, list) or not low <= len(classes) <= high:
        wanted = "exactly 7" if version == 1 else f"{MIN_CLASSES} to {MAX_CLASSES}"
        problems.add(f"manifest.json must list {wanted} classes")
        return ()
    codes: list[str] = []
    colours: list[str] = []
    for index, entry in enumerate(classes):
        try:
            code, colour = _check_class(entry, f"manifest.json classes[{index}]", version)
        except BundleError as problem:
            problems.add(problem)
            continue
        codes.append(code)
        colours.append(colour)
    if version == 1 and len(codes) == 7 and tuple(codes) != HAM10000_CODES:
        problems.add(f"manifest.json classes must be {', '.join(HAM10000_CODES)}, in this order")
    if len(set(codes)) != len(codes):
        problems.add("manifest.json class codes must be distinct")
    if len(set(colours)) != len(colours):
        problems.add("manifest.json class colours must be distinct")
    return tuple(codes) if len(codes) == len(classes) else ()


def _check_likert(manifest: dict[str, Any], version: int, problems: Problems) -> None:
    """The confidence labels: format 1 the thesis's five, format 2 any 2 to 9 distinct."""
    likert = manifest.get("likert")
    if version == 1:
        if likert != list(LIKERT):
            problems.add("manifest.json likert must be the five labels of docs/bundle.md")
        return
    if not isinstance(likert, list) or not MIN_LIKERT <= len(likert) <= MAX_LIKERT:
        problems.add(f"manifest.json likert must list {MIN_LIKERT} to {MAX_LIKERT} labels")
        return
    for index, label in enumerate(likert):
        try:
            text(label, f"manifest.json likert[{index}]", MAX_NAME)
        except BundleError as problem:
            problems.add(problem)
    if len({str(label).strip().lower() for label in likert}) != len(likert):
        problems.add("manifest.json likert labels must be distinct")


def _check_aids(manifest: dict[str, Any], problems: Problems) -> tuple[tuple[str, ...], int]:
    """Format 2's aids, max_neighbours and neighbours (the k Task 2 shows by default)."""
    aids = manifest.get("aids")
    if (
        not isinstance(aids, list)
        or any(aid not in BUNDLE_AIDS for aid in aids)
        or len(set(aids)) != len(aids)
    ):
        problems.add(f"manifest.json aids must list distinct aids among {', '.join(BUNDLE_AIDS)}")
        return (), 0
    listed = tuple(aid for aid in BUNDLE_AIDS if aid in aids)
    most = manifest.get("max_neighbours")
    shown = manifest.get("neighbours")
    if not any(aid in NEIGHBOUR_AIDS for aid in listed):
        if most not in (None, 0) or shown not in (None, 0):
            problems.add("manifest.json max_neighbours and neighbours need se_cbir or cbir aids")
        return listed, 0
    if not positive_int(most) or most > MAX_NEIGHBOURS:
        problems.add(f"manifest.json max_neighbours must be an integer from 1 to {MAX_NEIGHBOURS}")
        return listed, 0
    if not positive_int(shown) or shown > most:
        problems.add("manifest.json neighbours must be an integer from 1 to max_neighbours")
    return listed, most


def _check_extensions(
    manifest: dict[str, Any], version: int, problems: Problems
) -> tuple[str, ...]:
    """Format 2's optional `extensions`: distinct known names (format 1 has none)."""
    if "extensions" not in manifest:
        return ()
    listed = manifest["extensions"]
    if version == 1:
        problems.add("manifest.json extensions need format_version 2")
        return ()
    if (
        not isinstance(listed, list)
        or any(not isinstance(name, str) or name not in EXTENSIONS for name in listed)
        or len(set(listed)) != len(listed)
    ):
        problems.add(
            f"manifest.json extensions must list distinct extensions among {', '.join(EXTENSIONS)}"
        )
        return ()
    return tuple(name for name in EXTENSIONS if name in listed)


def _check_counts(manifest: dict[str, Any], problems: Problems) -> None:
    """counts: queries before and after filtering and why the others were dropped."""
    counts = manifest.get("counts")
    dropped = counts.get("dropped") if isinstance(counts, dict) else None
    if (
        not isinstance(counts, dict)
        or not isinstance(dropped, dict)
        or not all(isinstance(counts.get(key), int) for key in ("queries_before", "queries_after"))
        or not all(isinstance(value, int) for value in dropped.values())
    ):
        problems.add("manifest.json counts must hold queries_before, queries_after, dropped")
    elif counts["queries_before"] != counts["queries_after"] + sum(dropped.values()):
        problems.add("manifest.json counts do not add up (before != after + dropped)")


def _check_provenance(manifest: dict[str, Any], problems: Problems) -> tuple[str, ...]:
    """provenance: an object; its metrics, if any, an object read by studybundle.metrics.

    A metrics object that does not fit the record is imported all the same (bundles made by
    hand or by older runs imported before the record existed): its problems are warnings.
    """
    provenance = manifest.get("provenance")
    if not isinstance(provenance, dict):
        problems.add("manifest.json provenance must be an object")
        return ()
    if "metrics" not in provenance:
        return ()
    if not isinstance(provenance["metrics"], dict):
        problems.add("manifest.json provenance.metrics must be an object")
        return ()
    _, found = read_metrics(provenance["metrics"], "manifest.json provenance.metrics")
    return tuple(found)


def check_manifest(manifest: Any) -> Layout:
    """Check manifest.json (every problem named at once); the layout queries must follow."""
    if not isinstance(manifest, dict):
        raise BundleError("manifest.json must hold a JSON object.")
    version = manifest.get("format_version")
    if version not in FORMAT_VERSIONS or isinstance(version, bool):
        raise BundleError(
            f"manifest.json has format_version {version!r}; this version reads "
            f"{', '.join(map(str, FORMAT_VERSIONS))}."
        )
    problems = Problems()
    codes = _check_classes(manifest, version, problems)
    _check_likert(manifest, version, problems)
    aids: tuple[str, ...]
    if version == 1:
        aids, most = ("se_cbir",), FORMAT1_NEIGHBOURS
        if manifest.get("neighbours") != FORMAT1_NEIGHBOURS:
            problems.add(f"manifest.json neighbours must be {FORMAT1_NEIGHBOURS}")
    else:
        aids, most = _check_aids(manifest, problems)
    if not positive_int(manifest.get("web_image_size")):
        problems.add("manifest.json web_image_size must be a positive integer")
    warnings = _check_provenance(manifest, problems)
    _check_counts(manifest, problems)
    extensions = _check_extensions(manifest, version, problems)
    problems.raise_if_any()
    return Layout(version, codes, aids, most, manifest["web_image_size"], extensions, warnings)
