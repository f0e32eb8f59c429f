"""Unpacking an uploaded bundle .zip safely: only the bundle's layout, within its limits."""

import errno
import os
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from studybundle.errors import BundleError
from studybundle.limits import (
    MAX_COMPRESSION_RATIO,
    MAX_IMAGE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_QUERIES_BYTES,
    MAX_ZIP_BYTES,
    MAX_ZIP_DIRECTORY_BYTES,
    MAX_ZIP_MEMBERS,
    SUPPORTED_COMPRESSION,
)

UNPACK_CHUNK = 1 << 20
# The records at the end of a .zip (APPNOTE.TXT 4.3.12-4.3.16), as zipfile reads them.
END_RECORD = struct.Struct("<4s4H2LH")  # signature, disks, entries, directory size and offset
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 record, disks
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # ..., entries, directory size and offset
CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # fixed part; name, extra, comment follow
TOO_MANY_MEMBERS = "The .zip holds too many files to be a study bundle."


def _megabytes(limit: int) -> str:
    """A byte limit in whole megabytes, for messages."""
    return f"{limit // (1 << 20)} MB"


def _is_archiver_litter(path: PurePosixPath) -> bool:
    """Files that archivers add on their own (macOS Finder): skipped, never unpacked."""
    return "__MACOSX" in path.parts or path.name == ".DS_Store"


def _bundle_root(members: list[zipfile.ZipInfo]) -> PurePosixPath:
    """The folder inside the .zip that holds manifest.json (the shallowest one)."""
    manifests = [
        PurePosixPath(member.filename)
        for member in members
        if not member.is_dir() and PurePosixPath(member.filename).name == "manifest.json"
    ]
    if not manifests:
        raise BundleError("The .zip holds no manifest.json: zip the bundle folder itself.")
    depth = min(len(path.parts) for path in manifests)
    shallowest = [path for path in manifests if len(path.parts) == depth]
    if len(shallowest) > 1:
        raise BundleError("The .zip holds several bundles side by side: zip one bundle folder.")
    return shallowest[0].parent


def _member_limit(member: zipfile.ZipInfo, root: PurePosixPath) -> int | None:
    """The most bytes `member` may unpack to; None for a folder of the layout.

    BundleError for anything that is not part of a bundle (docs/bundle.md): only
    manifest.json, queries.json and images/<file> below the bundle's folder.
    """
    path = PurePosixPath(member.filename)
    relative = (
        path.parts[len(root.parts) :] if path.parts[: len(root.parts)] == root.parts else None
    )
    if member.is_dir():
        if path.parts == root.parts[: len(path.parts)] or relative in ((), ("images",)):
            return None
    elif relative == ("manifest.json",):
        return MAX_MANIFEST_BYTES
    elif relative == ("queries.json",):
        return MAX_QUERIES_BYTES
    elif relative is not None and len(relative) == 2 and relative[0] == "images":
        return MAX_IMAGE_BYTES
    raise BundleError(
        f"The .zip holds {member.filename!r}, which is not part of a study bundle "
        "(only manifest.json, queries.json and images/)."
    )


def _end_record(archive: Any) -> tuple[int, int, int]:
    """(members declared, directory size, where the directory starts), read from the end
    record and zip64's when there is one, found where zipfile looks for them."""
    archive.seek(0, os.SEEK_END)
    size = archive.tell()
    archive.seek(max(0, size - (1 << 16) - END_RECORD.size))
    tail = archive.read()
    found = len(tail) - END_RECORD.size  # first try: no archive comment
    if found < 0 or not tail.startswith(b"PK\x05\x06", found) or tail[-2:] != b"\0\0":
        found = tail.rfind(b"PK\x05\x06")
    if found < 0 or len(tail) - found < END_RECORD.size:
        raise zipfile.BadZipFile("no end of central directory record")
    at = size - len(tail) + found
    *_, members, directory, _, _ = END_RECORD.unpack_from(tail, found)
    zip64_at = at - ZIP64_LOCATOR.size - ZIP64_END_RECORD.size
    if zip64_at >= 0:
        archive.seek(zip64_at)
        records = archive.read(ZIP64_END_RECORD.size + ZIP64_LOCATOR.size)
        locator = records[ZIP64_END_RECORD.size :]
        if records.startswith(b"PK\x06\x06") and locator.startswith(b"PK\x06\x07"):
            *_, members64, directory, _ = ZIP64_END_RECORD.unpack_from(records)
            return max(members, members64), directory, zip64_at - directory
    return members, directory, at - directory


def _check_directory(archive: Any) -> None:
    """Count the .zip's members from its end record and directory before zipfile lists them.

    zipfile.ZipFile builds an object per member (a directory of a million entries took a
    worker from 147 to 609 MB and 36 s) and trusts neither the declared count nor a bound on
    the directory: it reads the whole directory at once and parses every entry in it. So the
    declared count, the directory's size and the entries really in it are all checked first,
    reading 46 bytes at a time.
    """
    declared, size, start = _end_record(archive)
    if declared > MAX_ZIP_MEMBERS:
        raise BundleError(TOO_MANY_MEMBERS)
    if size > MAX_ZIP_DIRECTORY_BYTES:
        raise BundleError(
            f"The .zip's directory is larger than {_megabytes(MAX_ZIP_DIRECTORY_BYTES)}: "
            "too many or too long file names for a study bundle."
        )
    if start < 0:
        raise zipfile.BadZipFile("bad offset for central directory")
    archive.seek(start)
    walked = members = 0
    while walked < size:
        entry = archive.read(CENTRAL_ENTRY.size)
        if len(entry) != CENTRAL_ENTRY.size or not entry.startswith(b"PK\x01\x02"):
            raise zipfile.BadZipFile("truncated or bad central directory")
        name, extra, comment = CENTRAL_ENTRY.unpack(entry)[12:15]
        archive.seek(name + extra + comment, os.SEEK_CUR)
        walked += CENTRAL_ENTRY.size + name + extra + comment
        members += 1
        if members > MAX_ZIP_MEMBERS:
            raise BundleError(TOO_MANY_MEMBERS)
    archive.seek(0)


