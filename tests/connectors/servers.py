"""Real HTTP servers on loopback for connector tests: SDK apps under waitress, and a misbehaving one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

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
