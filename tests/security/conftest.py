"""The security suite's world: a Demo ERP with secrets of its own, and one real object behind every URL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from connections import importing
from connections.choices import RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, ErpImport, ImportRow, Link, SyncRun
from connections.sync.plan import queue_plan
from connectors.models import SyncConnector
from crm.models import Company, Contact, Project

from ..conftest import DEMO_CONFIG, RunningConnector, start_connector
from ..factories import CompanyFactory, ContactFactory, ProjectFactory
from ..sync_helpers import customers_for_import, new_customer, run_for

# Values that must never be shown, logged or stored in plain text: distinctive, so that a find is a leak.
CONNECTOR_SECRET = "sec-suite-shared-secret-5d1c7a93e0"
API_KEY = "sec-suite-api-key-b84f26a1"
CONFIG = {**DEMO_CONFIG, "api_key": API_KEY}


@pytest.fixture(scope="session")
def secret_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConnector]:
    """A Demo ERP process started with this suite's shared secret and API key."""
    directory = tmp_path_factory.mktemp("secret-demo")
    running = start_connector(
        "connectors.demo",
        directory,
        CONNECTOR_SECRET,
        "--api-key",
        API_KEY,
        "--data",
        str(directory / "demo-erp.sqlite3"),
        "--seed-actors",
        "5",
    )
    yield running
    running.process.stop()


@dataclass
class World:
    """One object of each kind a URL names, all real: the connection is active against the Demo ERP process."""

    company: Company  # linked to a Customer in the ERP
    other: Company  # not linked: the ERP tab's connect and create pages are about it
    contact: Contact
    project: Project
    connector: SyncConnector
    connection: ErpConnection
    link: Link
    run: SyncRun  # a Sync now of the link, run to the end, so that pages show its log
    erp_import: ErpImport  # a preview of every Customer, run to the end: its plan is ready
    row: ImportRow
    plan: SyncRun  # a plan of a Sync all of the connection, made to the end

    def pks(self) -> dict[str, int]:
        """Each object's id by attribute name, for the URL table's "{connection}" and the like."""
        return {name: int(getattr(self, name).pk) for name in self.__dataclass_fields__}


def build_world(demo: RunningConnector) -> World:
    connection = customers_for_import(demo, config=CONFIG)
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_create=True)
    connection.erp_fields.filter(actor_type="Customer", key="NUMBER1").update(show_in_tab=True)  # a live value
    connection.refresh_from_db()
    company = CompanyFactory.create(name="Securitas Granbygg AB")
    customer = new_customer(demo, connection, NAME="Securitas Granbygg AB", PHONE="+46 90 123")
    link = Link.objects.create(
        connection=connection, actor_type="Customer", erp_key=customer.key or "", company=company
    )
    run = run_for(link)
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    erp_import = importing.start_preview(connection, "Customer", everything=True)
    assert erp_import.preview_run is not None
    run_sync.apply(kwargs={"run_id": erp_import.preview_run.pk})
    erp_import.refresh_from_db()
    assert erp_import.phase == "ready", erp_import.preview_run.error if erp_import.preview_run else None
    plan = queue_plan(connection, RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": plan.pk})
    plan.refresh_from_db()
    assert plan.status == RunStatus.SUCCEEDED, plan.error
    contact = ContactFactory.create(company=company)
    return World(
        company=company,
        other=CompanyFactory.create(name="Securitas Fjällbygg AB"),
        contact=contact,
        project=ProjectFactory.create(company=company),
        connector=connection.connector,
        connection=connection,
        link=link,
        run=run,
        erp_import=erp_import,
        row=erp_import.rows.order_by("pk")[0],
        plan=plan,
    )


@pytest.fixture
def world(secret_demo: RunningConnector, db: Any) -> World:
    return build_world(secret_demo)


@pytest.fixture
def users(admin_user: Any, licensed_user: Any, outsider: Any) -> dict[str, Any]:
    return {"admin": admin_user, "licensed": licensed_user, "outsider": outsider}
