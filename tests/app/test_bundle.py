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

from app.bundle import BundleError, digest_of, import_bundle, validate_bundle
from app.extensions import db
from app.models import Case, Neighbour, Study, StudyStatus
from tests.app.bundle_factory import jpeg_bytes, read_queries, write_queries


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
        "each once",
    ),
    "bad colour": (
        edit_manifest(lambda m: m["classes"][0].update(colour="blue")),
        "classes[0].colour",
    ),
    "four likert labels": (edit_manifest(lambda m: m["likert"].pop()), "likert must list 5"),
    "empty likert label": (
        edit_manifest(lambda m: m["likert"].__setitem__(1, " ")),
        "likert[1] must be a non-empty text",
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
        "queries.json[2] must have exactly 6 neighbours",
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


def test_oversized_queries_file_is_refused(bundle_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr("app.bundle.MAX_QUERIES_BYTES", 1000)
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
        assert first.image == queries[0]["image"].split("/")[1]
        assert [n.rank for n in first.neighbours] == [1, 2, 3, 4, 5, 6]
        assert db.session.scalar(select(func.count(Neighbour.id))) == 30 * 6
        folder = Path(study.image_folder)
        assert folder == Path(app.config["STUDY_IMAGES"]) / study.bundle_digest[:16]
        copied = {path.name for path in folder.iterdir()}
        assert copied == {path.name for path in (bundle_dir / "images").iterdir()}
        assert study.manifest["likert"][0] == "Not confident"


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
