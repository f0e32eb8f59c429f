"""The import refuses a neighbour that is a query's picture under another id or encoding, or
that shows a query's lesion (issue 22): shown labelled, it would hand a reader the truth."""

import io
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import func, select

from app.bundle import BundleError, import_bundle
from app.extensions import db
from app.imagehashes import NEAR, colours, near_pairs, perceptual_hash
from app.models import Study
from tests.app.bundle_factory import (
    jpeg_bytes,
    make_bundle_v2,
    picture,
    read_queries,
    replace_neighbour_images,
    write_image,
    write_queries,
)


def saved_again(image: Image.Image, quality: int, turn: int = 0) -> bytes:
    """`image` turned by `turn` degrees and saved at another JPEG quality: new bytes, new name."""
    out = io.BytesIO()
    image.rotate(turn, expand=True).save(out, "JPEG", quality=quality)
    return out.getvalue()


def query_picture(folder: Path, index: int) -> Image.Image:
    """The decoded upright picture of query `index`."""
    name = read_queries(folder)[index]["image"]
    with Image.open(folder / name) as image:
        return image.convert("RGB")


@pytest.mark.parametrize("turn", [0, 90, 270])
def test_a_query_saved_again_as_a_neighbour_is_refused_naming_both(
    app: Flask, bundle_dir: Path, turn: int
) -> None:
    copy = saved_again(query_picture(bundle_dir, 7), quality=85, turn=turn)
    (reference,) = replace_neighbour_images(bundle_dir, [copy])
    queries = read_queries(bundle_dir)
    holders = [
        (index, item)
        for index, query in enumerate(queries)
        for item in query["neighbours"]
        if item["image"] == reference
    ]
    assert holders  # the copy is listed beside at least one query, under a neighbour's id
    index, item = holders[0]
    with app.app_context():
        with pytest.raises(BundleError) as caught:
            import_bundle(bundle_dir, "Copied", app.config["STUDY_IMAGES"])
        assert db.session.scalar(select(func.count(Study.id))) == 0
    message = str(caught.value)
    assert f"queries.json[{index}] se_cbir neighbour {item['rank']} ({item['image_id']}" in message
    assert f"the picture of query queries.json[7] ({queries[7]['image_id']}" in message


def test_a_neighbour_of_another_querys_lesion_is_refused_naming_both(
    app: Flask, bundle_dir: Path
) -> None:
    queries = read_queries(bundle_dir)
    neighbour = queries[2]["neighbours"][3]
    neighbour["lesion_id"] = queries[11]["lesion_id"]  # another photograph of query 11's lesion
    write_queries(bundle_dir, queries)
    with app.app_context(), pytest.raises(BundleError) as caught:
        import_bundle(bundle_dir, "Same lesion", app.config["STUDY_IMAGES"])
    assert (
        f"queries.json[2].neighbours[3] ({neighbour['image_id']}) shows lesion"
        f" {queries[11]['lesion_id']}, the lesion of query queries.json[11]"
        f" ({queries[11]['image_id']})"
    ) in str(caught.value)


def test_different_pictures_and_copies_are_told_apart() -> None:
    # Copies of a picture (another quality, another size, turned) are near; other pictures,
    # and a copy in other colours, are not.
    original = picture(5, size=96)
    queries = {"q": [perceptual_hash(original.rotate(a, expand=True)) for a in (0, 90, 180, 270)]}
    images = {
        "requality": Image.open(io.BytesIO(saved_again(original, 40))),
        "turned": Image.open(io.BytesIO(saved_again(original.resize((80, 80)), 80, turn=90))),
        "other": Image.open(io.BytesIO(jpeg_bytes(6, size=96))),
        "recoloured": original.point(lambda v: min(255, v + 40)),
    }
    hashes = {name: perceptual_hash(image) for name, image in images.items()}
    found = {name for name, _, _ in near_pairs(hashes, queries, within=NEAR)}
    assert {"requality", "turned"} <= found and "other" not in found
    palette = {name: colours(image) for name, image in images.items()} | {"q": colours(original)}
    near = {name for name, _, _ in near_pairs(hashes, queries, palette)}
    assert near == {"requality", "turned"}


def test_a_query_saved_again_among_the_nearest_images_by_class_is_refused(
    app: Flask, tmp_path: Path
) -> None:
    # The class_neighbours extension: images a probe shows, checked as the lists are.
    folder = make_bundle_v2(tmp_path / "classes", cases=6, aids=("se_cbir",), class_neighbours=2)
    copy = saved_again(query_picture(folder, 4), quality=85)
    queries = read_queries(folder)
    item = queries[1]["aids"]["se_cbir"]["class_neighbours"]["bkl"][0]
    item["image"] = write_image(folder / "images", copy)
    write_queries(folder, queries)
    with app.app_context():
        with pytest.raises(BundleError) as caught:
            import_bundle(folder, "Copied by class", app.config["STUDY_IMAGES"])
        assert db.session.scalar(select(func.count(Study.id))) == 0
    message = str(caught.value)
    assert f"queries.json[1] se_cbir bkl image 1 ({item['image_id']}" in message
    assert f"the picture of query queries.json[4] ({queries[4]['image_id']}" in message
