"""python -m connectors.conformance URL --secret S --config '{"api_key": "..."}'"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .kit import run_conformance


def main() -> None:
    parser = argparse.ArgumentParser(description="Check a running Sync Connector against protocol v1.")
    parser.add_argument("url", help="the connector's base URL, e.g. http://127.0.0.1:8001")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret", help="the shared secret")
    secret.add_argument("--secret-file", type=Path, help="a file holding the shared secret")
    config = parser.add_mutually_exclusive_group(required=True)
    config.add_argument("--config", help="a connection configuration that passes TestConfigData, as JSON")
    config.add_argument("--config-file", type=Path, help="the same, in a file")
    parser.add_argument("--read-only", action="store_true", help="skip the checks that create and change actors")
    parser.add_argument(
        "--strict", action="store_true", help="require protocol v1.1 and check every capability the connector names"
    )
    parser.add_argument("--key-id", default="", help="the key id of the secret on the connector, if it has one")
    parser.add_argument(
        "--replay-wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="--strict: wait this long before replaying a request stamped at the edge of the clock tolerance; "
        "give 301 to check that nonces are kept for the whole window (twice the tolerance)",
    )
    parser.add_argument(
        "--notify-host",
        default="127.0.0.1",
        help="--strict, change_notifications: the address the connector reaches this machine at; the kit's "
        "notify receiver listens there (default 127.0.0.1)",
    )
    parser.add_argument(
        "--notify-wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="--strict, change_notifications: how long to wait for a notification (default 10)",
    )
    args = parser.parse_args()
    shared = args.secret if args.secret else args.secret_file.read_text().strip()
    try:
        settings = json.loads(args.config if args.config else args.config_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"the configuration is not readable JSON: {e}")
    if not isinstance(settings, dict):
        sys.exit("the configuration must be a JSON object")
    report = run_conformance(
        args.url,
        shared,
        settings,
        writable=not args.read_only,
        strict=args.strict,
        key_id=args.key_id,
        replay_wait=args.replay_wait,
        notify_host=args.notify_host,
        notify_wait=args.notify_wait,
    )
    for line in report.lines():
        print(line)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
