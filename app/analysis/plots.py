"""The result's figures, as SVG (string building) and PNG (Pillow): confusion-matrix heat maps
like thesis Figure 4.1, and a forest plot of every endpoint's differences between conditions.

No matplotlib: the web image stays small, and the same result gives the same bytes (no
timestamps, ids or hash salts to pin). Each figure is a layout of shapes (rectangles, lines,
polygons, texts) that both formats draw, so the two look the same.

Heat maps: rows are the true class, columns the diagnosis, the colour is the row share (the
proportion of that class's lesions) and each cell shows its count.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.analysis.power import CASES as POWER_CASES
from app.analysis.power import MAX_CASES, MIN_CASES, TARGETS, power
from app.analysis.results import EndpointPower
from app.analysis.tables import pair_words, row_shares, sides
from app.analysis.wording import compared, heading, is_auc, p_text

CELL = 44
LEFT = 64  # room for the row labels and the "truth" axis title
TOP = 58  # room for the title and the column labels
BAR_GAP, BAR_WIDTH, BAR_LABELS = 16, 14, 40
BOTTOM = 34
FONT_SIZE = 12
TITLE_SIZE = 14
FONT_FAMILY = "DejaVu Sans, Arial, sans-serif"
BLACK, GREY, WHITE = (0, 0, 0), (90, 90, 90), (255, 255, 255)

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
    bold: bool = False


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    w: float
    h: float
    fill: tuple[int, int, int] | None
    stroke: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class _Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: tuple[int, int, int]
    width: float = 1.0


@dataclass(frozen=True)
class _Polygon:
    points: tuple[tuple[float, float], ...]
    fill: tuple[int, int, int]


_Shape = _Rect | _Line | _Polygon | _Text


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


def _svg(width: float, height: float, shapes: Iterable[_Shape], title: str) -> str:
    """Shapes as a standalone SVG document, titled for screen readers."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
        f'viewBox="0 0 {width:g} {height:g}" font-family="{FONT_FAMILY}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    parts += [_svg_element(shape) for shape in shapes]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_element(shape: _Shape) -> str:
    """One shape as an SVG element."""
    if isinstance(shape, _Rect):
        fill = "none" if shape.fill is None else _hex(shape.fill)
        stroke = f' stroke="{_hex(shape.stroke)}"' if shape.stroke else ""
        return (
            f'<rect x="{shape.x:g}" y="{shape.y:g}" width="{shape.w:g}" height="{shape.h:g}" '
            f'fill="{fill}"{stroke}/>'
        )
    if isinstance(shape, _Line):
        return (
            f'<line x1="{shape.x1:g}" y1="{shape.y1:g}" x2="{shape.x2:g}" y2="{shape.y2:g}" '
            f'stroke="{_hex(shape.stroke)}" stroke-width="{shape.width:g}"/>'
        )
    if isinstance(shape, _Polygon):
        points = " ".join(f"{x:g},{y:g}" for x, y in shape.points)
        return f'<polygon points="{points}" fill="{_hex(shape.fill)}"/>'
    transform = f' transform="rotate(-90 {shape.x:g} {shape.y:g})"' if shape.rotate else ""
    weight = ' font-weight="bold"' if shape.bold else ""
    return (
        f'<text x="{shape.x:g}" y="{shape.y:g}" font-size="{shape.size}" '
        f'fill="{_hex(shape.fill)}"{weight} '
        f'text-anchor="{shape.anchor}" dominant-baseline="central"{transform}>'
        f"{escape(shape.text)}</text>"
    )


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at a size (a scalable one when Pillow has FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def _text_width(text: str, size: int, bold: bool = False) -> float:
    """The room a text needs in the SVG, measured on Pillow's font: browsers draw it in
    DejaVu Sans or Arial, up to a sixth wider, so a fifth more (a tenth more again in bold)."""
    try:
        width = float(_font(size).getlength(text))
    except AttributeError:  # an old bitmap font that cannot measure
        width = 0.5 * size * len(text)
    return width * (1.32 if bold else 1.2)


def _png(width: float, height: float, shapes: Iterable[_Shape], scale: int) -> bytes:
    """Shapes as PNG bytes at `scale` pixels per SVG pixel, its resolution set to match
    (96 dpi per unit of scale), so that both formats print the same size."""
    image = Image.new("RGB", (math.ceil(width * scale), math.ceil(height * scale)), "white")
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        if isinstance(shape, _Rect):
            x0, y0 = shape.x * scale, shape.y * scale
            box = [x0, y0, (shape.x + shape.w) * scale - 1, (shape.y + shape.h) * scale - 1]
            draw.rectangle(
                box, fill=shape.fill, outline=shape.stroke, width=1 if shape.stroke else 0
            )
        elif isinstance(shape, _Line):
            ends = [(shape.x1 * scale, shape.y1 * scale), (shape.x2 * scale, shape.y2 * scale)]
            draw.line(ends, fill=shape.stroke, width=max(1, round(shape.width * scale)))
        elif isinstance(shape, _Polygon):
            draw.polygon([(x * scale, y * scale) for x, y in shape.points], fill=shape.fill)
        else:
            _draw_text(image, draw, shape, scale)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, dpi=(96 * scale, 96 * scale))
    return out.getvalue()


