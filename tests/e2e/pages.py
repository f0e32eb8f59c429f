"""Browser pages for the end-to-end tests: viewports and a page that collects script errors and
failed requests."""

DESKTOP = {"width": 1366, "height": 768}


TABLET = {"width": 820, "height": 1180}


def new_page(
    browser: object,
    pages: dict,
    name: str,
    viewport: dict,
    state: object = None,
    touch: bool = False,
):
    """A page in a fresh context (optionally with another context's cookies, or a phone's
    touch screen)."""
    context = browser.new_context(
        viewport=viewport, storage_state=state, has_touch=touch, is_mobile=touch
    )
    page = context.new_page()
    page.set_default_timeout(10000)
    errors: list[str] = []
    # Script errors and CSP refusals appear on the console; failed requests are checked by
    # status (the browser's own favicon request is no concern of the survey).
    page.on(
        "console",
        lambda m: errors.append(m.text)
        if m.type == "error" and not m.text.startswith("Failed to load resource")
        else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}")
        if r.status >= 400 and not r.url.endswith("/favicon.ico")
        else None,
    )
    page.errors = errors
    pages[name] = page
    return page
