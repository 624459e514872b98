"""Real channels on loopback for the alerts tests: an SMTP server (aiosmtpd) and a webhook receiver (http.server)."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alerts.choices import Condition
from alerts.models import AlertSettings, ConnectionAlertSettings
from connections.models import ErpConnection

from ..conftest import free_port
from ..factories import ErpConnectionFactory, UserFactory


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # A subject with non-ASCII characters arrives as an encoded word, unfolded with a leading space.
        return str(self.message["Subject"]).strip()

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class MailServer:
    """What a real SMTP server on loopback received; addresses in ``refuse`` are refused at RCPT."""

    host: str
    port: int
    received: list[Mail] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else (envelope.content or "").encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def to(self, address: str) -> list[Mail]:
        return [mail for mail in self.received if address in mail.recipients]


def use_mail_server(settings: Any, host: str, port: int) -> None:
    """Point Django's mail settings at ``host:port`` over plain SMTP (pytest-django swaps in the locmem backend)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = host, port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "erpsync@crm.example.com"


@pytest.fixture
def mail_server(settings: Any) -> Iterator[MailServer]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    server = MailServer("127.0.0.1", free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    use_mail_server(settings, server.host, server.port)
    yield server
    controller.stop()


@pytest.fixture
def no_mail_server(settings: Any) -> int:
    """Mail settings pointing at a loopback port where nothing listens; returns the port."""
    port = free_port()
    use_mail_server(settings, "127.0.0.1", port)
    return port


@dataclass
class WebhookReceiver:
    """A real HTTP server on loopback taking webhook posts; ``status`` and ``location`` shape its answer."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    location: str = ""

    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.posts.append({**json.loads(body), "_content_type": self.headers.get("Content-Type")})
            answer = b"ok" if receiver.status < 300 else b"no_service"
            self.send_response(receiver.status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/token-that-is-a-secret"
    # Polled every 0.05 s, not 0.5 s, so shutdown() at the end of each test returns at once.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def erp_admin(db: Any) -> Any:
    """An ERP administrator who is not a superuser."""
    return UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])


def make_connection(
    name: str = "Demo ERP – Sweden",
    url: str = "",
    active: bool = True,
    recipients: str = "",
    threshold: int | None = None,
) -> ErpConnection:
    """A connection row, with its own connector at ``url`` (by default a loopback port where nothing listens)."""
    connection = ErpConnectionFactory.create(
        name=name,
        connector__name=f"{name} connector",
        connector__url=url or f"http://127.0.0.1:{free_port()}",
        connector__secret="alerts-tests-connector-secret",
        is_active=active,
    )
    if recipients or threshold is not None:
        ConnectionAlertSettings.objects.create(
            connection=connection, recipients=recipients, failed_records_threshold=threshold
        )
    return connection


def watch_only(
    *watched: Condition, recipients: str = "ops@example.com", webhook_url: str = "", **values: Any
) -> AlertSettings:
    """Alert settings that watch only ``watched``, so that a test sees nothing else (no worker runs here)."""
    row = AlertSettings.load()
    for condition in Condition:
        setattr(row, f"{condition}_on", condition in watched)
    row.recipients = recipients
    row.set_webhook_url(webhook_url)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    return row