_ANCHORS = {"middle": "mm", "end": "rm", "start": "lm"}
# Pillow's built-in font has no minus sign and no dashes: the PNG draws hyphens instead (the
# SVG keeps the true characters, which every browser's fonts have).
_PNG_GLYPHS = str.maketrans({"−": "-", "–": "-", "—": "-"})


def _draw_text(image: Image.Image, draw: ImageDraw.ImageDraw, t: _Text, scale: int) -> None:
    """One text on the PNG; bold as a stroke of the text's own colour (Pillow's built-in
    font has no bold face)."""
    font = _font(t.size * scale)
    text = t.text.translate(_PNG_GLYPHS)
    if t.rotate:
        # Pillow cannot draw rotated text directly: draw on a strip, rotate, paste.
        bounds = draw.textbbox((0, 0), text, font=font)
        size = (round(bounds[2]) + 4, round(bounds[3]) + 4)
        strip = Image.new("RGB", size, "white")
        ImageDraw.Draw(strip).text((2, 2), text, font=font, fill=t.fill)
        strip = strip.rotate(90, expand=True)
        image.paste(
            strip, (round(t.x * scale - strip.width / 2), round(t.y * scale - strip.height / 2))
        )
        return
    stroke = max(1, scale // 2) if t.bold else 0
    at = (t.x * scale, t.y * scale)
    try:
        draw.text(
            at,
            text,
            font=font,
            fill=t.fill,
            anchor=_ANCHORS[t.anchor],
            stroke_width=stroke,
            stroke_fill=t.fill,
        )
    except ValueError:  # the bitmap fallback font does not support anchors
        draw.text(at, text, font=font, fill=t.fill)


def confusion_svg(matrix: Any, labels: Sequence[str], title: str) -> str:
    """A confusion matrix as a standalone SVG document (rows = truth, colour = row share)."""
    width, height, rects, texts = _layout(matrix, labels, title)
    return _svg(width, height, [*rects, *texts], title)


def confusion_png(matrix: Any, labels: Sequence[str], title: str, scale: int = 2) -> bytes:
    """A confusion matrix as PNG bytes, drawn like `confusion_svg` (at `scale` for sharpness)."""
    width, height, rects, texts = _layout(matrix, labels, title)
    return _png(width, height, [*rects, *texts], scale)


# ---------------------------------------------------------------- the forest plot

FOREST_TITLE = "Differences between conditions, 95% CI (readers and cases random)"
ROW = 20  # one line of the plot: an endpoint's heading or one difference
PLOT_WIDTH = 300  # the axis
PAD, GAP, INDENT = 12, 18, 14
MARK = 7  # the side of a point estimate's square
CAP = 6  # the height of a CI's end mark
TICK_SIZE = 11
AXIS_GREY = (150, 150, 150)
EMPTY_MESSAGE = "No endpoint has a difference to show yet: too few readers, cases or conditions."


@dataclass(frozen=True)
class _Difference:
    label: str  # "SE-CBIR 6 − Unaided"
    estimate: float
    low: float
    high: float
    p: float | None

    @property
    def finite(self) -> bool:
        """Whether there is an estimate and an interval to draw."""
        return all(math.isfinite(v) for v in (self.estimate, self.low, self.high))


@dataclass(frozen=True)
class _Panel:
    """The endpoints of one scale: proportions (in percentage points) or AUCs."""

    auc: bool
    groups: list[tuple[str, list[_Difference]]]  # endpoint heading, its differences

    @property
    def unit(self) -> float:
        """How many of the axis's units make one of the result's (fractions, AUCs)."""
        return 1.0 if self.auc else 100.0

    @property
    def heading(self) -> str:
        """The panel's name, shown when there are two."""
        return "Areas under the ROC curve" if self.auc else "Proportions"

    @property
    def axis_title(self) -> str:
        """What a difference is measured in, and which way it runs."""
        what = "Difference in AUC" if self.auc else "Difference in percentage points"
        return f"{what} (first condition − second)"

    def text(self, d: _Difference) -> str:
        """A difference and its CI in the panel's unit, "+15.0 (+2.1 to +27.9)": AUCs with
        three decimals, points with one, a true minus sign."""
        if not d.finite:
            return "—"
        places = 3 if self.auc else 1
        low, estimate, high = (f"{v * self.unit:+.{places}f}" for v in (d.low, d.estimate, d.high))
        return f"{estimate} ({low} to {high})".replace("-", "−")


def _panels(result: Mapping[str, Any], endpoints: Sequence[str] | None) -> list[_Panel]:
    """The available endpoints' differences, proportions first, AUCs in a panel of their own;
    endpoints in `endpoints`' order (the result's when None)."""
    blocks: Mapping[str, Any] = result.get("statistics", {}).get("or_hillis", {})
    names: Mapping[str, str] = result.get("names", {})
    chosen = list(blocks) if endpoints is None else list(endpoints)
    unknown = [name for name in chosen if name not in blocks]
    if unknown:
        raise ValueError(f"no such endpoint in the result: {', '.join(unknown)}")
    by_scale: dict[bool, list[tuple[str, list[_Difference]]]] = {False: [], True: []}
    for name in chosen:
        block = blocks[name]
        if not block.get("available") or not block.get("differences"):
            continue
        differences = [
            _Difference(
                compared(d["comparison"], names), d["estimate"], d["ci_low"], d["ci_high"], d["p"]
            )
            for d in block["differences"]
        ]
        by_scale[is_auc(name)].append((heading(block["label"]), differences))
    return [_Panel(auc, groups) for auc, groups in by_scale.items() if groups]


def _ticks(low: float, high: float) -> list[float]:
    """Round tick values from below `low` to above `high`: about five, in steps of 1, 2, 2.5
    or 5 times a power of ten; two at least, so that the axis has a length."""
    span = (high - low) or 1.0
    power = 10.0 ** math.floor(math.log10(span / 5))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= span / 5)
    first = math.floor(low / step + 1e-9)
    last = max(math.ceil(high / step - 1e-9), first + 1)
    return [round(k * step, 9) for k in range(first, last + 1)]


