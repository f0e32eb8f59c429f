"""Checks of a bundle's images: real metadata-free JPEGs named by their content hash."""

import hashlib
import io
from pathlib import Path
from typing import IO, Any

import numpy
import numpy.typing
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile, get_sampling

from studybundle.errors import BundleError
from studybundle.limits import (
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_JPEG_SCANS,
    METADATA_MARKERS,
    NAME_HEX,
    ROTATION_TOLERANCE,
)


def content_name(data: bytes) -> str:
    """The file name of an image in a bundle: a prefix of the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:NAME_HEX] + ".jpg"


def metadata_segment(data: bytes) -> str | None:
    """The name of the first metadata segment (EXIF/XMP, ICC, IPTC, comment) before the scan."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the header is over
            return None
        if marker in METADATA_MARKERS:
            return METADATA_MARKERS[marker]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        position += 2 + length
    return None


def scan_count(data: bytes) -> int:
    """How many scans a JPEG's bytes hold at most: its start-of-scan markers (FF DA).

    Counted without parsing, so that no layout of segments can hide a scan: entropy-coded
    data never holds FF DA (an FF there is followed by 00 or a restart marker), and every scan
    begins with it. Table or header bytes that happen to read FF DA can only raise the count.
    """
    return data.count(b"\xff\xda")


def check_image(path: Path) -> Image.Image:
    """A referenced image: a plain file, small, a real JPEG without metadata, named by its hash.

    Its decoding is bounded before it starts: the header's pixel count (MAX_IMAGE_PIXELS)
    bounds one pass over the image and the scan count (MAX_JPEG_SCANS) the passes, so a
    decompression bomb is refused by name instead of holding the import for minutes.
    """
    name = f"images/{path.name}"
    data = _read_referenced(path, name)
    _check_jpeg_bytes(data, path.stem, name)
    return _decode_bounded(data, name)


def _read_referenced(path: Path, name: str) -> bytes:
    """The bytes of a referenced image, read only once it is known to be a plain, small file:
    a symbolic link could point out of the bundle, and a huge file would fill memory."""
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{name} is referenced by queries.json but missing from the bundle")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise BundleError(f"{name} is larger than {MAX_IMAGE_BYTES // (1 << 20)} MB")
    return path.read_bytes()


def _check_jpeg_bytes(data: bytes, stem: str, name: str) -> None:
    """Check what the raw bytes alone can show, before any decoder sees them: a JPEG's
    signature, the content hash the name `stem` promises, no metadata, few enough scans."""
    if not data.startswith(b"\xff\xd8\xff"):
        raise BundleError(f"{name} is not a JPEG file")
    if not hashlib.sha256(data).hexdigest().startswith(stem):
        raise BundleError(f"{name} does not match its content hash (corrupted or renamed)")
    segment = metadata_segment(data)
    if segment is not None:
        raise BundleError(f"{name} carries metadata ({segment}); bundles must strip it")
    scans = scan_count(data)
    if scans > MAX_JPEG_SCANS:
        raise BundleError(
            f"{name} has {scans} scans; a bundle image may have at most {MAX_JPEG_SCANS} "
            "(a progressive JPEG is decoded once per scan: this many would take minutes). "
            "Save it again as a baseline JPEG."
        )


def _decode_bounded(data: bytes, name: str) -> Image.Image:
    """Decode checked JPEG bytes as RGB, refusing an oversized image from its header before
    the pixels are decoded; any decoder failure is the file's fault and named as such."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise BundleError(f"{name} is not a JPEG file")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise BundleError(f"{name} is larger than {MAX_IMAGE_PIXELS} pixels")
            image.load()
            converted: Image.Image = image.convert("RGB")
            return converted
    except (BundleError, MemoryError):  # out of memory: the importer's limit, not the file
        raise
    except Exception as exc:  # Pillow raises many kinds on a broken file
        raise BundleError(f"{name} is not a readable JPEG ({exc})") from None


# How a bundle's images are written (training.bundle does it; the leak audit repeats it, as
# anyone holding the public dataset and this code can): longest side `web_image_size`,
# Lanczos, baseline JPEG at this quality, Pillow's default 4:2:0 chroma.
BUNDLE_JPEG_QUALITY = 90


def web_sized(image: Image.Image, size: int) -> Image.Image:
    """`image` as RGB with its longest side `size` (Lanczos), as a bundle shows it."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return rgb if target == rgb.size else rgb.resize(target, Image.Resampling.LANCZOS)


def bundle_jpeg(pixels: numpy.typing.NDArray[numpy.uint8]) -> bytes:
    """A bundle image's bytes for RGB `pixels` (deterministic: the same pixels, the same bytes)."""
    return encode_pixels(
        Image.fromarray(numpy.ascontiguousarray(pixels), mode="RGB"),
        quality=BUNDLE_JPEG_QUALITY,
        optimize=False,
        progressive=False,
    )


def encode_pixels(image: Image.Image, **settings: Any) -> bytes:
    """A JPEG of `image`'s pixels and nothing else, written with the encoder `settings`.

    The pixels are copied into a fresh image first. Pillow's JPEG writer copies a decoded
    image's comment (`info["comment"]`) into the file it writes unless told otherwise, and a
    comment hidden behind a fill byte (FF FF FE ...) passes the metadata check: re-encoding
    the decoded image itself served `image_id=... dx=mel` to a reader. A fresh image has no
    `info`, and nothing but `settings` reaches the encoder, so no segment other than the
    JFIF header, tables, frame and scans is written, whatever the source held.
    """
    fresh = Image.frombytes(image.mode, image.size, image.tobytes())
    buffer = io.BytesIO()
    fresh.save(buffer, "JPEG", **settings)
    return buffer.getvalue()


def reencode(source: Path | IO[bytes]) -> bytes:
    """`source`'s pixels as a fresh JPEG that carries nothing else, looking like the original.

    Checking a JPEG for metadata segments can be fooled (APP3-APP15, fill bytes, a byte
    before APP1, comments between progressive scans, data after the end marker): decoding
    and encoding again (encode_pixels) keeps only the pixels. Quantisation tables and chroma
    subsampling are kept where Pillow can (an RGB or grey JPEG). Deterministic: what imports
    served before images were keyed (app.servedimages), and what the leak audit's attacker
    recomputes. `source` has passed check_image (a JPEG within MAX_IMAGE_PIXELS and
    MAX_JPEG_SCANS), so decoding it is bounded.
    """
    with Image.open(source) as image:
        image.load()
        if isinstance(image, JpegImageFile) and image.mode in ("RGB", "L"):
            return encode_pixels(image, qtables=image.quantization, subsampling=get_sampling(image))
        return encode_pixels(image.convert("RGB"), quality=95)


def check_rotation(upright: Image.Image, rotated: Image.Image, where: str) -> None:
    """`rotated` must be `upright` turned by 180 degrees (with JPEG's tolerance)."""
    if upright.size != rotated.size:
        raise BundleError(f"{where} has another size than its upright image")
    first = numpy.asarray(upright, dtype=numpy.int16)
    second = numpy.asarray(rotated, dtype=numpy.int16)
    turned = numpy.abs(second - first[::-1, ::-1]).mean()
    unturned = numpy.abs(second - first).mean()
    if turned >= max(ROTATION_TOLERANCE, unturned / 3):
        raise BundleError(f"{where} is not its image turned by 180 degrees")
