"""python -m connectors.demo --port 8001 --secret-file FILE --data demo-erp.sqlite3 [--seed-actors N]
[--latency-ms N | MIN-MAX]"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from connectors.sdk.runner import SECRET_ENV, argument_parser, run

from .connector import DemoConnector
from .latency import Latency
from .seed import seed
from .store import Store

DEMO_API_KEY = "demo-api-key"


def latency_argument(text: str) -> Latency:
    try:
        return Latency.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build(args: argparse.Namespace) -> DemoConnector:
    args.data.parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.data)
    created = seed(store, args.seed_actors)
    log = logging.getLogger("connectors.demo")
    if created:
        log.info("seeded %s actors into %s", created, args.data)
    if args.latency_ms is not None:
        log.info("every protocol call waits %s before it is answered", args.latency_ms)
    # Whoever adds this connector in the CRM needs its shared secret: say where it is (never the secret itself).
    where = f"the file {args.secret_file}" if args.secret_file else f"the environment variable ${SECRET_ENV}"
    # The demo's well-known API key is named; one of the operator's own is not.
    key = f" Connections use the API key {args.api_key!r}." if args.api_key == DEMO_API_KEY else ""
    print(
        f"Demo ERP's shared secret is in {where}: enter it as the Shared secret when you add this Sync Connector "
        f"in the CRM.{key}",
        flush=True,
    )
    return DemoConnector(store, api_key=args.api_key, latency=args.latency_ms)


def parser() -> argparse.ArgumentParser:
    parser = argument_parser("Serve Demo ERP, a sample ERP with its own database, as a Sync Connector.")
    parser.prog = "python -m connectors.demo"
    parser.add_argument("--data", type=Path, default=Path("demo-erp.sqlite3"), help="the ERP's SQLite file")
    parser.add_argument("--api-key", default=DEMO_API_KEY, help="the API key connections must be configured with")
    parser.add_argument("--seed-actors", type=int, default=0, help="fill an empty store with this many actors")
    parser.add_argument(
        "--latency-ms",
        type=latency_argument,
        metavar="N|MIN-MAX",
        help="answer like a slow ERP: every protocol call waits N milliseconds before it is answered, or a random "
        "time from MIN to MAX drawn for each call (e.g. 1000-3000); its health and schema pages answer at once. "
        "A waiting call holds one of the --threads request threads, and the others are served meanwhile",
    )
    return parser


def main() -> None:
    run(build, parser=parser())


if __name__ == "__main__":
    main()
