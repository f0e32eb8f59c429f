"""Format 2 through the one validator: every rule has an error naming the query and the field,
and every problem of a bundle is reported at once. No Flask here."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studybundle import BundleError, read, validate_bundle
from studybundle.images import content_name
from tests.app.bundle_factory import (
    FOUR_LEVELS,
    ISIC2019,
    encode,
    make_bundle,
    make_bundle_v2,
    picture,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid format-2 bundle: ISIC 2019's eight classes, four labels, nine neighbours."""
    folder = tmp_path_factory.mktemp("v2") / "bundle"
    return make_bundle_v2(folder, cases=6, classes=ISIC2019, likert=FOUR_LEVELS, shown=6)


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


def test_a_valid_format2_bundle_reads_in_one_shape(pristine: Path) -> None:
    valid = validate_bundle(pristine)
    manifest, query = valid.manifest, valid.queries[0]
    assert valid.version == 2 and valid.layout.max_neighbours == 9
    assert [c["code"] for c in read.classes(manifest)] == [c.code for c in ISIC2019]
    assert [c["code"] for c in read.classes(manifest) if c["malignant"]] == [
        "MEL",
        "BCC",
        "AK",
        "SCC",
    ]
    assert read.likert(manifest) == list(FOUR_LEVELS) and read.shown_neighbours(manifest) == 6
    lists = read.neighbour_lists(manifest, query)
    assert sorted(lists) == ["cbir", "se_cbir"] and all(len(v) == 9 for v in lists.values())
    assert sorted(read.votes(manifest, query)["cbir"]) == list(range(1, 10))
    assert sorted(read.probabilities(manifest, query)) == ["rgb", "rgb_saliency"]
    assert read.saliency(manifest, query) is not None


def test_format1_reads_as_format2(tmp_path: Path) -> None:
    valid = validate_bundle(make_bundle(tmp_path / "v1", cases=3))
    manifest, query = valid.manifest, valid.queries[0]
    assert read.aids(manifest) == ["se_cbir"] and read.max_neighbours(manifest) == 6
    assert read.votes(manifest, query) == {"se_cbir": {6: query["majority_vote"]}}
    assert [c["code"] for c in read.classes(manifest) if c["malignant"]] == ["akiec", "bcc", "mel"]
    assert read.probabilities(manifest, query) == {} and read.saliency(manifest, query) is None


def test_a_class_code_the_taxonomy_does_not_list_is_refused(bundle: Path) -> None:
    edit(
        bundle, "queries.json", lambda q: q[2]["aids"]["cbir"]["neighbours"][4].update(truth="mel")
    )
    edit(bundle, "queries.json", lambda q: q[3].update(truth="akiec"))
    message = refused(bundle)
    assert "queries.json[2].aids.cbir.neighbours[4].truth is 'mel', not a class of the study" in (
        message
    )
    assert "queries.json[3].truth is 'akiec'" in message


def test_an_aid_list_shorter_than_the_study_asks_for_is_refused(bundle: Path) -> None:
    edit(bundle, "queries.json", lambda q: q[1]["aids"]["se_cbir"]["neighbours"].pop())
    assert "queries.json[1].aids.se_cbir.neighbours must have exactly 9 neighbours, not 8" in (
        refused(bundle)
    )


def test_probabilities_that_do_not_sum_to_one_are_refused(bundle: Path) -> None:
    def change(queries: list) -> None:
        queries[0]["aids"]["probabilities"]["rgb"][0] += 0.2
        queries[4]["aids"]["probabilities"]["rgb_saliency"] = [0.5] * 7

    edit(bundle, "queries.json", change)
    message = refused(bundle)
    assert "queries.json[0].aids.probabilities.rgb sums to 1.2, not 1" in message
    assert "queries.json[4].aids.probabilities.rgb_saliency must list one probability per " in (
        message
    )


def test_an_overlay_of_the_wrong_size_is_refused(bundle: Path) -> None:
    small = picture(99, size=12)
    upright, turned = encode(small), encode(small.rotate(180))
    for data in (upright, turned):
        (bundle / "images" / content_name(data)).write_bytes(data)

    def change(queries: list) -> None:
        queries[5]["aids"]["saliency"] = {
            "image": f"images/{content_name(upright)}",
            "image_rotated": f"images/{content_name(turned)}",
        }

    edit(bundle, "queries.json", change)
    assert "queries.json[5].aids.saliency.image is 12x12, not the query image's 24x24" in (
        refused(bundle)
    )


def test_an_overlay_that_is_not_turned_is_refused(bundle: Path) -> None:
    def change(queries: list) -> None:
        overlay = queries[0]["aids"]["saliency"]
        overlay["image_rotated"] = overlay["image"]

    edit(bundle, "queries.json", change)
    assert "queries.json[0].aids.saliency.image_rotated is not its image turned by 180" in (
        refused(bundle)
    )


