"""python -m connectors.tryton --port 8002 --secret-file FILE [--data tryton-connections.json]"""

from __future__ import annotations

import argparse
from pathlib import Path

from connectors.sdk.runner import argument_parser, run

from .connector import ConfigStore, TrytonConnector


def build(args: argparse.Namespace) -> TrytonConnector:
    args.data.parent.mkdir(parents=True, exist_ok=True)
    return TrytonConnector(ConfigStore(args.data))


def main() -> None:
    parser = argument_parser("Serve the Tryton connector over the erpsync connector protocol v1.")
    parser.add_argument("--data", type=Path, default=Path("tryton-connections.json"),
                        help="where connections' settings are kept (readable by this user only: it holds passwords)")  # fmt: skip
    run(build, parser=parser)


if __name__ == "__main__":
    main()