@dataclass(frozen=True)
class _Axis:
    """A panel's x axis: from the first tick to the last, `left` to `left + PLOT_WIDTH`."""

    ticks: list[float]
    left: float

    @classmethod
    def of(cls, panel: _Panel, left: float) -> _Axis:
        """An axis from 0 and every interval of `panel`, cut at ±1 of the result's units (no
        difference of proportions or AUCs lies beyond)."""
        values = [
            v * panel.unit
            for _, ds in panel.groups
            for d in ds
            if d.finite
            for v in (d.low, d.high)
        ]
        bound = panel.unit
        return cls(_ticks(max(min([0.0, *values]), -bound), min(max([0.0, *values]), bound)), left)

    def cut(self, value: float) -> bool:
        """Whether `value` lies beyond the axis."""
        return not self.ticks[0] <= value <= self.ticks[-1]

    def x(self, value: float) -> float:
        """The position of `value` (at the axis's end when beyond it)."""
        low, high = self.ticks[0], self.ticks[-1]
        clipped = min(max(value, low), high)
        return self.left + (clipped - low) / (high - low) * PLOT_WIDTH


@dataclass(frozen=True)
class _Columns:
    """Where the forest plot's columns are (x in SVG pixels): labels from PAD, the plot, the
    differences in words, the p-values (right-aligned)."""

    plot_left: float
    text_left: float
    p_right: float

    @classmethod
    def of(cls, panels: Sequence[_Panel]) -> _Columns:
        """Columns wide enough for the longest label and the longest difference in words."""
        labels = [_text_width(h, FONT_SIZE, bold=True) for p in panels for h, _ in p.groups]
        texts = [_text_width("Difference (95% CI)", FONT_SIZE, bold=True)]
        for panel in panels:
            for _, differences in panel.groups:
                labels += [INDENT + _text_width(d.label, FONT_SIZE) for d in differences]
                texts += [_text_width(panel.text(d), FONT_SIZE) for d in differences]
        plot_left = PAD + math.ceil(max(labels)) + GAP
        text_left = plot_left + PLOT_WIDTH + GAP
        p_right = text_left + math.ceil(max(texts)) + GAP + math.ceil(_text_width("< 0.001", 12))
        return cls(plot_left, text_left, p_right)


def _panel_shapes(
    panel: _Panel, columns: _Columns, top: float, named: bool
) -> tuple[float, list[_Shape]]:
    """One panel: a row of column headings (and its name when `named`), a row per endpoint
    and per difference, the axis. Its height and its shapes."""
    middle = top + ROW / 2
    shapes: list[_Shape] = [
        _Text(
            columns.text_left, middle, "Difference (95% CI)", FONT_SIZE, BLACK, "start", bold=True
        ),
        _Text(columns.p_right, middle, "p", FONT_SIZE, BLACK, "end", bold=True),
    ]
    if named:
        shapes.append(_Text(PAD, middle, panel.heading, FONT_SIZE, BLACK, "start", bold=True))
    axis = _Axis.of(panel, columns.plot_left)
    rows_top = y = top + ROW + 4
    for label, differences in panel.groups:
        shapes.append(_Text(PAD, y + ROW / 2, label, FONT_SIZE, BLACK, "start", bold=True))
        y += ROW
        for d in differences:
            shapes += _row_shapes(d, panel, columns, axis, y + ROW / 2)
            y += ROW
    base = y + 4
    # The line of no difference first, so that the intervals are drawn over it.
    shapes.insert(0, _Line(axis.x(0.0), rows_top, axis.x(0.0), base, AXIS_GREY))
    shapes.append(_Line(axis.left, base, axis.left + PLOT_WIDTH, base, BLACK))
    for tick in axis.ticks:
        label = f"{tick:g}".replace("-", "−")
        shapes.append(_Line(axis.x(tick), base, axis.x(tick), base + 4, BLACK))
        shapes.append(_Text(axis.x(tick), base + 13, label, TICK_SIZE, BLACK, "middle"))
    centre = axis.left + PLOT_WIDTH / 2
    shapes.append(_Text(centre, base + 31, panel.axis_title, FONT_SIZE, GREY, "middle"))
    return base + 42 - top, shapes


