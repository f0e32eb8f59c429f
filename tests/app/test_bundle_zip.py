"""Unpacking an uploaded bundle .zip: only a bundle's layout, each file within the size a
bundle file may have, checked from the .zip's directory before anything is unpacked, and the
bytes actually read bounded while unpacking."""

import io
import zipfile
from pathlib import Path

import pytest

from app.bundle import BundleError, extract_zip, validate_bundle
from studybundle.limits import MAX_IMAGE_BYTES
from tests.app.bundle_factory import make_bundle
from tests.app.test_security import declared_size, files_under


def zip_bytes(
    folder: Path, prefix: str = "bundle/", extra: dict[str, bytes] | None = None
) -> bytes:
    """`folder` as .zip bytes under `prefix`, plus extra members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A small valid bundle folder."""
    return make_bundle(tmp_path / "b", cases=3, seed=31, pool=8)


@pytest.mark.parametrize("prefix", ["bundle/", "", "outer/inner/"])
def test_a_bundle_unpacks_whatever_its_top_folder(
    bundle: Path, tmp_path: Path, prefix: str
) -> None:
    folder = extract_zip(io.BytesIO(zip_bytes(bundle, prefix)), tmp_path / "out")
    assert folder == (tmp_path / "out").joinpath(*prefix.split("/")[:-1])
    assert validate_bundle(folder).digest == validate_bundle(bundle).digest


def test_archiver_litter_is_skipped(bundle: Path, tmp_path: Path) -> None:
    litter = {"__MACOSX/bundle/._manifest.json": b"x", "bundle/.DS_Store": b"y"}
    folder = extract_zip(io.BytesIO(zip_bytes(bundle, extra=litter)), tmp_path / "out")
    validate_bundle(folder)
    assert not (tmp_path / "out" / "__MACOSX").exists()
    assert not (folder / ".DS_Store").exists()


@pytest.mark.parametrize(
    "member",
    [
        "bundle/notes.txt",
        "bundle/images/sub/deeper.jpg",
        "bundle/other/manifest.json",
        "elsewhere.bin",
        "bundle/extra/",
    ],
)
def test_a_member_outside_the_layout_is_refused_before_unpacking(
    bundle: Path, tmp_path: Path, member: str
) -> None:
    with pytest.raises(BundleError, match="not part of a study bundle"):
        extract_zip(io.BytesIO(zip_bytes(bundle, extra={member: b""})), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_two_bundles_side_by_side_are_refused(bundle: Path, tmp_path: Path) -> None:
    twice = zip_bytes(bundle, extra={"second/manifest.json": b"{}"})
    with pytest.raises(BundleError, match="several bundles"):
        extract_zip(io.BytesIO(twice), tmp_path / "out")


@pytest.mark.parametrize(
    "name, size, message",
    [
        ("bundle/manifest.json", (1 << 20) + 1, "manifest.json in the .zip is larger than 1 MB"),
        ("bundle/queries.json", (32 << 20) + 1, "queries.json in the .zip is larger than 32 MB"),
        ("IMAGE", MAX_IMAGE_BYTES + 1, "in the .zip is larger than 8 MB"),
    ],
)
def test_a_declared_size_beyond_a_bundle_files_limit_is_refused_unopened(
    bundle: Path, tmp_path: Path, name: str, size: int, message: str
) -> None:
    if name == "IMAGE":
        name = "bundle/images/" + sorted((bundle / "images").iterdir())[0].name
    forged = declared_size(zip_bytes(bundle), name, size)
    with pytest.raises(BundleError, match=message):
        extract_zip(io.BytesIO(forged), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_an_image_larger_than_it_claims_stops_unpacking_and_leaves_nothing(
    bundle: Path, tmp_path: Path
) -> None:
    # A zip bomb inside the layout that under-declares its size: reading stops at the claim.
    bomb = "bundle/images/" + "0" * 32 + ".jpg"
    forged = declared_size(zip_bytes(bundle, extra={bomb: bytes(4 << 20)}), bomb, 100)
    with pytest.raises(BundleError):
        extract_zip(io.BytesIO(forged), tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_an_encrypted_member_is_refused(bundle: Path, tmp_path: Path) -> None:
    data = bytearray(zip_bytes(bundle))
    # Set the "encrypted" flag of every member in the central directory.
    position = data.find(b"PK\x01\x02")
    while position != -1:
        data[position + 8] |= 0x1
        position = data.find(b"PK\x01\x02", position + 4)
    with pytest.raises(BundleError, match="encrypted"):
        extract_zip(io.BytesIO(bytes(data)), tmp_path / "out")
    assert files_under(tmp_path / "out") == []
