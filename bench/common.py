"""What the benchmarks share: a free loopback port, and waiting for a server to answer."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any


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


def write_results(name: str, results: object) -> None:
    """Write a benchmark's figures to bench/results/<name>.json and say where."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = root / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(root)}")


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