def _row_shapes(
    d: _Difference, panel: _Panel, columns: _Columns, axis: _Axis, middle: float
) -> list[_Shape]:
    """One difference: its label, its interval (an arrowhead where it runs past the axis),
    its estimate, and its figures in words."""
    shapes: list[_Shape] = [
        _Text(PAD + INDENT, middle, d.label, FONT_SIZE, BLACK, "start"),
        _Text(columns.text_left, middle, panel.text(d), FONT_SIZE, BLACK, "start"),
        _Text(columns.p_right, middle, p_text(d.p), FONT_SIZE, BLACK, "end"),
    ]
    if not d.finite:
        return shapes
    low, high = d.low * panel.unit, d.high * panel.unit
    shapes.append(_Line(axis.x(low), middle, axis.x(high), middle, BLACK, 1.5))
    for value, outward in ((low, -1), (high, 1)):
        end = axis.x(value)
        if axis.cut(value):
            tip, back = end + outward * 2, end - outward * 5
            arrow = ((tip, middle), (back, middle - 4), (back, middle + 4))
            shapes.append(_Polygon(arrow, BLACK))
        else:
            shapes.append(_Line(end, middle - CAP / 2, end, middle + CAP / 2, BLACK, 1.5))
    centre = axis.x(d.estimate * panel.unit)
    shapes.append(_Rect(centre - MARK / 2, middle - MARK / 2, MARK, MARK, BLACK))
    return shapes


def _empty_layout(title: str, message: str = EMPTY_MESSAGE) -> tuple[float, float, list[_Shape]]:
    """A figure's canvas when it has nothing to draw: the title and why not."""
    width = PAD * 2 + math.ceil(
        max(_text_width(message, FONT_SIZE), _text_width(title, TITLE_SIZE))
    )
    height = 64
    return (
        width,
        height,
        [
            _Rect(0, 0, width, height, WHITE),
            _Text(PAD, PAD + 8, title, TITLE_SIZE, BLACK, "start"),
            _Text(PAD, PAD + 34, message, FONT_SIZE, GREY, "start"),
        ],
    )


def _forest_layout(
    result: Mapping[str, Any], endpoints: Sequence[str] | None, title: str
) -> tuple[float, float, list[_Shape]]:
    """Canvas size and shapes of the forest plot (a short note when there is nothing to plot)."""
    panels = _panels(result, endpoints)
    if not panels:
        return _empty_layout(title)
    columns = _Columns.of(panels)
    width = max(columns.p_right + PAD, PAD * 2 + math.ceil(_text_width(title, TITLE_SIZE)))
    shapes: list[_Shape] = [_Text(PAD, PAD + 8, title, TITLE_SIZE, BLACK, "start")]
    top: float = PAD + 24
    for panel in panels:
        height, drawn = _panel_shapes(panel, columns, top, named=len(panels) > 1)
        shapes += drawn
        top += height + 8
    height = top - 8 + PAD
    return width, height, [_Rect(0, 0, width, height, WHITE), *shapes]


def forest_svg(
    result: Mapping[str, Any],
    endpoints: Sequence[str] | None = None,
    title: str = FOREST_TITLE,
) -> str:
    """A forest plot of every available endpoint's differences between conditions (or of
    `endpoints`, in that order), as a standalone SVG document.

    A row per difference, in the conditions' readable names and grouped under its endpoint:
    the point estimate, its 95 % CI (readers and cases random), a line at no difference, and
    the figures in words beside it, so that the figure stands on its own in a paper.
    Proportions are in percentage points. AUC endpoints (named `..._auc`) get a panel and an
    axis of their own, in AUC units: a difference of AUCs is not a difference of proportions,
    and one axis for both (or AUCs times 100) would invite comparing lengths that mean
    different things. An interval that runs past a difference's bound (±100 points, ±1 AUC,
    as with two readers) ends in an arrow at the axis, so that one wide interval cannot
    squeeze every other row into a dot. Unavailable endpoints are left out (the dashboard's
    tables say why); with none left, the figure says that there is nothing to show.
    """
    width, height, shapes = _forest_layout(result, endpoints, title)
    return _svg(width, height, shapes, title)


