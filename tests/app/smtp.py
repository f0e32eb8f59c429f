"""A real SMTP server on loopback for the tests (aiosmtpd), which can refuse messages on cue."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Sink:
    """The messages the server accepted, and how many to refuse next (with which reply)."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: int = 0
    reply: str = "451 4.3.0 Mailbox busy, try again later"
    refused: int = 0
    delay: float = 0.0  # seconds to think before answering DATA (concurrency tests)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        """Accept the message, or refuse it while `refuse` is above zero."""
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                self.refused += 1
                return self.reply
            parsed = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[attr-defined]
            self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The accepted messages addressed to `address`."""
        return [m for m in self.messages if address in str(m["To"])]


@dataclass
class SmtpServer:
    """A running server: where it listens and what it received."""

    host: str
    port: int
    sink: Sink


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[SmtpServer]:
    """Run an SMTP server on 127.0.0.1 until the block ends."""
    sink = Sink()
    chosen = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=chosen)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", chosen, sink)
    finally:
        controller.stop()
