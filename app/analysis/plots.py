"""Confusion-matrix heat maps like thesis Figure 4.1, as SVG (string building) and PNG (Pillow).

No matplotlib: the web image stays small. Rows are the true class, columns the diagnosis,
the colour is the row share (the proportion of that class's lesions) and each cell shows
its count. Both formats are drawn from one layout so they look the same.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.analysis.tables import pair_words, row_shares

CELL = 44
LEFT = 64  # room for the row labels and the "truth" axis title
TOP = 58  # room for the title and the column labels
BAR_GAP, BAR_WIDTH, BAR_LABELS = 16, 14, 40
BOTTOM = 34
FONT_SIZE = 12
TITLE_SIZE = 14

# A sequential blue scale (white to dark blue), as in the thesis figure.
_STOPS = (
    (0.0, (247, 251, 255)),
    (0.25, (198, 219, 239)),
    (0.5, (107, 174, 214)),
    (0.75, (33, 113, 181)),
    (1.0, (8, 48, 107)),
)


def colour(share: float) -> tuple[int, int, int]:
    """The heat-map colour for a row share in [0, 1]."""
    share = min(max(float(share), 0.0), 1.0)
    for (lo, c_lo), (hi, c_hi) in pairwise(_STOPS):
        if share <= hi:
            f = (share - lo) / (hi - lo)
            r, g, b = (round(a + f * (z - a)) for a, z in zip(c_lo, c_hi, strict=True))
            return r, g, b
    return _STOPS[-1][1]


def _hex(rgb: tuple[int, int, int]) -> str:
    """#rrggbb for an RGB triple."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True)
class _Text:
    x: float
    y: float
    text: str
    size: int
    fill: tuple[int, int, int]
    anchor: str  # "middle", "end" or "start"; vertically always centred
    rotate: bool = False


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    w: float
    h: float
    fill: tuple[int, int, int] | None
    stroke: tuple[int, int, int] | None = None


def _layout(
    matrix: Any, labels: Sequence[str], title: str
) -> tuple[int, int, list[_Rect], list[_Text]]:
    """Canvas size, rectangles and texts of the heat map."""
    counts = np.asarray(matrix, dtype=np.int64)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(f"matrix must be {n}x{n} for {n} labels, got {counts.shape}")
    shares = row_shares(counts)
    grid = n * CELL
    bar_x = LEFT + grid + BAR_GAP
    width = bar_x + BAR_WIDTH + BAR_LABELS
    height = TOP + grid + BOTTOM
    black, grey, white = (0, 0, 0), (90, 90, 90), (255, 255, 255)
    rects: list[_Rect] = [_Rect(0, 0, width, height, white)]
    texts: list[_Text] = [_Text(LEFT + grid / 2, 14, title, TITLE_SIZE, black, "middle")]
    for i in range(n):
        for j in range(n):
            x, y = LEFT + j * CELL, TOP + i * CELL
            rects.append(_Rect(x, y, CELL, CELL, colour(shares[i, j]), (255, 255, 255)))
            ink = white if shares[i, j] > 0.55 else black
            texts.append(
                _Text(x + CELL / 2, y + CELL / 2, str(counts[i, j]), FONT_SIZE, ink, "middle")
            )
        texts.append(_Text(LEFT - 6, TOP + i * CELL + CELL / 2, labels[i], FONT_SIZE, black, "end"))
        texts.append(
            _Text(LEFT + i * CELL + CELL / 2, TOP - 10, labels[i], FONT_SIZE, black, "middle")
        )
    texts.append(_Text(LEFT + grid / 2, TOP + grid + 18, "diagnosis", FONT_SIZE, grey, "middle"))
    texts.append(_Text(12, TOP + grid / 2, "truth", FONT_SIZE, grey, "middle", rotate=True))
    # Colour bar: 0 at the bottom, 1 at the top, in ten steps.
    steps = 10
    for s in range(steps):
        top = TOP + grid * s / steps
        rects.append(
            _Rect(bar_x, top, BAR_WIDTH, grid / steps + 0.5, colour(1 - (s + 0.5) / steps))
        )
    rects.append(_Rect(bar_x, TOP, BAR_WIDTH, grid, None, black))  # outline only
    for value in (0.0, 0.5, 1.0):
        texts.append(
            _Text(
                bar_x + BAR_WIDTH + 4,
                TOP + grid * (1 - value),
                f"{value:.1f}",
                FONT_SIZE - 1,
                black,
                "start",
            )
        )
    return width, height, rects, texts


