"""Bulk runs in parts, step by step in this process: how a run is split, Sync now waiting for a bulk run that
has still to reach its record (and saying so, in the user's language), a connector's limit of parts at once, and
the sweeper ending a run whose parts have all ended.

tests/faults/test_parts.py runs the same with real worker processes.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from connections import jobs, mapping, said, services
from connections.choices import RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, SyncChunk, SyncRun
from connections.sync import parts
from connectors import protocol as p
from crm.models import Company

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, erp, new_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(demo_erp: Connector) -> ErpConnection:
    return active_connection(demo_erp)


def linked(demo_erp: Connector, connection: ErpConnection, count: int) -> list[Link]:
    links = []
    for i in range(count):
        actor = new_customer(demo_erp, connection, NAME=f"Del {i} AB", PHONE=f"+46 8 {i}")
        links.append(services.link_record(connection, "Customer", actor.key or "", company(name=f"Del {i} AB"), None))
    return links


def test_sync_all_is_split_into_parts_of_one_actor_type_that_add_up_to_the_run(
    demo_erp: Connector, connection: ErpConnection, settings: Any
) -> None:
    settings.ERPSYNC_PART_SIZE = 2
    links = linked(demo_erp, connection, 5)
    for i, link in enumerate(links):
        change_in_erp(demo_erp, connection, link.erp_key, PHONE=f"+46 8 {i} ny")
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    chunks = list(SyncChunk.objects.filter(run=run))
    assert [chunk.link_ids for chunk in chunks] == [
        [links[0].pk, links[1].pk],
        [links[2].pk, links[3].pk],
        [links[4].pk],
    ]
    assert [(chunk.status, chunk.done, chunk.position) for chunk in chunks] == [
        (RunStatus.SUCCEEDED, 2, links[1].pk),
        (RunStatus.SUCCEEDED, 2, links[3].pk),
        (RunStatus.SUCCEEDED, 1, links[4].pk),
    ]
    assert (run.status, run.total, run.done, run.lease_expires_at) == (RunStatus.SUCCEEDED, 5, 5, None)
    assert [Company.objects.get(pk=link.company_id or 0).phone for link in links] == [f"+46 8 {i} ny" for i in range(5)]


def test_sync_now_waits_for_a_bulk_run_that_has_still_to_reach_its_record_and_says_so(
    demo_erp: Connector, connection: ErpConnection, client: Any
) -> None:
    [link] = linked(demo_erp, connection, 1)
    change_in_erp(demo_erp, connection, link.erp_key, PHONE="+46 8 99")
    bulk = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    now = SyncRun.objects.create(connection=connection, link=link, kind=RunKind.SYNC_NOW)
    run_sync.apply(kwargs={"run_id": now.pk})
    now.refresh_from_db()
    assert (now.status, now.attempts, now.waiting) == (RunStatus.QUEUED, 0, True)
    assert now.error == "Waiting for Sync all, which has still to reach this record."

    client.force_login(UserFactory.create(username="anna", perms=["connections.use_erp_sync"]))
    page = client.get(reverse("erp:run", args=[now.pk]), HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="sv")
    text = page.content.decode()
    assert "Väntar på Synkronisera alla, som ännu inte har nått den här posten." in text
    assert "misslyckades" not in text and "Waiting" not in text

    run_sync.apply(kwargs={"run_id": bulk.pk})  # the bulk run passes the record
    run_sync.apply(kwargs={"run_id": now.pk})  # the Sync now sent again after its wait
    now.refresh_from_db()
    assert (now.status, now.attempts, now.waiting) == (RunStatus.SUCCEEDED, 1, False)
    assert SyncRun.objects.get(pk=bulk.pk).status == RunStatus.SUCCEEDED


def test_a_connectors_parts_at_once_are_bounded_and_the_next_is_sent_as_one_ends(
    demo_erp: Connector, connection: ErpConnection, settings: Any
) -> None:
    settings.ERPSYNC_PART_SIZE = 1
    type(connection.connector).objects.filter(pk=connection.connector_id).update(max_parallel_parts=2)
    links = linked(demo_erp, connection, 4)
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    assert jobs.claim(run.pk) == 1
    assert parts.split(run, [(link.pk, link.actor_type) for link in links]) == 4
    first, second, third, fourth = SyncChunk.objects.filter(run=run)
    # Two are worked on; a third finds the connector's places taken and looks again later.
    assert (parts.claim(first.pk), parts.claim(second.pk), parts.claim(third.pk)) == (1, 1, parts.BUSY)
    assert parts.claim(first.pk) == 0  # a duplicate delivery of a part being worked on does nothing
    assert parts.dispatch(run.pk) == []  # two on their way already: nothing more is sent
    SyncChunk.objects.filter(pk=second.pk).update(status=RunStatus.QUEUED, lease_expires_at=None, sent_at=None)
    SyncChunk.objects.filter(pk__in=[third.pk, fourth.pk]).update(sent_at=None)
    # One place is free: the dispatch sends the first part waiting, in order.
    assert parts.dispatch(run.pk) == [second.pk]


def test_the_sweeper_ends_a_run_whose_parts_all_ended(demo_erp: Connector, connection: ErpConnection) -> None:
    links = linked(demo_erp, connection, 2)
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL, failed=1)
    attempt = jobs.claim(run.pk)
    parts.split(run, [(link.pk, link.actor_type) for link in links])
    jobs.held(SyncRun, run.pk, attempt).update(lease_expires_at=None)  # the run goes on in its parts
    # Its only part ended, and the worker stopped before it could end the run.
    SyncChunk.objects.filter(run=run).update(status=RunStatus.SUCCEEDED)
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    parts.sweep_stuck_parts()
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.PARTIALLY_FAILED  # a record failed in it


def test_foreign_values_cross_a_sync_all_in_parts_unchanged_both_ways(
    demo_erp: Connector, connection: ErpConnection, settings: Any
) -> None:
    """Multi-line streets, decomposed (NFD) letters and names as long as the ERP allows, Å Ä Ö Ø Æ: a Sync all
    split into parts of one link writes them to the ERP and back to the CRM exactly as they were."""
    settings.ERPSYNC_PART_SIZE = 1
    rows = [
        mapping.FieldRow(
            f.key,
            *(("NAME", "both") if f.key == "NAME" else ("POSTALAD1", "both") if f.key == "POSTALAD1" else ("", "")),
            False,
            False,
        )
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    links = linked(demo_erp, connection, 3)
    run_sync.apply(kwargs={"run_id": SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL).pk})
    street = unicodedata.normalize("NFD", "c/o Åkerström\nLgh 1831\nStorgatan 12 B")
    names = [unicodedata.normalize("NFD", f"{i} Ærøskøbing Østergård Åsa Ärlebäck Öst ") * 3 for i in range(3)]
    names = [name[:99] + "x" for name in names]  # 100 code points: the Demo ERP's longest name
    for link, name in zip(links, names, strict=True):
        Company.objects.filter(pk=link.company_id or 0).update(name=name, postal_address1=street)

    to_erp = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": to_erp.pk})
    to_erp.refresh_from_db()
    assert (to_erp.status, SyncChunk.objects.filter(run=to_erp).count()) == (RunStatus.SUCCEEDED, 3), to_erp.error
    for link, name in zip(links, names, strict=True):
        [actor] = (
            erp(demo_erp, connection).get_actors(p.ActorType.CUSTOMER, [link.erp_key], ["NAME", "POSTALAD1"]).actors
        )
        values = actor.values
        assert (values["NAME"], values["POSTALAD1"]) == (name, street)

    box = unicodedata.normalize("NFD", "Box 1234\nSE-903 25 Umeå")
    for link in links:
        change_in_erp(demo_erp, connection, link.erp_key, POSTALAD1=box)
    back = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": back.pk})
    assert SyncRun.objects.get(pk=back.pk).status == RunStatus.SUCCEEDED
    for link, name in zip(links, names, strict=True):
        record = Company.objects.get(pk=link.company_id or 0)
        assert (record.name, record.postal_address1) == (name, box)


def test_why_parts_failed_reads_in_each_readers_language(
    demo_erp: Connector, connection: ErpConnection, settings: Any, client: Any
) -> None:
    """A worker in English fails parts; the run's reason reads in Swedish for a Swedish reader."""
    settings.ERPSYNC_PART_SIZE = 1
    links = linked(demo_erp, connection, 3)
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    attempt = jobs.claim(run.pk)
    parts.split(run, [(link.pk, link.actor_type) for link in links])
    jobs.held(SyncRun, run.pk, attempt).update(lease_expires_at=None)  # the run goes on in its parts
    first, second, third = SyncChunk.objects.filter(run=run)
    SyncChunk.objects.filter(pk=first.pk).update(status=RunStatus.SUCCEEDED)
    # The second part's worker kept stopping: out of attempts, its lease ran out; the sweeper gives up on it.
    SyncChunk.objects.filter(pk=second.pk).update(
        status=RunStatus.RUNNING, attempts=jobs.MAX_RETRIES + 1, lease_expires_at=timezone.now()
    )
    # The third is taken by a worker after the connection was deactivated: it is refused.
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=False)
    with translation.override("en"):
        parts.sweep_stuck_parts(timezone.now() + timedelta(seconds=1))
        parts.run_part.apply(kwargs={"part_id": third.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_FAILED
    assert run.error == (
        f"2 of 3 parts failed: Gave up after {jobs.MAX_RETRIES + 1} attempts; the worker kept stopping during this part."
    )
    with translation.override("sv"):
        assert run.error_shown == (
            f"2 av 3 delar misslyckades: Gav upp efter {jobs.MAX_RETRIES + 1} försök; arbetaren stannade gång på gång "
            "under den här delen."
        )
        third.refresh_from_db()
        assert third.error == f"{connection} is not active."
        assert said.shown(third.error, third.error_said) == f"{connection} är inte aktiv."
