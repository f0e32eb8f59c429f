"""The application's notion of "now", replaceable in tests (`app.config["CLOCK"]`)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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


def _count(number: int, unit: str) -> str:
    """ "1 day", "3 hours"."""
    return f"{number} {unit}{'' if number == 1 else 's'}"


def describe_wait(until: datetime, since: datetime | None = None) -> str:
    """How long until `until`, in days and hours (minutes in the last hour): "13 days and 23
    hours", "5 hours", "40 minutes"; "now" once it has passed."""
    left = until - (since or now())
    if left <= timedelta(0):
        return "now"
    minutes = int(left.total_seconds() // 60) + (1 if left.total_seconds() % 60 else 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days == 0 and hours == 0:
        return _count(minutes, "minute")
    if minutes and days == 0:
        hours += 1  # "in 3 hours" rather than "in 2 hours" when 2 h 40 min are left
        if hours == 24:
            return _count(1, "day")
    parts = [_count(days, "day")] if days else []
    if hours:
        parts.append(_count(hours, "hour"))
    return " and ".join(parts)


def duration_words(hours: float) -> str:
    """A wash-out in words, to the nearest minute: "no pause", "1 minute", "24 hours" ("1
    day"), "1 day and 12 hours". A 0.02-hour pause is "1 minute", not "0.0"."""
    if hours <= 0:
        return "no pause"
    minutes = max(1, round(hours * 60))
    since = datetime(2000, 1, 1)
    return describe_wait(since + timedelta(minutes=minutes), since)
