"""The case viewer in a real Chromium at a phone, a tablet and a desktop size.

At each size: mouse (wheel zoom at the pointer, drag), touch (a two-finger pinch through
Chromium's touch emulation), keyboard alone (+ - 0 and the arrows, announced in a live
region), brightness and contrast, a similar image enlarged with its frame, rank and class,
the comparison with the case at the same zoom, and the switch that turns the single-key
shortcuts off. One server for the module; a screenshot of each size goes to test-artifacts/,
and of every open page when a test fails (the `pages` fixture)."""

import re

import pytest

from app.extensions import db
from app.models import User
from tests.e2e.conftest import ARTIFACTS, LiveServer
from tests.e2e.pages import DESKTOP, new_page
from tests.e2e.stages import add_reader, log_in
from tests.e2e.viewer import QUERY, QUERY_IMAGE, SIZES, box, open_task2_case, wait_for_scale

pytestmark = pytest.mark.browser


def check_keyboard(page) -> None:
    """Tab reaches the frame; + zooms, arrows pan, 0 resets; the level is announced."""
    for _ in range(40):
        if page.evaluate("document.activeElement.matches('.query .viewer-frame')"):
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the case image")
    frame = page.locator(QUERY)
    assert frame.get_attribute("role") == "group"
    assert frame.get_attribute("aria-roledescription") == "zoomable image"
    live = page.locator(".query .zoom-level")
    assert live.get_attribute("aria-live") == "polite"
    page.keyboard.press("+")
    page.keyboard.press("+")
    wait_for_scale(page, QUERY_IMAGE, "s > 1.9")
    page.wait_for_function(
        "() => document.querySelector('.query .zoom-level').textContent.startsWith('20')"
    )
    before = box(page, QUERY_IMAGE)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        f"() => document.querySelector({QUERY_IMAGE!r}).getBoundingClientRect().left"
        f" < {before['x'] - 5}"
    )
    assert box(page, QUERY_IMAGE)["y"] < before["y"] - 5
    page.keyboard.press("0")
    wait_for_scale(page, QUERY_IMAGE, "Math.abs(s - 1) < 0.01")
    assert live.inner_text().replace("\u00a0", " ") == "100 %"
    # The viewer's keys are not taken as answers.
    assert page.locator("input[type=radio]:checked").count() == 0


def check_mouse(page) -> None:
    """The wheel zooms at the pointer (the spot under it stays there); a drag pans."""
    frame = box(page, QUERY)
    x, y = frame["x"] + frame["width"] * 0.3, frame["y"] + frame["height"] * 0.3
    image = box(page, QUERY_IMAGE)
    spot = ((x - image["x"]) / image["width"], (y - image["y"]) / image["height"])
    page.mouse.move(x, y)
    for _ in range(3):
        page.mouse.wheel(0, -100)
    wait_for_scale(page, QUERY_IMAGE, "s > 1.2")
    image = box(page, QUERY_IMAGE)
    after = ((x - image["x"]) / image["width"], (y - image["y"]) / image["height"])
    assert after == pytest.approx(spot, abs=0.02), (spot, after)
    page.mouse.down()
    page.mouse.move(x + 40, y + 30, steps=5)
    page.mouse.up()
    moved = box(page, QUERY_IMAGE)
    assert moved["x"] == pytest.approx(image["x"] + 40, abs=3)
    assert moved["y"] == pytest.approx(image["y"] + 30, abs=3)
    page.get_by_role("button", name="Reset").first.click()
    wait_for_scale(page, QUERY_IMAGE, "Math.abs(s - 1) < 0.01")


