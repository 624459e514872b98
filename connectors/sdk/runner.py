"""Serve a connector: ``run(MyConnector())`` gives it a command line; ``serve`` starts the server."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import protocol as p
from .app import ConnectorApp
from .base import Connector

SECRET_ENV = "ERPSYNC_CONNECTOR_SECRET"  # noqa: S105  (the variable's name)
KEY_ID_ENV = "ERPSYNC_CONNECTOR_KEY_ID"
NEXT_SECRET_ENV = "ERPSYNC_CONNECTOR_NEXT_SECRET"  # noqa: S105
NEXT_KEY_ID_ENV = "ERPSYNC_CONNECTOR_NEXT_KEY_ID"
MIN_SECRET_LENGTH = 16


def serve(app: ConnectorApp, host: str = "127.0.0.1", port: int = 8001, threads: int = 8) -> None:
    """Serve ``app`` with waitress (threaded, keep-alive) until interrupted."""
    from waitress import serve as waitress_serve

    logging.getLogger("connectors").info("%s listening on http://%s:%s/v1/", app.connector.name, host, port)
    waitress_serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident=None,
        clear_untrusted_proxy_headers=True,
        max_request_body_size=64 * 1024 * 1024,
    )


def argument_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001)")
    parser.add_argument("--threads", type=int, default=8, help="request threads (default 8)")
    parser.add_argument("--secret-file", type=Path, help=f"file holding the shared secret (else ${SECRET_ENV})")
    parser.add_argument(
        "--key-id", help=f"the key id of that secret, when the CRM names it in its requests (else ${KEY_ID_ENV})"
    )
    parser.add_argument(
        "--next-secret-file",
        type=Path,
        help=f"file holding a second secret, accepted besides the first while the secret is rotated "
        f"(else ${NEXT_SECRET_ENV}); needs --next-key-id",
    )
    parser.add_argument("--next-key-id", help=f"the key id of the second secret (else ${NEXT_KEY_ID_ENV})")
    return parser


def _secret_from(path: Path | None, variable: str, what: str) -> str:
    if path:
        try:
            return path.read_text().strip()
        except OSError as e:
            sys.exit(f"cannot read the {what} from {path}: {e.strerror}")
    return os.environ.get(variable, "").strip()


def read_secret(args: argparse.Namespace) -> str:
    secret = _secret_from(args.secret_file, SECRET_ENV, "shared secret")
    if len(secret) < MIN_SECRET_LENGTH:
        sys.exit(f"give a shared secret of at least {MIN_SECRET_LENGTH} characters with --secret-file or ${SECRET_ENV}")
    return secret


def read_secrets(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :class:`ConnectorApp` for the secrets on the command line or in the environment:
    the shared secret, with its key id if it has one, and a second one with its key id while it is rotated."""
    secret = read_secret(args)
    key_id = (getattr(args, "key_id", None) or os.environ.get(KEY_ID_ENV, "")).strip()
    next_secret = _secret_from(getattr(args, "next_secret_file", None), NEXT_SECRET_ENV, "second secret")
    next_key_id = (getattr(args, "next_key_id", None) or os.environ.get(NEXT_KEY_ID_ENV, "")).strip()
    for given in (key_id, next_key_id):
        if given and not re.match(p.KEY_ID_PATTERN, given):
            sys.exit(f"{given!r} is not a key id: use 1 to 64 letters, digits, '.', '_' or '-'")
    named: dict[str, str] = {key_id: secret} if key_id else {}
    if next_secret or next_key_id:
        if not next_key_id or len(next_secret) < MIN_SECRET_LENGTH:
            sys.exit(
                f"a second secret needs --next-key-id (or ${NEXT_KEY_ID_ENV}) and at least {MIN_SECRET_LENGTH} "
                f"characters in --next-secret-file (or ${NEXT_SECRET_ENV})"
            )
        if next_key_id == key_id:
            sys.exit(f"the two secrets need different key ids; both are {key_id!r}")
        named[next_key_id] = next_secret
    return {"secret": None if key_id else secret, "secrets": named}


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
    serve(ConnectorApp(instance, **read_secrets(args)), args.host, args.port, args.threads)
