"""Shared fixtures: the three people every view is tried with, and helpers for real processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from connectors.client import serve_in_process
from connectors.demo.connector import DemoConnector
from connectors.demo.latency import Latency
from connectors.demo.seed import seed
from connectors.demo.store import Store
from connectors.sdk.app import ConnectorApp
from erpsync_admin.celery import app as celery_app

from .factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# `make test` runs the tests in several processes (pytest-xdist: gw0, gw1, …); each has a test database of its own
# (pytest-django names it), and gets a broker of its own here.
XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])


def _own_redis_database(url: str) -> str:
    """``url`` with this test process's Redis database: the given one for the first, the ones below it for the
    others, so that no process takes another's jobs or empties its queues."""
    base, _, database = url.rpartition("/")
    if not database.isdigit():
        return url
    return f"{base}/{int(database) - XDIST_WORKER}"


# Tests that need Redis use the configured broker when it is Redis, else TEST_REDIS_URL (two suites running side by
# side on one machine each give their own database), else database 15 of a local Redis.
REDIS_TEST_URL = _own_redis_database(
    os.environ["CELERY_BROKER_URL"]
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis")
    else os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
)


def _own_broker() -> None:
    """The app's broker, for this process and the workers its tests start: the Redis database above, or an embedded
    broker file of its own (two processes creating the embedded broker's tables at once make one fail)."""
    configured = settings.CELERY_BROKER_URL
    if configured.startswith("redis"):
        broker = REDIS_TEST_URL
    elif configured.startswith("sqla+sqlite:///") and XDIST_WORKER:
        path = Path(configured.removeprefix("sqla+sqlite:///"))
        broker = f"sqla+sqlite:///{path.with_name(f'{path.stem}-gw{XDIST_WORKER}{path.suffix}')}"
    else:
        return
    settings.CELERY_BROKER_URL = broker
    celery_app.conf.update(broker_url=broker)
    if os.environ.get("CELERY_BROKER_URL"):
        os.environ["CELERY_BROKER_URL"] = broker


_own_broker()

# The suite's connectors listen on loopback, an internal address, which a connector may use only when
# ERPSYNC_CONNECTOR_HOSTS names its host: the tests allow their own, as `make run` and docker-compose do. Processes
# the tests start (workers, web servers) inherit the variable; this process gets the setting below.
TEST_CONNECTOR_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
os.environ.setdefault("ERPSYNC_CONNECTOR_HOSTS", ",".join(TEST_CONNECTOR_HOSTS))

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


def use_broker(url: str) -> Callable[[], None]:
    """Send this process's tasks to ``url``; returns the function that puts the previous broker back."""
    from erpsync_admin.celery import app

    def switch(to: str, options: dict[str, Any], environ: str | None) -> None:
        # The connection and producer pools were built for the previous broker: new ones are made on next use.
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None  # type: ignore[attr-defined]
        app.conf.update(broker_url=to, broker_transport_options=options)
        # Celery prefers the environment's CELERY_BROKER_URL to its configuration.
        if environ is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = environ

    previous, previous_environ = app.conf.broker_url, os.environ.get("CELERY_BROKER_URL")
    switch(url, {"visibility_timeout": 3600}, url)
    return lambda: switch(previous, {}, previous_environ)


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# Seconds a process stopped after its test is given to end on SIGTERM before it is killed: enough for a
# connector or a web server, while a Celery worker's warm shutdown (seconds) is cut short where no test looks.
STOP_GRACE = 1.0


PROCESS_LINES_SHOWN = 80


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
        """SIGTERM to the group, and SIGKILL if it has not ended within ``timeout`` seconds.

        Where the way a process ends is not what a test checks, ``stop(STOP_GRACE)`` spares the seconds a
        Celery worker's warm shutdown takes."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(20)
        self.handle.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so that its fixtures can tell at teardown whether it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start_process(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start child processes, stopped after the test. When the test failed, the end of each one's output is
    printed with its report: on CI that output is all there is to go on."""
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT, name: str = "process") -> Process:
        full_env = {**os.environ, "DEBUG": "1", **(env or {})}
        process = Process(args, full_env, cwd, tmp_path / f"{name}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop(STOP_GRACE)
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for process in started:
            tail = process.output().splitlines()[-PROCESS_LINES_SHOWN:]
            print(f"----- the last {len(tail)} lines of {process.log.name} -----", *tail, sep="\n")


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


def start_demo(
    directory: Path, seed_actors: int = 2000, latency_ms: str = "", data: Path | None = None
) -> RunningConnector:
    """A Demo ERP process on ``directory / "demo-erp.sqlite3"`` (or ``data``: two processes may serve one store);
    ``latency_ms`` as its --latency-ms takes it ("500", "1000-3000")."""
    return start_connector(
        "connectors.demo",
        directory,
        DEMO_SECRET,
        "--data",
        str(data or directory / "demo-erp.sqlite3"),
        "--seed-actors",
        str(seed_actors),
        *(["--latency-ms", latency_ms] if latency_ms else []),
    )


@pytest.fixture(scope="session")
def demo_connector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConnector]:
    """A real Demo ERP process, for tests in which another process (a worker, a browser) calls it."""
    running = start_demo(tmp_path_factory.mktemp("demo"))
    yield running
    running.process.stop()


