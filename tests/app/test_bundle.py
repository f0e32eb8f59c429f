"""The bundle importer: every kind of broken bundle is refused with a clear message and
leaves nothing behind; a valid one is imported once, with its images copied."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.bundle import BundleError, import_bundle, served_name, validate_bundle
from app.extensions import db
from app.models import Case, Neighbour, Study, StudyStatus
from studybundle.jsonio import digest_of
from tests.app.bundle_factory import jpeg_bytes, read_queries, store, write_queries


def edit_manifest(change: Callable[[dict], Any]) -> Callable[[Path], None]:
    """A breaker that edits manifest.json."""

    def apply(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))

    return apply


def edit_queries(change: Callable[[list], Any]) -> Callable[[Path], None]:
    """A breaker that edits queries.json."""

    def apply(folder: Path) -> None:
        queries = read_queries(folder)
        change(queries)
        write_queries(folder, queries)

    return apply


def image_path(folder: Path, reference: str) -> Path:
    return folder / reference


def replace_first_image(data: bytes) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        image_path(folder, read_queries(folder)[0]["image"]).write_bytes(data)

    return apply


def remove_first_neighbour_image(folder: Path) -> None:
    image_path(folder, read_queries(folder)[3]["neighbours"][5]["image"]).unlink()


def png_named_jpg(folder: Path) -> None:
    import hashlib
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    data = out.getvalue()
    name = hashlib.sha256(data).hexdigest()[:32] + ".jpg"
    (folder / "images" / name).write_bytes(data)
    queries = read_queries(folder)
    queries[0]["image"] = f"images/{name}"
    write_queries(folder, queries)


def truncated_jpeg(folder: Path) -> None:
    import hashlib

    data = jpeg_bytes(999)[:200]
    name = hashlib.sha256(data).hexdigest()[:32] + ".jpg"
    (folder / "images" / name).write_bytes(data)
    queries = read_queries(folder)
    queries[1]["image_rotated"] = f"images/{name}"
    write_queries(folder, queries)


def replace_query_image_size(folder: Path) -> None:
    from tests.app.bundle_factory import encode, picture

    big = picture(77, size=40)
    queries = read_queries(folder)
    queries[0]["image"] = store(folder, encode(big))
    queries[0]["image_rotated"] = store(folder, encode(big.rotate(180)))
    write_queries(folder, queries)


def exif_image(folder: Path) -> None:
    import io

    from PIL import Image

    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "ISIC_0024306"  # ImageDescription
    Image.new("RGB", (24, 24), "red").save(out, format="JPEG", exif=exif.tobytes())
    queries = read_queries(folder)
    queries[2]["neighbours"][0]["image"] = store(folder, out.getvalue())
    write_queries(folder, queries)


def duplicate_key(queries: list) -> None:
    queries[5]["case_key"] = queries[4]["case_key"]


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "no manifest": (lambda f: (f / "manifest.json").unlink(), "manifest.json is missing"),
    "no queries": (lambda f: (f / "queries.json").unlink(), "queries.json is missing"),
    "manifest not json": (
        lambda f: (f / "manifest.json").write_text("{nope"),
        "manifest.json is not valid JSON",
    ),
    "format version": (
        edit_manifest(lambda m: m.update(format_version=99)),
        "format_version 99",
    ),
    "six classes": (edit_manifest(lambda m: m["classes"].pop()), "exactly 7 classes"),
    "unknown class": (
        edit_manifest(lambda m: m["classes"][2].update(code="scc")),
        "classes[2].code is 'scc'",
    ),
    "duplicate class": (
        edit_manifest(lambda m: m["classes"][2].update(code="akiec")),
        "in this order",
    ),
    "bad colour": (
        edit_manifest(lambda m: m["classes"][0].update(colour="blue")),
        "classes[0].colour",
    ),
    "four likert labels": (edit_manifest(lambda m: m["likert"].pop()), "likert must be the five"),
    "other likert label": (
        edit_manifest(lambda m: m["likert"].__setitem__(1, "Sure")),
        "likert must be the five labels",
    ),
    "same colour twice": (
        edit_manifest(lambda m: m["classes"][1].update(colour=m["classes"][0]["colour"])),
        "colours must be distinct",
    ),
    "no text colour": (
        edit_manifest(lambda m: m["classes"][3].pop("text_colour")),
        "classes[3].text_colour must be a colour",
    ),
    "no web image size": (edit_manifest(lambda m: m.pop("web_image_size")), "web_image_size"),
    "counts do not add up": (
        edit_manifest(lambda m: m["counts"].update(queries_before=99)),
        "counts do not add up",
    ),
    "counts disagree with the pool": (
        edit_manifest(lambda m: m["counts"].update(queries_after=31, queries_before=33)),
        "counts.queries_after is not 30",
    ),
    "case key not hex": (
        edit_queries(lambda q: q[3].update(case_key="c-0003")),
        "queries.json[3].case_key must be 16 to 64 lowercase hex digits",
    ),
    "case key holds the id": (
        edit_queries(lambda q: q[3].update(image_id="abcdef12", case_key="00abcdef1200000000")),
        "case_key contains the query's id",
    ),
    "one lesion twice": (
        edit_queries(lambda q: q[9].update(lesion_id=q[8]["lesion_id"])),
        "queries.json[9].lesion_id",
    ),
    "neighbour of the same lesion": (
        edit_queries(lambda q: q[4]["neighbours"][2].update(lesion_id=q[4]["lesion_id"])),
        "neighbours[2] repeats a lesion",
    ),
    "similarity increases": (
        edit_queries(lambda q: q[1]["neighbours"][3].update(similarity=2.0)),
        "neighbours[3].similarity increases with rank",
    ),
    "rotated image is another image": (
        edit_queries(lambda q: q[6].update(image_rotated=q[7]["image"])),
        "queries.json[6].image_rotated",
    ),
    "query image of the wrong size": (replace_query_image_size, "longest side is not"),
    "image with exif": (exif_image, "carries metadata (APP1"),
    "stray file named by id": (
        lambda f: (f / "images" / "ISIC_0024306.jpg").write_bytes(b"x"),
        "images/ISIC_0024306.jpg is not named",
    ),
    "nine neighbours": (edit_manifest(lambda m: m.update(neighbours=9)), "neighbours must be 6"),
    "no provenance": (edit_manifest(lambda m: m.pop("provenance")), "provenance"),
    "empty pool": (lambda f: write_queries(f, []), "non-empty list"),
    "duplicate case key": (edit_queries(duplicate_key), "appears twice"),
    "unknown truth": (
        edit_queries(lambda q: q[7].update(truth="melanoma")),
        "queries.json[7].truth is 'melanoma'",
    ),
    "five neighbours": (
        edit_queries(lambda q: q[2]["neighbours"].pop()),
        "queries.json[2].neighbours must have exactly 6 neighbours",
    ),
    "ranks out of order": (
        edit_queries(lambda q: q[0]["neighbours"].reverse()),
        "rank must be 1",
    ),
    "similarity not a number": (
        edit_queries(lambda q: q[0]["neighbours"][1].update(similarity="high")),
        "similarity must be a finite number",
    ),
    "image named by id": (
        edit_queries(lambda q: q[0].update(image="images/ISIC_0024306.jpg")),
        "named by content hash",
    ),
    "path escape": (
        edit_queries(lambda q: q[0].update(image="../../etc/passwd")),
        "named by content hash",
    ),
    "missing image": (remove_first_neighbour_image, "missing from the bundle"),
    "not a jpeg": (png_named_jpg, "is not a JPEG file"),
    "hash mismatch": (replace_first_image(jpeg_bytes(424242)), "does not match its content hash"),
    "truncated jpeg": (truncated_jpeg, "not a readable JPEG"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_bundle_is_refused_and_writes_nothing(
    app: Flask, bundle_dir: Path, kind: str
) -> None:
    breaker, message = BROKEN[kind]
    breaker(bundle_dir)
    with app.app_context():
        with pytest.raises(BundleError) as caught:
            import_bundle(bundle_dir, "Broken", app.config["STUDY_IMAGES"])
        assert message in str(caught.value)
        assert "\n" not in str(caught.value)
        assert db.session.scalar(select(func.count(Study.id))) == 0
        assert db.session.scalar(select(func.count(Case.id))) == 0
    images = Path(app.config["STUDY_IMAGES"])
    assert not images.exists() or not any(images.iterdir())


def test_every_violation_is_named(bundle_dir: Path) -> None:
    queries = read_queries(bundle_dir)
    queries[0]["truth"] = "xx"
    queries[5]["neighbours"].pop()
    queries[9]["image"] = "images/nope.jpg"
    write_queries(bundle_dir, queries)
    with pytest.raises(BundleError) as caught:
        validate_bundle(bundle_dir)
    message = str(caught.value)
    assert "queries.json[0].truth" in message
    assert "queries.json[5].neighbours must have exactly 6 neighbours" in message
    assert "queries.json[9].image" in message


def test_oversized_queries_file_is_refused(bundle_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr("studybundle.validate.MAX_QUERIES_BYTES", 1000)
    with pytest.raises(BundleError, match=r"queries\.json is larger than"):
        validate_bundle(bundle_dir)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="is not a folder"):
        validate_bundle(tmp_path / "nothing")


def test_valid_bundle_is_imported_with_cases_neighbours_and_images(
    app: Flask, bundle_dir: Path
) -> None:
    queries = read_queries(bundle_dir)
    with app.app_context():
        study, created = import_bundle(bundle_dir, "  A study  ", app.config["STUDY_IMAGES"])
        assert created and study.name == "A study" and study.status == StudyStatus.DRAFT
        assert study.cases_per_reader == 30  # the default 100, capped to the pool
        assert [case.case_key for case in study.cases] == [q["case_key"] for q in queries]
        first = study.cases[0]
        assert first.truth == queries[0]["truth"]
        assert first.image == served_name(queries[0]["image"].split("/")[1])
        assert [n.rank for n in first.neighbours] == [1, 2, 3, 4, 5, 6]
        assert db.session.scalar(select(func.count(Neighbour.id))) == 30 * 6
        folder = Path(study.image_folder)
        assert folder == Path(app.config["STUDY_IMAGES"]) / f"{study.bundle_digest[:16]}-keyed"
        copied = {path.name for path in folder.iterdir()}
        assert copied == {served_name(path.name) for path in (bundle_dir / "images").iterdir()}
        assert study.manifest["likert"][0] == "not confident at all"


def test_reimport_is_a_no_op(app: Flask, bundle_dir: Path, tmp_path: Path) -> None:
    # The same content, formatted differently, in another folder.
    twin = tmp_path / "twin"
    shutil.copytree(bundle_dir, twin)
    write_queries(twin, read_queries(twin))
    with app.app_context():
        first, created = import_bundle(bundle_dir, "First", app.config["STUDY_IMAGES"])
        second, created_again = import_bundle(twin, "Second", app.config["STUDY_IMAGES"])
        assert created and not created_again
        assert second.id == first.id and second.name == "First"
        assert db.session.scalar(select(func.count(Study.id))) == 1
        assert db.session.scalar(select(func.count(Case.id))) == 30


def test_digest_covers_manifest_and_queries(bundle_dir: Path) -> None:
    bundle = validate_bundle(bundle_dir)
    assert bundle.digest == digest_of(bundle.manifest, bundle.queries)
    changed = [dict(bundle.queries[0], majority_vote="nv"), *bundle.queries[1:]]
    assert digest_of(bundle.manifest, changed) != bundle.digest
