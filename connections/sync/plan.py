"""A plan before bulk work: what a Sync all or Resync from CRM would change, per record and field, before it runs.

A plan is a run of kind "plan", computed in parts like a reconciliation: each batch reads both sides and asks the
sync rule what it would do (``engine._decide``), and keeps each field that would change as a ``PlanRow`` (which
side, old → new, why). Nothing is written on either side and no baseline moves.

Approved, the plan starts a Sync all or Resync (``SyncRun.plan`` set) limited to exactly the plan's links and
fields. At execution each planned field is decided again: a field whose decision is no longer the planned one
(someone changed a value in between) is not written, but logged as changed since the plan and shown on the plan's
page; a field not in the plan is not written by that run. A plan is approved once, and only while it is younger
than ERPSYNC_PLAN_MAX_AGE_HOURS.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from .. import said
from ..bulk import update_rows
from ..choices import Direction, LogOutcome, PlanOutcome, RunKind, RunStatus
from ..filters import SyncFilter
from ..jobs import AlreadyRunning, Counts, SyncRefused, new_bulk_run, performs, sync_refusal
from ..mapping import CRM_MODEL
from ..models import ErpConnection, Link, PlanRow, SyncChunk, SyncLogEntry, SyncRun, SyncSettings
from . import parts
from .engine import BATCH, Recorder, _decide, _finish_batch, _Record, _write_erp
from .values import mapped_fields

PLANNED_KINDS = (RunKind.SYNC_ALL, RunKind.RESYNC)
READY_STATUSES = (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_FAILED)
CHANGED_SINCE = N_("changed since the plan; not written")


def queue_plan(connection: ErpConnection, kind: str, user: object = None, *, keep_non_blank: bool = False) -> SyncRun:
    """Queue a plan of a Sync all or Resync from CRM of every link of the connection; refused as a bulk run is."""
    if kind not in PLANNED_KINDS:
        raise SyncRefused(_("Only Sync all and Resync from CRM can be planned."))
    refusal = sync_refusal(connection)
    if refusal:
        raise SyncRefused(refusal)
    return new_bulk_run(
        connection,
        RunKind.PLAN,
        user=user,
        total=connection.links.count(),
        keep_non_blank=keep_non_blank and kind == RunKind.RESYNC,
        planned_kind=kind,
    )


@performs(RunKind.PLAN)
def perform(run: SyncRun) -> Counts | None:
    """Choose every link of the connection, as Sync all does, and split them into parts that workers plan."""
    if run.chunks.exists():
        parts.dispatch(run.pk)
        return None
    chosen = list(run.connection.links.values_list("pk", "actor_type"))
    if not parts.split(run, chosen):
        return Counts()
    parts.dispatch(run.pk)
    return None


def _setup(connection: ErpConnection, actor_type: str) -> tuple[list[Any], bool, Any, bool, SyncFilter]:
    mapped = mapped_fields(connection, actor_type)
    enabled = connection.actor_types.filter(actor_type=actor_type, sync_enabled=True).exists()
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    crm_first = SyncSettings.load().crm_priority < connection.priority
    return mapped, enabled, client, crm_first, SyncFilter.of(connection, actor_type)


def _names(actor_type: str, links: list[Link]) -> dict[int, str]:
    """Each link's CRM record as the page names it (one query)."""
    model = CRM_MODEL[actor_type]
    attribute = Link.attribute_for(model)
    ids = {link.pk: getattr(link, f"{attribute}_id") for link in links}
    records = model._default_manager.in_bulk([pk for pk in ids.values() if pk])
    return {link_id: str(records[pk]) if pk in records else "" for link_id, pk in ids.items()}