# The Demo ERP inside the test process: its WSGI app behind httpx.WSGITransport, for tests in which the process
# boundary is not what is tested. Only this process's clients reach it: not workers, browsers or other processes.


@dataclass
class InProcessConnector:
    """A connector served in-process at ``url``; ``store`` is the Demo ERP's own database."""

    url: str
    secret: str
    store: Store


# What a test needs of a connector, whichever way it is served.
Connector = RunningConnector | InProcessConnector

_in_process_urls: set[str] = set()


@contextlib.contextmanager
def in_process_demo(
    directory: Path,
    seed_actors: int = 2000,
    secret: str = DEMO_SECRET,
    api_key: str = "demo-api-key",
    latency_ms: int | tuple[int, int] | None = None,
    v1: bool = False,
) -> Iterator[InProcessConnector]:
    """Serve a Demo ERP on ``directory``'s own database to this process's connector clients, as start_demo does
    with a process. Each one has a URL never used before in the session: clients are cached by URL.

    ``latency_ms`` (``500``, or ``(1000, 3000)`` for a random time per call) makes every protocol call wait, as
    --latency-ms does; each call waits in the thread that made it. ``v1``: as a protocol v1 connector answers, without
    labels or suggested directions (``tests.v1_demo``)."""
    store = Store(directory / "demo-erp.sqlite3")
    seed(store, seed_actors)
    url = f"http://127.0.0.1:{free_port()}"
    while url in _in_process_urls:
        url = f"http://127.0.0.1:{free_port()}"
    _in_process_urls.add(url)
    latency = Latency.of(latency_ms) if latency_ms is not None else None
    if v1:
        from .v1_demo import V1DemoConnector

        connector: DemoConnector = V1DemoConnector(store, api_key=api_key, latency=latency)
    else:
        connector = DemoConnector(store, api_key=api_key, latency=latency)
    serve_in_process(url, httpx.WSGITransport(app=ConnectorApp(connector, secret)))
    try:
        yield InProcessConnector(url, secret, store)
    finally:
        serve_in_process(url, None)


@pytest.fixture(scope="session")
def demo_erp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessConnector]:
    """The session's Demo ERP, served in-process (2,000 seeded actors, like demo_connector's)."""
    with in_process_demo(tmp_path_factory.mktemp("demo-in-process")) as served:
        yield served


@pytest.fixture(scope="session")
def v1_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessConnector]:
    """The Demo ERP as a protocol v1 connector answers: no labels, no suggested directions (200 seeded actors)."""
    with in_process_demo(tmp_path_factory.mktemp("demo-v1"), seed_actors=200, v1=True) as served:
        yield served


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """A SQLite test database starts without the write-ahead log and shared-memory files of an earlier run.

    Django deletes only the database file before making it again; a ``-wal`` file left beside it by a run that was
    killed would be replayed into the new database and spoil it ("file is not a database")."""
    database = connection.settings_dict
    if connection.vendor != "sqlite" or not database["TEST"].get("NAME"):
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database['TEST']['NAME']}{suffix}").unlink(missing_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _own_redis_database_emptied() -> None:
    """This process's Redis database starts empty: a worker killed in an earlier run leaves its message unacked,
    and the broker gives it back once its visibility timeout has passed, to whichever test's worker listens on
    that database then, about another test's rows."""
    where = urlsplit(REDIS_TEST_URL)
    if not port_open(where.hostname or "127.0.0.1", where.port or 6379):
        return  # the tests that need Redis skip, or fail under CI, on their own
    import redis

    redis.Redis.from_url(REDIS_TEST_URL).flushdb()


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """Passwords are hashed with MD5 in tests: PBKDF2's million rounds cost most of a second for every user a test
    makes, and no test is about the hash. Logging in with a password works as before."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _own_connectors_allowed() -> Iterator[None]:
    """ERPSYNC_CONNECTOR_HOSTS as the processes the tests start have it (the settings were read before this file)."""
    from django.conf import settings

    hosts = settings.ERPSYNC_CONNECTOR_HOSTS or TEST_CONNECTOR_HOSTS
    with override_settings(ERPSYNC_CONNECTOR_HOSTS=hosts):
        yield


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Every test starts in the default language: a request in Swedish must not leak into the next test."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def empty_demo(tmp_path: Path) -> Iterator[Connector]:
    """A Demo ERP of its own with no actors: "import everything" sees only what the test puts there.

    Served in-process; where a worker or a browser must reach it, a module or folder overrides this fixture with
    ``empty_demo_process``."""
    with in_process_demo(tmp_path, seed_actors=0) as served:
        yield served


@pytest.fixture
def empty_demo_process(tmp_path: Path) -> Iterator[RunningConnector]:
    """As ``empty_demo``, as a real process on loopback."""
    running = start_demo(tmp_path, seed_actors=0)
    yield running
    running.process.stop()


@pytest.fixture
def import_connection(empty_demo: Connector, db: Any) -> Any:
    from .sync_helpers import customers_for_import

    return customers_for_import(empty_demo)
