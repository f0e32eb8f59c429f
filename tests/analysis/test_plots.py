"""Heat maps: well-formed SVG and a decodable PNG with the counts and the row-share colours.
The forest plot: every available difference by readable name, deterministic bytes."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from app.analysis import (
    analyse,
    confusion_png,
    confusion_svg,
    forest_png,
    forest_svg,
    responses_from_rows,
)
from app.analysis.plots import _ticks, colour
from app.analysis.wording import heading
from tests.analysis.helpers import answer

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


# ---------------------------------------------------------------- the forest plot

SVG_NS = {"s": "http://www.w3.org/2000/svg"}
NAMES = {"unaided": "Unaided", "se_cbir": "SE-CBIR 6", "cbir": "CBIR 6"}


def endpoint(label: str, *differences: tuple[str, float, float, float, float]) -> dict:
    """An OR-Hillis block as the analysis gives it: (comparison, estimate, low, high, p) each;
    none makes it unavailable."""
    rows = [
        {
            "comparison": comparison,
            "minuend": comparison.split(" - ")[0],
            "subtrahend": comparison.split(" - ")[1],
            "estimate": estimate,
            "se": 0.05,
            "df": 12.0,
            "ci_low": low,
            "ci_high": high,
            "p": p,
        }
        for comparison, estimate, low, high, p in differences
    ]
    return {
        "label": label,
        "description": "",
        "available": bool(rows),
        "reason": None if rows else "needs at least 2 readers",
        "readers": 8,
        "means": {"unaided": 0.6, "se_cbir": 0.75} if rows else {},
        "equality": None,
        "differences": rows,
        "fixed_readers": None,
    }


def forest_result() -> dict:
    """Three arms on two proportions, one unavailable endpoint, and an AUC."""
    return {
        "names": NAMES,
        "statistics": {
            "or_hillis": {
                "proportion_correct": endpoint(
                    "proportion correct",
                    ("cbir - se_cbir", -0.088, -0.125, -0.052, 0.0001),
                    ("se_cbir - unaided", 0.13, 0.093, 0.167, 0.0001),
                ),
                "melanoma_specificity": endpoint("melanoma specificity"),
                "melanoma_sensitivity": endpoint(
                    "melanoma sensitivity", ("se_cbir - unaided", 0.15, -1.75, 2.05, 0.5)
                ),
                "melanoma_auc": endpoint(
                    "AUC for melanoma", ("se_cbir - unaided", 0.05, -0.012, 0.112, 0.11)
                ),
            }
        },
    }


def svg_texts(svg: str) -> list[str]:
    """The texts of an SVG document, parsed (so that it must be well-formed)."""
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return [t.text or "" for t in root.iterfind(".//s:text", SVG_NS)]


def test_forest_svg_names_every_difference_under_its_endpoint() -> None:
    texts = svg_texts(forest_svg(forest_result()))
    assert texts.count("SE-CBIR 6 − Unaided") == 3  # one row per endpoint that has it
    assert "CBIR 6 − SE-CBIR 6" in texts
    headings = [t for t in texts if t in ("Proportion correct", "Melanoma sensitivity")]
    assert headings == ["Proportion correct", "Melanoma sensitivity"]  # the result's order
    assert "AUC for melanoma" in texts  # a label's own capitals are kept
    # The figures in words beside each row: points with a true minus, p as on the page.
    assert "−8.8 (−12.5 to −5.2)" in texts and "+13.0 (+9.3 to +16.7)" in texts
    assert texts.count("< 0.001") == 2
    assert "se_cbir" not in " ".join(texts)


def test_an_unavailable_endpoint_is_left_out() -> None:
    texts = svg_texts(forest_svg(forest_result()))
    assert "Melanoma specificity" not in texts


def test_aucs_get_a_panel_and_an_axis_of_their_own() -> None:
    texts = svg_texts(forest_svg(forest_result()))
    assert "Difference in percentage points (first condition − second)" in texts
    assert "Difference in AUC (first condition − second)" in texts
    assert "+0.050 (−0.012 to +0.112)" in texts
    assert texts.index("Areas under the ROC curve") > texts.index("Proportion correct")
    # Only proportions: one panel, no panel names.
    only = svg_texts(forest_svg(forest_result(), endpoints=["proportion_correct"]))
    assert "Proportions" not in only and "Difference in AUC (first condition − second)" not in only


def test_an_interval_past_the_bound_ends_in_arrows_at_the_axis() -> None:
    svg = forest_svg(forest_result(), endpoints=["melanoma_sensitivity"])
    root = ET.fromstring(svg)
    assert len(root.findall(".//s:polygon", SVG_NS)) == 2  # both ends run past ±100 points
    ticks = [t for t in svg_texts(svg) if t.lstrip("−").isdigit()]
    assert ticks[0] == "−100" and ticks[-1] == "100"  # the axis stops at the bound
    assert "+15.0 (−175.0 to +205.0)" in svg_texts(svg)  # the words keep the real interval


def test_ticks_are_round_and_the_axis_always_has_a_length() -> None:
    assert _ticks(-12.5, 47.6) == [-20, 0, 20, 40, 60]
    assert _ticks(-0.012, 0.112) == [-0.025, 0, 0.025, 0.05, 0.075, 0.1, 0.125]
    assert _ticks(0.0, 0.0) == [0, 0.2]  # every interval at 0: still an axis to draw on
    svg = forest_svg(
        {"statistics": {"or_hillis": {"x": endpoint("x", ("a - b", 0.0, 0.0, 0.0, 1.0))}}}
    )
    assert "+0.0 (+0.0 to +0.0)" in svg_texts(svg)


def test_endpoints_choose_and_order_the_rows() -> None:
    texts = svg_texts(
        forest_svg(forest_result(), endpoints=["melanoma_sensitivity", "proportion_correct"])
    )
    assert texts.index("Melanoma sensitivity") < texts.index("Proportion correct")
    assert "AUC for melanoma" not in texts
    with pytest.raises(ValueError, match="no_such_endpoint"):
        forest_svg(forest_result(), endpoints=["no_such_endpoint"])


def test_forest_png_decodes_at_print_resolution() -> None:
    data = forest_png(forest_result())
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    width = float(ET.fromstring(forest_svg(forest_result())).get("width") or 0)
    assert image.width == round(width * 3)  # three times the SVG's size ...
    assert round(image.info["dpi"][0]) == 288  # ... at three times its 96 dpi: same print size


def test_the_same_result_gives_the_same_bytes() -> None:
    assert forest_svg(forest_result()) == forest_svg(forest_result())
    assert forest_png(forest_result()) == forest_png(forest_result())


def test_with_nothing_to_plot_the_figure_says_so() -> None:
    for result in ({}, {"statistics": {"or_hillis": {"x": endpoint("x")}}}):
        texts = svg_texts(forest_svg(result))
        assert any(t.startswith("No endpoint has a difference to show yet") for t in texts)
        assert Image.open(io.BytesIO(forest_png(result))).format == "PNG"


def test_a_real_analysis_plots_every_available_endpoint() -> None:
    rows = [
        answer(f"r{r}", f"img{i}", truth, task, truth if (i + r + task) % 3 else "nv", 3)
        for r in range(4)
        for i, truth in enumerate(["mel", "nv", "bcc", "bkl", "mel", "nv"] * 3)
        for task in (1, 2)
    ]
    result = analyse(responses_from_rows(rows), bootstrap=0)
    available = [b for b in result["statistics"]["or_hillis"].values() if b["available"]]
    assert available
    texts = svg_texts(forest_svg(result))
    for block in available:
        assert heading(block["label"]) in texts