@parts.performs_parts(RunKind.PLAN)
def plan_part(part: SyncChunk) -> Counts:
    """Decide the part's links past its checkpoint, batch by batch, and keep every field that would change.
    Counts: records looked at (done), fields that would change (changed), records with a field that cannot be
    synced (failed)."""
    run = part.run
    connection = run.connection
    wanted = [link_id for link_id in part.link_ids if link_id > part.position]
    links = list(Link.objects.filter(pk__in=wanted).order_by("pk"))
    counts = Counts(done=len(wanted) - len(links))  # removed since the plan chose them
    if counts.done:
        parts.checkpoint(part, counts.done, 0, 0, [])
    if not links:
        return counts
    actor_type = part.actor_type
    mapped, enabled, client, crm_first, sync_filter = _setup(connection, actor_type)
    resync = run.planned_kind == RunKind.RESYNC
    for start in range(0, len(links), BATCH):
        batch = links[start : start + BATCH]
        rows: list[PlanRow] = []
        failed = 0
        if enabled and mapped:
            records, _missing, _outside = _decide(
                connection, actor_type, batch, mapped, client, crm_first, resync, run.keep_non_blank, sync_filter
            )
            names = _names(actor_type, [record.link for record in records])
            for record in records:
                failed += 1 if record.errors else 0
                rows += [
                    PlanRow(
                        run=run,
                        link=record.link,
                        actor_type=actor_type,
                        erp_key=record.link.erp_key,
                        record_name=names.get(record.link.pk, "")[:300],
                        field_key=entry.field_key,
                        crm_field=entry.crm_field,
                        direction=entry.direction,
                        old=entry.old,
                        new=entry.new,
                        reason=entry.reason,
                        reason_said=entry.reason_said,
                    )
                    for entry in record.logs
                    if entry.outcome == LogOutcome.WRITTEN
                ]
        with transaction.atomic():
            PlanRow.objects.bulk_create(rows)
            parts.checkpoint(part, len(batch), len(rows), failed, batch)
        counts.done += len(batch)
        counts.changed += len(rows)
        counts.failed += failed
    return counts


# Approving


def planned_links(run: SyncRun) -> list[tuple[int, str]]:
    """The links (id, actor type) the run that carries out a plan syncs: those with a field in the plan."""
    rows = PlanRow.objects.filter(run_id=run.plan_id).order_by()  # no ordering column in the DISTINCT
    return list(rows.values_list("link_id", "actor_type").distinct())


def too_old(plan: SyncRun) -> bool:
    made = plan.finished_at or plan.created_at
    return made < timezone.now() - timedelta(hours=settings.ERPSYNC_PLAN_MAX_AGE_HOURS)


def approval_refusal(plan: SyncRun) -> str:
    """Why the plan cannot be approved now, or ''."""
    if SyncRun.objects.filter(plan=plan).exists():
        return _("This plan was approved already; make a new plan to run it again.")
    if plan.status not in READY_STATUSES:
        return _("The plan is not ready yet.")
    if too_old(plan):
        return _("This plan was made more than %(hours)s hours ago; make it again.") % {
            "hours": settings.ERPSYNC_PLAN_MAX_AGE_HOURS
        }
    if not plan.plan_rows.exists():
        return _("The plan has nothing to change: there is nothing to run.")
    return ""


def approve(plan: SyncRun, user: object = None) -> SyncRun:
    """Start the planned Sync all or Resync limited to the plan's links and fields; refused as ``approval_refusal``
    says, and as any bulk run is."""
    with transaction.atomic():
        plan = SyncRun.objects.select_for_update().select_related("connection__connector").get(pk=plan.pk)
        refusal = approval_refusal(plan) or sync_refusal(plan.connection)
        if refusal:
            raise SyncRefused(refusal)
        total = plan.plan_rows.order_by().values("link_id").distinct().count()
        return new_bulk_run(
            plan.connection,
            plan.planned_kind,
            user=user,
            total=total,
            keep_non_blank=plan.keep_non_blank,
            plan=plan,
        )


def discard(plan: SyncRun) -> None:
    """Throw a plan away (its rows with it); refused while it is computed or once it was approved."""
    if plan.status not in (*READY_STATUSES, RunStatus.FAILED):
        raise SyncRefused(_("The plan is still being made; discard it when it is ready."))
    if SyncRun.objects.filter(plan=plan).exists():
        raise AlreadyRunning(_("This plan was approved already; it is kept with the run that carried it out."))
    plan.delete()


