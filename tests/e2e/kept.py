"""The kept reader's account and log-in, shared by the browser tests of the answers kept across a
session's end and of the preview."""

PASSWORD = "reader passphrase 1"


EMAIL = "reader@example.org"


def log_in(page: object, email: str = EMAIL, password: str = PASSWORD) -> None:
    """Fill the login form on the current page and send it."""
    page.fill("#email", email)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