def check_pinch(page) -> None:
    """Two fingers moving apart on the case image zoom it in (Chromium's touch emulation)."""
    frame = box(page, QUERY)
    cx, cy = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, spread: float) -> None:
        points = (
            []
            if kind == "touchEnd"
            else [
                {"x": cx - spread, "y": cy, "id": 1},
                {"x": cx + spread, "y": cy, "id": 2},
            ]
        )
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 20)
    for spread in range(30, 130, 10):
        touch("touchMove", spread)
    touch("touchEnd", 0)
    wait_for_scale(page, QUERY_IMAGE, "s > 1.3")
    cdp.detach()
    page.get_by_role("button", name="Reset").first.click()
    wait_for_scale(page, QUERY_IMAGE, "Math.abs(s - 1) < 0.01")


def check_brightness_and_contrast(page) -> None:
    """The sliders change the case image's filter; Reset puts them back."""
    slider = page.locator(".query input[data-filter=brightness]")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    contrast = page.locator(".query input[data-filter=contrast]")
    contrast.focus()
    page.keyboard.press("ArrowLeft")
    image_filter = page.eval_on_selector(QUERY_IMAGE, "img => img.style.filter")
    assert image_filter == "brightness(1.2) contrast(0.9)", image_filter
    page.get_by_role("button", name="Reset").first.click()
    assert page.eval_on_selector(QUERY_IMAGE, "img => img.style.filter") == (
        "brightness(1) contrast(1)"
    )


def check_neighbour_and_compare(page, size: str) -> None:
    """A similar image enlarges with its frame, rank and class; compare shows the case
    beside it, and zooming one zooms both alike."""
    tile = page.locator("figure.tile").first
    code = re.search(r"cls-(\w+)", tile.get_attribute("class")).group(1)
    caption = tile.locator("figcaption").inner_text()
    tile.locator("a").click()
    dialog = page.locator("#viewer-dialog")
    assert dialog.is_visible()
    pane = dialog.locator("figure.pane").first
    assert f"cls-{code}" in pane.get_attribute("class")
    assert pane.locator("figcaption").inner_text() == caption
    colour = pane.evaluate("el => getComputedStyle(el).borderTopColor")
    assert colour == tile.evaluate("el => getComputedStyle(el).borderTopColor")
    assert caption.split()[0] in dialog.locator("h2").inner_text()
    enlarged = box(page, "#viewer-dialog figure.pane img")
    assert enlarged["width"] > box(page, "figure.tile img")["width"] * 1.8

    page.get_by_role("button", name="Compare with the case").click()
    assert dialog.locator("figure.pane").count() == 2
    assert dialog.locator("figure.query-pane").count() == 1
    first, second = (box(page, f"#viewer-dialog figure.pane:nth-child({n}) img") for n in (1, 2))
    assert first["width"] == pytest.approx(second["width"], abs=1)
    page.locator("#viewer-dialog figure.pane:nth-child(1) .viewer-frame").focus()
    page.keyboard.press("+")
    page.keyboard.press("ArrowLeft")
    # Panzoom paints on the next frame: wait until both are zoomed and moved alike.
    page.wait_for_function(
        "() => { const m = [...document.querySelectorAll('#viewer-dialog .pane img')].map("
        "i => new DOMMatrix(getComputedStyle(i).transform));"
        " return m.length === 2 && m[0].a > 1.3 && m[0].e !== 0"
        " && m[0].toString() === m[1].toString(); }"
    )
    matrices = dialog.locator(".pane img").evaluate_all(
        "imgs => imgs.map(i => getComputedStyle(i).transform)"
    )
    assert matrices[0] == matrices[1], matrices
    page.screenshot(path=str(ARTIFACTS / f"e2e-viewer-compare-{size}.png"))
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.closest('figure.tile') !== null")


