"""A connector that misbehaves on demand: a proxy on loopback in front of a real Demo ERP process.

Requests are passed through with their signature headers, so the Demo ERP verifies them as usual. A fault is
set per operation path and lasts a given number of calls; ``after_forwarding`` makes the ERP apply the call
before the answer goes wrong, the worst moment for a sync (the ERP changed, the CRM has not heard of it).
The proxy can also be stopped and started again on the same port: a connector that is down, then back.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from waitress.server import create_server

from connectors import protocol as p

SIGNATURE_HEADERS = (p.HEADER_TIMESTAMP, p.HEADER_NONCE, p.HEADER_SIGNATURE)
HTML_PAGE = b"<html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>"

Start = Callable[..., Any]


@dataclass
class Fault:
    kind: str  # hang, delay, html500, html503, invalid_json, huge, trickle
    times: int = 1
    after_forwarding: bool = False
    seconds: float = 5.0
    skip: int = 0  # calls passed through before the fault starts


class FaultyConnector:
    def __init__(self, target: str, port: int) -> None:
        self.target = target.rstrip("/")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.faults: dict[str, Fault] = {}
        self.calls: list[str] = []  # operation paths in the order they arrived
        self.injected: list[str] = []  # "<kind> <path>" for every call that misbehaved
        self._lock = threading.Lock()
        # Set by close(): requests still hanging are let go, so the test need not wait out their seconds.
        self._closing = threading.Event()
        self._http = httpx.Client(timeout=30)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # Control

    def fail(self, path: str, fault: Fault) -> None:
        with self._lock:
            self.faults[path] = fault

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()

    def start(self) -> None:
        # The loop wakes every 0.1 s (not every 1 s) to see that it was closed: stop() does not wait for it.
        self._server = create_server(
            self, host="127.0.0.1", port=self.port, threads=8, ident=None, asyncore_loop_timeout=0.1
        )
        self._thread = threading.Thread(target=self._serve, args=(self._server,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop the open connections, as a connector process that ends does: calls are refused
        (connection refused) until :meth:`start`. A client's kept-alive connection would otherwise still be served,
        and keep the server's loop, and this call, waiting."""
        if self._server is not None:
            for channel in list(self._server.active_channels.values()):
                channel.will_close = True  # closed by the server's loop, which the trigger wakes
            self._server.pull_trigger()
            self._server.close()
            if self._thread is not None:
                self._thread.join(5)
            self._server = None

    def close(self) -> None:
        self._closing.set()
        self.stop()
        self._http.close()

    @staticmethod
    def _serve(server: Any) -> None:
        # Closing the listening socket under waitress's loop ends it with EBADF.
        with contextlib.suppress(OSError):
            server.run()

    # The WSGI application

    def __call__(self, environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self._lock:
            self.calls.append(path)
            fault = self.faults.get(path)
            if fault is not None and fault.skip > 0:
                fault.skip -= 1
                fault = None
            elif fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[path]
                self.injected.append(f"{fault.kind} {path}")
        status, content = 200, b""
        if fault is None or fault.after_forwarding or fault.kind == "delay":
            status, content = self._forward(environ, path, body)
        if fault is None:
            return self._answer(start_response, status, content)
        return self._misbehave(fault, start_response, status, content)

    def _forward(self, environ: dict[str, Any], path: str, body: bytes) -> tuple[int, bytes]:
        headers = {name: environ.get("HTTP_" + name.upper().replace("-", "_"), "") for name in SIGNATURE_HEADERS}
        headers["Content-Type"] = "application/json"
        headers["Accept-Language"] = environ.get("HTTP_ACCEPT_LANGUAGE", "en")
        if environ["REQUEST_METHOD"] == "GET":
            answer = self._http.get(self.target + path)
        else:
            answer = self._http.post(self.target + path, content=body, headers=headers)
        return answer.status_code, answer.content

    @staticmethod
    def _answer(
        start_response: Start, status: int, content: bytes, content_type: str = "application/json"
    ) -> list[bytes]:
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}",
            [("Content-Type", content_type), ("Content-Length", str(len(content)))],
        )
        return [content]

    def _misbehave(self, fault: Fault, start_response: Start, status: int, content: bytes) -> Iterable[bytes]:
        if fault.kind == "hang":
            self._closing.wait(fault.seconds)  # longer than the worker waits: its client gives up first
            return self._answer(start_response, 200, content or b"{}")
        if fault.kind == "delay":
            time.sleep(fault.seconds)  # slow, but within the worker's timeout: the answer arrives
            return self._answer(start_response, status, content)
        if fault.kind == "html500":
            return self._answer(start_response, 500, HTML_PAGE, "text/html")
        if fault.kind == "html503":
            return self._answer(start_response, 503, HTML_PAGE, "text/html")
        if fault.kind == "invalid_json":
            return self._answer(start_response, 200, b'{"ok": true, "state": "ok", "data": {"actors": [')
        if fault.kind == "huge":
            start_response("200 OK", [("Content-Type", "application/json")])
            return _huge(p.MAX_RESPONSE_BYTES + 1024 * 1024)
        if fault.kind == "trickle":
            start_response("200 OK", [("Content-Type", "application/json")])
            return _trickle(fault.seconds, self._closing)
        raise AssertionError(f"unknown fault {fault.kind}")


def _huge(size: int) -> Iterator[bytes]:
    """A body larger than any answer may be, sent without a Content-Length: the client must cut it off."""
    yield b'{"ok": true, "state": "ok", "data": {"actors": [], "padding": "'
    chunk = b"x" * (1024 * 1024)
    for _ in range(size // len(chunk)):
        yield chunk
    yield b'"}}'


def _trickle(seconds: float, closing: threading.Event) -> Iterator[bytes]:
    """A byte every 0.2 s for ``seconds`` (or until the proxy closes): every read is quick, the whole answer
    never is."""
    yield b'{"ok": true, "state": "ok", "data": {"actors": ['
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not closing.wait(0.2):
        yield b" "
    yield b"]}}"
