"""A design's fingerprint: its canonical JSON and the SHA-256 of that text.

Canonical so that the same design gives the same bytes on any machine and in any Python:
keys sorted, no whitespace, UTF-8 as is (no \\u escapes), and no NaN or infinity (which JSON
does not have). A reviewer recomputes the hash from a downloaded `design.json` as
`fingerprint(json.load(file)["design"])`; any change of a value, a key or a list's order
changes the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(design: Mapping[str, Any]) -> str:
    """The one text of `design` that its fingerprint is taken over; ValueError for a value
    JSON cannot hold (NaN, infinity, a set...)."""
    try:
        return json.dumps(
            design, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except TypeError as error:
        raise ValueError(f"a design must be plain JSON: {error}") from None


def sha256_text(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes, as 64 hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint(design: Mapping[str, Any]) -> str:
    """The SHA-256 of `design`'s canonical JSON (64 hex digits)."""
    return sha256_text(canonical_json(design))
