"""A bundle image's decoding is bounded before it starts: by its pixels and by its scans.

A progressive JPEG is decoded once per scan, each pass over the whole image, so a few bytes
per scan repeated make a decompression bomb (40,000 scans of 16 bytes held an import for
over five minutes). check_image counts the scans without parsing and refuses, by name, an
image with more than MAX_JPEG_SCANS.
"""

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from studybundle import BundleError
from studybundle.images import check_image, content_name, scan_count
from studybundle.limits import MAX_JPEG_SCANS
from tests.app.bundle_factory import many_scans_jpeg, picture


def stored(folder: Path, data: bytes) -> Path:
    """`data` saved under its content-hash name, as a bundle holds it."""
    path = folder / content_name(data)
    path.write_bytes(data)
    return path


def test_too_many_scans_are_refused_by_name_before_decoding(tmp_path: Path) -> None:
    path = stored(tmp_path, many_scans_jpeg(40000))  # 2048 x 2048, 677 KB
    began = time.monotonic()
    with pytest.raises(BundleError) as refused:
        check_image(path)
    assert time.monotonic() - began < 1  # decoding it takes minutes
    assert str(refused.value).startswith(f"images/{path.name} has 40000 scans;")
    assert f"at most {MAX_JPEG_SCANS}" in str(refused.value)


def test_one_scan_over_the_bound_is_refused_and_the_bound_itself_decodes(
    tmp_path: Path,
) -> None:
    with pytest.raises(BundleError, match=f"has {MAX_JPEG_SCANS + 1} scans"):
        check_image(stored(tmp_path, many_scans_jpeg(MAX_JPEG_SCANS + 1, size=256)))
    image = check_image(stored(tmp_path, many_scans_jpeg(MAX_JPEG_SCANS, size=256, seed=1)))
    assert image.size == (256, 256)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_ordinary_jpegs_are_far_within_the_bound(tmp_path: Path, mode: str) -> None:
    for progressive in (False, True):
        out = io.BytesIO()
        picture(3, 64).convert(mode).save(out, "JPEG", quality=90, progressive=progressive)
        data = out.getvalue()
        assert scan_count(data) <= 10
        assert check_image(stored(tmp_path, data)).size == (64, 64)


def test_the_count_sees_every_scan_whatever_lies_between_them() -> None:
    data = many_scans_jpeg(50, size=64)
    first = data.index(b"\xff\xda")
    # A comment between scans and fill bytes before a marker hide no scan from the count.
    padded = data[:first] + b"\xff\xfe\x00\x06note" + b"\xff\xff" + data[first:]
    assert scan_count(padded) == 50
    with Image.open(io.BytesIO(padded)) as image:
        image.load()
