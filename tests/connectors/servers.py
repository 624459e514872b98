"""Real HTTP servers on loopback for connector tests: SDK apps under waitress, a misbehaving one, and one over TLS."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from waitress.server import create_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# The environ key under which serving() hands apps an Event that is set when the block ends.
STOPPING = "tests.server_stopping"


def hold(environ: dict[str, Any], seconds: float) -> None:
    """Keep a request waiting for ``seconds``, or until its server stops: a hanging connector whose test need not
    wait for it to give up after the client already has."""
    environ[STOPPING].wait(seconds)


@contextmanager
def serving(app: WsgiApp, threads: int = 4) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port for the duration of the block; yields its base URL.

    Requests that :func:`hold` are let go when the block ends, so the server stops at once."""
    stopping = threading.Event()

    def with_stopping(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[STOPPING] = stopping
        return app(environ, start_response)

    # The loop wakes every 0.1 s (not every 1 s) to see that it was closed: a test does not wait for it.
    server = create_server(
        with_stopping, host="127.0.0.1", port=0, threads=threads, ident=None, asyncore_loop_timeout=0.1
    )
    port = server.effective_port  # type: ignore[union-attr]

    def run() -> None:
        try:
            server.run()
        except OSError:
            # Closing the listening socket under waitress's select loop ends it with EBADF.
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stopping.set()
        # Kept-alive connections are closed too (by the server's loop, which the trigger wakes): else the loop
        # goes on serving them, and the join below waits its whole 5 s.
        for channel in list(server.active_channels.values()):  # type: ignore[union-attr]
            channel.will_close = True
        server.pull_trigger()  # type: ignore[union-attr]
        server.close()
        thread.join(5)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving_tls(app: WsgiApp, directory: Path) -> Iterator[str]:
    """Serve a WSGI app over HTTPS on a free loopback port, with a certificate for 127.0.0.1 that no authority
    signed (written to ``directory``); yields its base URL. Waitress speaks no TLS, so wsgiref serves it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def misbehaving(behaviour: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]) -> WsgiApp:
    return behaviour


def answer(
    status: str,
    body: bytes | Iterable[bytes],
    content_type: str = "application/json",
    headers: list[tuple[str, str]] | None = None,
) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(status, [("Content-Type", content_type), *(headers or [])])
        return [body] if isinstance(body, bytes) else body

    return app


def trickle(chunks: int, pause: float) -> Iterator[bytes]:
    yield b'{"ok": true, "state": "ok", "data": {"fields": ['
    for _ in range(chunks):
        time.sleep(pause)
        yield b" "
    yield b"]}}"
