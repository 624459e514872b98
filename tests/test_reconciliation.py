"""Reconciliation: every link compared on both sides against its baseline without writing, the states added up on
the connection's page (in the reader's language), the drifted records synced on request, and the nightly round."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import jobs
from connections.choices import DriftState, RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, SyncLogEntry, SyncRun
from connections.sync import reconcile
from crm.models import Company

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer

pytestmark = pytest.mark.django_db


def run(connection: ErpConnection, kind: str) -> SyncRun:
    """A bulk run of ``kind``, its parts worked off in this process."""
    created = SyncRun.objects.create(connection=connection, kind=kind)
    run_sync.apply(kwargs={"run_id": created.pk})
    created.refresh_from_db()
    return created


@pytest.fixture
def drifting(demo_erp: Connector, settings: Any) -> tuple[ErpConnection, dict[str, Link]]:
    """Four links of one connection, in step after a Sync all; then one changes in the ERP, one in the CRM, and
    one points at an actor the ERP does not have."""
    settings.ERPSYNC_PART_SIZE = 2  # several parts
    connection = active_connection(demo_erp)
    links = {}
    for name in ("steady", "erp", "crm"):
        actor = new_customer(demo_erp, connection, NAME=f"Avstämning {name} AB", PHONE="+46 8 70 00")
        record = company(name=f"Avstämning {name} AB", phone="+46 8 70 00")
        links[name] = Link.objects.create(
            connection=connection, actor_type="Customer", erp_key=actor.key or "", company=record
        )
    assert run(connection, RunKind.SYNC_ALL).status == RunStatus.SUCCEEDED
    change_in_erp(demo_erp, connection, links["erp"].erp_key, PHONE="+46 8 70 99")
    Company.objects.filter(pk=links["crm"].company_id or 0).update(
        phone="+46 8 70 98"
    )  # no save signal: no sync on save
    gone = company(name="Avstämning borta AB")
    links["gone"] = Link.objects.create(
        connection=connection, actor_type="Customer", erp_key="C-GONE 1/2", company=gone
    )
    return connection, links


def test_reconciliation_finds_each_state_and_writes_nothing(
    demo_erp: Connector, drifting: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = drifting
    before_erp = {
        name: erp_values(demo_erp, connection, link.erp_key) for name, link in links.items() if name != "gone"
    }
    before_crm = {name: Company.objects.get(pk=link.company_id or 0).phone for name, link in links.items()}
    before_baselines = {name: Link.objects.get(pk=link.pk).baseline for name, link in links.items()}

    reconciled = run(connection, RunKind.RECONCILE)

    assert (reconciled.status, reconciled.total, reconciled.done, reconciled.changed) == (RunStatus.SUCCEEDED, 4, 4, 2)
    assert reconciled.chunks.count() == 2
    states = {name: Link.objects.get(pk=link.pk).drift for name, link in links.items()}
    assert states == {
        "steady": DriftState.IN_STEP,
        "erp": DriftState.DRIFTED,
        "crm": DriftState.DRIFTED,
        "gone": DriftState.MISSING,
    }
    assert reconcile.summary(connection) == {"in_step": 1, "drifted": 2, "failed": 0, "missing": 1, "outside": 0}
    assert reconciled.checkpoint["summary"] == reconcile.summary(connection)
    # Nothing written on either side, no baseline moved, nothing in the sync log.
    assert {n: erp_values(demo_erp, connection, links[n].erp_key) for n in before_erp} == before_erp
    assert {n: Company.objects.get(pk=link.company_id or 0).phone for n, link in links.items()} == before_crm
    assert {n: Link.objects.get(pk=link.pk).baseline for n, link in links.items()} == before_baselines
    assert not SyncLogEntry.objects.filter(run=reconciled).exists()


def test_the_drifted_records_are_synced_on_request_and_then_are_in_step(
    demo_erp: Connector, drifting: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = drifting
    with pytest.raises(jobs.SyncRefused, match="has drifted: there is nothing to sync"):
        reconcile.queue_sync_drifted(connection)  # not reconciled yet: no record is known to have drifted
    run(connection, RunKind.RECONCILE)

    synced = run(connection, RunKind.SYNC_DRIFTED)

    assert (synced.status, synced.total, synced.done, synced.changed) == (RunStatus.SUCCEEDED, 2, 2, 2)
    assert Company.objects.get(pk=links["erp"].company_id or 0).phone == "+46 8 70 99"
    assert erp_values(demo_erp, connection, links["crm"].erp_key)["PHONE"] == "+46 8 70 98"
    assert reconcile.summary(connection) == {"in_step": 3, "drifted": 0, "failed": 0, "missing": 1, "outside": 0}
    # The steady link and the gone one were not part of it.
    assert set(SyncLogEntry.objects.filter(run=synced).values_list("link_id", flat=True)) == {
        links["erp"].pk,
        links["crm"].pk,
    }


def test_the_connection_page_adds_the_states_up_in_the_readers_language(
    client: Any, drifting: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, _links = drifting
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = "en"
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Not reconciled yet." in page and "drifted record" not in page
    # "Reconcile now" on the page queues the run; here it is worked off in this process.
    answer = client.post(
        reverse("connections:connection-bulk-run", args=[connection.pk]), {"kind": "reconcile"}, follow=True
    )
    assert "Reconciliation of Demo ERP – Sweden is queued." in answer.content.decode()
    queued = SyncRun.objects.get(connection=connection, kind=RunKind.RECONCILE)
    run_sync.apply(kwargs={"run_id": queued.pk})
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Sync the 2 drifted records" in page and "Missing or archived in the ERP" in page
    assert '<td data-state="drifted"><span class="badge badge-error">2</span>' in page
    client.cookies["django_language"] = "sv"
    page = client.get(connection.get_absolute_url()).content.decode()
    assert "Synkronisera de 2 avvikande posterna" in page and "Avstämning" in page and "Stäm av nu" in page
    # A second reconciliation cannot start while one is queued.
    client.post(reverse("connections:connection-bulk-run", args=[connection.pk]), {"kind": "reconcile"})
    answer = client.post(
        reverse("connections:connection-bulk-run", args=[connection.pk]), {"kind": "reconcile"}, follow=True
    )
    assert "kör redan en import eller en massynkronisering" in answer.content.decode()
    # Nightly reconciliation is switched off and on, audited.
    client.post(reverse("connections:connection-reconcile", args=[connection.pk]), {})
    connection.refresh_from_db()
    assert not connection.reconcile_nightly
    assert "avstämning varje natt: av" in client.get(connection.get_absolute_url()).content.decode()


def test_a_run_that_ends_while_the_page_is_read_is_still_followed(
    client: Any, drifting: tuple[ErpConnection, dict[str, Link]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync of the drifted records ends in the moment between the page's reads: the page must not show the
    counts from before its end as final (it would never look again). It keeps following the run instead."""
    connection, _links = drifting
    run(connection, RunKind.RECONCILE)
    drifted = reconcile.queue_sync_drifted(connection)
    counted = reconcile.summary

    def counted_as_the_run_ends(connection: ErpConnection) -> dict[str, int]:
        counts = counted(connection)
        Link.objects.filter(connection=connection, drift=DriftState.DRIFTED).update(drift=DriftState.IN_STEP)
        SyncRun.objects.filter(pk=drifted.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
        return counts

    monkeypatch.setattr(reconcile, "summary", counted_as_the_run_ends)
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    page = client.get(connection.get_absolute_url()).content.decode()
    section = page[page.index('id="reconciliation"') :]
    assert 'hx-trigger="every 2s"' in section[: section.index(">")], "the page stopped following a run it counted"


def test_the_nightly_round_reconciles_each_connection_once_within_its_hour(demo_erp: Connector, settings: Any) -> None:
    connection = active_connection(demo_erp)
    now = timezone.now()
    settings.ERPSYNC_RECONCILE_HOUR = (timezone.localtime(now).hour + 1) % 24
    assert reconcile.tick(now) == []  # not its hour
    settings.ERPSYNC_RECONCILE_HOUR = timezone.localtime(now).hour
    ErpConnection.objects.filter(pk=connection.pk).update(reconcile_nightly=False)
    assert reconcile.tick(now) == []  # switched off
    ErpConnection.objects.filter(pk=connection.pk).update(reconcile_nightly=True)
    [queued] = reconcile.tick(now)
    assert SyncRun.objects.get(pk=queued).connection_id == connection.pk
    SyncRun.objects.filter(pk=queued).update(status=RunStatus.SUCCEEDED)
    assert reconcile.tick(now + timedelta(minutes=10)) == []  # reconciled within the last 20 hours
    SyncRun.objects.filter(pk=queued).update(created_at=now - timedelta(hours=21))  # the next night
    [again] = reconcile.tick(now)
    assert again != queued and SyncRun.objects.get(pk=again).connection_id == connection.pk
