"""The `class_neighbours` extension of format 2: in each neighbour aid, the query's nearest
bank images of every class, which a probe shows (app.survey.probes.own_in_pattern). Checked
like the neighbour lists by the one validator: every image it names is in the bundle, and
none is a query's picture or lesion."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from studybundle import BundleError, read, validate_bundle
from tests.app.bundle_factory import make_bundle_v2


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid format-2 bundle with the class_neighbours extension."""
    folder = tmp_path_factory.mktemp("class_neighbours") / "bundle"
    return make_bundle_v2(folder, cases=5, aids=("se_cbir", "cbir"), class_neighbours=3)


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


def test_a_bundle_with_the_extension_reads_each_aids_lists_by_class(pristine: Path) -> None:
    valid = validate_bundle(pristine)
    assert valid.layout.extensions == ("class_neighbours",)
    found = read.class_neighbours(valid.manifest, valid.queries[0])
    assert sorted(found) == ["cbir", "se_cbir"]
    codes = [entry["code"] for entry in valid.manifest["classes"]]
    assert sorted(found["se_cbir"]) == sorted(codes)
    for code, items in found["se_cbir"].items():
        assert 1 <= len(items) <= 3
        assert {item["truth"] for item in items} == {code}
        assert {item["image"].removeprefix("images/") for item in items} <= valid.images


def test_without_the_extension_there_are_no_lists_by_class(tmp_path: Path) -> None:
    valid = validate_bundle(make_bundle_v2(tmp_path / "plain", cases=3, aids=("se_cbir",)))
    assert read.class_neighbours(valid.manifest, valid.queries[0]) == {}


def first(q: list[dict[str, Any]], code: str = "nv") -> dict[str, Any]:
    """The first se_cbir image of class `code` of query 0."""
    item: dict[str, Any] = q[0]["aids"]["se_cbir"]["class_neighbours"][code][0]
    return item


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda q: q[0]["aids"]["se_cbir"].pop("class_neighbours"),
            "queries.json[0].aids.se_cbir.class_neighbours must be an object with one list per",
        ),
        (
            lambda q: q[1]["aids"]["cbir"]["class_neighbours"].pop("mel"),
            "queries.json[1].aids.cbir.class_neighbours must be an object with one list per",
        ),
        (
            lambda q: q[0]["aids"]["se_cbir"]["class_neighbours"].update(nv="x"),
            "queries.json[0].aids.se_cbir.class_neighbours.nv must be a list of at most 9",
        ),
        (
            lambda q: first(q).update(truth="mel"),
            "queries.json[0].aids.se_cbir.class_neighbours.nv holds an image of another class",
        ),
        (
            lambda q: first(q).update(rank=2),
            "class_neighbours.nv[0].rank must be 1",
        ),
        (
            lambda q: first(q).update(similarity="0.5"),
            "class_neighbours.nv[0].similarity must be a finite number",
        ),
        (
            lambda q: first(q).update(similarity=-1.0),
            "class_neighbours.nv[1].similarity increases with rank",
        ),
        (
            lambda q: first(q).update(lesion_id=q[0]["lesion_id"]),
            "class_neighbours.nv[0] repeats a lesion already shown for this query",
        ),
        (
            lambda q: first(q).update(lesion_id=first(q, "mel")["lesion_id"]),
            "class_neighbours.nv repeats a lesion of another class's list",
        ),
        (
            lambda q: first(q).update(image="images/nothere.jpg"),
            "class_neighbours.nv[0].image is 'images/nothere.jpg'",
        ),
        (
            lambda q: first(q).update(image="images/" + "0" * 32 + ".jpg"),
            "0" * 32 + ".jpg",
        ),
        (
            lambda q: first(q).update(image_id=q[2]["image_id"]),
            "queries.json[0].aids.se_cbir.class_neighbours.nv[0] is the query image",
        ),
        (
            lambda q: first(q).update(image=q[3]["image"]),
            "queries.json[0].aids.se_cbir.class_neighbours.nv[0] shows a query's picture",
        ),
        (
            lambda q: first(q).update(lesion_id=q[4]["lesion_id"]),
            "class_neighbours.nv[0] (ISIC_M0000005) shows lesion HAM_P0000004, the lesion of query",
        ),
    ],
)
def test_a_malformed_list_by_class_is_refused(
    bundle: Path, change: Callable[[Any], None], expected: str
) -> None:
    edit(bundle, "queries.json", change)
    assert expected in refused(bundle)


def test_a_list_longer_than_max_neighbours_is_refused(bundle: Path) -> None:
    def longer(queries: list[dict[str, Any]]) -> None:
        items = queries[0]["aids"]["se_cbir"]["class_neighbours"]["nv"]
        items.extend(dict(items[-1], rank=rank) for rank in range(len(items) + 1, 11))

    edit(bundle, "queries.json", longer)
    assert "class_neighbours.nv must be a list of at most 9" in refused(bundle)


def test_lists_by_class_need_the_manifest_to_list_the_extension(bundle: Path) -> None:
    edit(bundle, "manifest.json", lambda m: m.pop("extensions"))
    message = refused(bundle)
    assert "queries.json[0].aids.se_cbir.class_neighbours needs the manifest's extensions" in (
        message
    )


def test_a_class_without_images_is_an_empty_list(bundle: Path) -> None:
    edit(
        bundle,
        "queries.json",
        lambda q: q[0]["aids"]["se_cbir"]["class_neighbours"].update(df=[]),
    )
    valid = validate_bundle(bundle)
    assert read.class_neighbours(valid.manifest, valid.queries[0])["se_cbir"]["df"] == []