def forest_png(
    result: Mapping[str, Any],
    endpoints: Sequence[str] | None = None,
    title: str = FOREST_TITLE,
    scale: int = 3,
) -> bytes:
    """The forest plot of `forest_svg` as PNG bytes, at `scale` times its size (3: about
    300 dpi at the SVG's print size, enough for a journal)."""
    width, height, shapes = _forest_layout(result, endpoints, title)
    return _png(width, height, shapes, scale)


def write_confusion_plots(result: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the confusion matrices of the pair's two conditions (named in their titles) as
    PNG and SVG into out_dir, in files named after the thesis's tasks (`confusion_task1.png`:
    the first condition's); return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    confusion = result["confusion"]
    written = []
    names = zip(sides(result["pair"]), pair_words(result["pair"]), strict=True)
    for task, (key, name) in enumerate(names, start=1):
        title = f"Task {task}: {name}"
        svg_path = out / f"confusion_task{task}.svg"
        svg_path.write_text(
            confusion_svg(confusion[key], confusion["labels"], title), encoding="utf-8"
        )
        png_path = out / f"confusion_task{task}.png"
        png_path.write_bytes(confusion_png(confusion[key], confusion["labels"], title))
        written += [png_path, svg_path]
    return written


def write_forest_plots(result: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write the forest plot of every endpoint as PNG and SVG into out_dir; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png_path, svg_path = out / "forest.png", out / "forest.svg"
    png_path.write_bytes(forest_png(result))
    svg_path.write_text(forest_svg(result), encoding="utf-8")
    return [png_path, svg_path]


# ---------------------------------------------------------------- reliance and time per case

BAR = 9  # the height of one bar of the reliance figure
WITH_AID, WITHOUT_AID = (33, 113, 181), (189, 189, 189)
RELIANCE_TITLE = "Accuracy with and without the aid, when the aid was right and when wrong"
TIMING_TITLE = "Seconds per case: median and quartiles"


def _scale_row(left: float, base: float, ticks: Sequence[float], unit: str) -> list[_Shape]:
    """An x axis at `base` from `left`, PLOT_WIDTH long, over `ticks`, titled `unit`."""
    low, high = ticks[0], ticks[-1]
    shapes: list[_Shape] = [_Line(left, base, left + PLOT_WIDTH, base, BLACK)]
    for tick in ticks:
        x = left + (tick - low) / (high - low) * PLOT_WIDTH
        shapes.append(_Line(x, base, x, base + 4, BLACK))
        shapes.append(_Text(x, base + 13, f"{tick:g}", TICK_SIZE, BLACK, "middle"))
    shapes.append(_Text(left + PLOT_WIDTH / 2, base + 31, unit, FONT_SIZE, GREY, "middle"))
    return shapes


def _reliance_rows(result: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any, Any]]]]:
    """Per aided condition (in readable names): when the aid was right and when wrong, the
    accuracy with the aid and without it on the same cases."""
    names: Mapping[str, str] = result.get("names", {})
    rows = []
    for key, block in result.get("reliance", {}).get("conditions", {}).items():
        a = block["all"]
        rows.append(
            (
                names.get(key, key),
                [
                    (
                        f"aid right ({a['aid_right']})",
                        a["aided_accuracy_aid_right"],
                        a["unaided_accuracy_aid_right"],
                    ),
                    (
                        f"aid wrong ({a['aid_wrong']})",
                        a["aided_accuracy_aid_wrong"],
                        a["unaided_accuracy_aid_wrong"],
                    ),
                ],
            )
        )
    return rows


def _reliance_layout(result: Mapping[str, Any]) -> tuple[float, float, list[_Shape]]:
    """Canvas and shapes of the reliance figure: two bars per row (with the aid, without)."""
    groups = _reliance_rows(result)
    if not groups:
        return _empty_layout(RELIANCE_TITLE, "No aided condition to compare with unaided yet.")
    labels = [_text_width(g, FONT_SIZE, bold=True) for g, _ in groups]
    labels += [INDENT + _text_width(r[0], FONT_SIZE) for _, rows in groups for r in rows]
    left = PAD + math.ceil(max(labels)) + GAP
    width = max(left + PLOT_WIDTH + GAP + 60, PAD * 2 + _text_width(RELIANCE_TITLE, TITLE_SIZE))
    shapes: list[_Shape] = [_Text(PAD, PAD + 8, RELIANCE_TITLE, TITLE_SIZE, BLACK, "start")]
    y = PAD + 30.0
    for fill, words, x in ((WITH_AID, "with the aid", left), (WITHOUT_AID, "without", left + 130)):
        shapes.append(_Rect(x, y - 5, 10, 10, fill))
        shapes.append(_Text(x + 14, y, words, FONT_SIZE, BLACK, "start"))
    y += 14
    for group, rows in groups:
        shapes.append(_Text(PAD, y + ROW / 2, group, FONT_SIZE, BLACK, "start", bold=True))
        y += ROW
        for label, aided, unaided in rows:
            shapes.append(_Text(PAD + INDENT, y + BAR, label, FONT_SIZE, BLACK, "start"))
            for offset, value, fill in ((0, aided, WITH_AID), (BAR, unaided, WITHOUT_AID)):
                length = 0.0 if value is None else PLOT_WIDTH * value
                shapes.append(_Rect(left, y + offset + 1, length, BAR - 1, fill))
                words = "—" if value is None else f"{100 * value:.0f}%"
                shapes.append(
                    _Text(left + length + 4, y + offset + BAR / 2, words, TICK_SIZE, BLACK, "start")
                )
            y += 2 * BAR + 6
    shapes += _scale_row(left, y + 2, [0, 20, 40, 60, 80, 100], "Readers right (%)")
    height = y + 2 + 42 + PAD
    return width, height, [_Rect(0, 0, width, height, WHITE), *shapes]


