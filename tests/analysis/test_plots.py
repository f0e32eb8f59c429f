"""Heat maps: well-formed SVG and a decodable PNG with the counts and the row-share colours."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from app.analysis import confusion_png, confusion_svg
from app.analysis.plots import colour

LABELS = ["a", "b", "c"]
MATRIX = [[8, 2, 0], [0, 0, 0], [1, 1, 98]]


def test_colour_scale_ends() -> None:
    assert colour(0.0) == (247, 251, 255)
    assert colour(1.0) == (8, 48, 107)
    assert colour(2.0) == colour(1.0)
    # Darker for larger shares.
    assert sum(colour(0.8)) < sum(colour(0.2))


def test_svg_has_counts_and_row_share_colours() -> None:
    svg = confusion_svg(MATRIX, LABELS, "Task <1> & co")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    texts = [t.text for t in root.iterfind(".//s:text", ns)]
    assert "Task <1> & co" in texts  # escaped in the file, intact once parsed
    for count in ("8", "2", "98"):
        assert count in texts
    fills = [r.get("fill") for r in root.iterfind(".//s:rect", ns)]
    assert "#{:02x}{:02x}{:02x}".format(*colour(0.8)) in fills  # 8 of 10 in row a
    assert "#{:02x}{:02x}{:02x}".format(*colour(0.98)) in fills  # 98 of 100 in row c


def test_png_decodes_and_is_coloured() -> None:
    data = confusion_png(MATRIX, LABELS, "Task 1")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image = image.convert("RGB")
    # Pixel in the middle-left of the bottom-right cell (row c, column c: share 0.98).
    from app.analysis.plots import CELL, LEFT, TOP

    x, y = (LEFT + 2 * CELL + 4) * 2, (TOP + 2 * CELL + 4) * 2
    assert image.getpixel((x, y)) == colour(0.98)
    assert image.getpixel(((LEFT + CELL + 4) * 2, (TOP + CELL + 4) * 2)) == colour(0.0)


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="3x3"):
        confusion_svg([[1, 2], [3, 4]], LABELS, "x")
