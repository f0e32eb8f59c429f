"""Unpacking an uploaded bundle .zip safely: only the bundle's layout, within its limits."""

import errno
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
    MAX_ZIP_MEMBERS,
    SUPPORTED_COMPRESSION,
)

UNPACK_CHUNK = 1 << 20


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


def _check_members(
    members: list[zipfile.ZipInfo],
) -> tuple[PurePosixPath, list[tuple[zipfile.ZipInfo, int | None]]]:
    """Check every member from the .zip's directory alone: the bundle's folder, and what to
    unpack with the most bytes each may hold (None for a folder)."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise BundleError("The .zip holds too many files to be a study bundle.")
    if sum(member.file_size for member in members) > MAX_ZIP_BYTES:
        raise BundleError(f"The .zip unpacks to more than {MAX_ZIP_BYTES >> 30} GB.")
    for member in members:
        path = PurePosixPath(member.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
            raise BundleError(f"The .zip holds an unsafe path: {member.filename!r}.")
        if (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise BundleError(f"The .zip holds a symbolic link: {member.filename!r}.")
    wanted = [m for m in members if not _is_archiver_litter(PurePosixPath(m.filename))]
    root = _bundle_root(wanted)
    planned = []
    for member in wanted:
        limit = _member_limit(member, root)
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
            raise BundleError(
                f"The .zip uses a compression this app cannot read: {member.filename!r}."
            )
        planned.append((member, limit))
    return root, planned


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

    Everything is checked from the .zip's directory before a byte is unpacked (paths, the
    bundle layout, each file's size against the largest a bundle file may have, the total);
    while unpacking, the bytes actually read are bounded too. A refusal leaves nothing behind.
    """
    created: list[Path] = []
    try:
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
