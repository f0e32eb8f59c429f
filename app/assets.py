"""Static files for a slow line: versioned URLs kept by browsers for a year, text compressed.

`url_for("static", filename=...)` adds `?v=<digest of the file>`: a changed file gets a new
URL, so a response to the current URL may be cached as immutable, and a repeat visit asks
for none of them again. CSS and JavaScript go out compressed (Flask-Compress; gzip, or zstd
and brotli where the browser offers them). HTML is not: a page holds the CSRF token, and
compressing secrets beside text an attacker can influence is what BREACH exploits.
"""

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, request, send_from_directory

from app.extensions import compress

# A year, the longest lifetime browsers honour; safe because the URL changes with the file.
IMMUTABLE = "public, max-age=31536000, immutable"
COMPRESSED_TYPES = ["text/css", "text/javascript", "application/javascript"]


@lru_cache(maxsize=256)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    """The first 12 hex digits of the file's SHA-256 (cached per path, mtime and size)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def version_of(static_folder: str, filename: str) -> str | None:
    """The version tag of a static file, or None when there is no such file."""
    root = Path(static_folder).resolve()
    path = (root / filename).resolve()
    if root not in path.parents or not path.is_file():
        return None
    stat = path.stat()
    return _digest(path, stat.st_mtime_ns, stat.st_size)


def register(app: Flask) -> None:
    """Version the static URLs, cache the current versions for a year, compress text."""
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED_TYPES)
    # Chromium offers only gzip and deflate over plain HTTP; keep gzip for streamed files too.
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["zstd", "br", "gzip", "deflate"])
    compress.init_app(app)
    folder = app.static_folder
    assert folder is not None

    @app.url_defaults
    def static_version(endpoint: str, values: dict[str, Any]) -> None:
        """Add ?v=<digest> to every URL of a static file."""
        if endpoint == "static" and "v" not in values:
            version = version_of(folder, values.get("filename", ""))
            if version is not None:
                values["v"] = version

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """The icon browsers ask for at the root whatever the page names (a 404 on every page
        otherwise); kept for a day."""
        return send_from_directory(folder, "img/favicon.ico", max_age=86400)

    @app.after_request
    def cache_static(response: Response) -> Response:
        """The current version of a static file may be kept for a year; any other URL of it
        (an old version, or none) is checked again each time, as Flask does by default."""
        if request.endpoint == "static" and response.status_code in (200, 304):
            filename = (request.view_args or {}).get("filename", "")
            if request.args.get("v") == version_of(folder, filename):
                response.headers["Cache-Control"] = IMMUTABLE
                response.expires = None
        return response