def confusion_svg(matrix: Any, labels: Sequence[str], title: str) -> str:
    """A confusion matrix as a standalone SVG document (rows = truth, colour = row share)."""
    width, height, rects, texts = _layout(matrix, labels, title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for r in rects:
        fill = "none" if r.fill is None else _hex(r.fill)
        stroke = f' stroke="{_hex(r.stroke)}"' if r.stroke else ""
        parts.append(
            f'<rect x="{r.x:g}" y="{r.y:g}" width="{r.w:g}" height="{r.h:g}" '
            f'fill="{fill}"{stroke}/>'
        )
    for t in texts:
        transform = f' transform="rotate(-90 {t.x:g} {t.y:g})"' if t.rotate else ""
        parts.append(
            f'<text x="{t.x:g}" y="{t.y:g}" font-size="{t.size}" fill="{_hex(t.fill)}" '
            f'text-anchor="{t.anchor}" dominant-baseline="central"{transform}>'
            f"{escape(t.text)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at a size (a scalable one when Pillow has FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def confusion_png(matrix: Any, labels: Sequence[str], title: str, scale: int = 2) -> bytes:
    """A confusion matrix as PNG bytes, drawn like `confusion_svg` (at `scale` for sharpness)."""
    width, height, rects, texts = _layout(matrix, labels, title)
    image = Image.new("RGB", (width * scale, height * scale), "white")
    draw = ImageDraw.Draw(image)
    for r in rects:
        box = [r.x * scale, r.y * scale, (r.x + r.w) * scale - 1, (r.y + r.h) * scale - 1]
        draw.rectangle(box, fill=r.fill, outline=r.stroke, width=1 if r.stroke else 0)
    anchors = {"middle": "mm", "end": "rm", "start": "lm"}
    for t in texts:
        font = _font(t.size * scale)
        if t.rotate:
            # Pillow cannot draw rotated text directly: draw on a strip, rotate, paste.
            bounds = draw.textbbox((0, 0), t.text, font=font)
            size = (round(bounds[2]) + 4, round(bounds[3]) + 4)
            strip = Image.new("RGB", size, "white")
            ImageDraw.Draw(strip).text((2, 2), t.text, font=font, fill=t.fill)
            strip = strip.rotate(90, expand=True)
            image.paste(
                strip, (round(t.x * scale - strip.width / 2), round(t.y * scale - strip.height / 2))
            )
            continue
        try:
            draw.text(
                (t.x * scale, t.y * scale), t.text, font=font, fill=t.fill, anchor=anchors[t.anchor]
            )
        except ValueError:  # the bitmap fallback font does not support anchors
            draw.text((t.x * scale, t.y * scale), t.text, font=font, fill=t.fill)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_confusion_plots(result: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write both tasks' confusion matrices (the pair's conditions, named in their titles) as
    PNG and SVG into out_dir; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    confusion = result["confusion"]
    first, second = pair_words(result["pair"])
    titles = {"task1": f"Task 1: {first}", "task2": f"Task 2: {second}"}
    written = []
    for task, title in titles.items():
        svg_path = out / f"confusion_{task}.svg"
        svg_path.write_text(
            confusion_svg(confusion[task], confusion["labels"], title), encoding="utf-8"
        )
        png_path = out / f"confusion_{task}.png"
        png_path.write_bytes(confusion_png(confusion[task], confusion["labels"], title))
        written += [png_path, svg_path]
    return written
