"""Unpacking an uploaded bundle .zip: only a bundle's layout, each file within the size a
bundle file may have, checked from the .zip's directory before anything is unpacked, and the
bytes actually read bounded while unpacking."""

import contextlib
import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import studybundle.archive as archive_module
from app.bundle import BundleError, extract_zip, validate_bundle
from studybundle.limits import MAX_IMAGE_BYTES, MAX_ZIP_MEMBERS
from tests.app.bundle_factory import make_bundle
from tests.app.checks import declared_size, files_under


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


# ---------------------------------------------------------------- the directory, before zipfile

# The .zip format's records (APPNOTE.TXT 4.3.12-4.3.16), restated.
END_RECORD = struct.Struct("<4s4H2LH")
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")


def with_zip64_records(data: bytes) -> bytes:
    """`data` with zip64 end records (as a tool writes them for a large .zip) before its end
    record, declaring what the end record declares."""
    at = data.rfind(b"PK\x05\x06")
    *_, members, size, offset, _ = END_RECORD.unpack_from(data, at)
    record = ZIP64_END_RECORD.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, members, members, size, offset)
    locator = ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, at, 1)
    return data[:at] + record + locator + data[at:]


def folders_only_zip(members: int, declared: int | None = None, zip64: bool = False) -> bytes:
    """A .zip whose directory lists `members` empty folders, its end record declaring
    `declared` of them (default: the truth), with zip64 records if asked. Written directly:
    zipfile takes many seconds for a large one."""
    entries = [
        CENTRAL_ENTRY.pack(
            b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0x10, 0
        )
        + name
        for name in (f"d{number}/".encode() for number in range(members))
    ]
    directory = b"".join(entries)
    count = members if declared is None else declared
    end = END_RECORD.pack(
        b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(directory), 0, 0
    )
    data = directory + end
    if zip64:
        data = with_zip64_records(data)
        at = data.rfind(b"PK\x06\x06")
        record = bytearray(data[at : at + ZIP64_END_RECORD.size])
        record[24:40] = struct.pack("<2Q", count, count)
        data = data[:at] + bytes(record) + data[at + ZIP64_END_RECORD.size :]
    return data


def peak_memory(action: Callable[[], object]) -> int:
    """The most bytes Python held at once while `action` ran."""
    tracemalloc.start()
    try:
        with contextlib.suppress(BundleError):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_too_many_members_are_refused_from_the_end_record_before_listing(
    tmp_path: Path,
) -> None:
    # A 51 MB .zip of a million folders grew a worker by 460 MB while zipfile listed it,
    # before the member count was checked. Here zip64's record declares a million members
    # for a directory of three: read from the end record, it is refused without listing.
    forged = folders_only_zip(3, declared=1_000_000, zip64=True)
    with pytest.raises(BundleError, match="too many files"):
        extract_zip(io.BytesIO(forged), tmp_path / "out")


def test_a_directory_longer_than_declared_is_counted_in_little_memory(tmp_path: Path) -> None:
    # zipfile trusts no count: it parses every entry in the directory. The end record here
    # declares one member for a directory of MAX_ZIP_MEMBERS + 1.
    archive = io.BytesIO(folders_only_zip(MAX_ZIP_MEMBERS + 1, declared=1))
    with pytest.raises(BundleError, match="too many files"):
        extract_zip(archive, tmp_path / "out")
    archive.seek(0)
    assert peak_memory(lambda: extract_zip(archive, tmp_path / "out")) < 4 << 20
    assert files_under(tmp_path / "out") == []


def test_an_oversized_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "MAX_ZIP_DIRECTORY_BYTES", 1 << 20)
    with pytest.raises(BundleError, match="directory is larger than 1 MB"):
        extract_zip(io.BytesIO(folders_only_zip(20000)), tmp_path / "out")


@pytest.mark.parametrize("variant", ["comment", "data before it", "zip64 records"])
def test_the_end_record_is_found_where_zipfile_finds_it(
    bundle: Path, tmp_path: Path, variant: str
) -> None:
    data = zip_bytes(bundle)
    if variant == "comment":
        data = data[:-2] + struct.pack("<H", 14) + b"made by a tool"
    elif variant == "data before it":
        data = b"#!/bin/sh\nexit 0\n" + data  # as a self-extracting archive starts
    else:
        data = with_zip64_records(data)
    folder = extract_zip(io.BytesIO(data), tmp_path / "out")
    assert validate_bundle(folder).digest == validate_bundle(bundle).digest
