"""A small HTTP server standing in for the CRM's notify URL, so that the kit sees the change notifications a
connector sends (protocol v1.1, change_notifications) and checks their signature and shape."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Listens on ``host`` (a free port) at a path with a random part; keeps every request it gets. Answers each
    with an ok envelope accepting the connections named, or, while ``refuse`` is above zero, with 503 (counting
    down), as a CRM that is briefly down would."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self.refuse = 0
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1024 * 1024))
                receiver._record(Received("POST", self.path, dict(self.headers.items()), body, time.monotonic()))
                status, answer = receiver._answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                receiver._record(Received("GET", self.path, dict(self.headers.items()), b"", time.monotonic()))
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.path = f"/kit-notify/{secrets.token_hex(6)}"
        port = self.server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}{self.path}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)
            self._lock.notify_all()

    def _answer(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            if self.refuse > 0:
                self.refuse -= 1
                return 503, b'{"ok": false, "state": "error", "error_code": "unavailable"}'
        try:
            named = [change["connection_id"] for change in json.loads(body)["changes"]]
        except (ValueError, KeyError, TypeError):
            return 400, b'{"ok": false, "state": "error", "error_code": "invalid_request"}'
        return 200, json.dumps({"ok": True, "state": "ok", "data": {"accepted": named, "ignored": []}}).encode()

    def wait(self, matching: Any, timeout: float, since: int = 0) -> list[Received]:
        """The requests from index ``since`` on for which ``matching(request)`` is true, once there is at least one,
        or [] after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self.received[since:] if matching(r)]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self._lock.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
