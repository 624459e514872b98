"""Serve a connector: ``run(MyConnector())`` gives it a command line; ``serve`` starts the server."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .app import ConnectorApp
from .base import Connector

SECRET_ENV = "ERPSYNC_CONNECTOR_SECRET"  # noqa: S105  (the variable's name)


def serve(app: ConnectorApp, host: str = "127.0.0.1", port: int = 8001, threads: int = 8) -> None:
    """Serve ``app`` with waitress (threaded, keep-alive) until interrupted."""
    from waitress import serve as waitress_serve

    logging.getLogger("connectors").info("%s listening on http://%s:%s/v1/", app.connector.name, host, port)
    waitress_serve(app, host=host, port=port, threads=threads, ident=None, clear_untrusted_proxy_headers=True,
                   max_request_body_size=64 * 1024 * 1024)  # fmt: skip


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001)")
    parser.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    parser.add_argument("--secret-file", type=Path, help=f"file holding the shared secret (else ${SECRET_ENV})")
    return parser


def read_secret(args: argparse.Namespace) -> str:
    if args.secret_file:
        try:
            secret = args.secret_file.read_text().strip()
        except OSError as e:
            sys.exit(f"cannot read the shared secret from {args.secret_file}: {e.strerror}")
    else:
        secret = os.environ.get(SECRET_ENV, "").strip()
    if len(secret) < 16:
        sys.exit(f"give a shared secret of at least 16 characters with --secret-file or ${SECRET_ENV}")
    return secret


def run(
    connector: Connector | Callable[[argparse.Namespace], Connector],
    argv: Sequence[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> None:
    """The command line of a connector: parse arguments, build the connector, serve it."""
    name = connector.name if isinstance(connector, Connector) else "a Sync Connector"
    parser = parser or argument_parser(f"Serve {name} over the erpsync connector protocol v1.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    instance = connector if isinstance(connector, Connector) else connector(args)
    serve(ConnectorApp(instance, read_secret(args)), args.host, args.port, args.threads)
