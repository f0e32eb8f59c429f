"""JPEG segments and variants for the tests of re-encoded images: what a served image may keep of
an uploaded one."""

import io

import numpy
from PIL import Image

PAYLOAD = b"ISIC_0024306 nv secret"


def segment(marker: int, body: bytes) -> bytes:
    """One JPEG marker segment: FF, the marker, the length (counting itself), the body."""
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


def progressive(data: bytes) -> bytes:
    """The same pixels as a progressive JPEG (several scans)."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "JPEG", quality=90, progressive=True)
    return out.getvalue()


def jpeg_variants(data: bytes) -> dict[str, bytes]:
    """The 17 JPEGs that passed the metadata check (issue 15), each carrying PAYLOAD."""
    soi, rest = data[:2], data[2:]
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    exif = segment(0xE1, b"Exif\x00\x00" + PAYLOAD)
    variants = {f"APP{n}": soi + segment(0xE0 + n, PAYLOAD) + rest for n in range(3, 16)}
    variants["fill bytes"] = soi + b"\xff\xff\xff" + exif + rest
    variants["a byte before APP1"] = data[:app0_end] + b"\x00" + exif + data[app0_end:]
    scans = progressive(data)
    second_scan = scans.index(b"\xff\xda", scans.index(b"\xff\xda") + 2)
    variants["a comment between scans"] = (
        scans[:second_scan] + segment(0xFE, PAYLOAD) + scans[second_scan:]
    )
    variants["data after EOI"] = data + PAYLOAD
    return variants


# What a re-encoded JPEG may hold before its image data: JFIF, tables, frame, restart interval.
PLAIN_SEGMENTS = {0xE0, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD}


def segments_before_scan(data: bytes) -> list[int]:
    """The markers of a JPEG up to its first scan (strictly: no fill bytes, no junk)."""
    found, position = [], 2
    while data[position] == 0xFF and data[position + 1] != 0xDA:
        found.append(data[position + 1])
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    assert data[position : position + 2] == b"\xff\xda", "junk before the first scan"
    return found


def assert_clean(served: bytes, original: bytes, label: str) -> None:
    """`served` holds the pixels of `original` and nothing else: no payload, no metadata."""
    assert PAYLOAD not in served, label
    assert set(segments_before_scan(served)) <= PLAIN_SEGMENTS, label
    assert served.endswith(b"\xff\xd9") and served.count(b"\xff\xd9") == 1, label
    pixels = numpy.asarray(Image.open(io.BytesIO(served)).convert("RGB"), dtype=float)
    source = numpy.asarray(Image.open(io.BytesIO(original)).convert("RGB"), dtype=float)
    assert pixels.shape == source.shape and numpy.abs(pixels - source).mean() < 3, label
