"""A real Demo ERP connector process on loopback, shared by the connector tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import ROOT, Process, free_port, wait_for

DEMO_SECRET = "demo-connector-test-secret"
DEMO_CONFIG: dict[str, Any] = {"client_name": "Tests", "api_key": "demo-api-key", "company_number": 1}


@dataclass
class RunningConnector:
    url: str
    secret: str
    process: Process


def start_demo(directory: Path, seed_actors: int = 2000) -> RunningConnector:
    port = free_port()
    secret_file = directory / "secret"
    secret_file.write_text(DEMO_SECRET)
    process = Process(
        [sys.executable, "-m", "connectors.demo", "--port", str(port), "--secret-file", str(secret_file),
         "--data", str(directory / "demo-erp.sqlite3"), "--seed-actors", str(seed_actors)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log=directory / "demo.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, "the demo connector to listen")
    except AssertionError:
        process.stop()
        raise AssertionError(process.output()) from None
    return RunningConnector(url, DEMO_SECRET, process)


@pytest.fixture(scope="session")
def demo_connector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConnector]:
    running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    running.process.stop()