def _timing_layout(result: Mapping[str, Any]) -> tuple[float, float, list[_Shape]]:
    """Canvas and shapes of the time figure: per condition a box from the first to the third
    quartile with a line at the median."""
    names: Mapping[str, str] = result.get("names", {})
    rows = [
        (names.get(key, key), block["all"])
        for key, block in result.get("timing", {}).get("conditions", {}).items()
        if block["all"]["median"] is not None
    ]
    if not rows:
        return _empty_layout(TIMING_TITLE, "No answer has a time yet.")
    left = PAD + math.ceil(max(_text_width(name, FONT_SIZE) for name, _ in rows)) + GAP
    ticks = _ticks(0.0, max(t["q3"] for _, t in rows) or 1.0)
    span = ticks[-1] - ticks[0]
    width = max(left + PLOT_WIDTH + GAP + 150, PAD * 2 + _text_width(TIMING_TITLE, TITLE_SIZE))
    shapes: list[_Shape] = [_Text(PAD, PAD + 8, TIMING_TITLE, TITLE_SIZE, BLACK, "start")]
    y = PAD + 28.0
    for name, t in rows:
        middle = y + ROW / 2
        x1, x3 = (left + t[q] / span * PLOT_WIDTH for q in ("q1", "q3"))
        median = left + t["median"] / span * PLOT_WIDTH
        shapes += [
            _Text(PAD, middle, name, FONT_SIZE, BLACK, "start"),
            _Rect(x1, middle - 6, max(x3 - x1, 1.0), 12, WITHOUT_AID, BLACK),
            _Line(median, middle - 8, median, middle + 8, BLACK, 2),
            _Text(
                left + PLOT_WIDTH + GAP,
                middle,
                f"{t['median']:.1f} ({t['q1']:.1f}–{t['q3']:.1f}), n = {t['answers']}",
                TICK_SIZE,
                BLACK,
                "start",
            ),
        ]
        y += ROW + 4
    shapes += _scale_row(left, y + 2, ticks, "Seconds per case")
    height = y + 2 + 42 + PAD
    return width, height, [_Rect(0, 0, width, height, WHITE), *shapes]


def reliance_svg(result: Mapping[str, Any]) -> str:
    """The reliance figure as a standalone SVG: per aided condition, how often readers were
    right with the aid and without it on the same cases, when the aid's vote was right and
    when it was wrong (the cases in brackets). Automation bias shows as a low bar with the
    aid where the aid was wrong."""
    width, height, shapes = _reliance_layout(result)
    return _svg(width, height, shapes, RELIANCE_TITLE)


def timing_svg(result: Mapping[str, Any]) -> str:
    """The time figure as a standalone SVG: per condition the middle half of the seconds a
    case took (a box from the first to the third quartile) and the median (a line)."""
    width, height, shapes = _timing_layout(result)
    return _svg(width, height, shapes, TIMING_TITLE)


# ---------------------------------------------------------------- the flow diagram

FLOW_TITLE = "Flow of readers and cases"
BOX_WIDTH, SIDE_WIDTH, BOX_GAP, LINE = 210, 200, 26, 15
BOX_CHARS, SIDE_CHARS = 30, 28  # characters per line of a box's text at FONT_SIZE
BOX_FILL, SIDE_FILL = (241, 245, 250), (250, 250, 250)


@dataclass(frozen=True)
class FlowStep:
    """One box of a flow diagram's main line (`text`), with an optional box beside it for
    those who left the line there (`side`), as CONSORT's and STARD's diagrams draw them."""

    text: str
    side: str | None = None


def _box(
    x: float, y: float, w: float, lines: list[str], fill: tuple[int, int, int]
) -> list[_Shape]:
    """A box with its lines of text, centred."""
    h = len(lines) * LINE + 10
    shapes: list[_Shape] = [_Rect(x, y, w, h, fill, BLACK)]
    for i, line in enumerate(lines):
        shapes.append(_Text(x + w / 2, y + 5 + LINE * (i + 0.5), line, FONT_SIZE, BLACK, "middle"))
    return shapes


