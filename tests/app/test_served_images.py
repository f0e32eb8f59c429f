"""Served images are the deployment's own: keyed pixels and encoder settings (issue 22).

Anyone holding the public dataset and this code can compute a bundle's files and what a plain
re-encoding at import makes of them; a table of their SHA-256 identified every case a reader
saw. Every file a reader receives must differ from those, and from the same image in another
deployment, while looking the same; nothing sent with it (ETag, Last-Modified) may carry more.
And no segment but the pixels may survive an import, whatever precedes it (a fill byte before
a comment carried `image_id=... dx=mel` to a reader).
"""

import hashlib
import io
from pathlib import Path

import numpy
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from PIL import Image
from sqlalchemy import select

from app.bundle import copy_study, import_bundle, served_name
from app.extensions import db
from app.models import Case, Study
from app.servedimages import KEYED_SUFFIX, WIDTHS, etag, key_image, thumbnail_path
from studybundle.images import reencode
from tests.app.bundle_factory import (
    jpeg_bytes,
    read_queries,
    replace_neighbour_images,
    store,
    write_queries,
)
from tests.app.jpeg import (
    PAYLOAD,
    PLAIN_SEGMENTS,
    assert_clean,
    jpeg_variants,
    segment,
    segments_before_scan,
)

WIDE = 450  # a web image as the demo shows it: wide enough for a thumbnail


def sha(data: bytes) -> str:
    """The SHA-256 of `data`: what an attacker's lookup table holds."""
    return hashlib.sha256(data).hexdigest()


def decoded(data: bytes) -> numpy.ndarray:
    """The RGB pixels of JPEG bytes, as floats."""
    return numpy.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def psnr(first: numpy.ndarray, second: numpy.ndarray) -> float:
    """Peak signal-to-noise ratio of two images of 8-bit channels, in dB."""
    return float(10 * numpy.log10(255**2 / ((first - second) ** 2).mean()))


def public_files(bundle: Path) -> dict[str, bytes]:
    """Every file anyone can compute from the public images: the bundle's files, what a plain
    import made of them, and a plain thumbnail of those at every width (before issue 22)."""
    found = {}
    for path in (bundle / "images").glob("*.jpg"):
        plain = reencode(path)
        found[path.name] = path.read_bytes()
        found[f"{path.name} re-encoded"] = plain
        with Image.open(io.BytesIO(plain)) as image:
            for width in WIDTHS:
                if image.width > width:
                    small = image.convert("RGB").resize(
                        (width, round(image.height * width / image.width)),
                        Image.Resampling.LANCZOS,
                    )
                    out = io.BytesIO()
                    small.save(out, "JPEG", quality=85, optimize=True)
                    found[f"{path.name} w{width}"] = out.getvalue()
    return found


