"""The e-mails the app writes: each renders a plain-text template and queues the result.

Every link in an e-mail starts with PUBLIC_URL, never with the request's Host header: a
forged Host (or X-Forwarded-Host) must not put another site's address in front of a valid
reset or invitation token. With MAIL_SERVER set, start-up requires PUBLIC_URL.
"""

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_request_context, render_template, url_for

from app.config import ConfigError
from app.mail.outbox import About, Attachment, mail_enabled, queue_mail, queue_mail_if
from app.models import OutboxMessage

# Links outside a request when PUBLIC_URL is unset (no e-mail then: commands print them).
FALLBACK_BASE = "http://127.0.0.1:8000"


def render(template: str, **context: object) -> tuple[str, str]:
    """Render templates/mail/<template>.txt (first line "Subject: ..."): subject and body."""
    text = render_template(f"mail/{template}.txt", **context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"mail/{template}.txt must start with a 'Subject: ' line")
    return first.removeprefix("Subject: ").strip(), body.lstrip("\n")


def compose(
    recipient: str,
    template: str,
    kind: str,
    attachments: Sequence[Attachment] = (),
    dedupe_key: str | None = None,
    about: About | None = None,
    **context: object,
) -> OutboxMessage:
    """Render templates/mail/<template>.txt and queue it."""
    subject, body = render(template, **context)
    return queue_mail(
        recipient,
        subject,
        body,
        kind=kind,
        attachments=attachments,
        dedupe_key=dedupe_key,
        about=about,
    )


def password_reset(recipient: str, link: str, minutes: int, send: bool = True) -> None:
    """The e-mail with a password-reset link, queued only when `send` (the caller commits).

    Rendered and written by the same statement either way (`queue_mail_if`): the reset form
    does this work for every address it is given.
    """
    subject, body = render("password_reset", link=link, minutes=minutes)
    queue_mail_if(send, recipient, subject, body, kind="reset")


def public_base() -> str:
    """Where readers reach the app (PUBLIC_URL), without a trailing slash."""
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return str(configured).rstrip("/")
    if mail_enabled():  # start-up checks this; a configuration changed since must not slip
        raise ConfigError("PUBLIC_URL is not set: no link can be written into an e-mail.")
    return FALLBACK_BASE


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL under PUBLIC_URL, whatever host the current request names.

    Without PUBLIC_URL (and so without e-mail) a link shown on a page to be passed on by
    hand uses the request's own address, as the organiser sees it.
    """
    if not current_app.config.get("PUBLIC_URL") and not mail_enabled() and has_request_context():
        return url_for(endpoint, _external=True, **values)
    base = urlsplit(public_base())
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    current_app.inject_url_defaults(endpoint, values)
    return adapter.build(endpoint, values, force_external=True)
