"""A real Tryton server for the session, and the Tryton connector in front of it.

trytond and its modules are installed once into a cached virtual environment (var/tryton/); each database is
initialised once into a template beside it and copied into a temporary folder for the session, and trytond
serves the copies on a free loopback port. The fixture then creates what a Tryton admin would: party
categories, a relation type for contact persons, countries, and a company for projects.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import protocol as p
from connectors.tryton import rpc

from ..conftest import ROOT, Process, RunningConnector, free_port, require_service, start_connector, wait_for

TRYTON = "8.2"
MODULES = ["trytond", "trytond-party", "trytond-company", "trytond-project", "trytond-party-relationship"]
VENV = ROOT / "var" / "tryton" / f"venv-{TRYTON}"
TEMPLATES = ROOT / "var" / "tryton" / f"databases-{TRYTON}"
ADMIN_PASSWORD = "tryton-admin-secret"
CONNECTOR_SECRET = "tryton-connector-test-secret"


@dataclass
class TrytonServer:
    url: str
    database: str
    process: Process

    def session(self) -> rpc.Session:
        return rpc.Session(self.url, self.database, "admin", ADMIN_PASSWORD)

    def config(self, **changes: Any) -> dict[str, Any]:
        return {
            "server_url": self.url,
            "database": self.database,
            "user": "admin",
            "password": ADMIN_PASSWORD,
            "company": "Tryton Test AB",
            "customer_category": "Customer",
            "supplier_category": "Supplier",
            "partner_category": "",
            "person_relation": "Contact person",
            "language": "en",
            **changes,
        }


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    """Held while the cached environment or a database template is made: test processes that need them at the
    same moment wait for the first one instead of building over each other."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def tryton_venv() -> Path:
    """The cached environment with trytond and the modules; made on first use (about 10 s)."""
    marker = VENV / ".installed"
    if marker.exists():
        return VENV
    with cache_lock():
        if marker.exists():  # made by another test process while this one waited
            return VENV
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", *[f"{m}=={TRYTON}.*" for m in MODULES]], check=True
        )
        marker.write_text(" ".join(MODULES))
    return VENV


def set_up_erp(session: rpc.Session) -> None:
    """What an admin does in a new Tryton before connecting it: categories, a relation type, countries, a company."""
    session.call("model.party.category.create", [{"name": "Customer"}, {"name": "Supplier"}, {"name": "Partner"}], {})
    session.call("model.party.relation.type.create", [{"name": "Contact person"}], {})
    session.call(
        "model.country.country.create",
        [{"code": "SE", "name": "Sweden"}, {"code": "NO", "name": "Norway"}, {"code": "FI", "name": "Finland"}],
        {},
    )
    [currency] = session.call(
        "model.currency.currency.create", [{"name": "Swedish krona", "code": "SEK", "symbol": "kr"}], {}
    )
    [party] = session.call("model.party.party.create", [{"name": "Tryton Test AB"}], {})
    [company] = session.call("model.company.company.create", [{"party": party, "currency": currency}], {})
    [user] = session.call("model.res.user.search", [["login", "=", "admin"]], 0, 1, None, {})
    session.call("model.res.user.write", [user], {"companies": [["add", [company]]], "company": company}, {})


FULL = ["party", "company", "project", "party_relationship"]


def tryton_env(venv: Path, folder: Path, port: int = 0) -> dict[str, str]:
    """trytond's environment: SQLite databases in ``folder``/db, the admin password in a file there."""
    (folder / "db").mkdir(parents=True, exist_ok=True)
    (folder / "adminpass").write_text(ADMIN_PASSWORD)
    return {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "TRYTOND_DATABASE__URI": "sqlite://",
        "TRYTOND_DATABASE__PATH": str(folder / "db"),
        "TRYTOND_WEB__LISTEN": f"127.0.0.1:{port}",
        "TRYTONPASSFILE": str(folder / "adminpass"),
        "HOME": str(folder),
    }


def database_template(venv: Path, modules: list[str]) -> Path:
    """A SQLite database initialised with ``modules`` by trytond-admin, which takes most of a minute; kept beside
    the cached environment and copied for each session. Its name changes with the environment (rebuilt, the
    marker is new), the modules and the admin's password, so a template never outlives what it was made from."""
    marker = venv / ".installed"
    made_from = f"{marker.read_text()} {marker.stat().st_mtime_ns} {' '.join(modules)} {ADMIN_PASSWORD}"
    template = TEMPLATES / f"{hashlib.sha256(made_from.encode()).hexdigest()[:16]}.sqlite"
    if template.exists():
        return template
    with cache_lock():
        if not template.exists():
            make_template(venv, modules, template)
    return template


