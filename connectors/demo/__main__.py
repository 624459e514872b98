"""python -m connectors.demo --port 8001 --secret-file FILE --data demo-erp.sqlite3 [--seed-actors N]"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from connectors.sdk.runner import argument_parser, run

from .connector import DemoConnector
from .seed import seed
from .store import Store


def build(args: argparse.Namespace) -> DemoConnector:
    args.data.parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.data)
    created = seed(store, args.seed_actors)
    if created:
        logging.getLogger("connectors.demo").info("seeded %s actors into %s", created, args.data)
    return DemoConnector(store, api_key=args.api_key)


def main() -> None:
    parser = argument_parser("Serve Demo ERP, a sample ERP with its own database, as a Sync Connector.")
    parser.add_argument("--data", type=Path, default=Path("demo-erp.sqlite3"), help="the ERP's SQLite file")
    parser.add_argument("--api-key", default="demo-api-key", help="the API key connections must be configured with")
    parser.add_argument("--seed-actors", type=int, default=0, help="fill an empty store with this many actors")
    run(build, parser=parser)


if __name__ == "__main__":
    main()
