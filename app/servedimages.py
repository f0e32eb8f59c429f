"""The image files readers receive: unique to the deployment, by a keyed change of the pixels.

A bundle's JPEGs are made deterministically from public images (HAM10000, the seeded demo
set) by open code, and a plain re-encoding at import is deterministic too: anyone holding the
dataset and this repository can compute every file a reader will receive, and a table of
SHA-256 -> (image id, diagnosis) built in seconds identified every case and neighbour a reader
saw, in a deployment whose key the attacker did not have (issue 22). Keyed file names do not
help when the bytes are the same.

So every served file (case, turned case, saliency overlays, neighbours, and the thumbnails at
every width) is written at import as the image's pixels

- plus keyed noise: each channel of each pixel moves by -2 to +2 grey levels, drawn from a
  generator seeded by an HMAC of the deployment's SECRET_KEY and the image's served name.
  That is below what the eye sees (on the demo's data the keyed files measure 46 dB PSNR or
  more against the bundle's image, benchmarks/served_images.py), but it changes quantised
  coefficients throughout the image: the bytes are the deployment's own.
- encoded with keyed settings: the source's quantisation tables scaled by a factor from
  QUALITY_SCALES (never coarser than the source) and Huffman tables either standard or
  optimised, both chosen by the same HMAC. A file's size then depends on the key as well as
  the pixels, so Content-Length no longer points to one public image.

Without SECRET_KEY, none of this can be recomputed, and two deployments serve different bytes
for every image. What the keying does not hide is the picture itself: a perceptual hash still
matches it to the public image (app.leakaudit measures it; docs/deployment.md says what an
organiser can do about it).

Keyed images live in folders named `<bundle digest[:16]>-keyed` (KEYED_SUFFIX), so a study
imported before keying is told apart: `flask study key-images STUDY` keys its images into
such a folder.
"""

import hashlib
import hmac
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy
from flask import current_app
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile, get_sampling

from studybundle.images import encode_pixels

KEYED_SUFFIX = "-keyed"
THUMBNAILS = "thumbnails"
# Widths a page may ask for with ?w= (a similar image's tile is about 110-210 CSS px wide):
# a right-sized copy loads in a quarter of the time on a slow line. Made at import.
WIDTHS = (240,)
NOISE_LEVELS = 2  # each channel moves by at most this many grey levels
# The source's quantisation tables times one of these (1.0: the same tables; smaller: finer).
QUALITY_SCALES = (0.8, 0.85, 0.9, 0.95, 1.0)
FALLBACK_QUALITY = 95  # for a source without usable tables (not an RGB or grey JPEG)


def deployment_key(purpose: bytes, secret: str | None = None) -> bytes:
    """A key for one purpose, derived from the deployment's SECRET_KEY (or `secret`)."""
    secret_bytes = (secret or current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret_bytes, purpose, hashlib.sha256).digest()


def _image_key(name: str, secret: str | None) -> bytes:
    """The keyed digest that decides an image file's noise and encoder settings."""
    key = deployment_key(b"secbir served image keying", secret)
    return hmac.new(key, name.encode(), hashlib.sha256).digest()


def keyed_pixels(image: Image.Image, digest: bytes) -> Image.Image:
    """`image` (RGB or L) with keyed noise of at most NOISE_LEVELS grey levels per channel."""
    pixels = numpy.asarray(image)
    generator = numpy.random.Generator(numpy.random.PCG64(int.from_bytes(digest, "big")))
    noisy = generator.integers(-NOISE_LEVELS, NOISE_LEVELS + 1, pixels.shape, dtype=numpy.int16)
    noisy += pixels
    numpy.clip(noisy, 0, 255, out=noisy)
    return Image.fromarray(noisy.astype(numpy.uint8), mode=image.mode)


