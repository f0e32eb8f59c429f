"""Findings of the attack on the running app (issue 15) that are not about one area: server
errors from odd input, request bodies and their limits, the dashboard's rate limit, idle
sessions, trusted hosts, and validation patterns that accepted a trailing newline."""

import io
import json
import tracemalloc
import weakref
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile
from sqlalchemy import select

import studybundle.validate as validate_module
from app.bundle import BundleError, extract_zip, import_bundle, served_name, validate_bundle
from app.extensions import db
from app.forms import EMAIL_PATTERN
from app.limits import SEEN
from app.models import Case, Neighbour, Study
from app.survey.presentation import HEX_COLOUR
from studybundle.images import reencode
from studybundle.limits import CASE_KEY, CLASS_CODE, COLOUR, HEX_ONLY, IMAGE_NAME, IMAGE_PATH
from studybundle.validate import _contains_any
from tests.app.bundle_factory import read_queries, store, write_queries
from tests.app.checks import zip_of
from tests.app.conftest import StudyRef, UserRef
from tests.app.jpeg import (
    PAYLOAD,
    PLAIN_SEGMENTS,
    assert_clean,
    jpeg_variants,
    segments_before_scan,
)

# ---------------------------------------------------------------- server errors from odd input


@pytest.mark.parametrize("value", ["sNaN", "-sNaN", "NaN", "Infinity", "-inf"])
def test_a_washout_that_is_not_a_number_is_a_form_error(
    client: FlaskClient, study: StudyRef, organiser: UserRef, login, value: str
) -> None:
    login(client, organiser)
    response = client.post(
        f"/admin/studies/{study.id}",
        data={"name": "Test study", "washout_hours": value, "information": ""},
    )
    assert response.status_code == 400 and "Enter a number." in response.text


def test_a_lone_surrogate_anywhere_in_the_manifest_is_refused(bundle_dir: Path) -> None:
    # It used to be stored from provenance.run and broke the study's settings page for good.
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["provenance"]["run"] = "run \ud800"
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="lone surrogate"):
        validate_bundle(bundle_dir)
    manifest["provenance"] = {"note\x00": "a NUL in a key"}
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="control character"):
        validate_bundle(bundle_dir)


def central_header(archive: bytes) -> int:
    """Where the first central directory entry starts."""
    return archive.find(b"PK\x01\x02")


def strong_encryption(archive: bytes) -> bytes:
    """The first member flagged as strongly encrypted (zipfile: NotImplementedError)."""
    data = bytearray(archive)
    data[central_header(archive) + 8] |= 0x40
    return bytes(data)


def directory_before_the_file(archive: bytes) -> bytes:
    """A central directory offset that points before the file (zipfile: ValueError on seek)."""
    data = bytearray(archive)
    end = archive.rfind(b"PK\x05\x06")
    data[end + 16 : end + 20] = (2**31).to_bytes(4, "little")
    return bytes(data)


def name_not_utf8(archive: bytes) -> bytes:
    """The first member's name flagged as UTF-8 but not UTF-8 (zipfile: UnicodeDecodeError)."""
    data = bytearray(archive)
    start = central_header(archive)
    data[start + 9] |= 0x08  # general purpose flag bit 11: the name is UTF-8
    data[start + 46] = 0xFF  # the first byte of the name
    return bytes(data)


@pytest.mark.parametrize("damage", [strong_encryption, directory_before_the_file, name_not_utf8])
def test_a_malformed_zip_is_refused_not_a_server_error(
    bundle_dir: Path, tmp_path: Path, damage
) -> None:
    archive = damage(zip_of(bundle_dir))
    into = tmp_path / "unpacked"
    into.mkdir()
    with pytest.raises(BundleError, match=r"not a valid \.zip"):
        extract_zip(io.BytesIO(archive), into)
    assert not [path for path in into.rglob("*") if path.is_file()]


def test_a_malformed_zip_upload_answers_400(
    client: FlaskClient, organiser: UserRef, bundle_dir: Path, login
) -> None:
    login(client, organiser)
    for damage in (strong_encryption, directory_before_the_file, name_not_utf8):
        upload = (io.BytesIO(damage(zip_of(bundle_dir))), "bundle.zip")
        response = client.post("/admin/studies/import", data={"name": "x", "upload": upload})
        assert response.status_code == 400 and "not a valid .zip" in response.text


