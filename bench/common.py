"""What the benchmarks share: a free loopback port, waiting for a server to answer, a fresh database, a Demo
ERP connection, and one results writer (with the machine and a summary row per figure, for bench/report.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any


def use_environment(database_url: str, broker_url: str | None = None, *, production: bool = False) -> None:
    """A benchmark's settings, as defaults: what the environment already sets wins (``make bench`` sets the
    database and the broker). ``production``: DEBUG off and throwaway keys, as the app runs in production."""
    import os
    import secrets

    defaults = {"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "erpsync_admin.settings"}
    if broker_url:
        defaults["CELERY_BROKER_URL"] = broker_url
    if production:
        os.environ["DEBUG"] = "0"  # even in a shell with DEBUG=1: the figures are the production app's
        from cryptography.fernet import Fernet

        defaults |= {"SECRET_KEY": secrets.token_urlsafe(40), "ALLOWED_HOSTS": "127.0.0.1,localhost",
                     "ERPSYNC_FERNET_KEYS": Fernet.generate_key().decode()}  # fmt: skip
    else:
        defaults["DEBUG"] = "1"
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, seconds: float = 120) -> None:
    """Wait until ``url`` answers (anything but a server error); exit with a message if it never does."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def summary_row(
    what: str, target: str, measured: str, met: bool | None, floor_ratio: float | None = None
) -> dict[str, Any]:
    """One row of the benchmark table in docs/performance.md: what was measured, the target ("—" if none), the
    figure, its ratio to the raw floor (None where the benchmark has no floor), and whether the target is met."""
    return {"what": what, "target": target, "measured": measured, "floor_ratio": floor_ratio, "met": met}


def database_description() -> str:
    """The configured database and its version, e.g. "PostgreSQL 16.4" or "SQLite 3.45.1"."""
    from django.db import connection

    if connection.vendor == "postgresql":
        connection.ensure_connection()
        version = int(connection.pg_version or 0)  # type: ignore[attr-defined]
        return f"PostgreSQL {version // 10000}.{version % 100}"
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    return connection.vendor


def machine(database: str | None = None) -> dict[str, Any]:
    """The machine a figure was measured on: cores, Python, and the database (the configured one by default)."""
    import platform

    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "database": database if database is not None else database_description()}  # fmt: skip


def write_results(name: str, results: dict[str, Any], summary: list[dict[str, Any]] | None = None,
                  database: str | None = None) -> None:  # fmt: skip
    """Write a benchmark's figures to bench/results/<name>.json and say where.

    Adds the date, the machine, and the rows for the table in docs/performance.md (see bench/report.py)."""
    import json
    from datetime import date
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = root / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    document = {**results, "date": date.today().isoformat(), "machine": machine(database), "summary": summary or []}
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {out.relative_to(root)}")


def ensure_database(url: str) -> None:
    """Create the benchmark's PostgreSQL database if it does not exist yet."""
    import dj_database_url
    import psycopg

    settings = dj_database_url.parse(url)
    if "postgresql" not in settings["ENGINE"]:
        raise SystemExit("This benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
    admin = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                            user=settings["USER"] or None, password=settings["PASSWORD"] or None, dbname="postgres",
                            autocommit=True)  # fmt: skip
    with admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [settings["NAME"]]).fetchone():
            admin.execute(f'CREATE DATABASE "{settings["NAME"]}"')


def fresh_database() -> None:
    """Empty the configured database (PostgreSQL: flush; SQLite: a new file) and migrate it."""
    from pathlib import Path

    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    else:
        Path(connection.settings_dict["NAME"]).unlink(missing_ok=True)
        connection.close()
    call_command("migrate", verbosity=0)


def demo_erp_connection(seed_actors: int) -> tuple[subprocess.Popen[bytes], Any]:
    """Start a Demo ERP process seeded with ``seed_actors`` actors and define a connection to it.

    Returns the process (the caller terminates it) and the saved, not yet mapped ErpConnection."""
    import secrets
    import sys
    import tempfile
    from pathlib import Path

    from connections import services
    from connections.models import ErpConnection
    from connectors.models import SyncConnector

    root = Path(__file__).resolve().parent.parent
    work = Path(tempfile.mkdtemp(prefix="erpsync-bench-"))
    secret = secrets.token_urlsafe(24)
    (work / "secret").write_text(secret)
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "connectors.demo", "--port", str(port), "--secret-file", str(work / "secret"),
         "--data", str(work / "demo.sqlite3"), "--seed-actors", str(seed_actors)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v1/health", seconds=600)
    connector = SyncConnector(name="Demo ERP", url=url)
    connector.set_secret(secret)
    connector.save()
    with services.interactive_client(url, secret) as client:
        fields = client.get_config_data().data.fields
    config: dict[str, Any] = {"client_name": "bench", "api_key": "demo-api-key", "company_number": 1}
    connection = services.save_connection(ErpConnection(name="Demo ERP", connector=connector), fields=fields,
                                          values=config, grants=[], user=None)  # fmt: skip
    return demo, connection
