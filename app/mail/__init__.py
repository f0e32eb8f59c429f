"""E-mail: the outbox (queue in the caller's transaction, send later with retries), the
messages the app writes, and the `flask mail ...` commands."""

from app.mail.outbox import (
    Attachment,
    MailOff,
    SendReport,
    mail_enabled,
    queue_mail,
    queue_mail_if,
    send_queued,
)

__all__ = [
    "Attachment",
    "MailOff",
    "SendReport",
    "mail_enabled",
    "queue_mail",
    "queue_mail_if",
    "send_queued",
]