# ---------------------------------------------------------------- request bodies


def test_an_anonymous_post_may_not_send_a_large_body(app: Flask, client: FlaskClient) -> None:
    limit = app.config["SMALL_BODY_BYTES"]
    for path in ("/login", "/admin/studies/import", "/invite/whatever"):
        response = client.post(
            path, data=b"x" * (limit + 1), content_type="application/octet-stream"
        )
        assert response.status_code == 413, path
    files = {"file": (io.BytesIO(b"x" * (limit + 1)), "big.bin")}
    assert client.post("/login", data=files).status_code == 413


def test_multipart_parts_do_not_reach_a_temporary_file_before_the_csrf_check(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # werkzeug spools a file part above 500 KB to a temporary file: none may be opened.
    import werkzeug.formparser

    opened: list[int] = []
    real = werkzeug.formparser.default_stream_factory

    def counting(*args, **kwargs):
        opened.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(werkzeug.formparser, "default_stream_factory", counting)
    app.config["WTF_CSRF_ENABLED"] = True
    files = {"upload": (io.BytesIO(b"x" * (8 << 20)), "bundle.zip"), "name": "x"}
    response = client.post("/admin/studies/import", data=files)
    assert response.status_code == 413 and not opened


def test_a_staff_upload_may_be_large(
    client: FlaskClient, organiser: UserRef, bundle_dir: Path, login, app: Flask
) -> None:
    app.config["SMALL_BODY_BYTES"] = 1000  # the bundle's zip is larger than that
    login(client, organiser)
    upload = (io.BytesIO(zip_of(bundle_dir)), "bundle.zip")
    response = client.post("/admin/studies/import", data={"name": "Big", "upload": upload})
    assert response.status_code == 302
    # The same size anywhere else is refused.
    assert client.post("/password", data={"current": "x" * 2000}).status_code == 413


# ---------------------------------------------------------------- the dashboard's rate limit


def test_one_organiser_cannot_reload_the_dashboard_without_end(
    app: Flask,
    client: FlaskClient,
    study: StudyRef,
    organiser: UserRef,
    admin: UserRef,
    login,
    clock,
) -> None:
    app.config["DASHBOARD_REQUESTS_PER_MINUTE"] = 5
    login(client, organiser)
    urls = [f"/dashboard/{study.id}/", f"/dashboard/{study.id}/export/responses"]
    statuses = [client.get(urls[n % 2]).status_code for n in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    # Counted per account: another organiser's or admin's pages are not slowed.
    other = app.test_client()
    login(other, admin)
    assert other.get(urls[0]).status_code == 200
    clock.advance(minutes=1, seconds=1)
    assert client.get(urls[0]).status_code == 200


# ---------------------------------------------------------------- sessions and hosts


def test_an_idle_session_is_logged_out(
    app: Flask, client: FlaskClient, organiser: UserRef, login
) -> None:
    login(client, organiser)
    assert client.get("/password").status_code == 200
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    with client.session_transaction() as session:
        session[SEEN] -= idle - 120  # used a little less than the idle time ago
    assert client.get("/password").status_code == 200
    with client.session_transaction() as session:
        session[SEEN] -= idle + 1
    response = client.get("/password")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_untrusted_hosts_are_refused_and_links_name_the_trusted_one(
    app: Flask, client: FlaskClient, study: StudyRef, organiser: UserRef, login
) -> None:
    app.config["TRUSTED_HOSTS"] = ["study.hospital.org"]
    app.config["PUBLIC_URL"] = "http://study.hospital.org"  # links start here, whatever the Host
    login_response = client.post(
        "/login",
        data={"email": organiser.email, "password": organiser.password},
        headers={"Host": "evil.example"},
    )
    assert login_response.status_code == 400
    base = "http://study.hospital.org"
    response = client.post(
        "/login",
        data={"email": organiser.email, "password": organiser.password},
        base_url=base,
    )
    assert response.status_code == 302
    page = client.post(
        f"/admin/studies/{study.id}/invitations",
        data={"email": "someone@example.org", "days": "3"},
        base_url=base,
    )
    assert page.status_code == 200 and "http://study.hospital.org/invite/" in page.text


@pytest.mark.parametrize(
    ("pattern", "good"),
    [
        (EMAIL_PATTERN, "name@hospital.org"),
        (IMAGE_NAME, "0" * 32 + ".jpg"),
        (IMAGE_PATH, "images/" + "0" * 32 + ".jpg"),
        (CASE_KEY, "0" * 16),
        (HEX_ONLY, "abc"),
        (COLOUR, "#aabbcc"),
        (CLASS_CODE, "SCC"),
        (HEX_COLOUR, "#aabbcc"),
    ],
)
def test_validation_patterns_refuse_a_trailing_newline(pattern, good: str) -> None:
    assert pattern.match(good)
    assert not pattern.match(good + "\n")


# ---------------------------------------------------------------- image names


def test_served_image_names_cannot_be_computed_without_the_deployments_secret(
    app: Flask, client: FlaskClient, study: StudyRef, reader: UserRef, bundle_cache, login
) -> None:
    bundle_names = {path.name for path in (bundle_cache[0] / "images").iterdir()}
    with app.app_context():
        rows = db.session.execute(select(Case.image, Case.image_rotated)).all()
        stored = {name for row in rows for name in row}
        stored |= set(db.session.scalars(select(Neighbour.image)))
        folder = Path(db.session.get(Study, study.id).image_folder)
        assert stored and not stored & bundle_names
        assert {path.name for path in folder.iterdir() if path.is_file()} == stored
        # Another deployment (another secret) would name the same image differently.
        some = sorted(bundle_names)[0]
        assert served_name(some) != served_name(some, secret="another deployment's key")
        assert served_name(some) in stored | {served_name(n) for n in bundle_names}
    login(client, reader)
    page = client.get(f"/survey/{study.id}/task/1/case/1").text
    assert not any(name.removesuffix(".jpg") in page for name in bundle_names)


@pytest.mark.parametrize("same", ["image_id", "image"])
def test_an_aid_image_that_is_a_query_image_is_refused(bundle_dir: Path, same: str) -> None:
    # A reader's Task 2 showed their own Task 1 case, labelled: by id, or by identical bytes.
    queries = read_queries(bundle_dir)
    queries[0]["neighbours"][2][same] = queries[5][same]
    write_queries(bundle_dir, queries)
    with pytest.raises(BundleError, match=r"queries\.json\[0\]\.neighbours\[2\] "):
        validate_bundle(bundle_dir)
    queries[0]["neighbours"][2][same] = queries[0][same]  # its own query's picture
    write_queries(bundle_dir, queries)
    with pytest.raises(BundleError, match="query"):
        validate_bundle(bundle_dir)


def test_an_image_beyond_screen_size_is_refused_before_it_is_decoded(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A few hundred kilobytes of JPEG can decode to hundreds of megabytes: the header decides.
    big = Image.new("RGB", (2049, 2049), (200, 120, 90))
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=10)
    queries = read_queries(bundle_dir)
    queries[1]["neighbours"][0]["image"] = store(bundle_dir, buffer.getvalue())
    write_queries(bundle_dir, queries)
    loads: list[int] = []
    real_load = JpegImageFile.load
    monkeypatch.setattr(
        JpegImageFile, "load", lambda self: loads.append(self.width) or real_load(self)
    )
    with pytest.raises(BundleError, match="larger than"):
        validate_bundle(bundle_dir)
    assert 2049 not in loads


def test_ids_hidden_in_file_names_are_found_without_comparing_every_pair() -> None:
    ids = {"0024306", "abcdef12"}
    lengths = sorted({len(i) for i in ids})
    assert _contains_any("ff0024306" + "0" * 23, ids, lengths)
    assert _contains_any("0" * 24 + "abcdef12", ids, lengths)
    assert not _contains_any("0" * 32, ids, lengths)


# ---------------------------------------------------------------- images re-encoded on import


def test_reencoding_keeps_only_the_pixels_of_every_variant(
    bundle_dir: Path, tmp_path: Path
) -> None:
    original = (bundle_dir / read_queries(bundle_dir)[1]["image"]).read_bytes()
    variants = jpeg_variants(original)
    assert len(variants) == 17
    for label, data in variants.items():
        assert PAYLOAD in data
        (tmp_path / "in.jpg").write_bytes(data)
        assert_clean(reencode(tmp_path / "in.jpg"), original, label)


def test_every_image_is_re_encoded_on_import(app: Flask, bundle_dir: Path, tmp_path: Path) -> None:
    queries = read_queries(bundle_dir)
    original = (bundle_dir / queries[1]["neighbours"][0]["image"]).read_bytes()
    variants = jpeg_variants(original)
    del variants["APP13"]  # the bundle check refuses this one (IPTC); the other 16 pass it
    planted = {}
    for index, (label, data) in enumerate(variants.items()):
        neighbour = queries[index % len(queries)]["neighbours"][index // len(queries)]
        neighbour["image"] = planted[label] = store(bundle_dir, data)
    write_queries(bundle_dir, queries)
    with app.app_context():
        study, created = import_bundle(bundle_dir, "Variants", tmp_path / "served")
        folder = Path(study.image_folder)
        assert created
        for label, reference in planted.items():
            served = (folder / served_name(reference.removeprefix("images/"))).read_bytes()
            assert_clean(served, original, label)
        # Every served file is a clean re-encoding, not only the planted ones.
        for path in folder.iterdir():
            data = path.read_bytes()
            assert set(segments_before_scan(data)) <= PLAIN_SEGMENTS and data.endswith(b"\xff\xd9")


# ---------------------------------------------------------------- import memory and disk


def test_a_queries_file_of_many_tiny_values_is_refused_before_it_is_parsed(
    bundle_dir: Path,
) -> None:
    # 20 MB of `{},`: under the size limit, but parsed it took gigabytes (issue 15).
    (bundle_dir / "queries.json").write_bytes(b"[" + b"{}," * (7 << 20) + b"{}]")
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="more than 1000000 JSON values") as refused:
            validate_bundle(bundle_dir)
        assert "class_neighbours=false" in str(refused.value)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # chunks of 1 MB counted, nothing parsed


def test_a_64_mb_queries_file_in_a_tiny_zip_is_refused_before_unpacking(
    bundle_dir: Path, tmp_path: Path
) -> None:
    (bundle_dir / "queries.json").write_bytes(b"[" + b"1," * (32 << 20) + b"1]")
    archive = zip_of(bundle_dir)
    assert len(archive) < 1 << 20
    with pytest.raises(BundleError, match="larger than 32 MB"):
        extract_zip(io.BytesIO(archive), tmp_path / "out")
    assert not any(path.is_file() for path in (tmp_path / "out").rglob("*"))


def test_a_zip_bomb_is_refused_before_it_reaches_the_disk(bundle_dir: Path, tmp_path: Path) -> None:
    # An image of zeros compresses a thousandfold: 8 MB from a few kilobytes (2.2 MB of such
    # members wrote 2 GB to /tmp).
    queries = read_queries(bundle_dir)
    fake = bundle_dir / queries[0]["neighbours"][0]["image"]
    fake.write_bytes(fake.read_bytes()[:4] + bytes(7 << 20))
    archive = zip_of(bundle_dir)
    with pytest.raises(BundleError, match="times its compressed size"):
        extract_zip(io.BytesIO(archive), tmp_path / "out")
    assert not any(path.is_file() for path in (tmp_path / "out").rglob("*"))


def test_decoded_images_are_held_one_query_at_a_time(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Holding every decoded image of a bundle (1355 in the demo) grew a worker by hundreds of MB.
    live, most = set(), [0]
    real = validate_module.check_image

    def counted(path: Path) -> Image.Image:
        image = real(path)
        live.add(id(image))
        weakref.finalize(image, live.discard, id(image))
        most[0] = max(most[0], len(live))
        return image

    monkeypatch.setattr(validate_module, "check_image", counted)
    bundle = validate_bundle(bundle_dir)
    assert len(bundle.images) > 60
    assert most[0] <= 4, most[0]  # a query's upright and rotated image (and overlay pair)
