"""Undo a run, against the Demo ERP served in-process: what a run wrote on both sides is put back where nobody has
changed it since; anything changed since is reported, not overwritten; and each part of a run is undone once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from connections import jobs, services
from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncLogEntry, SyncRun
from connections.sync import undo
from connectors.client import ConnectionClient
from crm.models import Company

from .conftest import InProcessConnector
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(demo_erp: InProcessConnector) -> ErpConnection:
    return active_connection(demo_erp)


def run_now(link: Link) -> SyncRun:
    """A Sync now of ``link``, run as a worker runs it."""
    run = SyncRun.objects.create(connection=link.connection, link=link, kind=RunKind.SYNC_NOW, total=1)
    return performed(run)


def performed(run: SyncRun) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    return run


def synced_pair(demo: InProcessConnector, connection: ErpConnection) -> tuple[Link, Company, str, SyncRun]:
    """A linked customer and company in step; then the CRM's phone and the ERP's e-mail change, and Sync now copies
    each to the other side: the run writes PHONE to the ERP and EMAIL to the CRM."""
    actor = new_customer(demo, connection, PHONE="+46 90 12 34 56", EMAIL="info@granbygg.se")
    key = actor.key or ""
    record = company(phone="+46 90 12 34 56", email="info@granbygg.se")
    link = services.link_record(connection, "Customer", key, record, None)
    assert run_now(link).status == RunStatus.SUCCEEDED
    Company.objects.filter(pk=record.pk).update(phone="+46 90 99 99 99")
    change_in_erp(demo, connection, key, EMAIL="order@granbygg.se")
    run = run_now(link)
    assert run.status == RunStatus.SUCCEEDED and run.changed == 2
    record.refresh_from_db()
    assert record.email == "order@granbygg.se"
    assert erp_values(demo, connection, key)["PHONE"] == "+46 90 99 99 99"
    return link, record, key, run


def test_an_undo_puts_back_what_the_run_wrote_on_both_sides(
    demo_erp: InProcessConnector, connection: ErpConnection
) -> None:
    link, record, key, run = synced_pair(demo_erp, connection)
    baseline = dict(Link.objects.get(pk=link.pk).baseline)
    assert undo.plan(run) == undo.Plan(crm_fields=1, crm_records=1, erp_fields=1, erp_records=1)
    done = performed(undo.queue_undo(run))
    assert (done.kind, done.undoes_id, done.status) == (RunKind.UNDO, run.pk, RunStatus.SUCCEEDED)
    assert (done.total, done.done, done.changed, done.failed) == (1, 1, 2, 0)
    record.refresh_from_db()
    assert record.email == "info@granbygg.se"
    assert erp_values(demo_erp, connection, key)["PHONE"] == "+46 90 12 34 56"
    # The undo's own log: the same side written, the run's value as old and the value from before it as new.
    logged = {e.field_key: e for e in SyncLogEntry.objects.filter(run=done)}
    assert (logged["PHONE"].direction, logged["PHONE"].old, logged["PHONE"].new) == (
        "crm_to_erp",
        "+46 90 99 99 99",
        "+46 90 12 34 56",
    )
    assert (logged["EMAIL"].direction, logged["EMAIL"].old, logged["EMAIL"].new) == (
        "erp_to_crm",
        "order@granbygg.se",
        "info@granbygg.se",
    )
    assert {e.outcome for e in logged.values()} == {"written"}
    assert logged["PHONE"].reason == f"undo of run #{run.pk}"
    # The baseline stays as the run left it: the values put back count as changes at the next sync.
    assert Link.objects.get(pk=link.pk).baseline == baseline
    # So the next sync copies the ERP's phone, put back, to the CRM; the CRM's e-mail, put back, stays in the CRM
    # (EMAIL is ERP → CRM only).
    after = run_now(Link.objects.get(pk=link.pk))
    record.refresh_from_db()
    assert (record.phone, record.email) == ("+46 90 12 34 56", "info@granbygg.se") and after.changed == 1
    assert erp_values(demo_erp, connection, key)["EMAIL"] == "order@granbygg.se"


def test_a_field_changed_since_is_reported_and_not_overwritten(
    demo_erp: InProcessConnector, connection: ErpConnection
) -> None:
    _link, record, key, run = synced_pair(demo_erp, connection)
    Company.objects.filter(pk=record.pk).update(email="sales@granbygg.se")  # a user, after the run
    done = performed(undo.queue_undo(run))
    record.refresh_from_db()
    assert record.email == "sales@granbygg.se"
    assert erp_values(demo_erp, connection, key)["PHONE"] == "+46 90 12 34 56"
    assert (done.status, done.changed, done.failed) == (RunStatus.SUCCEEDED, 1, 0)
    kept = SyncLogEntry.objects.get(run=done, field_key="EMAIL")
    assert (kept.outcome, kept.old, kept.new) == ("skipped", "order@granbygg.se", "sales@granbygg.se")
    assert kept.reason == (
        f"changed since run #{run.pk} wrote order@granbygg.se: it now holds sales@granbygg.se; not reverted"
    )


def test_a_run_cannot_be_undone_twice(demo_erp: InProcessConnector, connection: ErpConnection) -> None:
    link, _record, _key, run = synced_pair(demo_erp, connection)
    first = performed(undo.queue_undo(run))
    with pytest.raises(undo.UndoRefused) as refused:
        undo.queue_undo(run)
    assert str(refused.value) == f"Run #{run.pk} was already undone by run #{first.pk}."
    # Nor one of its records or fields, once the whole run is undone.
    with pytest.raises(undo.UndoRefused):
        undo.queue_undo(run, link=link, field_key="PHONE")
    # An undo is not undone in turn.
    with pytest.raises(undo.UndoRefused) as again:
        undo.queue_undo(first)
    assert str(again.value) == "A run of the kind “Undo” cannot be undone."
    # The database holds to it whatever the code checks: one undo per scope of a run.
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncRun.objects.create(connection=connection, kind=RunKind.UNDO, undoes=run, status=RunStatus.SUCCEEDED)
    assert SyncRun.objects.filter(undoes=run).count() == 1


def test_a_field_then_the_rest_of_the_run(demo_erp: InProcessConnector, connection: ErpConnection) -> None:
    link, record, key, run = synced_pair(demo_erp, connection)
    assert undo.plan(run, link, "PHONE") == undo.Plan(erp_fields=1, erp_records=1)
    phone = performed(undo.queue_undo(run, link=link, field_key="PHONE"))
    assert (phone.status, phone.changed, phone.undo_scope) == (RunStatus.SUCCEEDED, 1, f"link:{link.pk}:PHONE")
    assert erp_values(demo_erp, connection, key)["PHONE"] == "+46 90 12 34 56"
    record.refresh_from_db()
    assert record.email == "order@granbygg.se"  # not in that undo's scope
    with pytest.raises(undo.UndoRefused) as refused:
        undo.queue_undo(run, link=link, field_key="PHONE")
    assert str(refused.value) == f"This was already undone by run #{phone.pk}."
    rest = performed(undo.queue_undo(run))
    record.refresh_from_db()
    assert record.email == "info@granbygg.se" and rest.changed == 1
    already = SyncLogEntry.objects.get(run=rest, field_key="PHONE")
    assert already.outcome == "skipped" and already.reason == f"already holds the value from before run #{run.pk}"


def test_an_erp_change_between_read_and_write_is_refused_by_the_erp(
    demo_erp: InProcessConnector, connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ERP is written with the last_modified the undo read, as a sync writes it: an actor changed in between (a
    user in the ERP, just then) is refused by the ERP, and the undo fails that record, saying why."""
    link, _record, key, run = synced_pair(demo_erp, connection)
    read = ConnectionClient.get_actors

    def read_then_someone_edits(self: ConnectionClient, *args: Any, **kwargs: Any) -> Any:
        answer = read(self, *args, **kwargs)
        change_in_erp(demo_erp, connection, key, NAME="Granbygg AB (Umeå)")
        return answer

    monkeypatch.setattr(ConnectionClient, "get_actors", read_then_someone_edits)
    done = performed(undo.queue_undo(run, link=link, field_key="PHONE"))
    monkeypatch.undo()
    assert (done.status, done.changed, done.failed) == (RunStatus.PARTIALLY_FAILED, 0, 1)
    failed = SyncLogEntry.objects.get(run=done, field_key="PHONE")
    assert failed.outcome == "error" and failed.reason.startswith("Demo ERP – Sweden refused the change:")
    assert failed.reason.endswith("was changed in Demo ERP meanwhile.")
    assert erp_values(demo_erp, connection, key)["PHONE"] == "+46 90 99 99 99"


