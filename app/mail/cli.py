"""`flask mail ...`: send what is queued (cron or a systemd timer), test the settings, repair."""

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.extensions import db
from app.forms import EMAIL_PATTERN
from app.mail.outbox import (
    MailOff,
    SendReport,
    mail_enabled,
    queue_mail,
    requeue,
    send_queued,
    stale_messages,
)
from app.mail.reminders import WITHDREW, queue_due_reminders
from app.models import MailStatus, OutboxMessage

group = AppGroup("mail", help="Send queued e-mail and check the mail settings.")


def _require_mail() -> None:
    """Stop with one sentence when no SMTP server is configured."""
    if not mail_enabled():
        raise click.ClickException(
            "MAIL_SERVER is not set: the app sends no e-mail (see docs/deployment.md)."
        )


def _echo_report(report: SendReport) -> None:
    """Print what a run did, one line per kind of outcome."""
    line = f"sent {len(report.sent)}, to retry {len(report.retrying)}, failed {len(report.failed)}"
    if report.not_sent:  # reminders to readers who finished since, replaced links...
        line += f", no longer wanted {len(report.not_sent)}"
    click.echo(line)
    for line in report.errors:
        click.echo(f"  {line}", err=True)
    if report.stopped_early:
        click.echo("The SMTP server could not be used; the rest waits for the next run.", err=True)


@group.command("send-queued")
@click.option("--limit", type=int, default=None, help="Send at most this many messages.")
def send_queued_command(limit: int | None) -> None:
    """Queue the reminders that fell due, then send every due message (run it every few
    minutes from cron or a systemd timer)."""
    _require_mail()
    queued = queue_due_reminders()
    if queued:
        click.echo(f"queued {queued} reminder(s)")
    try:
        report = send_queued(limit=limit)
    except MailOff as problem:
        raise click.ClickException(str(problem)) from None
    _echo_report(report)
    stale = stale_messages()
    if stale:
        click.echo(
            f"{len(stale)} message(s) were claimed by a sender that stopped mid-send; "
            "see `flask mail status`.",
            err=True,
        )


@group.command("test")
@click.argument("address")
def test_command(address: str) -> None:
    """Send a test message to ADDRESS now, through the outbox, and say what the server said."""
    _require_mail()
    if not EMAIL_PATTERN.match(address.strip()):
        raise click.ClickException(f"{address!r} is not an e-mail address.")
    message = queue_mail(
        address.strip(),
        "Test message from the reader study",
        "This message checks the reader-study platform's mail settings. No action is needed.\n",
        kind="test",
    )
    db.session.commit()
    report = send_queued(only=[message.id])
    if report.sent:
        click.echo(f"Sent a test message to {address.strip()}.")
        return
    _echo_report(report)
    raise click.ClickException(
        "The test message was not sent"
        + (" yet; it stays queued and will be retried." if report.retrying else ".")
    )


@group.command("status")
def status_command() -> None:
    """Count the queued messages by state, and list those whose sender stopped mid-send."""
    counts = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(
                OutboxMessage.status
            )
        )
        .tuples()
        .all()
    )
    click.echo(", ".join(f"{state.value} {counts.get(state, 0)}" for state in MailStatus))
    for message in stale_messages():
        click.echo(
            f"  uncertain: message {message.id} to {message.recipient} ({message.kind}), claimed "
            f"{message.claimed_at:%Y-%m-%d %H:%M} UTC by {message.claimed_by}: it may have gone "
            "out; `flask mail requeue --stale` sends it again"
        )
    failed = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == MailStatus.FAILED)
    ).all()
    for message in failed:
        click.echo(f"  failed: message {message.id} to {message.recipient}: {message.last_error}")


@group.command("requeue")
@click.option("--stale", is_flag=True, help="Messages whose sender stopped mid-send.")
@click.option("--failed", is_flag=True, help="Messages given up after errors.")
def requeue_command(stale: bool, failed: bool) -> None:
    """Put messages back in the queue (a stale one may then reach its reader twice)."""
    if not (stale or failed):
        raise click.ClickException("Say which: --stale, --failed or both.")
    chosen: list[OutboxMessage] = []
    if stale:
        chosen += stale_messages()
    if failed:
        chosen += db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == MailStatus.FAILED)
        ).all()
    # Reminders to readers who withdrew stay given up: nothing is sent to them.
    kept = [message for message in chosen if message.last_error != WITHDREW]
    count = requeue(kept)
    db.session.commit()
    click.echo(f"requeued {count} message(s)")
    if len(kept) < len(chosen):
        click.echo(f"left {len(chosen) - len(kept)} reminder(s) to withdrawn readers unsent")