def keyed_settings(reference: Image.Image, digest: bytes) -> dict[str, Any]:
    """JPEG encoder settings chosen by `digest`, starting from `reference`'s own tables."""
    optimize = bool(digest[1] & 1)
    if not (isinstance(reference, JpegImageFile) and reference.mode in ("RGB", "L")):
        return {"quality": FALLBACK_QUALITY, "optimize": optimize}
    scale = QUALITY_SCALES[digest[0] % len(QUALITY_SCALES)]
    tables = [
        [min(255, max(1, round(value * scale))) for value in table]
        for _, table in sorted(reference.quantization.items())
    ]
    return {"qtables": tables, "subsampling": get_sampling(reference), "optimize": optimize}


def keyed_jpeg(
    pixels: Image.Image, reference: Image.Image, name: str, secret: str | None = None
) -> bytes:
    """The served bytes of `pixels` under the served name `name` (a thumbnail's name carries
    its width), encoded like the decoded JPEG `reference` give or take the keyed settings."""
    digest = _image_key(name, secret)
    plain = pixels if pixels.mode in ("RGB", "L") else pixels.convert("RGB")
    return encode_pixels(keyed_pixels(plain, digest), **keyed_settings(reference, digest))


def write_file(target: Path, data: bytes) -> None:
    """Write under a temporary name and rename: a concurrent request never reads half a file."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def thumbnail_path(folder: Path, name: str, width: int) -> Path:
    """Where the copy of image `name` that is `width` px wide is kept."""
    return folder / THUMBNAILS / f"{Path(name).stem}-w{width}.jpg"


def _write_thumbnail(
    served: Image.Image, folder: Path, name: str, width: int, secret: str | None
) -> None:
    """Key a `width` px wide copy of the decoded served image `served` (wider than `width`)."""
    height = max(1, round(served.height * width / served.width))
    small = served.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    target = thumbnail_path(folder, name, width)
    target.parent.mkdir(exist_ok=True)
    write_file(target, keyed_jpeg(small, served, f"{Path(name).stem}-w{width}", secret))


def key_image(source: Path, folder: Path, name: str, secret: str | None = None) -> None:
    """Write the keyed copy of the JPEG `source` as `folder/name`, and its thumbnails.

    `source` has passed studybundle.images.check_image (a JPEG within the pixel and scan
    bounds), so decoding it is bounded. Only its pixels reach the new file (encode_pixels).
    """
    with Image.open(source) as image:
        image.load()
        data = keyed_jpeg(image, image, name, secret)
    write_file(folder / name, data)
    with Image.open(io.BytesIO(data)) as served:
        served.load()
        for width in WIDTHS:
            if served.width > width:
                _write_thumbnail(served, folder, name, width, secret)


def thumbnail(path: Path, width: int) -> Path:
    """The keyed copy of the served image `path` that is `width` px wide (the image itself if
    it is not wider). Made at import; made here for a width added since."""
    target = thumbnail_path(path.parent, path.name, width)
    if target.is_file():
        return target
    with Image.open(path) as served:
        if served.width <= width:
            return path
        served.load()
        _write_thumbnail(served, path.parent, path.name, width, None)
    return target


def etag(data: bytes) -> str:
    """A served file's ETag: a keyed hash of its bytes (a plain one could be looked up)."""
    key = deployment_key(b"secbir served image etags")
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


def keyed_folder(folder: Path) -> Path:
    """The folder that holds the keyed copies of the images of `folder` (itself if keyed)."""
    return (
        folder
        if folder.name.endswith(KEYED_SUFFIX)
        else folder.with_name(folder.name + KEYED_SUFFIX)
    )


def key_folder(source: Path, secret: str | None = None) -> Path:
    """Key every image of the unkeyed folder `source` into keyed_folder(source); its path.

    Staged beside it and renamed into place when complete; an existing keyed folder (the same
    bundle imported since, under the same key) is kept as it is.
    """
    target = keyed_folder(source)
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".keying-", dir=source.parent))
    try:
        for path in sorted(source.glob("*.jpg"), key=lambda item: item.name):
            key_image(path, staging, path.name, secret)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
