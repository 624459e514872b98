"""Protocol v1.1, capability tombstones: the change feed reports actors deleted, merged into another or archived;
automatic sync marks their links, the ERP tab says what happened (and offers to link to a merge's survivor), a
marked link is not synced or logged again, and an archived actor that is restored syncs again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import jobs, services
from connections.choices import LinkStatus
from connections.models import ErpConnection, Link, SyncLogEntry, SyncRun, SyncSettings
from connectors import protocol as p
from crm.models import Company

from .conftest import InProcessConnector
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, erp, new_customer

pytestmark = pytest.mark.django_db
C = p.ActorType.CUSTOMER
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project"]


def automatic_run(minutes: int) -> SyncRun:
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True, "interval_minutes": 15})
    [run_id] = jobs.tick_automatic_sync(timezone.now() + timedelta(minutes=minutes))
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


def test_the_demo_erps_feed_reports_removed_actors_in_order(empty_demo: InProcessConnector) -> None:
    connection = active_connection(empty_demo)
    a, b, c = (new_customer(empty_demo, connection, NAME=f"Bolag {n}").key or "" for n in range(3))
    store = empty_demo.store
    store.remove("Customer", a, "archived")
    store.remove("Customer", b, "merged", merged_into=c)
    with pytest.raises(KeyError):
        store.remove("Customer", c, "merged", merged_into="C999999")
    conn = erp(empty_demo, connection)
    page = conn.changes_page(C, page_size=2)  # the actor c, then a's tombstone: two entries fill the page
    assert [x.key for x in page.actors] == [c] and [(t.key, t.kind) for t in page.tombstones] == [(a, "archived")]
    rest = conn.changes_page(C, cursor=page.next_cursor)
    assert [(t.key, t.kind, t.merged_into) for t in rest.tombstones] == [(b, "merged", c)] and not rest.has_more
    assert conn.get_actors(C, [a, b, c]).missing_keys == [a, b]
    store.restore("Customer", a)
    again = conn.changes_page(C, cursor=rest.next_cursor)
    assert [x.key for x in again.actors] == [a] and again.actors[0].values["NAME"] == "Bolag 0"


@pytest.fixture
def linked(empty_demo: InProcessConnector) -> tuple[ErpConnection, list[str], list[Company], list[Link]]:
    connection = active_connection(empty_demo)
    services.recheck_connector(connection.connector)  # the CRM learns what the Demo ERP offers
    keys = [new_customer(empty_demo, connection, NAME=f"Bolag {n} AB").key or "" for n in range(4)]
    records = [company(name=f"Bolag {n} AB") for n in range(4)]
    links = [
        services.link_record(connection, "Customer", key, record, None)
        for key, record in zip(keys, records, strict=True)
    ]
    assert automatic_run(0).status == "succeeded"
    return connection, keys, records, links


def test_automatic_sync_marks_links_whose_actor_is_gone_once_and_resumes_a_restored_one(
    empty_demo: InProcessConnector, linked: tuple[ErpConnection, list[str], list[Company], list[Link]]
) -> None:
    connection, keys, records, links = linked
    survivor = new_customer(empty_demo, connection, NAME="Bolag Samlat AB").key or ""
    empty_demo.store.remove("Customer", keys[0], "archived")
    empty_demo.store.remove("Customer", keys[1], "deleted")
    empty_demo.store.remove("Customer", keys[2], "merged", merged_into=survivor)
    run = automatic_run(16)
    assert run.status == "succeeded" and run.failed == 0
    for link in links:
        link.refresh_from_db()
    assert [(link.status, link.merged_into) for link in links] == [
        (LinkStatus.ERP_ARCHIVED, ""),
        (LinkStatus.ERP_DELETED, ""),
        (LinkStatus.ERP_MERGED, survivor),
        (LinkStatus.OK, ""),
    ]
    assert links[2].last_error == f"The ERP actor was merged into {survivor}."
    assert SyncLogEntry.objects.filter(run=run, link__in=links[:3]).count() == 3  # one entry each, when it happened
    # The CRM side changes: a marked link is left out, nothing is logged, nothing fails.
    Company.objects.filter(pk__in=[r.pk for r in records[:3]]).update(phone="+46 1", updated_at=timezone.now())
    logged = SyncLogEntry.objects.count()
    later = automatic_run(32)
    assert later.status == "succeeded" and later.failed == 0 and SyncLogEntry.objects.count() == logged
    # Sync now on a marked link keeps the mark and logs nothing either.
    links[1].refresh_from_db()
    assert links[1].status == LinkStatus.ERP_DELETED
    # Restored in the ERP: the feed brings the actor back, and its link syncs again.
    empty_demo.store.restore("Customer", keys[0])
    change_in_erp(empty_demo, connection, keys[0], PHONE="+46 restored")
    assert automatic_run(48).status == "succeeded"
    links[0].refresh_from_db()
    records[0].refresh_from_db()
    assert links[0].status == LinkStatus.OK and records[0].phone == "+46 restored"


def test_the_erp_tab_says_what_became_of_the_actor_and_relinks_a_merged_record(
    client: Any,
    empty_demo: InProcessConnector,
    linked: tuple[ErpConnection, list[str], list[Company], list[Link]],
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(services, "_send_run", lambda run_id: None)
    connection, keys, records, links = linked
    survivor = new_customer(empty_demo, connection, NAME="Bolag Samlat AB").key or ""
    empty_demo.store.remove("Customer", keys[0], "archived")
    empty_demo.store.remove("Customer", keys[1], "deleted")
    empty_demo.store.remove("Customer", keys[2], "merged", merged_into=survivor)
    empty_demo.store.remove("Customer", keys[3], "merged", merged_into=survivor)
    automatic_run(16)
    user = UserFactory.create(username="anna", perms=[*CRM, "connections.use_erp_sync"])
    client.force_login(user)

    def tab(record: Company, language: str = "en") -> str:
        url = reverse("crm:company-tab", args=[record.pk, "erp"])
        return client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()

    archived = tab(records[0])
    assert "The ERP actor was archived; it can be restored in the ERP." in archived
    assert "Archived in the ERP" in archived and "no longer exists" not in archived
    assert "ERP-aktören har arkiverats; den kan återställas i ERP-systemet." in tab(records[0], "sv")
    assert "The ERP actor was deleted." in tab(records[1])
    merged = tab(records[2])
    assert f"The ERP actor was merged into {survivor}." in merged and f"Link to {survivor}" in merged
    assert f"Koppla till {survivor}" in tab(records[2], "sv")
    # One click links the record to the survivor; once it is linked, the other merged record's relink is refused.
    relinked = client.post(reverse("erp:relink", args=[links[2].pk]))
    assert relinked.status_code == 302
    link = Link.objects.get(company=records[2])
    assert (link.erp_key, link.status) == (survivor, LinkStatus.OK)
    refused = client.post(reverse("erp:relink", args=[links[3].pk]), follow=True).content.decode()
    assert "already linked" in refused and Link.objects.get(company=records[3]).erp_key == keys[3]
    # Without the connect right, no relinking.
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_connect=False)
    assert client.post(reverse("erp:relink", args=[links[3].pk])).status_code == 403


def test_a_failure_met_again_is_logged_once_and_counted(
    empty_demo: InProcessConnector, linked: tuple[ErpConnection, list[str], list[Company], list[Link]]
) -> None:
    connection, keys, _records, links = linked
    # Norway is not mapped to a CRM country: the COUNTRY field fails on every sync.
    change_in_erp(empty_demo, connection, keys[0], COUNTRY="NO")
    automatic_run(16)
    links[0].refresh_from_db()
    assert links[0].status == LinkStatus.FAILED and links[0].repeats == 0
    errors = SyncLogEntry.objects.filter(link=links[0], outcome="error")
    assert errors.count() == 1
    for minutes in (32, 48):
        automatic_run(minutes)  # a failed link is retried by every automatic run
    links[0].refresh_from_db()
    assert links[0].repeats == 2 and errors.count() == 1
