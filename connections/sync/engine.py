"""Sync a set of links: read both sides in bulk, apply the rule per field, write both sides in batches.

ERP writes go first (SaveActors, batched); then one database transaction applies the CRM writes, the new
baselines and the sync log. A field's baseline moves only when that field was written or found to agree,
so a failed write is retried by the next sync, and a record never ends up half-recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from connectors import protocol as p

from .. import said
from ..bulk import update_rows
from ..choices import MARKED_STATUSES, Direction, DriftState, LinkStatus, LogOutcome
from ..filters import SyncFilter
from ..jobs import Counts, checkpoint
from ..mapping import CRM_MODEL
from ..models import ErpConnection, Link, SyncLogEntry, SyncRun, SyncSettings
from . import held as held_conflicts
from .merge import MISSING, decide, decide_resync
from .values import FieldConverter, FieldError, converters_for, mapped_fields

BATCH = p.MAX_KEYS_PER_CALL


@dataclass
class _Record:
    """What the rule decided for one link, before anything is written."""

    link: Link
    actor: p.Actor
    # column → (ERP field key, value to set, canonical value, the value the rule saw)
    crm_writes: dict[str, tuple[str, Any, Any, Any]] = field(default_factory=dict)
    erp_values: dict[str, Any] = field(default_factory=dict)  # ERP key → value
    baseline: dict[str, Any] = field(default_factory=dict)
    pending_erp_baseline: dict[str, Any] = field(default_factory=dict)  # applied only if SaveActors succeeds
    logs: list[SyncLogEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # in the worker's language, as ``Link.last_error`` keeps them
    errors_said: list[said.Message] = field(default_factory=list)  # the same, for each reader's language
    held: held_conflicts.Held = field(default_factory=held_conflicts.Held)  # its conflicts held for review

    def fail(self, message: said.Message) -> None:
        self.errors.append(said.render(message))
        self.errors_said.append(message)


def not_yet_synced(run: SyncRun, links: list[Link]) -> list[Link]:
    """The links a run has still to sync: after its worker stopped, those past its checkpoint (each actor type's
    links are synced in the order of their ids, and the checkpoint keeps the last one committed)."""
    synced = run.checkpoint.get("links", {})
    return [link for link in links if link.pk > synced.get(link.actor_type, 0)]


# Records a committed batch: done, fields changed, failed, and the batch's links (of one actor type).
Recorder = Callable[[int, int, int, list[Link]], None]


def sync_links(
    run: SyncRun,
    links: list[Link],
    *,
    resync: bool = False,
    keep_non_blank: bool = False,
    record: Recorder | None = None,
) -> Counts:
    """Sync ``links`` (all of ``run.connection``) through the documented rule; returns what happened.

    Each batch is committed with a checkpoint: the run's (``not_yet_synced`` goes on from it), or what ``record``
    keeps (a part of a bulk run keeps its own). A run or part taken back after its worker stopped goes on with
    the batches left and never writes a committed batch again."""

    def run_checkpoint(done: int, changed: int, failed: int, batch: list[Link]) -> None:
        checkpoint(run, done=done, changed=changed, failed=failed, position=_past(run, batch) if batch else None)

    record = record or run_checkpoint
    connection = run.connection
    counts = Counts()
    by_type: dict[str, list[Link]] = defaultdict(list)
    for link in sorted(links, key=lambda link: link.pk):
        by_type[link.actor_type].append(link)
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    crm_first = SyncSettings.load().crm_priority < connection.priority
    enabled = set(connection.actor_types.filter(sync_enabled=True).values_list("actor_type", flat=True))
    for actor_type, group in by_type.items():
        mapped = mapped_fields(connection, actor_type)
        sync_filter = SyncFilter.of(connection, actor_type)
        for start in range(0, len(group), BATCH):
            batch = group[start : start + BATCH]
            if actor_type not in enabled or not mapped:
                # Nothing of this type syncs: the links are left as they are.
                with transaction.atomic():
                    record(len(batch), 0, 0, batch)
                counts.done += len(batch)
                continue
            records, missing, outside = _decide(
                connection, actor_type, batch, mapped, client, crm_first, resync, keep_non_blank, sync_filter
            )
            _write_erp(connection, actor_type, records, client)
            _finish_batch(run, connection, records, missing, counts, record, outside)
    return counts


def _decide(
    connection: ErpConnection,
    actor_type: str,
    links: list[Link],
    mapped: list[Any],
    client: Any,
    crm_first: bool,
    resync: bool,
    keep_non_blank: bool,
    sync_filter: SyncFilter,
) -> tuple[list[_Record], list[Link], list[Link]]:
    """What the rule decides for each link; also the links whose ERP actor is gone, and those outside the sync
    filter (each with ``outside_filter`` set to the condition it did not meet), which are left alone."""
    model = CRM_MODEL[actor_type]
    converters = converters_for(connection, actor_type, mapped)
    keys = [f.key for f in mapped]
    keys += [key for key in sync_filter.erp_keys if key not in keys]
    data = client.get_actors(p.ActorType(actor_type), [link.erp_key for link in links], keys)
    actors = {actor.key: actor for actor in data.actors}
    attribute = Link.attribute_for(model)
    crm_ids = [getattr(link, f"{attribute}_id") for link in links]
    crm = model._default_manager.in_bulk(crm_ids)
    records, missing, outside = [], [], []
    held = held_conflicts.open_for(links)
    for link in links:
        actor = actors.get(link.erp_key)
        if actor is None:
            missing.append(link)
            continue
        crm_record = crm[getattr(link, f"{attribute}_id")]
        setattr(link, attribute, crm_record)  # what ``link.crm_record`` gives from now on, without a query each
        link.outside_filter = sync_filter.outside(crm_record, actor.values) if sync_filter else None
        if link.outside_filter is not None:
            outside.append(link)
            continue
        record = _Record(link, actor, baseline=dict(link.baseline), held=held[link.pk])
        for erp_field in mapped:
            _decide_field(
                record, crm_record, erp_field, converters[erp_field.key], connection, crm_first, resync, keep_non_blank
            )
        records.append(record)
    return records, missing, outside


def _decide_field(
    record: _Record,
    crm_record: Any,
    erp_field: Any,
    converter: FieldConverter,
    connection: ErpConnection,
    crm_first: bool,
    resync: bool,
    keep_non_blank: bool,
) -> None:
    key = erp_field.key

    def log(
        outcome: str,
        direction: str = "",
        old: Any = None,
        new: Any = None,
        reason: str = "",
        reason_said: said.Message | None = None,
    ) -> None:
        record.logs.append(
            SyncLogEntry(
                link=record.link,
                connection=connection,
                actor_type=record.link.actor_type,
                erp_key=record.link.erp_key,
                field_key=key,
                crm_field=erp_field.crm_field,
                direction=direction,
                old=old,
                new=new,
                outcome=outcome,
                reason=reason,
                reason_said=said.kept(reason, reason_said),
            )
        )

    try:
        crm_value = converter.from_crm(crm_record)
        erp_value = converter.from_erp(record.actor.values.get(key))
        crm_at, erp_at = getattr(crm_record, "updated_at", None), record.actor.last_modified
        if key in record.held.rows:  # held for review: left alone until resolved, then the chosen value
            decisions = held_conflicts.decisions(record.held, key, crm_value, erp_value, crm_at, erp_at)
        elif resync:
            decisions = [decide_resync(crm_value, erp_value, erp_field.direction, keep_non_blank)]
        else:
            base = record.baseline.get(key, MISSING)
            decisions = [
                decide(
                    crm_value,
                    erp_value,
                    base,
                    erp_field.direction,
                    crm_first,
                    connection.name,
                    erp_field.hold_conflicts,
                )
            ]
            if decisions[0].action == "hold":
                held_conflicts.hold(record.held, record.link, key, crm_value, erp_value, base, crm_at, erp_at)
    except FieldError as error:
        _field_failed(record, erp_field, log, error)
        return
    for decision in decisions:
        _apply(record, crm_record, key, converter, decision, crm_value, erp_value, log, erp_field)


def _field_failed(record: _Record, erp_field: Any, log: Callable[..., None], error: FieldError) -> None:
    record.fail(
        said.msg(N_("%(field)s: %(error)s"), field=said.texts(erp_field.labels, erp_field.label), error=error.said)
    )
    log(LogOutcome.ERROR, reason=str(error), reason_said=error.said)


def _apply(
    record: _Record,
    crm_record: Any,
    key: str,
    converter: FieldConverter,
    decision: Any,
    crm_value: Any,
    erp_value: Any,
    log: Callable[..., None],
    erp_field: Any,
) -> None:
    try:
        if decision.action == "to_crm":
            record.crm_writes[converter.column] = (
                key,
                converter.to_crm_value(decision.value),
                decision.value,
                getattr(crm_record, converter.column),
            )
            log(
                LogOutcome.WRITTEN,
                Direction.ERP_TO_CRM,
                crm_value,
                decision.value,
                decision.reason,
                decision.reason_said,
            )
        elif decision.action == "to_erp":
            record.erp_values[key] = converter.to_erp_value(decision.value)
            record.pending_erp_baseline[key] = decision.value
            log(
                LogOutcome.WRITTEN,
                Direction.CRM_TO_ERP,
                erp_value,
                decision.value,
                decision.reason,
                decision.reason_said,
            )
        elif decision.action == "agree":
            record.baseline[key] = decision.value
        elif decision.action in ("skip", "hold"):
            log(LogOutcome.SKIPPED, reason=decision.reason, reason_said=decision.reason_said)
    except FieldError as error:
        _field_failed(record, erp_field, log, error)


def _write_erp(connection: ErpConnection, actor_type: str, records: list[_Record], client: Any) -> None:
    """SaveActors for every record with ERP changes; a refused actor fails alone."""
    pending = [r for r in records if r.erp_values]
    if not pending:
        return
    actors = [
        p.Actor(
            actor_type=p.ActorType(actor_type),
            key=r.link.erp_key,
            last_modified=r.actor.last_modified,
            values=r.erp_values,
        )
        for r in pending
    ]
    results = client.save_actors(actors)
    for record, result in zip(pending, results, strict=True):
        if result.ok and result.actor is not None:
            record.baseline.update(record.pending_erp_baseline)
            record.actor = result.actor
        else:
            detail = result.error
            # The connector's explanation in every language it gave, for each reader; else its technical words.
            why_said = (
                said.texts(detail.user_explanation, detail.technical_explanation or detail.error_code.value)
                if detail
                else said.texts({}, "?")
            )
            why = said.render(why_said, "en")  # the sync log's text, as before: the connector's English
            record.fail(said.msg(N_("%(erp)s refused the change: %(why)s"), erp=connection.name, why=why_said))
            for entry in record.logs:
                if entry.direction == Direction.CRM_TO_ERP and entry.outcome == LogOutcome.WRITTEN:
                    before = entry.reason_said["said"] if entry.reason_said else said.texts({}, entry.reason)
                    entry.outcome, entry.reason = LogOutcome.ERROR, f"{entry.reason}; {why}"
                    entry.reason_said = said.kept(entry.reason, said.lines([before, why_said], "; "))


def _write_crm(records: list[_Record], now: Any) -> None:
    """Write CRM changes under row locks; a field a user changed since it was read is left for the next sync."""
    by_model: dict[Any, list[_Record]] = defaultdict(list)
    for record in records:
        if record.crm_writes:
            by_model[type(record.link.crm_record)].append(record)
    for model, group in by_model.items():
        locked = model._default_manager.select_for_update().in_bulk([r.link.crm_record.pk for r in group])
        columns: set[str] = {"updated_at"}
        objects = []
        for record in group:
            current = locked[record.link.crm_record.pk]
            for column, (erp_key, value, canonical, seen) in record.crm_writes.items():
                if getattr(current, column) != seen:
                    message = said.msg(N_("changed in the CRM during the sync; it syncs next time"))
                    why = said.render(message)
                    record.fail(message)
                    for entry in record.logs:
                        if entry.field_key == erp_key and entry.direction == Direction.ERP_TO_CRM:
                            entry.outcome, entry.reason = LogOutcome.ERROR, why
                            entry.reason_said = said.kept(why, message)
                    continue
                setattr(current, column, value)
                columns.add(column)
                record.baseline[erp_key] = canonical
            current.updated_at = now
            objects.append(current)
        update_rows(model, objects, sorted(columns))


def _finish_batch(
    run: SyncRun,
    connection: ErpConnection,
    records: list[_Record],
    missing: list[Link],
    counts: Counts,
    record_batch: Recorder,
    outside: list[Link] | None = None,
) -> None:
    """One transaction: CRM writes, baselines, link states, the sync log and the run's progress. Links outside the
    sync filter only keep why (their values, baselines and status stay as they were)."""
    now = timezone.now()
    outside = outside or []
    with transaction.atomic():
        _write_crm(records, now)
        held_conflicts.store(records, now)
        for link in outside:
            link.drift, link.drift_checked_at = DriftState.OUTSIDE, now
        update_rows(Link, outside, ["outside_filter", "drift", "drift_checked_at"])
        links = []
        new_errors = []
        repeated: set[int] = set()  # links that met the same failure again: counted, not logged again
        for record in records:
            link = record.link
            previous = (link.status, link.last_error)
            link.baseline = record.baseline
            link.erp_last_modified = record.actor.last_modified
            link.last_synced_at = now
            link.status = LinkStatus.FAILED if record.errors else LinkStatus.OK
            # What reconciliation would find now: the rule has just brought both sides into step, or failed.
            link.drift, link.drift_checked_at = DriftState.FAILED if record.errors else DriftState.IN_STEP, now
            link.last_error = "\n".join(record.errors)
            link.last_error_said = said.kept(link.last_error, said.lines(record.errors_said))
            link.merged_into = ""
            if link.last_error and (link.status, link.last_error) == previous:
                repeated.add(link.pk)
                link.repeats += 1
                record.logs = [entry for entry in record.logs if entry.outcome != LogOutcome.ERROR]
            else:
                link.repeats = 0
                if link.last_error:
                    new_errors.append(link.pk)
            links.append(link)
        for link in missing:
            link.drift, link.drift_checked_at = DriftState.MISSING, now
            if link.status in MARKED_STATUSES:
                # The change feed said what became of the actor: the link keeps that, and nothing more is logged.
                repeated.add(link.pk)
            elif link.status == LinkStatus.ERP_MISSING:
                repeated.add(link.pk)
                link.repeats += 1
            else:
                new_errors.append(link.pk)
                link.status, link.repeats = LinkStatus.ERP_MISSING, 0
                gone = said.msg(N_("The ERP actor no longer exists; nothing was written."))
                link.last_error = said.render(gone)
                link.last_error_said = said.kept(link.last_error, gone)
            links.append(link)
        update_rows(
            Link,
            links,
            [
                "baseline",
                "erp_last_modified",
                "last_synced_at",
                "status",
                "last_error",
                "last_error_said",
                "merged_into",
                "repeats",
                "outside_filter",
                "drift",
                "drift_checked_at",
            ],
        )
        # A dismissed failure stays dismissed while it is the same failure; a new one needs a new look.
        Link.objects.filter(pk__in=new_errors).update(dismissed_at=None, dismissed_reason="")
        entries = [entry for record in records for entry in record.logs]
        entries += [
            SyncLogEntry(
                link=link,
                connection=connection,
                actor_type=link.actor_type,
                erp_key=link.erp_key,
                outcome=LogOutcome.ERROR,
                reason=link.last_error,
            )
            for link in missing
            if link.pk not in repeated
        ]
        for entry in entries:
            entry.run = run
        SyncLogEntry.objects.bulk_create(entries)
        failed = sum(1 for record in records if record.errors) + sum(
            1 for link in missing if link.status not in MARKED_STATUSES
        )
        # Fields changed, on either side: a record that failed on one field still had the others written.
        changed = sum(1 for entry in entries if entry.outcome == LogOutcome.WRITTEN)
        done = len(records) + len(missing) + len(outside) if records or missing or outside else 0
        record_batch(done, changed, failed, [record.link for record in records] + missing + outside)
    counts.done += done
    counts.changed += changed
    counts.failed += failed


def _past(run: SyncRun, batch: list[Link]) -> dict[str, Any]:
    """The run's checkpoint moved past ``batch`` (links of one actor type, in the order of their ids)."""
    last = max(link.pk for link in batch)
    synced = {**run.checkpoint.get("links", {}), batch[0].actor_type: last}
    return {**run.checkpoint, "links": synced}
