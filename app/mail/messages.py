"""The e-mails the app writes: each renders a plain-text template and queues the result."""

from collections.abc import Sequence

from flask import current_app, render_template

from app.mail.outbox import Attachment, queue_mail
from app.models import OutboxMessage


def compose(
    recipient: str,
    template: str,
    kind: str,
    attachments: Sequence[Attachment] = (),
    dedupe_key: str | None = None,
    **context: object,
) -> OutboxMessage:
    """Render templates/mail/<template>.txt (first line "Subject: ...") and queue it."""
    text = render_template(f"mail/{template}.txt", **context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"mail/{template}.txt must start with a 'Subject: ' line")
    return queue_mail(
        recipient,
        first.removeprefix("Subject: ").strip(),
        body.lstrip("\n"),
        kind=kind,
        attachments=attachments,
        dedupe_key=dedupe_key,
    )


def password_reset(recipient: str, link: str, minutes: int) -> OutboxMessage:
    """The e-mail with a password-reset link (queued; the caller commits)."""
    return compose(recipient, "password_reset", "reset", link=link, minutes=minutes)


def public_base() -> str:
    """Where readers reach the app, for links written outside a request (commands)."""
    return str(current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
