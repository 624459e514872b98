"""An admin can see what changed, why, and what failed, and act on failures."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from connections import jobs, services
from connections.models import Link, SyncLogEntry, SyncRun
from connections.sync.engine import sync_links
from crm.models import Company

from .conftest import Connector
from .factories import UserFactory
from .permission_matrix import assert_access
from .sync_helpers import active_connection, company, new_customer

pytestmark = pytest.mark.django_db


def sync(link: Link) -> SyncRun:
    run = SyncRun.objects.create(connection=link.connection, link=link, kind="sync_now", total=1)
    jobs.claim(run.pk)  # as the task does: the engine commits each batch only while the run is its attempt's
    run.refresh_from_db()
    sync_links(run, [link])
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded")
    link.refresh_from_db()
    return run


@pytest.fixture
def synced(demo_erp: Connector) -> dict[str, Any]:
    connection = active_connection(demo_erp)
    good = new_customer(demo_erp, connection, PHONE="+46 90 11", EMAIL="info@granbygg.se")
    bad = new_customer(demo_erp, connection, NAME="Älvdata AB", COUNTRY="NO")  # no CRM country mapped
    links = [
        services.link_record(connection, "Customer", good.key or "", company(phone="+46 1"), None),
        services.link_record(connection, "Customer", bad.key or "", company(name="Älvdata AB"), None),
    ]
    runs = [sync(link) for link in links]
    return {"connection": connection, "links": links, "runs": runs}


def test_the_log_and_inbox_are_for_erp_sync_admins(
    client: Any, synced: dict[str, Any], admin_user: Any, licensed_user: Any, outsider: Any
) -> None:
    users = {"admin": admin_user, "licensed": licensed_user, "outsider": outsider}
    for name in ("connections:sync-log", "connections:failed-records"):
        assert_access(
            client,
            users,
            reverse(name, args=[synced["connection"].pk]),
            {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200},
        )


def test_the_sync_log_shows_every_write_with_its_reason_and_filters(client: Any, synced: dict[str, Any]) -> None:
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    url = reverse("connections:sync-log", args=[synced["connection"].pk])
    page = client.get(url).content.decode()
    assert "+46 1 → <strong>+46 90 11</strong>" in page and "conflict: Demo ERP – Sweden ranks higher" in page
    errors = client.get(url, {"outcome": "error"}).content.decode()
    assert "no CRM item is mapped to ERP item NO" in errors and "+46 90 11" not in errors
    only_email = client.get(url, {"field": "email"}).content.decode()
    assert "info@granbygg.se" in only_email and "+46 90 11" not in only_email
    by_run = client.get(url, {"run": synced["runs"][1].pk}).content.decode()
    assert "Älvdata AB" in by_run and "Granbygg AB" not in by_run
    assert "Nothing in the sync log matches." in client.get(url, {"record": "nobody"}).content.decode()
    record_log = list(SyncLogEntry.objects.for_record(synced["links"][0].crm_record)[:50])
    assert {entry.field_key for entry in record_log} >= {"PHONE", "EMAIL"}


def test_failed_records_are_grouped_retried_and_dismissed(
    client: Any, synced: dict[str, Any], monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(services, "_send_run", sent.append)
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    url = reverse("connections:failed-records", args=[synced["connection"].pk])
    page = client.get(url).content.decode()
    assert "1 failed record: Demo ERP – Sweden" in page and "no CRM item is mapped to ERP item NO" in page
    bad = synced["links"][1]
    with django_capture_on_commit_callbacks(execute=True):
        retried = client.post(url, {"link": bad.pk, "action": "retry"}, follow=True).content.decode()
    assert "Queued 1 records to be synced again." in retried
    assert len(sent) == 1 and SyncRun.objects.get(pk=sent[0]).link == bad
    SyncRun.objects.filter(pk=sent[0]).update(status="succeeded")
    refused = client.post(
        url, {"error": bad.last_error, "action": "dismiss", "reason": ""}, follow=True
    ).content.decode()
    assert "Say why the failure can be dismissed." in refused
    client.post(url, {"error": bad.last_error, "action": "dismiss", "reason": "Norway is not sold to any more"})
    assert "No failed records." in client.get(url).content.decode()
    # The same failure stays dismissed; a different one comes back.
    sync(bad)
    assert "No failed records." in client.get(url).content.decode()
    Company.objects.filter(pk=bad.company_id).update(name="Älvdata " + "X" * 120)  # too long for the ERP's NAME
    sync(bad)
    assert "do not fit the ERP field" in client.get(url).content.decode()
