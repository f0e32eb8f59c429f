"""Error handlers: a page for browsers, JSON for API calls; the session is rolled back on 500."""

from flask import Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError
from werkzeug.wrappers import Response as WerkzeugResponse  # what redirect() gives

from app.extensions import db

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Upload too large",
    429: "Too many attempts",
    500: "Something went wrong",
}
EXPLANATIONS = {
    400: "The request could not be understood. If you sent a form, reload the page and try again.",
    403: "Your account may not see this page.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The file you sent is larger than this server accepts.",
    429: "Too many attempts in a short time. Please wait a few minutes and try again.",
    500: "The server failed to answer. The error has been logged; please try again later.",
}


def discard_transaction() -> None:
    """Roll back the request's half-done transaction, even when its connection is gone.

    After a database restart the rollback itself fails on the dead connection; the session
    is then invalidated instead, so the error page still renders and the pool reconnects.
    """
    try:
        db.session.rollback()
    except SQLAlchemyError:
        db.session().invalidate()


def wants_json() -> bool:
    """Whether the client asked for JSON rather than a page."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and (
        request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(status: int, message: str | None = None) -> tuple[Response | str, int]:
    """The response for an error with `status`: JSON or the error page."""
    title = TITLES.get(status, "Error")
    text = message or EXPLANATIONS.get(status, title)
    if wants_json():
        return jsonify(error=title, message=text, status=status), status
    return render_template("errors/error.html", status=status, title=title, message=text), status


def handle_http_error(error: HTTPException) -> tuple[Response | str, int] | HTTPException:
    """Render an HTTP error; redirects and other non-errors pass through untouched."""
    status = error.code or 500
    if status < 400:
        return error
    if status >= 500:
        discard_transaction()
    # Only our own explanations: werkzeug's descriptions may echo request details.
    message = error.description if getattr(error, "show_description", False) else None
    return error_response(status, message)


# Said when an answer arrives after the reader's session ended (survey.case, see below).
ANSWER_NOT_SAVED = (
    "Your session had ended, so your answer was not saved yet. Log in to return to the same "
    "case: your choice is still selected there (if this browser tab kept it); press Save again."
)


def back_to_the_case() -> WerkzeugResponse | None:
    """For an answer posted after the session ended: to the login page, then back to the case.

    The answer page keeps the reader's choice in the tab (static/js/keepanswer.js), so the
    reader finds it selected again. Any other refused form gets the plain error page.
    """
    if request.method != "POST" or request.endpoint != "survey.case":
        return None
    if getattr(current_user, "is_authenticated", False):
        return None  # a live session with a wrong token: forged, not expired
    flash(ANSWER_NOT_SAVED, "warning")
    return redirect(url_for("auth.login", next=request.path))


def handle_csrf_error(error: CSRFError) -> tuple[Response | str, int] | WerkzeugResponse:
    """A form without a valid CSRF token (expired page, or sent from another site)."""
    returning = back_to_the_case()
    if returning is not None:
        return returning
    return error_response(
        400, "The form was missing its security token or it expired. Reload the page and retry."
    )


def handle_unexpected(error: InternalServerError) -> tuple[Response | str, int]:
    """An uncaught exception (Flask wraps it in a 500): roll back the half-done transaction."""
    discard_transaction()
    return error_response(500)


def handle_untrusted_host(error: SecurityError) -> tuple[Response, int]:
    """A Host header outside TRUSTED_HOSTS: plain text, since no URL can be built for it."""
    return Response("Bad request: this host name is not served here.\n", mimetype="text/plain"), 400


def register(app: Flask) -> None:
    """Install the handlers on `app`."""
    app.register_error_handler(SecurityError, handle_untrusted_host)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    # Flask hands every uncaught exception here, wrapped (tests re-raise it instead).
    app.register_error_handler(InternalServerError, handle_unexpected)
