"""A real local SMTP server for notice tests (aiosmtpd), not a mock of our sender.

`smtp` fixture: a sink on 127.0.0.1 and a free port that records every message, can refuse
chosen recipients with 550 (hard bounce) or everyone with 451 (try later), and can be
stopped and started again on the same port (SMTP down). The fixture points the Django
mailer at it; `sink.email_url` is the EMAIL_URL for a worker process.
"""

from __future__ import annotations

import email
import socket
import threading
from email.message import Message

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.lower() in self.sink.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.sink.try_later:
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.content)
        with self.sink.lock:
            self.sink.messages.append(message)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused: set[str] = set()
        self.try_later = False
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def email_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def mailers(self) -> dict:
        return {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 5},
            }
        }

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, address: str) -> None:
        self.refused.add(address.lower())

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]


@pytest.fixture
def smtp(settings):
    sink = SmtpSink()
    sink.start()
    settings.MAILERS = sink.mailers
    try:
        yield sink
    finally:
        sink.stop()
