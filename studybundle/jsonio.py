"""Reading and writing a bundle's JSON files: strictly (no NaN, no huge numbers, no deep
nesting) and deterministically (sorted keys), with the digest that identifies a bundle."""

import hashlib
import json
import math
from pathlib import Path
from typing import Any, TypeGuard

from studybundle.errors import BundleError
from studybundle.limits import MAX_JSON_DEPTH, MAX_JSON_VALUES, UNSTORABLE

COUNT_CHUNK = 1 << 20


def _refuse_constant(name: str) -> Any:
    """json's hook for NaN, Infinity and -Infinity: not JSON, and PostgreSQL refuses them."""
    raise BundleError(f"holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    """json's hook for decimals: a literal such as 1e999 would become infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise BundleError(f"holds {text}, a number too large for a float")
    return value


def finite_number(value: Any) -> TypeGuard[int | float]:
    """Whether a JSON value is a number that is finite as a float (10**400 is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def depth(document: Any) -> int:
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


def unstorable_text(document: Any) -> str | None:
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


def most_values(path: Path) -> int:
    """An upper bound on the number of values in a JSON file, read in chunks without parsing:
    every value but the first follows a comma or opens an array or object (commas and brackets
    inside strings only raise the bound)."""
    count = 1
    with path.open("rb") as source:
        while chunk := source.read(COUNT_CHUNK):
            count += chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{")
    return count


def load_json(path: Path, limit: int) -> Any:
    """A JSON file's content, refusing missing, linked, oversized, unparsable or odd files."""
    if path.is_symlink():
        # A link could read a file outside the bundle, and messages quote what they read.
        raise BundleError(f"{path.name} is a symbolic link: a bundle holds plain files only.")
    if not path.is_file():
        raise BundleError(f"{path.name} is missing from the bundle folder.")
    if path.stat().st_size > limit:
        raise BundleError(f"{path.name} is larger than {limit // (1 << 20)} MB.")
    if most_values(path) > MAX_JSON_VALUES:
        # Checked before parsing: the parse's memory grows with the number of values.
        raise BundleError(
            f"{path.name} holds more than {MAX_JSON_VALUES} JSON values.{_hint(path)}"
        )
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
    if depth(document) > MAX_JSON_DEPTH:
        raise BundleError(f"{path.name} nests lists or objects more than {MAX_JSON_DEPTH} deep.")
    bad = unstorable_text(document)
    if bad is not None:
        # Even in free-form fields (provenance): stored, it would break every page showing it.
        raise BundleError(
            f"{path.name} holds a control character or a lone surrogate in {bad[:40]!r}."
        )
    return document


def dump_json(path: Path, value: Any) -> None:
    """Write a bundle file deterministically: sorted keys, two-space indent, final newline."""
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def digest_of(manifest: Any, queries: Any) -> str:
    """sha256 over the manifest and the query list (canonical JSON, so formatting is ignored)."""
    canonical = json.dumps(
        {"manifest": manifest, "queries": queries}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hint(path: Path) -> str:
    """What makes a queries.json this large, and how a run writes a smaller one."""
    if path.name != "queries.json":
        return ""
    return (
        " The class_neighbours extension takes about 600 values a query (about 1,270 queries"
        " fit): write the bundle with `--set class_neighbours=false`, or split the pool."
    )