def _check_members(
    members: list[zipfile.ZipInfo],
) -> tuple[PurePosixPath, list[tuple[zipfile.ZipInfo, int | None]]]:
    """Check every member from the .zip's directory alone: the bundle's folder, and what to
    unpack with the most bytes each may hold (None for a folder)."""
    _check_totals(members)
    for member in members:
        _check_path(member)
    wanted = [m for m in members if not _is_archiver_litter(PurePosixPath(m.filename))]
    root = _bundle_root(wanted)
    planned = []
    for member in wanted:
        limit = _member_limit(member, root)
        _check_entry(member, limit)
        planned.append((member, limit))
    return root, planned


def _check_totals(members: list[zipfile.ZipInfo]) -> None:
    """Refuse a .zip with too many members or too many bytes in all, before looking at any
    one: these bounds hold whatever the members are."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise BundleError(TOO_MANY_MEMBERS)
    if sum(member.file_size for member in members) > MAX_ZIP_BYTES:
        raise BundleError(f"The .zip unpacks to more than {MAX_ZIP_BYTES >> 30} GB.")


def _check_path(member: zipfile.ZipInfo) -> None:
    """Refuse a member that could land outside the folder it is unpacked into: an absolute
    or climbing path, a backslash (a separator on Windows), or a symbolic link."""
    path = PurePosixPath(member.filename)
    if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
        raise BundleError(f"The .zip holds an unsafe path: {member.filename!r}.")
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        raise BundleError(f"The .zip holds a symbolic link: {member.filename!r}.")


def _check_entry(member: zipfile.ZipInfo, limit: int | None) -> None:
    """Refuse a member that is larger than a bundle file of its kind may be (`limit`, None
    for a folder), compressed suspiciously well (a zip bomb), or that zipfile cannot read."""
    if limit is not None and member.file_size > limit:
        name = PurePosixPath(member.filename).name
        raise BundleError(f"{name} in the .zip is larger than {_megabytes(limit)}.")
    if member.file_size > 1 << 20 and member.file_size > MAX_COMPRESSION_RATIO * max(
        member.compress_size, 1
    ):
        raise BundleError(
            f"{member.filename!r} in the .zip unpacks to more than {MAX_COMPRESSION_RATIO} "
            "times its compressed size: not a bundle file (a zip bomb?)."
        )
    if member.flag_bits & 0x1:
        raise BundleError(f"The .zip holds an encrypted file: {member.filename!r}.")
    if member.compress_type not in SUPPORTED_COMPRESSION:
        raise BundleError(f"The .zip uses a compression this app cannot read: {member.filename!r}.")


def _unpack(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int, target: Path) -> None:
    """Unpack one file, counting the bytes really read: declared sizes can lie."""
    allowed = min(limit, member.file_size)
    written = 0
    with zipped.open(member) as source, target.open("wb") as sink:
        while chunk := source.read(UNPACK_CHUNK):
            written += len(chunk)
            if written > allowed:
                raise BundleError(
                    f"{PurePosixPath(member.filename).name} in the .zip unpacks to more than "
                    "its declared size."
                )
            sink.write(chunk)


def extract_zip(archive: Any, into: Path) -> Path:
    """Unpack an uploaded bundle .zip safely; the folder that holds manifest.json.

    Everything is checked from the .zip's directory before a byte is unpacked (how many
    members, counted before zipfile lists them; paths, the bundle layout, each file's size
    against the largest a bundle file may have, the total); while unpacking, the bytes
    actually read are bounded too. A refusal leaves nothing behind.
    """
    created: list[Path] = []
    try:
        _check_directory(archive)
        with zipfile.ZipFile(archive) as zipped:
            root, planned = _check_members(zipped.infolist())
            for member, limit in planned:
                target = into.joinpath(*PurePosixPath(member.filename).parts)
                if limit is None:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                created.append(target)
                _unpack(zipped, member, limit, target)
    except BundleError:
        _remove(created)
        raise
    # Also a truncated or corrupted member, offsets that point nowhere (ValueError from seek),
    # encryption or a compression method zipfile does not implement.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ):
        _remove(created)
        raise BundleError("The upload is not a valid .zip file.") from None
    except OSError as problem:
        _remove(created)
        if problem.errno == errno.EINVAL:  # an offset that points before the file's start
            raise BundleError("The upload is not a valid .zip file.") from None
        raise
    except BaseException:
        _remove(created)
        raise
    return into.joinpath(*root.parts)


def _remove(paths: list[Path]) -> None:
    """Delete files unpacked before a refusal."""
    for path in paths:
        path.unlink(missing_ok=True)
