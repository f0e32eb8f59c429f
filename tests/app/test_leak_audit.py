"""`flask study audit-leaks`: the attacker's routes from a served file to a public image.

A bundle made from a public dataset as the training pipeline makes it (web-sized, encoded
deterministically), imported: the audit must find that exact bytes identify every case of the
files a plain import served, none of the keyed files, and that a perceptual hash still finds
the pictures (the residual the deployment guide states).
"""

import json
import re
from pathlib import Path

import numpy
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from PIL import Image

from app.bundle import import_bundle, served_name
from app.extensions import db
from app.imagehashes import AUDIT_DISTANCE, as_array, distances, short_hash, turned_hashes
from app.leakaudit import AuditError, audit, public_table, served_files
from app.models import Study
from studybundle.images import bundle_jpeg, reencode, web_sized
from tests.app.bundle_factory import read_queries, store, write_queries

SIZE = 96  # the bundle's web_image_size


def photo(seed: int) -> Image.Image:
    """A 160 x 120 picture of smooth colour waves that depend on `seed` (as distinct from
    another seed's as two photographs, for a perceptual hash)."""
    rng = numpy.random.default_rng(seed)
    y, x = numpy.mgrid[0:120, 0:160] / 160
    channels = []
    for _ in range(3):
        waves = sum(
            numpy.sin(2 * numpy.pi * (fx * x + fy * y) + phase)
            for fx, fy, phase in rng.uniform((-3, -3, 0), (3, 3, 6.3), (4, 3))
        )
        channels.append(128 + 30 * waves)
    return Image.fromarray(numpy.clip(numpy.dstack(channels), 0, 255).astype(numpy.uint8))


def public_bundle(bundle: Path, dataset: Path) -> None:
    """Make `bundle`'s images from a public dataset written to `dataset`, as the pipeline does."""
    dataset.mkdir()
    for old in (bundle / "images").glob("*.jpg"):
        old.unlink()
    made: dict[str, str] = {}

    def image(image_id: str, turn: int = 0) -> str:
        if image_id not in made:
            photo(len(made)).save(dataset / f"{image_id}.png")
            made[image_id] = image_id
        pixels = numpy.asarray(web_sized(Image.open(dataset / f"{image_id}.png"), SIZE))
        return store(bundle, bundle_jpeg(numpy.rot90(pixels, turn // 90)))

    queries = read_queries(bundle)
    for query in queries:
        query["image"] = image(query["image_id"])
        query["image_rotated"] = image(query["image_id"], 180)
        for item in query["neighbours"]:
            item["image"] = image(item["image_id"])
    write_queries(bundle, queries)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["web_image_size"] = SIZE
    manifest["counts"]["images"] = len(list((bundle / "images").glob("*.jpg")))
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def counts(output: str) -> dict[str, tuple[int, int]]:
    """Route -> (cases identified, neighbour images identified) from the audit's report."""
    found = {}
    for route, cases, neighbours in re.findall(
        r"^(exact bytes|size|perceptual hash)\s+(\d+)/\d+\s+(\d+)/\d+", output, re.M
    ):
        found[route] = (int(cases), int(neighbours))
    return found


def test_the_audit_measures_every_route_before_and_after_keying(
    app: Flask, runner: FlaskCliRunner, bundle_dir: Path, tmp_path: Path
) -> None:
    public_bundle(bundle_dir, tmp_path / "dataset")
    with app.app_context():
        study, _ = import_bundle(bundle_dir, "Audited", app.config["STUDY_IMAGES"])
        study_id, cases = study.id, len(study.cases)
        neighbours = len({n.image_id for case in study.cases for n in case.neighbours})
    result = runner.invoke(
        args=["study", "audit-leaks", str(study_id), "--dataset", str(tmp_path / "dataset")]
    )
    assert result.exit_code == 0, result.output
    assert f"{cases} cases ({cases} of them public)" in result.output
    keyed = counts(result.output)
    assert keyed["exact bytes"] == (0, 0)
    assert keyed["size"][0] <= cases // 5
    assert keyed["perceptual hash"] == (cases, neighbours)  # the residual, stated honestly
    assert "ISIC_" not in result.output  # counts only

    # The same study as a plain import served it (before keying): every case by its bytes.
    plain = tmp_path / "plain"
    plain.mkdir()
    with app.app_context():
        for path in (bundle_dir / "images").glob("*.jpg"):
            (plain / served_name(path.name)).write_bytes(reencode(path))
        record = db.session.get(Study, study_id)
        table = public_table(tmp_path / "dataset", SIZE)
        before = audit(record, table, served_files(record, plain))
    assert len(before.routes["exact bytes"].cases) == cases
    assert len(before.routes["exact bytes"].neighbours) == neighbours


def test_the_audit_refuses_a_folder_without_images(
    app: Flask, runner: FlaskCliRunner, study, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(args=["study", "audit-leaks", str(study.id), "--dataset", str(empty)])
    assert result.exit_code != 0 and "holds no images" in result.output
    with pytest.raises(AuditError, match="not a folder"):
        public_table(tmp_path / "missing", SIZE)
    missing = runner.invoke(args=["study", "audit-leaks", "999", "--dataset", str(tmp_path)])
    assert missing.exit_code != 0 and "There is no study 999" in missing.output


def test_perceptual_hashes_survive_re_encoding_but_not_another_picture() -> None:
    first, second = photo(1), photo(2)
    table = as_array(turned_hashes(first))
    assert table.dtype == numpy.uint64 and len(table) == 4
    noisy = Image.fromarray(
        numpy.clip(
            numpy.asarray(first, dtype=int)
            + numpy.random.default_rng(0).integers(-2, 3, (120, 160, 3)),
            0,
            255,
        ).astype(numpy.uint8)
    )
    assert distances(short_hash(noisy), table)[0] <= AUDIT_DISTANCE
    assert distances(short_hash(first.rotate(90, expand=True)), table)[1] == 0
    assert distances(short_hash(second), table).min() > AUDIT_DISTANCE
    assert 0 <= short_hash(first) < 1 << 64