def check_shortcut_switch(page, server: LiveServer, email: str) -> None:
    """The switch turns the single keys off at once and for the account; then on again."""
    page.keyboard.press("Escape")
    switch = page.locator("form[data-shortcut-form] button")
    switch.click()
    page.wait_for_function(
        "() => document.querySelector('[data-shortcuts]').dataset.shortcuts === 'off'"
    )
    page.locator("h1").click()
    page.keyboard.press("3")
    assert page.locator("input[type=radio]:checked").count() == 0
    assert page.locator("input[aria-keyshortcuts]").count() == 0
    with server.app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        assert user.shortcuts_enabled is False
    page.reload()
    assert page.locator("[data-shortcuts]").get_attribute("data-shortcuts") == "off"
    page.locator("form[data-shortcut-form] button").click()
    page.wait_for_function(
        "() => document.querySelector('[data-shortcuts]').dataset.shortcuts === 'on'"
    )
    page.locator("h1").click()
    page.keyboard.press("3")
    assert page.locator("#diagnosis-bkl").is_checked()


@pytest.mark.parametrize("size", list(SIZES))
def test_the_viewer_at_three_sizes(
    module_server: LiveServer, browser: object, pages: dict, size: str
) -> None:
    server = module_server
    email = f"viewer-{size}@example.org"
    page = open_task2_case(server, browser, pages, size, email)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-viewer-task2-{size}.png"), full_page=True)
    # The case image is asked for first, before the styles and scripts (a slow line).
    preload = page.locator("head link[rel=preload][as=image]").first
    assert preload.get_attribute("fetchpriority") == "high"
    assert preload.get_attribute("href") == page.locator(QUERY_IMAGE).get_attribute("src")

    # Fit: the case image uses the space it has (wider than a third of the window, or the
    # whole width on a phone), and no page scrolls sideways.
    frame = box(page, QUERY)
    share = 0.85 if size == "390x844" else 0.4
    assert frame["width"] >= SIZES[size]["width"] * share, frame
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
    # Every class name is whole: no caption is cut off.
    assert page.locator("figure.tile figcaption").evaluate_all(
        "cs => cs.every(c => c.scrollHeight <= c.clientHeight + 1"
        " && c.scrollWidth <= c.clientWidth + 1)"
    )

    # Every way in at every size: keys, a mouse (or a tablet's trackpad), two fingers (a
    # touch screen, or a touch laptop's through Chromium's touch emulation).
    check_keyboard(page)
    check_mouse(page)
    check_pinch(page)
    check_brightness_and_contrast(page)
    check_neighbour_and_compare(page, size)
    check_shortcut_switch(page, server, email)
    assert not page.errors, page.errors


def test_the_similar_images_wait_for_the_case_image(
    module_server: LiveServer, browser: object, pages: dict
) -> None:
    """On a slow line the six tiles would share the case image's bandwidth: they are asked
    for only once it has arrived, and the page works meanwhile."""
    server = module_server
    email = "waiting@example.org"
    add_reader(server, email, answered=(1,))
    page = new_page(browser, pages, "waiting", DESKTOP)
    log_in(page, server, email)
    held: list = []
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/images/" in r.url else None)

    def full_size(url: str) -> bool:
        return "/images/" in url and "?" not in url

    def hold(route) -> None:
        held.append(route)

    page.route(full_size, hold)
    page.goto(f"{server.url}/survey/{server.study_id}/task/2/case/1", wait_until="commit")
    page.wait_for_selector(".query .viewer-tools:not([hidden])")  # the scripts have run
    page.wait_for_timeout(300)
    assert held, "the case image was never asked for"
    assert not [url for url in asked if "?w=" in url], asked
    assert page.locator("figure.tile img[src]").count() == 0
    # The page is usable meanwhile: the keys choose a class.
    page.locator("h1").click()
    page.keyboard.press("3")
    assert page.locator("#diagnosis-bkl").is_checked()
    for route in held:
        route.continue_()
    page.wait_for_function(
        "() => { const tiles = [...document.querySelectorAll('figure.tile img')];"
        " return tiles.length === 6 && tiles.every(i => i.complete && i.naturalWidth > 0); }"
    )
    assert [url for url in asked if "?w=" in url]
    assert not page.errors, page.errors
