"""Automatic sync, Sync all and Resync from CRM, run as the worker runs them (in process, for determinism)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from connections import jobs
from connections.models import SyncRun, SyncSettings
from crm.models import Company

from .conftest import Connector, free_port
from .factories import ErpConnectionFactory, UserFactory
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer

pytestmark = pytest.mark.django_db


def run(run_id: int) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


def turn_on(minutes: int = 15) -> None:
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True, "interval_minutes": minutes})


def test_beat_asks_every_minute_and_the_database_decides(demo_erp: Connector, monkeypatch: Any) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["automatic-sync"]["schedule"] == 60.0
    sent: list[list[int]] = []
    monkeypatch.setattr(jobs, "send", sent.append)
    first = active_connection(demo_erp)
    second = ErpConnectionFactory.create(name="Second", connector=first.connector, priority=5)
    ErpConnectionFactory.create(name="Inactive", connector=first.connector, priority=6, is_active=False)
    now = timezone.now()
    assert jobs.tick_automatic_sync(now) == []  # off
    turn_on(minutes=10)
    queued = jobs.tick_automatic_sync(now)
    assert [SyncRun.objects.get(pk=pk).connection for pk in queued] == [first, second]  # priority order
    assert jobs.tick_automatic_sync(now + timedelta(minutes=9)) == []  # not due yet
    SyncRun.objects.filter(pk__in=queued).update(status="succeeded")
    SyncSettings.objects.filter(pk=1).update(interval_minutes=5)  # applied at the next tick, no restart
    assert len(jobs.tick_automatic_sync(now + timedelta(minutes=6))) == 2
    # A connection whose previous run is still going is not queued twice.
    assert len(jobs.tick_automatic_sync(now + timedelta(minutes=12))) == 0


def test_automatic_sync_picks_up_changes_made_in_the_erp_and_in_the_crm(demo_erp: Connector) -> None:
    connection = active_connection(demo_erp)
    customers = [new_customer(demo_erp, connection, PHONE=f"+46 {n}") for n in range(3)]
    records = [company(phone=f"+46 {n}") for n in range(3)]
    from connections import services

    links = [
        services.link_record(connection, "Customer", c.key or "", r, None)
        for c, r in zip(customers, records, strict=True)
    ]
    turn_on()
    first = run(jobs.tick_automatic_sync()[0])  # the first run starts from the beginning of the feed
    assert first.status == "succeeded" and first.total >= 3
    change_in_erp(demo_erp, connection, customers[0].key or "", PHONE="+46 changed in ERP")
    Company.objects.filter(pk=records[1].pk).update(phone="+46 changed in CRM", updated_at=timezone.now())
    second = run(jobs.tick_automatic_sync(timezone.now() + timedelta(minutes=16))[0])
    assert second.status == "succeeded" and second.total == 2 and second.changed == 2
    records[0].refresh_from_db()
    assert records[0].phone == "+46 changed in ERP"
    assert erp_values(demo_erp, connection, customers[1].key or "")["PHONE"] == "+46 changed in CRM"
    # The third, unchanged record was not part of the second run.
    assert set(second.log.values_list("erp_key", flat=True)) == {customers[0].key, customers[1].key}
    links[2].refresh_from_db()
    assert links[2].last_synced_at is not None and links[2].log.filter(run=second).count() == 0


def test_the_cursor_does_not_move_when_the_run_fails(demo_erp: Connector) -> None:
    connection = active_connection(demo_erp)
    turn_on()
    run(jobs.tick_automatic_sync()[0])
    cursor = connection.actor_types.get(actor_type="Customer").feed_cursor
    assert cursor
    good_url = connection.connector.url
    type(connection.connector).objects.filter(pk=connection.connector.pk).update(url=f"http://127.0.0.1:{free_port()}")
    failed = run(jobs.tick_automatic_sync(timezone.now() + timedelta(minutes=16))[0])
    # A connector that is down is a transient error: retried (bounded), then the run fails saying why.
    assert (failed.status, failed.attempts) == ("failed", jobs.MAX_RETRIES + 1)
    assert "cannot reach" in failed.error
    assert connection.actor_types.get(actor_type="Customer").feed_cursor == cursor
    type(connection.connector).objects.filter(pk=connection.connector.pk).update(url=good_url)


def test_sync_all_and_resync_from_the_connection_page(demo_erp: Connector, client: Any) -> None:
    connection = active_connection(demo_erp)
    from connections import services

    actor = new_customer(demo_erp, connection, PHONE="+46 ERP")
    record = company(phone="")
    services.link_record(connection, "Customer", actor.key or "", record, None)
    admin = UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])
    client.force_login(admin)
    url = reverse("connections:connection-bulk-run", args=[connection.pk])
    page = client.post(url, {"kind": "resync", "keep_non_blank": "on"}, follow=True).content.decode()
    assert "Resync from CRM of Demo ERP – Sweden is queued." in page
    again = client.post(url, {"kind": "sync_all"}, follow=True).content.decode()
    assert "Demo ERP – Sweden is already running an import or a bulk sync; try again when it has finished." in again
    resync = run(SyncRun.objects.get(kind="resync").pk)
    assert resync.status == "succeeded"
    assert erp_values(demo_erp, connection, actor.key or "")["PHONE"] == "+46 ERP"  # blank did not overwrite
    Company.objects.filter(pk=record.pk).update(phone="+46 CRM")
    client.post(url, {"kind": "resync"})
    run(SyncRun.objects.filter(kind="resync").first().pk)  # type: ignore[union-attr]
    assert erp_values(demo_erp, connection, actor.key or "")["PHONE"] == "+46 CRM"
    shown = client.get(connection.get_absolute_url()).content.decode()
    assert "Resync from CRM" in shown and "Succeeded" in shown
    assert f"{SyncRun.objects.filter(kind='resync').first().duration.total_seconds():.1f} s" in shown  # type: ignore[union-attr]


def test_automatic_sync_settings_are_validated_and_audited(client: Any) -> None:
    admin = UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])
    client.force_login(admin)
    url = reverse("connections:sync-settings")
    bad = client.post(url, {"action": "automatic", "automatic_sync": "on", "interval_minutes": "0"}, follow=True)
    assert "The interval must be a whole number of minutes from 1 to 1440." in bad.content.decode()
    assert not SyncSettings.load().automatic_sync
    client.post(url, {"action": "automatic", "automatic_sync": "on", "interval_minutes": "5"})
    row = SyncSettings.load()
    assert row.automatic_sync and row.interval_minutes == 5
