"""Checks and payloads shared by the security tests: database dumps, .zip archives, redirect
targets and every route's requests."""

import io
import struct
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from flask import Flask

from app.extensions import db


def dump(app: Flask) -> dict[str, list[str]]:
    """Every row of every table, to compare the database before and after a request; but
    import_job, where every upload leaves the record of its progress and outcome."""
    with app.app_context():
        return {
            table.name: sorted(repr(tuple(row)) for row in db.session.execute(table.select()))
            for table in db.metadata.sorted_tables
            if table.name != "import_job"
        }


def zip_of(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """A bundle folder as .zip bytes (inside a top folder, as `zip -r` makes it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, "bundle/" + path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def declared_size(archive: bytes, member: str, size: int) -> bytes:
    """`archive` with `member`'s uncompressed size in both headers replaced by `size`."""
    data = bytearray(archive)
    name = member.encode()
    # Per header kind: its signature and the offsets of the name length, name and size.
    for signature, length_at, name_at, size_at in (
        (b"PK\x03\x04", 26, 30, 22),  # local file header
        (b"PK\x01\x02", 28, 46, 24),  # central directory entry
    ):
        start = data.find(signature)
        while start != -1:
            name_length = struct.unpack_from("<H", data, start + length_at)[0]
            if data[start + name_at : start + name_at + name_length] == name:
                struct.pack_into("<I", data, start + size_at, size)
            start = data.find(signature, start + 4)
    return bytes(data)


def files_under(folder: Path) -> list[Path]:
    """Every file below `folder` (none when it does not exist)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def stays_here(location: str) -> bool:
    """Whether a redirect target, as a browser resolves it, stays on this site."""
    if "\\" in location or any(ord(c) < 32 for c in location):
        return False
    resolved = urlsplit(urljoin("http://localhost/login", location))
    return resolved.scheme == "http" and resolved.netloc == "localhost"


def zipped(folder: Path, prefix: str = "study/") -> io.BytesIO:
    """The bundle folder as a .zip (inside a top folder, as `zip -r` makes it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + str(path.relative_to(folder)))
    buffer.seek(0)
    return buffer
