"""Reading a bundle's JSON: whatever the files hold, the answer is a document or a
BundleError naming the file and the problem, never another exception."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.bundle import BundleError, validate_bundle
from studybundle.limits import MAX_JSON_DEPTH
from tests.app.bundle_factory import make_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A small valid bundle folder."""
    return make_bundle(tmp_path / "b", cases=3, seed=41, pool=8)


def edit(folder: Path, name: str, text_of: Callable[[Any], str]) -> None:
    """Rewrite one JSON file of the bundle from its parsed content."""
    path = folder / name
    path.write_text(text_of(json.loads(path.read_text())))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_anywhere(bundle: Path, constant: str) -> None:
    def with_constant(manifest: dict) -> str:
        manifest["provenance"]["validation_loss"] = "MARK"
        return json.dumps(manifest).replace('"MARK"', constant)

    edit(bundle, "manifest.json", with_constant)
    with pytest.raises(BundleError, match=re.escape(f"manifest.json holds {constant}")):
        validate_bundle(bundle)


def test_a_decimal_beyond_float_range_is_refused(bundle: Path) -> None:
    def with_huge(queries: list) -> str:
        queries[0]["neighbours"][0]["similarity"] = "MARK"
        return json.dumps(queries).replace('"MARK"', "1e999")

    edit(bundle, "queries.json", with_huge)
    with pytest.raises(BundleError, match=re.escape("queries.json holds 1e999")):
        validate_bundle(bundle)


def test_an_integer_of_thousands_of_digits_is_refused(bundle: Path) -> None:
    def with_digits(manifest: dict) -> str:
        manifest["provenance"]["seed"] = "MARK"
        return json.dumps(manifest).replace('"MARK"', "9" * 5000)

    edit(bundle, "manifest.json", with_digits)
    with pytest.raises(BundleError, match=re.escape("manifest.json is not valid JSON")):
        validate_bundle(bundle)


def test_nesting_beyond_the_limit_is_refused_but_a_little_is_fine(bundle: Path) -> None:
    def nested(levels: int) -> Callable[[dict], str]:
        def change(manifest: dict) -> str:
            manifest["provenance"]["deep"] = json.loads("[" * levels + "]" * levels)
            return json.dumps(manifest)

        return change

    edit(bundle, "manifest.json", nested(5))
    validate_bundle(bundle)
    edit(bundle, "manifest.json", nested(MAX_JSON_DEPTH))
    with pytest.raises(BundleError, match="nests lists or objects more than"):
        validate_bundle(bundle)


@pytest.mark.parametrize("value", ["a\x00b", "a\x1bb", "\ud800x"])
def test_ids_the_database_cannot_store_are_refused(bundle: Path, value: str) -> None:
    def with_id(queries: list) -> str:
        queries[0]["image_id"] = value
        return json.dumps(queries)

    edit(bundle, "queries.json", with_id)
    with pytest.raises(BundleError, match="control character or a lone surrogate"):
        validate_bundle(bundle)
