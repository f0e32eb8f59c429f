"""The viewer's second round (issue 24) in a real Chromium at a phone, a tablet and a desktop
size: one wheel notch zooms by 28 %, previous and next step through the images inside Enlarge
and Compare (buttons, and the arrows while the image is not magnified), full screen (the
Fullscreen API or the window-filling fallback), and Enlarge at 390 px uses the screen's whole
width."""

import pytest

from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.viewer import (
    QUERY,
    QUERY_IMAGE,
    SIZES,
    box,
    open_task2_case,
    scale_of,
    wait_for_scale,
)

pytestmark = pytest.mark.browser

DIALOG = "#viewer-dialog"


def check_wheel_notch(page) -> None:
    """One notch of the wheel: +28 %; another: 1.28 squared."""
    frame = box(page, QUERY)
    page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    page.mouse.wheel(0, -100)
    wait_for_scale(page, QUERY_IMAGE, "s > 1.1")
    assert scale_of(page, QUERY_IMAGE) == pytest.approx(1.28, abs=0.005)
    page.mouse.wheel(0, -100)
    wait_for_scale(page, QUERY_IMAGE, "s > 1.5")
    assert scale_of(page, QUERY_IMAGE) == pytest.approx(1.28**2, abs=0.01)
    page.get_by_role("button", name="Reset").first.click()
    wait_for_scale(page, QUERY_IMAGE, "Math.abs(s - 1) < 0.01")


def captions(page) -> list[str]:
    """The captions of the panes the dialog shows, in order."""
    return page.locator(f"{DIALOG} figure.pane figcaption").all_inner_texts()


def check_steps(page) -> None:
    """Enlarge: the case, then each similar image; Compare: each similar image beside the
    case. The ends are disabled; the arrows step while the image is not magnified."""
    tiles = page.locator("figure.tile figcaption").all_inner_texts()
    case_caption = page.locator("#query-caption").inner_text()
    page.get_by_role("button", name="Enlarge the case image").click()
    previous = page.get_by_role("button", name="Previous image")
    following = page.get_by_role("button", name="Next image")
    assert captions(page) == [case_caption]
    assert previous.is_disabled() and following.is_enabled()
    following.click()
    assert captions(page) == [tiles[0]]
    page.keyboard.press("ArrowRight")  # the focus is on the image, not magnified
    assert captions(page) == [tiles[1]]
    page.keyboard.press("+")  # magnified, the arrows move the image instead
    page.keyboard.press("ArrowRight")
    assert captions(page) == [tiles[1]]
    previous.click()
    previous.click()
    assert captions(page) == [case_caption] and previous.is_disabled()
    following.click()
    page.get_by_role("button", name="Compare with the case").click()
    assert captions(page) == [tiles[0], case_caption]
    assert previous.is_disabled()
    for index in range(1, len(tiles)):
        following.click()
        assert captions(page) == [tiles[index], case_caption]
    assert following.is_disabled()
    page.keyboard.press("ArrowLeft")
    assert captions(page) == [tiles[-2], case_caption]


def check_full_screen(page, viewport: dict) -> None:
    """Full screen covers the whole window, pressed; pressed again, the dialog as before."""
    button = page.get_by_role("button", name="Full screen")
    before = box(page, DIALOG)
    button.click()
    page.wait_for_function(
        "() => document.querySelector('[data-fullscreen]').getAttribute('aria-pressed') === 'true'"
    )
    page.wait_for_function(
        f"() => {{ const r = document.querySelector({DIALOG!r}).getBoundingClientRect();"
        f" return r.width >= {viewport['width']} - 1 && r.height >= innerHeight - 1; }}"
    )
    covered = box(page, DIALOG)
    assert covered["x"] == pytest.approx(0, abs=1) and covered["y"] == pytest.approx(0, abs=1)
    button.click()
    page.wait_for_function(
        "() => document.querySelector('[data-fullscreen]').getAttribute('aria-pressed')"
        " === 'false' && !document.fullscreenElement"
    )
    assert box(page, DIALOG)["width"] == pytest.approx(before["width"], abs=1)


@pytest.mark.parametrize("size", list(SIZES))
def test_wheel_steps_and_full_screen_at_three_sizes(
    module_server: LiveServer, browser: object, pages: dict, size: str
) -> None:
    server = module_server
    page = open_task2_case(server, browser, pages, size, f"steps-{size}@example.org")
    viewport = SIZES[size]
    check_wheel_notch(page)
    check_steps(page)
    check_full_screen(page, viewport)
    page.keyboard.press("Escape")
    assert not page.locator(DIALOG).is_visible()
    # Enlarged, the case image fills the width a phone has (359 px of 390 before).
    page.get_by_role("button", name="Enlarge the case image").click()
    frame = box(page, f"{DIALOG} figure.pane .viewer-frame")
    if size == "390x844":
        assert frame["width"] >= viewport["width"] - 1, frame
    else:
        assert frame["width"] >= min(viewport["width"], viewport["height"]) * 0.6, frame
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-viewer-enlarged-{size}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert not page.errors, page.errors