# Carrying out an approved plan


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _same(row: PlanRow, entry: SyncLogEntry) -> bool:
    """The rule decides now what the plan said: same side, same old and new value."""
    return (row.direction, _canonical(row.old), _canonical(row.new)) == (
        entry.direction,
        _canonical(entry.old),
        _canonical(entry.new),
    )


def _drop_write(record: _Record, key: str) -> None:
    """Leave the field ``key`` out of what is written for the record (its baseline stays as it was)."""
    record.erp_values.pop(key, None)
    record.pending_erp_baseline.pop(key, None)
    for column, write in list(record.crm_writes.items()):
        if write[0] == key:
            del record.crm_writes[column]


def _changed_entry(record: _Record, row: PlanRow, entry: SyncLogEntry | None) -> SyncLogEntry:
    """The sync log's word for a planned field not written because its decision changed since the plan."""
    message = said.msg(CHANGED_SINCE)
    reason = said.render(message)
    return SyncLogEntry(
        link=record.link,
        connection_id=record.link.connection_id,
        actor_type=record.link.actor_type,
        erp_key=record.link.erp_key,
        field_key=row.field_key,
        crm_field=row.crm_field,
        direction=entry.direction if entry else row.direction,
        old=entry.old if entry else row.old,
        new=entry.new if entry else row.new,
        outcome=LogOutcome.SKIPPED,
        reason=reason,
        reason_said=said.kept(reason, message),
    )


def _keep_to_plan(record: _Record, rows: dict[str, PlanRow], written: list[tuple[PlanRow, SyncLogEntry]]) -> None:
    """Limit the record's decisions to the plan: planned fields decided as planned are written (and paired with
    their log entry in ``written``), the others are left out; a planned field decided otherwise now is logged as
    changed since the plan."""
    logs: list[SyncLogEntry] = []
    decided: set[str] = set()
    for entry in record.logs:
        row = rows.get(entry.field_key)
        if entry.outcome == LogOutcome.ERROR:
            logs.append(entry)  # a field that cannot be synced fails the record, as in any sync
            if row is not None:
                decided.add(row.field_key)
                row.outcome, row.now_direction, row.now_old, row.now_new = PlanOutcome.FAILED, "", None, None
            continue
        if row is None:
            _drop_write(record, entry.field_key)  # not in the plan: this run does not touch it
            continue
        decided.add(row.field_key)
        if entry.outcome == LogOutcome.WRITTEN and _same(row, entry):
            logs.append(entry)
            written.append((row, entry))
            continue
        _drop_write(record, entry.field_key)
        row.outcome = PlanOutcome.CHANGED
        row.now_direction = entry.direction
        row.now_old, row.now_new = entry.old, entry.new
        logs.append(_changed_entry(record, row, entry))
    for key, row in rows.items():
        if key not in decided:  # the two sides agree now (or the field is no longer mapped)
            row.outcome, row.now_direction, row.now_old, row.now_new = PlanOutcome.CHANGED, "", None, None
            logs.append(_changed_entry(record, row, None))
    record.logs = logs


