"""Deleting an ERP connection is soft: it keeps its links and log, stops its jobs, is hidden everywhere, can be
restored from the Sync tab, and is purged after ERPSYNC_DELETED_CONNECTION_DAYS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from connections import jobs, notifications, services
from connections.models import AuditEntry, ErpConnection, Link, SyncLogEntry, SyncRun, SyncSettings
from connectors import protocol as p
from connectors.client import ConnectorClient, UnknownConnection

from .conftest import Connector
from .factories import ErpConnectionFactory, UserFactory
from .sync_helpers import active_connection, company, new_customer

pytestmark = pytest.mark.django_db


def run(run_id: int) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


@pytest.fixture
def erp_admin(db: Any) -> Any:
    return UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])


@pytest.fixture
def linked(demo_erp: Connector) -> tuple[ErpConnection, Link]:
    connection = active_connection(demo_erp)
    actor = new_customer(demo_erp, connection, PHONE="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", company(phone=""), None)
    assert run(services.start_sync_now(link, None)[0].pk).status == "succeeded"
    return connection, link


def test_the_confirmation_says_what_the_connection_holds(client: Any, erp_admin: Any, linked: Any) -> None:
    connection, _link = linked
    client.force_login(erp_admin)
    page = client.get(reverse("connections:connection-delete", args=[connection.pk])).content.decode()
    log = SyncLogEntry.objects.filter(connection=connection).count()
    assert log > 0
    assert f"It links 1 CRM record to the ERP and has {log} sync log entries." in page
    assert "for 30 days; then it is deleted for good" in page
    with override_settings(ERPSYNC_DELETED_CONNECTION_DAYS=0):
        page = client.get(reverse("connections:connection-delete", args=[connection.pk])).content.decode()
    assert "it is kept until it is deleted for good" in page


def test_delete_keeps_links_and_log_hides_the_connection_and_restore_brings_it_back_inactive(
    client: Any, erp_admin: Any, linked: Any, demo_erp: Connector
) -> None:
    connection, link = linked
    log = SyncLogEntry.objects.filter(connection=connection).count()
    client.force_login(erp_admin)
    page = client.post(reverse("connections:connection-delete", args=[connection.pk]), follow=True).content.decode()
    assert "It can be restored from Deleted connections below." in page
    assert not ErpConnection.objects.filter(pk=connection.pk).exists()
    assert (
        Link.objects.filter(pk=link.pk).exists() and SyncLogEntry.objects.filter(connection=connection).count() == log
    )
    # Hidden: its page, the ERP tab, the lists; the connector still knows it (told only at the purge).
    assert client.get(connection.get_absolute_url()).status_code == 404
    assert client.get(reverse("connections:sync-log", args=[connection.pk])).status_code == 404
    tab = client.get(reverse("crm:company-tab", args=[link.company.pk, "erp"]))
    assert "Demo ERP – Sweden" not in tab.content.decode()
    with ConnectorClient(demo_erp.url, demo_erp.secret) as erp:
        erp.call("TestConnection", p.TestConnectionRequest(connection_id=str(connection.guid)))
    entry = AuditEntry.objects.get(action="deleted", connection=connection)
    assert entry.detail == f"kept: 1 links, {log} sync log entries; 0 runs stopped" and entry.user == erp_admin
    # The Sync tab lists it under Deleted connections, with the day it is purged.
    deleted = ErpConnection.all_objects.get(pk=connection.pk)
    assert "Deleted connections" in page and "Restore Demo ERP – Sweden" in page
    assert deleted.deleted_at is not None and not deleted.is_active
    page = client.post(reverse("connections:connection-restore", args=[connection.pk]), follow=True).content.decode()
    assert "Restored the ERP connection Demo ERP – Sweden. It is inactive" in page
    restored = ErpConnection.objects.get(pk=connection.pk)
    assert restored.deleted_at is None and not restored.is_active and restored.name == "Demo ERP – Sweden"
    assert Link.objects.get(pk=link.pk).connection_id == connection.pk
    assert AuditEntry.objects.filter(action="restored", connection=connection, user=erp_admin).exists()
    # Activated again, it syncs its links as before.
    services.set_active(restored, True, None)
    assert run(services.start_sync_now(Link.objects.get(pk=link.pk), None)[0].pk).status == "succeeded"


def test_delete_stops_the_connections_runs_and_nothing_new_starts(linked: Any, erp_admin: Any) -> None:
    connection, link = linked
    queued = SyncRun.objects.create(connection=connection, kind="sync_all")
    now_run = SyncRun.objects.create(connection=connection, link=link, kind="sync_now", total=1)
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True})
    assert services.delete_connection(connection, erp_admin) == 2
    for stopped in (queued, now_run):
        stopped.refresh_from_db()
        assert stopped.status == "failed" and stopped.error == "Demo ERP – Sweden was deleted."
    # A message still on its way finds the run ended; a run written anyway is refused by the worker.
    assert run(queued.pk).status == "failed"
    sneaked = SyncRun.objects.create(connection=connection, kind="automatic")
    assert run(sneaked.pk).error == "Demo ERP – Sweden was deleted."
    SyncRun.objects.filter(pk=sneaked.pk).delete()
    # Automatic sync, notifications and saves skip it; Sync now and bulk runs are refused.
    assert jobs.tick_automatic_sync(timezone.now()) == []
    stale = Link.objects.select_related("connection").get(pk=link.pk)
    with pytest.raises(jobs.SyncRefused, match="was deleted"):
        services.start_sync_now(stale, None)
    with pytest.raises(jobs.SyncRefused, match="was deleted"):
        jobs.queue_bulk(stale.connection, "sync_all")
    notifications.sync_links_of("company", link.company.pk)
    assert not SyncRun.objects.filter(status="queued").exists()


def test_a_new_connection_may_take_a_deleted_ones_name_and_restoring_adds_a_suffix(
    client: Any, erp_admin: Any, linked: Any
) -> None:
    connection, _link = linked
    services.delete_connection(connection, erp_admin)
    ErpConnectionFactory.create(name="demo erp – sweden", connector=connection.connector)
    client.force_login(erp_admin)
    page = client.post(reverse("connections:connection-restore", args=[connection.pk]), follow=True).content.decode()
    assert "Restored Demo ERP – Sweden as Demo ERP – Sweden (restored): another ERP connection has its name." in page
    assert ErpConnection.objects.get(pk=connection.pk).name == "Demo ERP – Sweden (restored)"
    entry = AuditEntry.objects.get(action="restored", connection=connection)
    assert entry.detail == "renamed from Demo ERP – Sweden: the name is in use"
    # A connection in use cannot be "restored"; an unknown one is 404 too.
    assert client.post(reverse("connections:connection-restore", args=[connection.pk])).status_code == 404
    assert client.post(reverse("connections:connection-restore", args=[99999])).status_code == 404
    assert client.get(reverse("connections:connection-restore", args=[connection.pk])).status_code == 405


def test_the_purge_deletes_old_deleted_connections_for_good_and_tells_the_connector(
    linked: Any, erp_admin: Any, demo_erp: Connector
) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["purge-deleted-connections"]["task"] == "connections.purge_deleted_connections"
    connection, link = linked
    other = ErpConnectionFactory.create(name="Recent", connector=connection.connector)
    services.delete_connection(connection, erp_admin)
    services.delete_connection(other, erp_admin)
    ErpConnection.all_objects.filter(pk=connection.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    ErpConnection.all_objects.filter(pk=other.pk).update(deleted_at=timezone.now() - timedelta(days=29))
    with override_settings(ERPSYNC_DELETED_CONNECTION_DAYS=0):
        assert services.purge_deleted_connections() == []
    assert services.purge_deleted_connections() == ["Demo ERP – Sweden"]
    assert not ErpConnection.all_objects.filter(pk=connection.pk).exists()
    assert ErpConnection.all_objects.filter(pk=other.pk).exists()
    assert not Link.objects.filter(pk=link.pk).exists() and not SyncLogEntry.objects.filter(link=link.pk).exists()
    entry = AuditEntry.objects.get(action="purged", subject="Demo ERP – Sweden")
    assert entry.connection is None and entry.detail == "with 1 links and 0 imports"
    with ConnectorClient(demo_erp.url, demo_erp.secret) as erp, pytest.raises(UnknownConnection):
        erp.call("TestConnection", p.TestConnectionRequest(connection_id=str(connection.guid)))


def test_a_connection_whose_connector_was_deleted_cannot_be_restored(client: Any, erp_admin: Any, linked: Any) -> None:
    connection, _link = linked
    services.delete_connection(connection, erp_admin)
    services.delete_connector(connection.connector, erp_admin)  # no connection in use holds it any more
    client.force_login(erp_admin)
    page = client.post(reverse("connections:connection-restore", args=[connection.pk]), follow=True).content.decode()
    assert "Demo ERP – Sweden cannot be restored: its Sync Connector Demo ERP was deleted." in page
    assert ErpConnection.all_objects.get(pk=connection.pk).deleted_at is not None