def make_template(venv: Path, modules: list[str], template: Path) -> None:
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TEMPLATES) as work:
        folder = Path(work)
        env = tryton_env(venv, folder)
        (folder / "db" / "template.sqlite").touch()  # trytond wants the SQLite file to exist
        subprocess.run(
            [
                str(venv / "bin" / "trytond-admin"),
                "-d",
                "template",
                "--all",
                "-u",
                *modules,
                "--activate-dependencies",
                "--email",
                "admin@example.com",
            ],
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
        )
        # Renamed into place whole: a run that stops half-way, or one beside it, never sees half a template.
        os.replace(folder / "db" / "template.sqlite", template)


def start_tryton(folder: Path, databases: dict[str, list[str]]) -> tuple[str, Process]:
    """A SQLite database per entry (name → modules) in ``folder``, copied from its template, served by trytond
    on a free loopback port; answers the server's URL and process once it listens."""
    venv = tryton_venv()
    port = free_port()
    env = tryton_env(venv, folder, port)
    for database, modules in databases.items():
        shutil.copyfile(database_template(venv, modules), folder / "db" / f"{database}.sqlite")
    process = Process([str(venv / "bin" / "trytond"), "-d", *databases], env, folder, folder / "trytond.log")
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return (
                httpx.post(
                    f"{url}/rpc/", json={"id": 1, "method": "common.server.version", "params": []}, timeout=1
                ).status_code
                == 200
            )
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "trytond to listen")
    except AssertionError:
        process.stop()
        raise AssertionError(process.output()[-3000:]) from None
    return url, process


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    try:
        tryton_venv()
    except subprocess.CalledProcessError as error:
        require_service(False, f"trytond from PyPI ({error})")
        raise
    # "erp" has every module the connector can use; "bare" only the party module, as a minimal install would.
    url, process = start_tryton(tmp_path_factory.mktemp("tryton"), {"erp": FULL, "bare": ["party"]})
    try:
        server = TrytonServer(url, "erp", process)
        set_up_erp(server.session())
        rpc.Session(url, "bare", "admin", ADMIN_PASSWORD).call(
            "model.party.category.create", [{"name": "Customer"}, {"name": "Supplier"}], {}
        )
    except Exception:
        process.stop()
        raise
    yield server
    process.stop()


@pytest.fixture(scope="session")
def tryton_connector(
    tryton_server: TrytonServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningConnector]:
    folder = tmp_path_factory.mktemp("tryton-connector")
    running = start_connector(
        "connectors.tryton",
        folder,
        CONNECTOR_SECRET,
        "--data",
        str(folder / "connections.json"),
        "--watch-seconds",
        "1",
    )
    yield running
    running.process.stop()


@pytest.fixture(scope="session")
def tryton_samples(tryton_server: TrytonServer, tryton_connector: RunningConnector) -> dict[str, p.Actor]:
    """A few complete actors, written through the connector, so every searchable field has values to find."""
    from connectors.client import ConnectorClient

    A = p.ActorType
    with ConnectorClient(tryton_connector.url, tryton_connector.secret) as client:
        conn = client.connection(str(uuid.uuid4()), lambda: tryton_server.config())
        status = conn.get_list("project_status")[0].key
        made: dict[str, p.Actor] = {}
        for actor_type, name, city, country in (
            (A.CUSTOMER, "Granbygg AB", "Umeå", "SE"),
            (A.CUSTOMER, "Fjordkraft AS", "Bergen", "NO"),
            (A.SUPPLIER, "Sjöstrand Logistik AB", "Göteborg", "SE"),
        ):
            made[name] = conn.create_actor(
                p.Actor(
                    actor_type=actor_type,
                    values={
                        "NAME": name,
                        "VATNO": f"VAT-{len(made)}",
                        "PHONE": "+46 90 12 34",
                        "EMAIL": "info@example.com",
                        "URL": "https://example.com",
                        "POSTALAD1": "Storgatan 1",
                        "POSTALZIP": "903 25",
                        "POSTALCITY": city,
                        "COUNTRY": country,
                        "LANGUAGE": "en",
                    },
                )
            )
        customer = made["Granbygg AB"].key
        for name in ("Karin Berg", "Olof Lind"):
            made[name] = conn.create_actor(
                p.Actor(
                    actor_type=A.PERSON,
                    parent_actor_type=A.CUSTOMER,
                    parent_key=customer,
                    values={
                        "NAME": name,
                        "EMAIL": f"{name.split()[0].lower()}@granbygg.example",
                        "PHONE_DIRECT": "+46 90 1",
                        "PHONE_MOBILE": "+46 70 1",
                    },
                )
            )
        made["Kajen"] = conn.create_actor(
            p.Actor(
                actor_type=A.PROJECT,
                parent_actor_type=A.CUSTOMER,
                parent_key=customer,
                values={"NAME": "Kajen etapp 2", "TEXT": "Bryggor", "STATUS": status},
            )
        )
    return made


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Tryton tests run in one test process (``--dist loadgroup``), so that one Tryton server serves them all.
    First among the hooks: pytest-xdist reads the mark in its own hook of the same name."""
    for item in items:
        if item.nodeid.startswith("tests/tryton/"):
            item.add_marker(pytest.mark.xdist_group("tryton"))