def served_files(folder: Path) -> dict[str, bytes]:
    """Every file of a served image folder (thumbnails included), by relative path."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*.jpg")}


def test_no_served_file_is_a_public_file_or_another_deployments(
    app: Flask, bundle_dir: Path, tmp_path: Path
) -> None:
    wide = replace_neighbour_images(bundle_dir, [jpeg_bytes(seed, WIDE) for seed in (7, 8, 9)])
    with app.app_context():
        study, _ = import_bundle(bundle_dir, "Keyed", tmp_path / "served")
        folder = Path(study.image_folder)
        served = served_files(folder)
        names = {reference: served_name(reference.removeprefix("images/")) for reference in wide}
    assert folder.name.endswith(KEYED_SUFFIX)
    # Every image, and a thumbnail at every width of each wide one.
    assert len(served) == len(list((bundle_dir / "images").glob("*.jpg"))) + len(wide)
    for name in names.values():
        assert str(thumbnail_path(folder, name, WIDTHS[0]).relative_to(folder)) in served
    public = public_files(bundle_dir)
    assert not {sha(data) for data in public.values()} & {sha(data) for data in served.values()}
    # Sizes no longer point to a source: a file has its own source's size (or that of its plain
    # re-encoding, as served before) only by chance, as any other file's.
    with app.app_context():
        by_source = {path.name: served_name(path.name) for path in bundle_dir.glob("images/*")}
    same_size = [
        source
        for source, name in by_source.items()
        if len(served[name]) in (len(public[source]), len(public[f"{source} re-encoded"]))
    ]
    assert len(same_size) <= 0.1 * len(by_source), same_size

    # Another deployment (another SECRET_KEY) serves other bytes for every file, in most
    # cases of another size too: the encoder's settings are keyed as well as the noise.
    other = tmp_path / "other"
    other.mkdir()
    for path in (bundle_dir / "images").glob("*.jpg"):
        key_image(path, other, by_source[path.name], secret="another deployment's secret key")
    theirs = served_files(other)
    assert theirs.keys() == served.keys()
    assert all(theirs[name] != data for name, data in served.items())
    different_sizes = sum(len(theirs[name]) != len(data) for name, data in served.items())
    assert different_sizes >= 0.8 * len(served)

    # Invisible: the served pixels are the bundle's give or take a few grey levels.
    for reference, name in names.items():
        source, mine = decoded((bundle_dir / reference).read_bytes()), decoded(served[name])
        assert numpy.abs(mine - source).mean() < 2.5
        assert psnr(mine, source) > 40


def test_the_headers_carry_nothing_computable_without_the_key(
    client: FlaskClient, app: Flask, study, reader, login
) -> None:
    with app.app_context():
        case = db.session.scalars(select(Case).where(Case.study_id == study.id)).first()
        name = case.image
    login(client, reader)
    response = client.get(f"/images/{name}")
    assert response.status_code == 200
    data = response.data
    assert "Last-Modified" not in response.headers  # file times order files as written
    assert response.headers["Content-Length"] == str(len(data))
    with app.app_context():
        assert response.headers["ETag"] == f'"{etag(data)}"'
        mine, app.config["SECRET_KEY"] = app.config["SECRET_KEY"], "another deployment's key"
        assert etag(data) != response.headers["ETag"].strip('"')
        app.config["SECRET_KEY"] = mine
    assert sha(data)[:32] not in response.headers["ETag"]
    again = client.get(f"/images/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and not again.data


def test_key_images_keys_a_study_imported_before_and_its_copies(
    app: Flask, runner: FlaskCliRunner, client: FlaskClient, bundle_dir: Path, reader, login
) -> None:
    replace_neighbour_images(bundle_dir, [jpeg_bytes(11, WIDE)])
    with app.app_context():
        study, _ = import_bundle(bundle_dir, "Old", app.config["STUDY_IMAGES"])
        # As imported before keying: plain re-encodings in <digest[:16]>/.
        old = Path(app.config["STUDY_IMAGES"]) / study.bundle_digest[:16]
        old.mkdir()
        for path in (bundle_dir / "images").glob("*.jpg"):
            (old / served_name(path.name)).write_bytes(reencode(path))
        plain = served_files(old)
        study.image_folder = str(old)
        copy = copy_study(study, "Old, copied")
        db.session.commit()
        study_id, copy_id = study.id, copy.id
    result = runner.invoke(args=["study", "key-images", str(study_id)])
    assert result.exit_code == 0, result.output
    assert not old.exists()
    with app.app_context():
        folders = {db.session.get(Study, i).image_folder for i in (study_id, copy_id)}
    assert folders == {str(old) + KEYED_SUFFIX}
    keyed = served_files(Path(folders.pop()))
    assert set(plain) < set(keyed)  # the same names, and the thumbnails of the wide image
    assert all(keyed[name] != data for name, data in plain.items())
    again = runner.invoke(args=["study", "key-images", str(copy_id)])
    assert again.exit_code == 0 and "keyed already" in again.output
    missing = runner.invoke(args=["study", "key-images", "999"])
    assert missing.exit_code != 0 and "There is no study 999" in missing.output


# ---------------------------------------------------------------- only pixels survive


def fill_variants(data: bytes) -> dict[str, bytes]:
    """PAYLOAD in a comment or an APPn segment behind a fill byte (FF FF FE ...): the
    bundle's metadata check reads the fill byte as a marker and skips what follows."""
    soi, rest = data[:2], data[2:]
    markers = {"COM": 0xFE, **{f"APP{n}": 0xE0 + n for n in range(16)}}
    return {
        f"a fill byte before {label}": soi + b"\xff" + segment(marker, PAYLOAD) + rest
        for label, marker in markers.items()
    }


def test_a_comment_behind_a_fill_byte_is_not_re_encoded(tmp_path: Path) -> None:
    original = jpeg_bytes(5, WIDE)
    for label, data in fill_variants(original).items():
        (tmp_path / "in.jpg").write_bytes(data)
        assert_clean(reencode(tmp_path / "in.jpg"), original, label)


def test_no_segment_but_the_pixels_survives_import_in_images_or_thumbnails(
    app: Flask, client: FlaskClient, bundle_dir: Path, tmp_path: Path
) -> None:
    original = jpeg_bytes(6, WIDE)
    variants = {**jpeg_variants(original), **fill_variants(original)}
    del variants["APP13"]  # the bundle check refuses this one (IPTC)
    queries = read_queries(bundle_dir)
    slots = [item for query in queries for item in query["neighbours"]]
    assert len(slots) >= len(variants)
    planted = {}
    for (label, data), neighbour in zip(variants.items(), slots, strict=False):
        assert PAYLOAD in data
        neighbour["image"] = planted[label] = store(bundle_dir, data)
    write_queries(bundle_dir, queries)
    with app.app_context():
        study, _ = import_bundle(bundle_dir, "Variants", tmp_path / "served")
        folder = Path(study.image_folder)
        names = {label: served_name(ref.removeprefix("images/")) for label, ref in planted.items()}
    for label, name in names.items():
        assert_clean((folder / name).read_bytes(), original, label)
        small = thumbnail_path(folder, name, WIDTHS[0]).read_bytes()
        assert PAYLOAD not in small, label
        assert set(segments_before_scan(small)) <= PLAIN_SEGMENTS, label
    for data in served_files(folder).values():
        assert PAYLOAD not in data
        assert set(segments_before_scan(data)) <= PLAIN_SEGMENTS and data.endswith(b"\xff\xd9")
