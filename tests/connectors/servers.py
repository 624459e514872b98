"""Real HTTP servers on loopback for connector tests: SDK apps under waitress, and a misbehaving one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from waitress.server import create_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@contextmanager
def serving(app: WsgiApp, threads: int = 4) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port for the duration of the block; yields its base URL."""
    server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident=None)
    port = server.effective_port  # type: ignore[union-attr]
    stopping = threading.Event()

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
        server.close()
        thread.join(5)


def misbehaving(behaviour: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]) -> WsgiApp:
    return behaviour


def answer(status: str, body: bytes | Iterable[bytes], content_type: str = "application/json",
           headers: list[tuple[str, str]] | None = None) -> WsgiApp:  # fmt: skip
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