def _arrow_down(x: float, y1: float, y2: float) -> list[_Shape]:
    """A vertical arrow from y1 to y2 at x."""
    return [
        _Line(x, y1, x, y2 - 5, BLACK),
        _Polygon(((x, y2), (x - 4, y2 - 6), (x + 4, y2 - 6)), BLACK),
    ]


def _flow_column(
    x: float, top: float, heading_text: str, steps: Sequence[FlowStep]
) -> tuple[float, list[_Shape]]:
    """One column of the flow diagram: its heading, its main line and side boxes; its bottom."""
    shapes: list[_Shape] = [_Text(x, top, heading_text, FONT_SIZE + 1, BLACK, "start", bold=True)]
    y = top + 16
    centre = x + BOX_WIDTH / 2
    for index, step in enumerate(steps):
        lines = textwrap.wrap(step.text, BOX_CHARS) or [""]
        side = textwrap.wrap(step.side, SIDE_CHARS) if step.side else []
        height = len(lines) * LINE + 10
        shapes += _box(x, y, BOX_WIDTH, lines, BOX_FILL)
        if side:
            last = index == len(steps) - 1
            side_x = x + BOX_WIDTH + BOX_GAP
            side_h = len(side) * LINE + 10
            # Those who left: from the line between this box and the next, out to the side
            # (beside the last box, from the box itself).
            branch = y + height / 2 if last else y + height + BOX_GAP / 2
            start = x + BOX_WIDTH if last else centre
            shapes += _box(side_x, branch - side_h / 2, SIDE_WIDTH, side, SIDE_FILL)
            shapes += [
                _Line(start, branch, side_x - 5, branch, BLACK),
                _Polygon(
                    ((side_x, branch), (side_x - 6, branch - 4), (side_x - 6, branch + 4)), BLACK
                ),
            ]
        y += height
        if index < len(steps) - 1:
            gap = BOX_GAP * (2 if side else 1)
            shapes += _arrow_down(centre, y, y + gap)
            y += gap
    return y, shapes


def flow_svg(columns: Sequence[tuple[str, Sequence[FlowStep]]], title: str = FLOW_TITLE) -> str:
    """A flow diagram as a standalone SVG: a column per kind (readers, cases), each a line of
    boxes from the first count to the analysed one, with those who left the line beside it."""
    column_width = BOX_WIDTH + BOX_GAP + SIDE_WIDTH + GAP * 2
    shapes: list[_Shape] = [_Text(PAD, PAD + 8, title, TITLE_SIZE, BLACK, "start")]
    bottom = 0.0
    for index, (heading_text, steps) in enumerate(columns):
        end, drawn = _flow_column(PAD + index * column_width, PAD + 34, heading_text, steps)
        shapes += drawn
        bottom = max(bottom, end)
    width = PAD * 2 + column_width * max(len(columns), 1) - GAP * 2
    height = bottom + PAD
    return _svg(width, height, [_Rect(0, 0, width, height, WHITE), *shapes], title)


# ---------------------------------------------------------------- power against cases

POWER_READERS = (3, 5, 8, 10, 15, 20)
# Okabe-Ito's colour-blind-safe palette: one colour per reader count.
_CURVE_COLOURS = (
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
)
POWER_PLOT_HEIGHT = 240
CURVE_POINTS = 80
MIN_AXIS_CASES = 100


def _power_cases_axis(block: EndpointPower, readers: Sequence[int]) -> float:
    """The x axis's end: where the plotted reader counts reach 90 % power for the first effect
    (the observed one), at least MIN_AXIS_CASES, at most power.MAX_CASES."""
    effect = block["effects"][0]
    reached = [
        n["cases"]
        for n in block["needed"]
        if n["effect"] == effect and n["readers"] in readers and n["cases"] is not None
    ]
    wanted = max(reached, default=max(POWER_CASES))
    return float(min(max(wanted * 1.2, MIN_AXIS_CASES), MAX_CASES))