def execute_part(part: SyncChunk) -> Counts:
    """A part of the run that carries out a plan: its links past the checkpoint, each field decided again and
    written only as planned. A link whose own Sync now is running is left to it (its fields are not written by
    this run: they stay as planned, not done)."""
    run = part.run
    connection = run.connection
    wanted = [link_id for link_id in part.link_ids if link_id > part.position]
    busy = set(
        SyncRun.objects.filter(kind=RunKind.SYNC_NOW, status=RunStatus.RUNNING, link_id__in=wanted).values_list(
            "link_id", flat=True
        )
    )
    links = list(Link.objects.filter(pk__in=[i for i in wanted if i not in busy]).order_by("pk"))
    counts = Counts(done=len(wanted) - len(links))
    if counts.done:
        parts.checkpoint(part, counts.done, 0, 0, [])
    if not links:
        return counts
    planned: dict[int, dict[str, PlanRow]] = defaultdict(dict)
    for row in PlanRow.objects.filter(run_id=run.plan_id, link_id__in=[link.pk for link in links]):
        planned[row.link_id][row.field_key] = row
    actor_type = part.actor_type
    mapped, enabled, client, crm_first, sync_filter = _setup(connection, actor_type)
    resync = run.kind == RunKind.RESYNC
    for start in range(0, len(links), BATCH):
        batch = links[start : start + BATCH]
        touched: list[PlanRow] = []
        written: list[tuple[PlanRow, SyncLogEntry]] = []
        if not enabled or not mapped:
            # Nothing of this type syncs any more: no planned field is written.
            for link in batch:
                for row in planned[link.pk].values():
                    row.outcome, row.now_direction, row.now_old, row.now_new = PlanOutcome.CHANGED, "", None, None
                    touched.append(row)
            with transaction.atomic():
                update_rows(PlanRow, touched, ["outcome", "now_direction", "now_old", "now_new"])
                parts.checkpoint(part, len(batch), 0, 0, batch)
            counts.done += len(batch)
            continue
        records, missing, outside = _decide(
            connection, actor_type, batch, mapped, client, crm_first, resync, run.keep_non_blank, sync_filter
        )
        for record in records:
            _keep_to_plan(record, planned[record.link.pk], written)
            touched += planned[record.link.pk].values()
        for link in missing:
            for row in planned[link.pk].values():
                row.outcome = PlanOutcome.FAILED
                touched.append(row)
        for link in outside:
            for row in planned[link.pk].values():
                row.outcome, row.now_direction, row.now_old, row.now_new = PlanOutcome.CHANGED, "", None, None
                touched.append(row)
        _write_erp(connection, actor_type, records, client)
        _finish_batch(run, connection, records, missing, counts, _recorder(part, touched, written), outside)
    return counts


def _recorder(part: SyncChunk, touched: list[PlanRow], written: list[tuple[PlanRow, SyncLogEntry]]) -> Recorder:
    """What the engine calls in the batch's transaction, once each written field's log entry says whether it was
    written: the plan's rows keep what became of them, the part its checkpoint."""

    def record_batch(done: int, changed: int, failed: int, batch: list[Link]) -> None:
        for row, entry in written:
            row.outcome = PlanOutcome.WRITTEN if entry.outcome == LogOutcome.WRITTEN else PlanOutcome.FAILED
        update_rows(PlanRow, touched, ["outcome", "now_direction", "now_old", "now_new"])
        parts.checkpoint(part, done, changed, failed, batch)

    return record_batch


# What the plan's page shows


def totals(plan: SyncRun) -> dict[str, int]:
    """Records and fields of the plan, by side; once carried out, the fields written, failed and changed since."""
    rows = plan.plan_rows.all()
    found = rows.aggregate(
        fields=Count("pk"),
        records=Count("link_id", distinct=True),
        to_crm=Count("pk", filter=Q(direction=Direction.ERP_TO_CRM)),
        to_erp=Count("pk", filter=Q(direction=Direction.CRM_TO_ERP)),
        written=Count("pk", filter=Q(outcome=PlanOutcome.WRITTEN)),
        failed=Count("pk", filter=Q(outcome=PlanOutcome.FAILED)),
        changed=Count("pk", filter=Q(outcome=PlanOutcome.CHANGED)),
    )
    return {key: value or 0 for key, value in found.items()}


def execution_of(plan: SyncRun) -> SyncRun | None:
    return SyncRun.objects.filter(plan=plan).first()


def phase(plan: SyncRun) -> str:
    """computing, failed, ready, old (too old to approve), running (approved, being carried out) or finished."""
    if plan.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        return "computing"
    if plan.status == RunStatus.FAILED:
        return "failed"
    run = execution_of(plan)
    if run is None:
        return "old" if too_old(plan) else "ready"
    return "running" if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) else "finished"
