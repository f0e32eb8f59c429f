"""Request limits that run before any view (and before the CSRF check reads a form).

- Body size: every request may send at most SMALL_BODY_BYTES, except a bundle upload by a
  logged-in organiser or admin, which may send MAX_CONTENT_LENGTH. The limit is set on the
  request before anything reads the body, so an anonymous 512 MB POST is refused (413) after
  SMALL_BODY_BYTES without a byte of it reaching a temporary file. (A logged-in organiser's
  multipart upload is parsed before its CSRF token can be checked, since the token is inside
  it; SameSite=Lax session cookies keep other sites from sending it in their name.)
- Heavy staff pages (the dashboard, its figures and exports): at most
  DASHBOARD_REQUESTS_PER_MINUTE per account, counted in the database, so that one organiser
  reloading them in a loop cannot slow the readers' pages (reading time is study data).
- Idle sessions: a session unused for SESSION_IDLE_MINUTES is logged out.
"""

from datetime import datetime, timedelta

from flask import Flask, current_app, flash, request, session
from flask_login import current_user, logout_user, user_logged_in
from werkzeug.exceptions import RequestEntityTooLarge, TooManyRequests

from app.auth.throttle import hit
from app.clock import now

UPLOAD_ENDPOINTS = frozenset({"imports.import_study"})
HEAVY_BLUEPRINTS = frozenset({"dashboard"})
SEEN = "_seen"  # the session key holding when the session was last used (Unix seconds)
EPOCH = datetime(1970, 1, 1)  # the app's clock is naive UTC


def limit_body() -> None:
    """Allow a large body only for a staff member's bundle upload."""
    upload = (
        request.endpoint in UPLOAD_ENDPOINTS
        and request.method == "POST"
        and current_user.is_authenticated
        and current_user.is_staff
    )
    if not upload:
        limit = current_app.config["SMALL_BODY_BYTES"]
        request.max_content_length = limit  # bounds what is read, chunked bodies too
        if (request.content_length or 0) > limit:
            raise RequestEntityTooLarge()  # said up front: refused before any view runs


def seconds_now() -> int:
    """The app's clock (app/clock.py) in Unix seconds: what the session keeps under SEEN."""
    return int((now() - EPOCH).total_seconds())


def start_idle_clock(_app: Flask, **_extra: object) -> None:
    """At every login: the session's last use is now (Flask-Login's user_logged_in signal)."""
    session[SEEN] = seconds_now()


def expire_idle_session() -> None:
    """Log out a session that was not used for SESSION_IDLE_MINUTES (checked every request).

    Every login writes the time of use into the cookie, so a session without one is older
    than that rule (from before it, or of unknown age): it is logged out too.
    """
    if not current_user.is_authenticated:
        return
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    moment = seconds_now()
    seen = session.get(SEEN)
    if not isinstance(seen, int | float) or moment - seen > idle:
        logout_user()
        session.pop(SEEN, None)
        flash("You were logged out after a long time without activity. Please log in.", "info")
        return
    if moment - seen > min(60, idle / 10):
        session[SEEN] = moment  # not at every request: fewer cookie rewrites


def limit_heavy_pages() -> None:
    """Refuse a staff account's dashboard requests beyond the per-minute allowance (429)."""
    if request.blueprint not in HEAVY_BLUEPRINTS or not current_user.is_authenticated:
        return
    allowance = current_app.config["DASHBOARD_REQUESTS_PER_MINUTE"]
    if hit(f"d:{current_user.id}", timedelta(minutes=1)) > allowance:
        raise TooManyRequests(retry_after=60)


def register(app: Flask) -> None:
    """Install the limits; call before the extensions, so the body limit precedes CSRF."""
    app.before_request(limit_body)


def register_after_login(app: Flask) -> None:
    """The limits that need the logged-in user (after Flask-Login is bound)."""
    user_logged_in.connect(start_idle_clock, app)
    app.before_request(expire_idle_session)
    app.before_request(limit_heavy_pages)
