"""What the benchmarks share: a free loopback port, waiting for a server to answer, a fresh database, a Demo
ERP connection, and one results writer (with the machine and a summary row per figure, for bench/report.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def use_environment(database_url: str, broker_url: str | None = None, *, production: bool = False) -> None:
    """A benchmark's settings, as defaults: what the environment already sets wins (``make bench`` sets the
    database and the broker). ``production``: DEBUG off and throwaway keys, as the app runs in production."""
    import os
    import secrets

    defaults = {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "erpsync_admin.settings",
        # The benchmarks' connectors listen on loopback, which a connector may use only when its host is named.
        "ERPSYNC_CONNECTOR_HOSTS": "127.0.0.1,localhost",
    }
    if broker_url:
        defaults["CELERY_BROKER_URL"] = broker_url
    if production:
        os.environ["DEBUG"] = "0"  # even in a shell with DEBUG=1: the figures are the production app's
        from cryptography.fernet import Fernet

        defaults |= {
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "ERPSYNC_FERNET_KEYS": Fernet.generate_key().decode(),
        }
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

    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "database": database if database is not None else database_description(),
    }


def write_results(
    name: str, results: dict[str, Any], summary: list[dict[str, Any]] | None = None, database: str | None = None
) -> None:
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
    admin = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
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


def start_demo_erp(
    data: Path, secret_file: Path, seed_actors: int = 0, latency_ms: str = ""
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a Demo ERP process on the store ``data`` and wait until it answers; returns it and its URL.

    ``latency_ms`` is its --latency-ms ("1000", or "1000-3000"): every protocol call waits that long, as a real
    ERP's would. Two processes may serve one store."""
    import sys

    root = Path(__file__).resolve().parent.parent
    port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.demo",
            "--port",
            str(port),
            "--secret-file",
            str(secret_file),
            "--data",
            str(data),
            "--seed-actors",
            str(seed_actors),
            *(["--latency-ms", latency_ms] if latency_ms else []),
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v1/health", seconds=600)
    return demo, url


def demo_erp_connection(seed_actors: int, latency_ms: str = "") -> tuple[subprocess.Popen[bytes], Any]:
    """Start a Demo ERP process seeded with ``seed_actors`` actors and define a connection to it.

    Returns the process (the caller terminates it) and the saved, not yet mapped ErpConnection. With
    ``latency_ms`` (see start_demo_erp) the connection is defined at full speed, and then a second process that
    waits before every call takes over the same store, and the connector's URL is changed to it."""
    import secrets
    import tempfile

    from connections import services
    from connections.models import ErpConnection
    from connectors.models import SyncConnector

    work = Path(tempfile.mkdtemp(prefix="erpsync-bench-"))
    secret = secrets.token_urlsafe(24)
    (work / "secret").write_text(secret)
    demo, url = start_demo_erp(work / "demo.sqlite3", work / "secret", seed_actors)
    connector = SyncConnector(name="Demo ERP", url=url)
    connector.set_secret(secret)
    connector.save()
    with services.interactive_client(url, secret) as client:
        fields = client.get_config_data().data.fields
    config: dict[str, Any] = {"client_name": "bench", "api_key": "demo-api-key", "company_number": 1}
    connection = services.save_connection(
        ErpConnection(name="Demo ERP", connector=connector), fields=fields, values=config, grants=[], user=None
    )
    if latency_ms:
        slow, url = start_demo_erp(work / "demo.sqlite3", work / "secret", latency_ms=latency_ms)
        demo.terminate()
        demo.wait(timeout=20)
        demo = slow
        SyncConnector.objects.filter(pk=connector.pk).update(url=url)
        connection.refresh_from_db()
    return demo, connection


NORDIC = ("SE", "NO", "DK", "FI", "IS")  # the Demo ERP's countries


def map_nordic_countries(connection: Any) -> None:
    """Map the Demo ERP's customer countries to CRM countries of the same codes (made when missing)."""
    from connections import mapping
    from crm.models import Country

    countries = {code: Country.objects.get_or_create(code=code, defaults={"name": code})[0].pk for code in NORDIC}
    mapping.save_list_mapping(connection, "Customer", "COUNTRY", [(c, c) for c in countries], dict(countries), None)


# The fields the sync benchmarks map: NAME and PHONE both ways, COUNTRY ERP → CRM through the Nordic list mapping.
SYNCED = {"NAME": ("NAME", "both"), "PHONE": ("PHONE", "both"), "COUNTRY": ("COUNTRY", "erp_to_crm")}


def activate_customers(connection: Any) -> dict[str, tuple[str, str]]:
    """Map the connection's Customers to companies as SYNCED says, map the countries and activate it."""
    from connections import mapping, services

    rows = [
        mapping.FieldRow(f.key, *SYNCED.get(f.key, ("", "")), False, False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    map_nordic_countries(connection)
    services.set_active(connection, True, None)
    return SYNCED


def start_worker(
    processes: int, log_name: str, hostname: str, pool: str = "prefork"
) -> tuple[subprocess.Popen[bytes], Path]:
    """A Celery worker with ``processes`` prefork processes (or ``pool="solo"``: one, in the worker's own process)
    on this environment's database and broker, started and ready; its output goes to var/<log_name>.log. The
    caller terminates it."""
    import sys

    root = Path(__file__).resolve().parent.parent
    log = root / "var" / f"{log_name}.log"
    log.parent.mkdir(exist_ok=True)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "erpsync_admin",
            "worker",
            f"--pool={pool}",
            f"--concurrency={processes}",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
            f"--hostname={hostname}@%h",
        ],
        cwd=root,
        env={**os.environ},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text():
        if time.monotonic() > deadline:
            worker.terminate()
            raise SystemExit(f"the worker did not start; see {log}")
        time.sleep(0.2)
    return worker, log


def peak_rss_mb(pid: int) -> int:
    """The largest resident size among the worker's processes now (the main process and its pool), in MB."""
    total = 0
    for child in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]) // 1024)
        except OSError:
            continue
    return total


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
