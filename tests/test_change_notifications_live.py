"""Near-real-time sync across real processes: a Demo ERP process notifies the CRM (served by live_server) of a
change, and a real Celery worker on Redis syncs it within seconds, with no polling (no beat runs here); a linked
company edited in the CRM reaches the ERP the same way, and the sync's own writes start no further sync."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from connections import mapping, services
from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncRun, SyncSettings
from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.models import SyncConnector
from crm.models import Company

from .conftest import (
    DEMO_CONFIG,
    REDIS_TEST_URL,
    RunningConnector,
    database_url,
    port_open,
    require_service,
    start_demo,
    use_broker,
    venv_bin,
    wait_for,
)
from .sync_helpers import change_in_erp, company, erp_values, new_customer

pytestmark = pytest.mark.django_db(transaction=True)

# The most an ERP change or a CRM save may take to reach the other side here (the delay is 1 s; a worker on an idle
# machine takes well under a second more).
WITHIN_SECONDS = 15.0


@pytest.fixture
def crm_url(live_server: Any, settings: Any) -> str:
    settings.ERPSYNC_PUBLIC_URL = live_server.url
    settings.ERPSYNC_CHANGE_SYNC_DELAY = 1
    return str(live_server.url)


@pytest.fixture
def worker(start_process: Any, settings: Any, crm_url: str) -> Any:
    """A real Celery worker on Redis, knowing the CRM's public URL as the web processes do."""
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    settings.CELERY_BROKER_URL = REDIS_TEST_URL
    restore = use_broker(REDIS_TEST_URL)
    process = start_process(
        [
            venv_bin("celery"),
            "-A",
            "erpsync_admin",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=INFO",
            "--hostname=notify-test@%h",
            "--without-mingle",
            "--without-gossip",
            "--queues=celery",
        ],
        env={
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": REDIS_TEST_URL,
            "ERPSYNC_RUN_LEASE_SECONDS": "3",
            "ERPSYNC_PUBLIC_URL": crm_url,
            "ERPSYNC_CHANGE_SYNC_DELAY": "1",
        },
        name="worker",
    )
    yield process
    restore()


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    running = start_demo(tmp_path, seed_actors=0)
    yield running
    running.process.stop()


def notifying_connection(demo: RunningConnector) -> ErpConnection:
    """An active connection whose Customers sync NAME and PHONE both ways, its Sync Connector saved with the
    capabilities its health answer names, as the connector form saves it; automatic sync on, every hour (so no
    polling round comes during the test)."""
    with ConnectorClient(demo.url, demo.secret) as client:
        health = client.health()
    assert health.supports(p.Capability.CHANGE_NOTIFICATIONS)
    connector = SyncConnector(name="Demo ERP", url=demo.url, protocol_version=health.protocol)
    connector.capabilities = health.capabilities
    connector.set_secret(demo.secret)
    connector.save()
    with services.interactive_client(demo.url, demo.secret) as client:
        fields = client.get_config_data().data.fields
    connection = services.save_connection(
        ErpConnection(name="Demo ERP", connector=connector),
        fields=fields,
        values=dict(DEMO_CONFIG),
        grants=[],
        user=None,
    )
    customers = {"NAME": ("NAME", "both"), "PHONE": ("PHONE", "both")}
    rows = [
        mapping.FieldRow(f.key, *customers.get(f.key, ("", "")), False, False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    services.set_active(connection, True, None)
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True, "interval_minutes": 60})
    connection.refresh_from_db()
    return connection


def settled(connection: ErpConnection) -> None:
    """Wait until no run of the connection is queued or running."""
    wait_for(
        lambda: (
            not SyncRun.objects.filter(connection=connection, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()
        ),
        60,
        "the connection's runs to end",
    )


def test_an_erp_change_reaches_the_crm_within_seconds_through_the_notification(
    worker: Any, demo: RunningConnector, crm_url: str
) -> None:
    connection = notifying_connection(demo)
    notify_url = crm_url + reverse("connector-notify", args=[connection.connector_id])
    assert connection.notify_url_sent == notify_url  # given to the Demo ERP with SaveConnection
    actor = new_customer(demo, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    agreed = {"NAME": "Granbygg AB", "PHONE": "+46 1"}  # what both sides hold: a change on one side wins
    link = services.link_record(connection, "Customer", actor.key or "", record, None, baseline=agreed)
    try:
        settled(connection)
        changed_at = time.monotonic()
        change_in_erp(demo, connection, actor.key or "", PHONE="+46 changed in the ERP")
        wait_for(
            lambda: Company.objects.get(pk=record.pk).phone == "+46 changed in the ERP",
            WITHIN_SECONDS,
            "the ERP's change to reach the CRM",
            interval=0.1,
        )
    except AssertionError:
        raise AssertionError(worker.output()[-4000:] + demo.process.output()[-2000:]) from None
    took = time.monotonic() - changed_at
    assert took < WITHIN_SECONDS
    # Automatic runs started by the notifications: no polling round ran (beat is not running).
    assert SyncRun.objects.filter(connection=connection, kind=RunKind.AUTOMATIC).exists()
    settled(connection)
    # The sync wrote the company; that write is the sync's own and started no Sync now of the link.
    assert not SyncRun.objects.filter(link=link, kind=RunKind.SYNC_NOW).exists()


def test_a_crm_edit_of_a_linked_company_reaches_the_erp_within_seconds(
    worker: Any, demo: RunningConnector, crm_url: str
) -> None:
    connection = notifying_connection(demo)
    actor = new_customer(demo, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    agreed = {"NAME": "Granbygg AB", "PHONE": "+46 1"}
    link = services.link_record(connection, "Customer", actor.key or "", record, None, baseline=agreed)
    try:
        settled(connection)
        saved_at = time.monotonic()
        for number in range(10):  # ten saves in a row: one Sync now
            record.phone = f"+46 edited {number}"
            record.save()
        wait_for(
            lambda: erp_values(demo, connection, actor.key or "")["PHONE"] == "+46 edited 9",
            WITHIN_SECONDS,
            "the CRM's edit to reach the ERP",
            interval=0.1,
        )
    except AssertionError:
        raise AssertionError(worker.output()[-4000:]) from None
    assert time.monotonic() - saved_at < WITHIN_SECONDS
    settled(connection)
    syncs = SyncRun.objects.filter(link=link, kind=RunKind.SYNC_NOW)
    assert syncs.count() == 1 and syncs.get().status == RunStatus.SUCCEEDED
    assert Link.objects.get(pk=link.pk).baseline["PHONE"] == "+46 edited 9"
