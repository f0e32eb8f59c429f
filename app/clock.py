"""The application's notion of "now", replaceable in tests (`app.config["CLOCK"]`)."""

from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app, has_app_context


def system_now() -> datetime:
    """The current time in UTC, as a naive datetime (what every database column stores)."""
    return datetime.now(UTC).replace(tzinfo=None)


def now() -> datetime:
    """The current UTC time, from the app's configured clock when there is an app."""
    if has_app_context():
        clock: Callable[[], datetime] = current_app.config.get("CLOCK") or system_now
        return clock()
    return system_now()
