"""Shared fixtures: the three people every view is tried with, and helpers for real processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection

from .factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Tests that need Redis use the configured broker when it is Redis, else database 15 of a local Redis.
REDIS_TEST_URL = (
    os.environ["CELERY_BROKER_URL"]
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis")
    else "redis://127.0.0.1:6379/15"
)

CRM_PERMS = [
    f"crm.{action}_{model}" for action in ("view", "add", "change") for model in ("company", "contact", "project")
]


@pytest.fixture
def admin_user(db: Any) -> Any:
    """An administrator: superuser."""
    return UserFactory.create(username="ada", is_superuser=True, is_staff=True)


@pytest.fixture
def licensed_user(db: Any) -> Any:
    """A sales user: works with CRM records and holds the ERP sync licence."""
    return UserFactory.create(username="anna", perms=[*CRM_PERMS, "connections.use_erp_sync"])


@pytest.fixture
def outsider(db: Any) -> Any:
    """Logged in, but granted nothing."""
    return UserFactory.create(username="olle")


@pytest.fixture
def as_user(client: Any) -> Callable[[Any], Any]:
    def login(user: Any) -> Any:
        client.force_login(user)
        return client

    return login


def require_service(reachable: bool, what: str) -> None:
    """Skip on a developer machine without the service; in CI a missing service is a failure."""
    if reachable:
        return
    if IN_CI:
        pytest.fail(f"{what} is not available, but CI must test against it")
    pytest.skip(f"{what} is not available on this machine")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """A URL for the database the tests run on, for processes started by the tests."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{settings.get('HOST') or '127.0.0.1'}:{settings.get('PORT') or 5432}/{settings['NAME']}"


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Process:
    """A child process whose output is kept in a file, stopped with its whole process group."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.handle = log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> None:
        import signal

        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self.handle.close()


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT, name: str = "process") -> Process:
        full_env = {**os.environ, "DEBUG": "1", **(env or {})}
        process = Process(args, full_env, cwd, tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the tests."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name) or name


# A real Demo ERP connector process on loopback

DEMO_SECRET = "demo-connector-test-secret"
DEMO_CONFIG: dict[str, Any] = {"client_name": "Tests", "api_key": "demo-api-key", "company_number": 1}


@dataclass
class RunningConnector:
    url: str
    secret: str
    process: Process


def start_connector(module: str, directory: Path, secret: str, *args: str) -> RunningConnector:
    """Start ``python -m module`` as a connector on a free loopback port and wait until it answers."""
    port = free_port()
    secret_file = directory / "secret"
    secret_file.write_text(secret)
    process = Process(
        [sys.executable, "-m", module, "--port", str(port), "--secret-file", str(secret_file), *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log=directory / "connector.log",
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, f"{module} to listen")
    except AssertionError:
        process.stop()
        raise AssertionError(process.output()) from None
    return RunningConnector(url, secret, process)


def start_demo(directory: Path, seed_actors: int = 2000) -> RunningConnector:
    return start_connector("connectors.demo", directory, DEMO_SECRET, "--data", str(directory / "demo-erp.sqlite3"),
                           "--seed-actors", str(seed_actors))  # fmt: skip


@pytest.fixture(scope="session")
def demo_connector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConnector]:
    running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    running.process.stop()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Every test starts in the default language: a request in Swedish must not leak into the next test."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def empty_demo(tmp_path: Path) -> Iterator[RunningConnector]:
    """A Demo ERP of its own with no actors: "import everything" sees only what the test puts there."""
    running = start_demo(tmp_path, seed_actors=0)
    yield running
    running.process.stop()


@pytest.fixture
def import_connection(empty_demo: RunningConnector, db: Any) -> Any:
    from .sync_helpers import customers_for_import

    return customers_for_import(empty_demo)
