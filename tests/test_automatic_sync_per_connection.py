"""Automatic sync per connection: paused or on, its own interval, Sync settings' switch as the master switch; a
paused connection keeps its feed cursor and catches up when resumed; imports and saves follow its own state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import jobs, notifications, services
from connections.models import AuditEntry, ErpConnection, SyncRun, SyncSettings
from crm.models import Company

from .conftest import Connector
from .factories import ErpConnectionFactory, UserFactory
from .sync_helpers import active_connection, change_in_erp, company, new_customer

pytestmark = pytest.mark.django_db


def run(run_id: int) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


def turn_on(minutes: int = 15) -> None:
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True, "interval_minutes": minutes})


def connections_of(run_ids: list[int]) -> list[str]:
    return [SyncRun.objects.get(pk=pk).connection.name for pk in run_ids]


def test_the_tick_honours_each_connections_pause_and_interval_under_the_master_switch(
    demo_erp: Connector, monkeypatch: Any
) -> None:
    monkeypatch.setattr(jobs, "send", lambda ids: None)
    first = active_connection(demo_erp)
    fast = ErpConnectionFactory.create(name="Fast", connector=first.connector, priority=5, automatic_interval_minutes=5)
    paused = ErpConnectionFactory.create(name="Paused", connector=first.connector, priority=6, automatic_sync=False)
    now = timezone.now()
    services.save_connection_automatic_sync(first, True, None, None)
    assert jobs.tick_automatic_sync(now) == []  # the master switch is off
    turn_on(minutes=15)
    assert connections_of(jobs.tick_automatic_sync(now)) == ["Demo ERP – Sweden", "Fast"]
    SyncRun.objects.update(status="succeeded")
    assert jobs.tick_automatic_sync(now + timedelta(minutes=4)) == []
    assert connections_of(jobs.tick_automatic_sync(now + timedelta(minutes=5))) == ["Fast"]
    SyncRun.objects.update(status="succeeded")
    assert connections_of(jobs.tick_automatic_sync(now + timedelta(minutes=15))) == ["Demo ERP – Sweden", "Fast"]
    SyncRun.objects.update(status="succeeded")
    # A connection whose run is still going is queued at the first tick after it ended, not an interval later.
    SyncRun.objects.create(connection=fast, kind="sync_all", status="running")
    assert jobs.tick_automatic_sync(now + timedelta(minutes=20)) == []
    SyncRun.objects.update(status="succeeded")
    assert connections_of(jobs.tick_automatic_sync(now + timedelta(minutes=21))) == ["Fast"]
    assert not SyncRun.objects.filter(connection=paused).exists()
    # Resumed, it is due at once (it has never run).
    services.save_connection_automatic_sync(paused, True, None, None)
    assert connections_of(jobs.tick_automatic_sync(now + timedelta(minutes=22))) == ["Paused"]


def test_a_paused_connection_keeps_its_cursor_and_catches_up_when_resumed(demo_erp: Connector) -> None:
    connection = active_connection(demo_erp)
    actor = new_customer(demo_erp, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    services.link_record(connection, "Customer", actor.key or "", record, None)
    turn_on()
    assert run(jobs.tick_automatic_sync()[0]).status == "succeeded"
    cursor = connection.actor_types.get(actor_type="Customer").feed_cursor
    assert cursor
    services.save_connection_automatic_sync(connection, False, None, None)
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 changed while paused")
    later = timezone.now() + timedelta(minutes=60)
    assert jobs.tick_automatic_sync(later) == []
    assert connection.actor_types.get(actor_type="Customer").feed_cursor == cursor
    # A save of the linked record and a follow-up queue nothing while it is paused.
    assert notifications.sync_links_of("company", record.pk) == 0
    services.save_connection_automatic_sync(connection, True, None, None)
    caught_up = run(jobs.tick_automatic_sync(later)[0])
    assert caught_up.status == "succeeded" and caught_up.changed == 1
    assert Company.objects.get(pk=record.pk).phone == "+46 changed while paused"
    assert connection.actor_types.get(actor_type="Customer").feed_cursor != cursor


def test_the_connection_page_shows_the_state_and_saves_it_with_validation_and_audit(
    client: Any, demo_erp: Connector
) -> None:
    connection = active_connection(demo_erp)
    admin = UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])
    client.force_login(admin)
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Automatic sync is off in Sync settings: it runs for no connection." in page
    turn_on(minutes=15)
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Every 15 minutes; next run at" in page and "Blank: every 15 minutes, as in Sync settings." in page
    url = reverse("connections:connection-automatic-sync", args=[connection.pk])
    for bad in ("0", "1441", "soon"):
        answer = client.post(url, {"automatic_sync": "on", "automatic_interval_minutes": bad}, follow=True)
        assert "The interval must be a whole number of minutes from 1 to 1440, or blank." in answer.content.decode()
    connection.refresh_from_db()
    assert connection.automatic_interval_minutes is None and connection.automatic_sync
    client.post(url, {"automatic_sync": "on", "automatic_interval_minutes": "5"})
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Every 5 minutes; next run at" in page
    client.post(url, {"automatic_interval_minutes": "5"})  # the box unticked: paused
    connection.refresh_from_db()
    assert not connection.automatic_sync and connection.automatic_interval_minutes == 5
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Paused" in page and "When it is resumed, it catches up with the changes made meanwhile." in page
    details = list(AuditEntry.objects.filter(connection=connection, action="changed").values_list("detail", flat=True))
    assert details[:2] == ["automatic sync paused, every 5 minutes", "automatic sync on, every 5 minutes"]
    # Written while an English admin worked; a Swedish admin reads it in Swedish.
    client.cookies["django_language"] = "sv"
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "automatisk synk pausad, var 5:e minut" in page
    client.cookies["django_language"] = "en"
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=False, automatic_sync=True)
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "It runs once the connection is active and has passed its test." in page


def test_the_import_refusal_follows_the_connections_own_state(empty_demo: Connector, import_connection: Any) -> None:
    from connections import importing

    turn_on()
    assert "Automatic sync is on for" in importing.automatic_sync_refusal(import_connection)
    services.save_connection_automatic_sync(import_connection, False, None, None)
    assert importing.automatic_sync_refusal(import_connection) == ""
    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    services.save_connection_automatic_sync(import_connection, True, None, None)
    assert importing.automatic_sync_refusal(import_connection) == ""