def test_a_vote_that_is_not_the_lists_vote_is_refused(bundle: Path) -> None:
    def change(queries: list) -> None:
        votes = queries[1]["aids"]["se_cbir"]["majority_vote"]
        votes["3"] = next(c.code for c in ISIC2019 if c.code != votes["3"])
        del queries[2]["aids"]["cbir"]["majority_vote"]["9"]

    edit(bundle, "queries.json", change)
    message = refused(bundle)
    assert "queries.json[1].aids.se_cbir.majority_vote['3'] is " in message
    assert "but the rank-weighted vote of the first 3 neighbours is" in message
    assert "queries.json[2].aids.cbir.majority_vote must map every k from 1 to 9" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda q: q[0]["aids"].pop("cbir"), "queries.json[0].aids lacks cbir"),
        (
            lambda q: q[0]["aids"].update(heatmap={}),
            "aids holds heatmap, which the manifest does not",
        ),
        (lambda q: q[0].pop("aids"), "queries.json[0].aids must be an object"),
        (
            lambda q: q[0]["aids"]["probabilities"].pop("rgb"),
            "queries.json[0].aids.probabilities must hold exactly rgb_saliency and rgb",
        ),
        (
            lambda q: q[0]["aids"]["probabilities"]["rgb"].__setitem__(1, -0.1),
            "queries.json[0].aids.probabilities.rgb must hold numbers from 0 to 1",
        ),
        (
            lambda q: q[0]["aids"]["saliency"].update(image="images/x.jpg"),
            "queries.json[0].aids.saliency.image is 'images/x.jpg'",
        ),
        (
            lambda q: q[0]["aids"]["cbir"]["neighbours"][3].update(lesion_id=q[0]["lesion_id"]),
            "queries.json[0].aids.cbir.neighbours[3] repeats a lesion",
        ),
        (
            lambda q: q[0]["aids"]["cbir"]["neighbours"][3].update(similarity=2.0),
            "queries.json[0].aids.cbir.neighbours[3].similarity increases with rank",
        ),
        (
            lambda q: q[0]["aids"]["se_cbir"]["neighbours"][0].update(rank=2),
            "queries.json[0].aids.se_cbir.neighbours[0].rank must be 1",
        ),
    ],
)
def test_every_query_rule_names_the_query_and_field(
    bundle: Path, change: Callable[[Any], None], expected: str
) -> None:
    edit(bundle, "queries.json", change)
    assert expected in refused(bundle)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.update(classes=m["classes"][:1]), "must list 2 to 20 classes"),
        (lambda m: m.update(classes=m["classes"] * 3), "must list 2 to 20 classes"),
        (
            lambda m: m["classes"][1].update(code=m["classes"][0]["code"]),
            "class codes must be distinct",
        ),
        (lambda m: m["classes"][2].update(code="S C C"), "classes[2].code is 'S C C'"),
        (lambda m: m["classes"][3].pop("malignant"), "classes[3].malignant must be true or false"),
        (lambda m: m.update(likert=["only"]), "likert must list 2 to 9 labels"),
        (lambda m: m.update(likert=["a", "A"]), "likert labels must be distinct"),
        (lambda m: m.update(aids=["se_cbir", "gradcam"]), "aids must list distinct aids among"),
        (lambda m: m.update(max_neighbours=51), "max_neighbours must be an integer from 1 to 50"),
        (lambda m: m.update(neighbours=10), "neighbours must be an integer from 1 to max"),
        (lambda m: m["provenance"].update(metrics=[1]), "provenance.metrics must be an object"),
        (lambda m: m.update(format_version=3), "format_version 3; this version reads 1, 2"),
    ],
)
def test_every_manifest_rule_names_its_field(
    bundle: Path, change: Callable[[Any], None], expected: str
) -> None:
    edit(bundle, "manifest.json", change)
    assert expected in refused(bundle)


def test_a_bundle_without_neighbour_aids_needs_no_k(tmp_path: Path) -> None:
    folder = make_bundle_v2(tmp_path / "p", cases=3, aids=("probabilities",))
    valid = validate_bundle(folder)
    assert read.max_neighbours(valid.manifest) == 0
    assert read.neighbour_lists(valid.manifest, valid.queries[0]) == {}


def test_a_wrong_image_size_of_the_query_is_refused(bundle: Path) -> None:
    big = picture(5, size=30)
    upright, turned = encode(big), encode(big.rotate(180))
    for data in (upright, turned):
        (bundle / "images" / content_name(data)).write_bytes(data)
    edit(
        bundle,
        "queries.json",
        lambda q: q[0].update(
            image=f"images/{content_name(upright)}", image_rotated=f"images/{content_name(turned)}"
        ),
    )
    message = refused(bundle)
    assert "queries.json[0].image's longest side is not web_image_size 24" in message
    with Image.open(bundle / "images" / content_name(upright)) as image:
        assert image.size == (30, 30)
