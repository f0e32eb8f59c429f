"""The case viewer's cases and measurements, shared by its browser tests."""

from tests.e2e.conftest import LiveServer
from tests.e2e.pages import DESKTOP, TABLET, new_page
from tests.e2e.stages import add_reader, log_in

PHONE = {"width": 390, "height": 844}


SIZES = {"390x844": PHONE, "820x1180": TABLET, "1366x768": DESKTOP}


QUERY = ".query .viewer-frame"


QUERY_IMAGE = ".query .viewer-frame img"


def scale_of(page, selector: str) -> float:
    """The Panzoom scale of an image (from its CSS transform matrix)."""
    return page.eval_on_selector(
        selector, "img => new DOMMatrix(getComputedStyle(img).transform).a"
    )


def box(page, selector: str) -> dict:
    """The element's bounding box in CSS pixels."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return found


def wait_for_scale(page, selector: str, test: str) -> None:
    """Wait until the image's scale passes `test` (a JS expression of `s`); Panzoom paints
    on the next animation frame."""
    page.wait_for_function(
        f"() => {{ const s = new DOMMatrix(getComputedStyle(document.querySelector("
        f"{selector!r})).transform).a; return {test}; }}"
    )


def open_task2_case(server: LiveServer, browser, pages: dict, size: str, email: str):
    """A reader in Task 2 (Task 1 done a day ago), on the first case, at `size`."""
    add_reader(server, email, answered=(1,))
    viewport = SIZES[size]
    touch = viewport is not DESKTOP  # a phone's and a tablet's touch screen
    page = new_page(browser, pages, f"viewer-{size}", viewport, touch=touch)
    log_in(page, server, email)
    page.goto(f"{server.url}/survey/{server.study_id}/task/2/case/1")
    page.wait_for_load_state("load")
    page.wait_for_selector(".query .viewer-tools:not([hidden])")
    return page