def _power_layout(
    block: EndpointPower, readers: Sequence[int], title: str
) -> tuple[float, float, list[_Shape]]:
    """Canvas size and shapes of the power plot: a curve per reader count, lines at the
    targets, a legend; a short note when the endpoint has no power to plot."""
    components = block["components"]
    if not block["available"] or components is None or not block["effects"]:
        why = textwrap.wrap(block["reason"] or "no effect to plan for", 80)
        lines = [title, *why]
        width = PAD * 2 + math.ceil(max(_text_width(line, TITLE_SIZE) for line in lines))
        height = PAD * 2 + 24 + ROW * len(why)
        shapes: list[_Shape] = [
            _Rect(0, 0, width, height, WHITE),
            _Text(PAD, PAD + 8, title, TITLE_SIZE, BLACK, "start"),
        ]
        shapes += [
            _Text(PAD, PAD + 34 + ROW * i, line, FONT_SIZE, GREY, "start")
            for i, line in enumerate(why)
        ]
        return width, height, shapes
    effect = block["effects"][0]
    counts = sorted({*readers, components["readers"]})
    x_ticks = _ticks(0.0, _power_cases_axis(block, counts))
    left, top = PAD + 44, PAD + 30
    legend_left = left + PLOT_WIDTH + GAP
    legend_width = max(_text_width(f"{j} readers (this study)", FONT_SIZE) for j in counts)
    width = max(
        legend_left + 26 + math.ceil(legend_width) + PAD,
        PAD * 2 + math.ceil(_text_width(title, TITLE_SIZE)),
    )
    height = top + POWER_PLOT_HEIGHT + 46 + PAD
    axis = _Axis(x_ticks, left)

    def y(power_value: float) -> float:
        return top + (1 - power_value) * POWER_PLOT_HEIGHT

    bottom = y(0.0)
    shapes = [
        _Rect(0, 0, width, height, WHITE),
        _Text(PAD, PAD + 8, title, TITLE_SIZE, BLACK, "start"),
    ]
    for level in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        grid = AXIS_GREY if level in TARGETS else (225, 225, 225)
        shapes.append(_Line(left, y(level), left + PLOT_WIDTH, y(level), grid))
        shapes.append(_Text(left - 6, y(level), f"{level * 100:.0f}", TICK_SIZE, BLACK, "end"))
    for target in TARGETS:
        if target not in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
            shapes.append(_Line(left, y(target), left + PLOT_WIDTH, y(target), AXIS_GREY))
            shapes.append(
                _Text(left - 6, y(target), f"{target * 100:.0f}", TICK_SIZE, BLACK, "end")
            )
    shapes.append(_Line(left, bottom, left + PLOT_WIDTH, bottom, BLACK))
    shapes.append(_Line(left, top, left, bottom, BLACK))
    for tick in x_ticks:
        shapes.append(_Line(axis.x(tick), bottom, axis.x(tick), bottom + 4, BLACK))
        shapes.append(_Text(axis.x(tick), bottom + 13, f"{tick:g}", TICK_SIZE, BLACK, "middle"))
    shapes.append(
        _Text(left + PLOT_WIDTH / 2, bottom + 31, "Cases per reader", FONT_SIZE, GREY, "middle")
    )
    shapes.append(
        _Text(
            PAD + 6,
            top + POWER_PLOT_HEIGHT / 2,
            "Power (%)",
            FONT_SIZE,
            GREY,
            "middle",
            rotate=True,
        )
    )
    cases = np.unique(
        np.clip(np.round(np.linspace(0, x_ticks[-1], CURVE_POINTS + 1)), MIN_CASES, None)
    )
    for index, count in enumerate(counts):
        ink = _CURVE_COLOURS[index % len(_CURVE_COLOURS)]
        values = np.asarray(power(components, count, cases, effect, block["alpha"]))
        points = [(axis.x(float(k)), y(float(p))) for k, p in zip(cases, values, strict=True)]
        shapes += [
            _Line(*a, *b, ink, 2.0 if count == components["readers"] else 1.5)
            for a, b in pairwise(points)
        ]
        row = top + 8 + index * ROW
        shapes.append(_Line(legend_left, row, legend_left + 20, row, ink, 2.0))
        own = " (this study)" if count == components["readers"] else ""
        shapes.append(
            _Text(legend_left + 26, row, f"{count} readers{own}", FONT_SIZE, BLACK, "start")
        )
    return width, height, shapes


def power_title(block: EndpointPower, names: Mapping[str, str] | None = None) -> str:
    """The power plot's title: the endpoint and the effect it is planned for."""
    if not block["effects"]:
        return f"Power: {block['label']}"
    effect = block["effects"][0]
    size = f"{effect:.3f}" if block["kind"] == "auc" else f"{effect * 100:.1f} points"
    what = "the observed difference" if effect == block["observed_effect"] else "a difference"
    return f"Power to detect {what} of {size} in {block['label']} (alpha {block['alpha']:g})"


def power_svg(
    block: EndpointPower, readers: Sequence[int] = POWER_READERS, title: str | None = None
) -> str:
    """Power against cases per reader for several reader counts (and the study's own), for
    one endpoint of a power plan (`power.endpoint_power`), at its first effect (the observed
    one): what a next study of J readers and K cases would have, readers and cases random.
    Grey lines mark 80 % and 90 %. A standalone SVG document."""
    title = title or power_title(block)
    width, height, shapes = _power_layout(block, readers, title)
    return _svg(width, height, shapes, title)


def power_png(
    block: EndpointPower,
    readers: Sequence[int] = POWER_READERS,
    title: str | None = None,
    scale: int = 3,
) -> bytes:
    """The power plot of `power_svg` as PNG bytes, at `scale` times its size."""
    title = title or power_title(block)
    width, height, shapes = _power_layout(block, readers, title)
    return _png(width, height, shapes, scale)