def test_a_value_that_no_longer_fits_fails_that_field(demo_erp: InProcessConnector, connection: ErpConnection) -> None:
    link, _record, key, run = synced_pair(demo_erp, connection)
    # The value from before the run no longer fits the ERP field (its length was cut since, say).
    connection.erp_fields.filter(actor_type="Customer", key="PHONE").update(max_length=10)
    done = performed(undo.queue_undo(run, link=link))
    assert (done.status, done.changed, done.failed) == (RunStatus.PARTIALLY_FAILED, 1, 1)
    failed = SyncLogEntry.objects.get(run=done, field_key="PHONE")
    assert (failed.outcome, failed.reason) == ("error", "15 characters do not fit the ERP field (at most 10)")
    assert erp_values(demo_erp, connection, key)["PHONE"] == "+46 90 99 99 99"


def test_an_undo_that_failed_frees_its_scope(demo_erp: InProcessConnector, connection: ErpConnection) -> None:
    _link, record, _key, run = synced_pair(demo_erp, connection)
    queued = undo.queue_undo(run)
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=False)  # before the worker gets to it
    failed = performed(queued)
    assert (failed.status, failed.error) == (RunStatus.FAILED, "Demo ERP – Sweden is not active.")
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=True)
    again = performed(undo.queue_undo(run))
    record.refresh_from_db()
    assert again.status == RunStatus.SUCCEEDED and record.email == "info@granbygg.se"
