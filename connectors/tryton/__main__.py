"""python -m connectors.tryton --port 8002 --secret-file FILE [--data tryton-connections.json] [--watch-seconds 2]"""

from __future__ import annotations

import argparse
from pathlib import Path

from connectors.sdk.runner import argument_parser, run

from .connector import ConfigStore, TrytonConnector
from .watch import MIN_WATCH_SECONDS, WATCH_SECONDS


def watch_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds >= MIN_WATCH_SECONDS:
        raise argparse.ArgumentTypeError(f"give at least {MIN_WATCH_SECONDS:g} seconds, not {text}")
    return seconds


def build(args: argparse.Namespace) -> TrytonConnector:
    args.data.parent.mkdir(parents=True, exist_ok=True)
    return TrytonConnector(ConfigStore(args.data), watch_seconds=args.watch_seconds)


def main() -> None:
    parser = argument_parser("Serve the Tryton connector over the erpsync connector protocol v1.")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("tryton-connections.json"),
        help="where connections' settings are kept (readable by this user only: it holds passwords)",
    )
    parser.add_argument(
        "--watch-seconds",
        type=watch_seconds,
        default=WATCH_SECONDS,
        help=f"change notifications: how often Tryton's records are looked at for changes, for the connections "
        f"with a notify URL (default {WATCH_SECONDS:g}, at least {MIN_WATCH_SECONDS:g})",
    )
    run(build, parser=parser)


if __name__ == "__main__":
    main()
