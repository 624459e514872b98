"""A Celery worker's own ``/metrics``, on ERPSYNC_WORKER_METRICS_PORT: the connector calls its jobs made.

The server starts in the worker's main process (``worker_init``), before the pool's processes are forked. With the
default prefork pool the jobs run in those processes, so they must count in prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, one directory per worker); the main process then adds up their files at each scrape.
The same access rules as the web app's ``/metrics`` apply: the token or the network allow-list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery.signals import worker_init
from django.conf import settings
from django.utils.translation import gettext as _

from .metrics import exposition, multiprocess_directory
from .permissions import MetricsAccess, forbidden_text, metrics_access

log = logging.getLogger(__name__)
BIND_ADDRESS = "0.0.0.0"  # noqa: S104  (scraped from other machines; the token or the allow-list protects it)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress does not hold the worker's shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the worker's log."""


def metrics_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """GET /metrics: this worker's connector calls, for clients the access rules allow."""
    if environ.get("PATH_INFO") != "/metrics":
        return _plain(start_response, "404 Not Found", _("Not found: the metrics are at /metrics."))
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _plain(start_response, "405 Method Not Allowed", _("Use GET."), [("Allow", "GET, HEAD")])
    access = metrics_access(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"))
    if access is MetricsAccess.DISABLED:
        return _plain(start_response, "404 Not Found", _("Not found."))
    if access is MetricsAccess.FORBIDDEN:
        return _plain(start_response, "403 Forbidden", forbidden_text(), [("WWW-Authenticate", "Bearer")])
    body, content_type = exposition(environ.get("HTTP_ACCEPT"), include_database=False)
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def _plain(
    start_response: Callable[..., Any], status: str, text: str, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])])
    return [text.encode() + b"\n"]


def serve(port: int, address: str = BIND_ADDRESS) -> WSGIServer:
    """Serve :func:`metrics_app` on ``port`` from a daemon thread, which ends with the process."""
    server = make_server(address, port, metrics_app, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server


def _forks_job_processes(pool: Any) -> bool:
    """Whether the worker's jobs run in processes of their own (prefork, the default), not in this one."""
    name = pool if isinstance(pool, str) else f"{getattr(pool, '__module__', '')}.{getattr(pool, '__name__', '')}"
    return "prefork" in name.lower()


@worker_init.connect
def start_worker_metrics(sender: Any = None, **kwargs: Any) -> None:
    """Start the worker's metrics server when ERPSYNC_WORKER_METRICS_PORT is set. A port already taken (two
    workers on one machine given the same port) is logged, and the worker runs jobs all the same."""
    port = int(settings.ERPSYNC_WORKER_METRICS_PORT)
    if not port:
        return
    if _forks_job_processes(getattr(sender, "pool_cls", "prefork")) and not multiprocess_directory():
        log.warning(
            "ERPSYNC_WORKER_METRICS_PORT is set, but PROMETHEUS_MULTIPROC_DIR is not: the prefork pool's processes "
            "run the jobs, and their connector calls will not show on this worker's /metrics."
        )
    try:
        serve(port)
    except OSError as error:
        log.error("The worker's metrics could not be served on port %s: %s", port, error)
        return
    log.info("The worker's metrics are served on port %s at /metrics", port)
