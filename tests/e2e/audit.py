"""The accessibility audit (axe-core) over a page at every size, shared by the browser walks."""

from tests.e2e.conftest import ARTIFACTS, AXE, LiveServer
from tests.e2e.pages import DESKTOP, TABLET
from tests.e2e.stages import log_in

PHONE = {"width": 390, "height": 844}


SIZES = {"390x844": PHONE, "820x1180": TABLET, "1366x768": DESKTOP}


def audit(page, url: str, found: list[str], size: str, action=None) -> None:
    """Open `url` (or run `action` on the open page), run axe, check the reflow."""
    if url:
        page.goto(url)
        page.wait_for_load_state("load")
    if action:
        action(page)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    where = page.url.split("//", 1)[1].split("/", 1)[1] + (" (dialog)" if action else "")
    for violation in result["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"]][:4]
        found.append(f"{size} /{where}: {violation['id']} ({violation['impact']}): {targets}")
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > page.viewport_size["width"] + 1:
        found.append(f"{size} /{where}: the page is {width} px wide")
        page.screenshot(path=str(ARTIFACTS / f"a11y-wide-{size}-{len(found)}.png"))


def session(browser, viewport: dict, server: LiveServer, email: str | None):
    """A page with axe loaded on every document, logged in as `email` (or nobody)."""
    context = browser.new_context(viewport=viewport)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.set_default_timeout(10000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    if email:
        log_in(page, server, email)
    return page
