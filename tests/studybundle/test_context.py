"""The `context` extension of format 2: the patient's age, sex and body site of each query,
listed in the manifest's `extensions` and checked query by query by the one validator."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from studybundle import BundleError, read, validate_bundle
from tests.app.bundle_factory import make_bundle, make_bundle_v2, patient


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid format-2 bundle with the context extension."""
    folder = tmp_path_factory.mktemp("context") / "bundle"
    return make_bundle_v2(folder, cases=6, aids=("se_cbir",), context=True)


@pytest.fixture
def bundle(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the valid bundle, safe to break."""
    return Path(shutil.copytree(pristine, tmp_path / "bundle"))


def edit(bundle: Path, name: str, change: Callable[[Any], None]) -> None:
    """Rewrite manifest.json or queries.json through `change`."""
    path = bundle / name
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def refused(bundle: Path) -> str:
    """The validator's message for a bundle it must refuse."""
    with pytest.raises(BundleError) as caught:
        validate_bundle(bundle)
    return str(caught.value)


def test_a_bundle_with_context_reads_each_querys_patient(pristine: Path) -> None:
    valid = validate_bundle(pristine)
    assert valid.layout.extensions == ("context",)
    contexts = [read.context(valid.manifest, query) for query in valid.queries]
    assert contexts == [patient(index) for index in range(6)]
    assert contexts[4] == {"age": None, "sex": "male", "site": "back"}


def test_a_bundle_without_the_extension_has_no_context(tmp_path: Path) -> None:
    valid = validate_bundle(make_bundle_v2(tmp_path / "plain", cases=3, aids=("se_cbir",)))
    assert valid.layout.extensions == ()
    assert read.context(valid.manifest, valid.queries[0]) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda q: q[0].pop("context"), "queries.json[0].context must be an object"),
        (
            lambda q: q[1]["context"].pop("site"),
            "queries.json[1].context must be an object with exactly age, sex and site",
        ),
        (
            lambda q: q[1]["context"].update(weight=70),
            "queries.json[1].context must be an object with exactly age, sex and site",
        ),
        (lambda q: q[2]["context"].update(age=121), "queries.json[2].context.age must be null"),
        (lambda q: q[2]["context"].update(age=44.5), "queries.json[2].context.age must be null"),
        (lambda q: q[2]["context"].update(age=True), "queries.json[2].context.age must be null"),
        (
            lambda q: q[3]["context"].update(sex="unknown"),
            "queries.json[3].context.sex must be null or one of female, male",
        ),
        (
            lambda q: q[3]["context"].update(site="x" * 101),
            "queries.json[3].context.site is longer than 100 characters",
        ),
        (lambda q: q[3]["context"].update(site=""), "queries.json[3].context.site must be a"),
    ],
)
def test_every_context_rule_names_the_query_and_field(
    bundle: Path, change: Callable[[Any], None], expected: str
) -> None:
    edit(bundle, "queries.json", change)
    assert expected in refused(bundle)


def test_context_without_the_extension_listed_is_refused(bundle: Path) -> None:
    edit(bundle, "manifest.json", lambda m: m.pop("extensions"))
    assert "queries.json[0].context needs the manifest's extensions to list context" in refused(
        bundle
    )


@pytest.mark.parametrize("extensions", [["history"], ["context", "context"], "context", [1]])
def test_unknown_or_repeated_extensions_are_refused(bundle: Path, extensions: Any) -> None:
    edit(bundle, "manifest.json", lambda m: m.update(extensions=extensions))
    assert "manifest.json extensions must list distinct extensions among context" in refused(bundle)


def test_format1_has_no_extensions(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path / "v1", cases=3)
    edit(folder, "manifest.json", lambda m: m.update(extensions=["context"]))
    assert "manifest.json extensions need format_version 2" in refused(folder)
