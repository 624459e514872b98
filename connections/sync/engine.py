"""Sync a set of links: read both sides in bulk, apply the rule per field, write both sides in batches.

ERP writes go first (SaveActors, batched); then one database transaction applies the CRM writes, the new
baselines and the sync log. A field's baseline moves only when that field was written or found to agree,
so a failed write is retried by the next sync, and a record never ends up half-recorded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors import protocol as p

from ..choices import Direction, LinkStatus, LogOutcome
from ..mapping import CRM_MODEL
from ..models import ErpConnection, Link, SyncLogEntry, SyncRun, SyncSettings
from .merge import MISSING, decide, decide_resync
from .values import FieldConverter, FieldError, converters_for, mapped_fields

BATCH = p.MAX_KEYS_PER_CALL


@dataclass
class Counts:
    done: int = 0
    changed: int = 0
    failed: int = 0


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
    errors: list[str] = field(default_factory=list)


def sync_links(run: SyncRun, links: list[Link], *, resync: bool = False, keep_non_blank: bool = False) -> Counts:
    """Sync ``links`` (all of ``run.connection``) through the documented rule; returns what happened."""
    connection = run.connection
    counts = Counts()
    by_type: dict[str, list[Link]] = defaultdict(list)
    for link in links:
        by_type[link.actor_type].append(link)
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    crm_first = SyncSettings.load().crm_priority < connection.priority
    enabled = set(connection.actor_types.filter(sync_enabled=True).values_list("actor_type", flat=True))
    for actor_type, group in by_type.items():
        mapped = mapped_fields(connection, actor_type)
        for start in range(0, len(group), BATCH):
            batch = group[start : start + BATCH]
            if actor_type not in enabled or not mapped:
                # Nothing of this type syncs: the links are left as they are.
                SyncRun.objects.filter(pk=run.pk).update(done=F("done") + len(batch))
                counts.done += len(batch)
                continue
            records, missing = _decide(connection, actor_type, batch, mapped, client, crm_first, resync, keep_non_blank)
            _write_erp(connection, actor_type, records, client)
            _finish_batch(run, connection, records, missing, counts)
    return counts


def _decide(connection: ErpConnection, actor_type: str, links: list[Link], mapped: list[Any], client: Any,
            crm_first: bool, resync: bool, keep_non_blank: bool) -> tuple[list[_Record], list[Link]]:  # fmt: skip
    model = CRM_MODEL[actor_type]
    converters = converters_for(connection, actor_type, mapped)
    data = client.get_actors(p.ActorType(actor_type), [link.erp_key for link in links], [f.key for f in mapped])
    actors = {actor.key: actor for actor in data.actors}
    attribute = Link.attribute_for(model)
    crm_ids = [getattr(link, f"{attribute}_id") for link in links]
    crm = model._default_manager.in_bulk(crm_ids)
    records, missing = [], []
    for link in links:
        actor = actors.get(link.erp_key)
        if actor is None:
            missing.append(link)
            continue
        record = _Record(link, actor, baseline=dict(link.baseline))
        crm_record = crm[getattr(link, f"{attribute}_id")]
        for erp_field in mapped:
            _decide_field(
                record, crm_record, erp_field, converters[erp_field.key], connection, crm_first, resync, keep_non_blank
            )
        records.append(record)
    return records, missing


def _decide_field(record: _Record, crm_record: Any, erp_field: Any, converter: FieldConverter, connection: ErpConnection,
                  crm_first: bool, resync: bool, keep_non_blank: bool) -> None:  # fmt: skip
    key = erp_field.key

    def log(outcome: str, direction: str = "", old: Any = None, new: Any = None, reason: str = "") -> None:
        record.logs.append(SyncLogEntry(
            link=record.link, connection=connection, actor_type=record.link.actor_type, erp_key=record.link.erp_key,
            field_key=key, crm_field=erp_field.crm_field, direction=direction, old=old, new=new, outcome=outcome,
            reason=reason))  # fmt: skip

    try:
        crm_value = converter.from_crm(crm_record)
        erp_value = converter.from_erp(record.actor.values.get(key))
        if resync:
            decision = decide_resync(crm_value, erp_value, erp_field.direction, keep_non_blank)
        else:
            decision = decide(crm_value, erp_value, record.baseline.get(key, MISSING), erp_field.direction, crm_first,
                              connection.name)  # fmt: skip
        if decision.action == "to_crm":
            record.crm_writes[converter.column] = (
                key,
                converter.to_crm_value(decision.value),
                decision.value,
                getattr(crm_record, converter.column),
            )
            log(LogOutcome.WRITTEN, Direction.ERP_TO_CRM, crm_value, decision.value, decision.reason)
        elif decision.action == "to_erp":
            record.erp_values[key] = converter.to_erp_value(decision.value)
            record.pending_erp_baseline[key] = decision.value
            log(LogOutcome.WRITTEN, Direction.CRM_TO_ERP, erp_value, decision.value, decision.reason)
        elif decision.action == "agree":
            record.baseline[key] = decision.value
        elif decision.action == "skip":
            log(LogOutcome.SKIPPED, reason=decision.reason)
    except FieldError as error:
        record.errors.append(f"{erp_field.label}: {error}")
        log(LogOutcome.ERROR, reason=str(error))


def _write_erp(connection: ErpConnection, actor_type: str, records: list[_Record], client: Any) -> None:
    """SaveActors for every record with ERP changes; a refused actor fails alone."""
    pending = [r for r in records if r.erp_values]
    if not pending:
        return
    actors = [p.Actor(actor_type=p.ActorType(actor_type), key=r.link.erp_key, last_modified=r.actor.last_modified,
                      values=r.erp_values) for r in pending]  # fmt: skip
    results = client.save_actors(actors)
    for record, result in zip(pending, results, strict=True):
        if result.ok and result.actor is not None:
            record.baseline.update(record.pending_erp_baseline)
            record.actor = result.actor
        else:
            detail = result.error
            why = (
                (detail.user_explanation.get("en") or detail.technical_explanation or detail.error_code.value)
                if detail
                else "?"
            )
            record.errors.append(_("%(erp)s refused the change: %(why)s") % {"erp": connection.name, "why": why})
            for entry in record.logs:
                if entry.direction == Direction.CRM_TO_ERP and entry.outcome == LogOutcome.WRITTEN:
                    entry.outcome, entry.reason = LogOutcome.ERROR, f"{entry.reason}; {why}"


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
                    why = _("changed in the CRM during the sync; it syncs next time")
                    record.errors.append(why)
                    for entry in record.logs:
                        if entry.field_key == erp_key and entry.direction == Direction.ERP_TO_CRM:
                            entry.outcome, entry.reason = LogOutcome.ERROR, why
                    continue
                setattr(current, column, value)
                columns.add(column)
                record.baseline[erp_key] = canonical
            current.updated_at = now
            objects.append(current)
        model._default_manager.bulk_update(objects, sorted(columns))


def _finish_batch(
    run: SyncRun, connection: ErpConnection, records: list[_Record], missing: list[Link], counts: Counts
) -> None:
    """One transaction: CRM writes, baselines, link states, the sync log and the run's progress."""
    now = timezone.now()
    with transaction.atomic():
        _write_crm(records, now)
        links = []
        new_errors = []
        for record in records:
            link = record.link
            previous_error = link.last_error
            link.baseline = record.baseline
            link.erp_last_modified = record.actor.last_modified
            link.last_synced_at = now
            link.status = LinkStatus.FAILED if record.errors else LinkStatus.OK
            link.last_error = "\n".join(record.errors)
            if link.last_error and link.last_error != previous_error:
                new_errors.append(link.pk)
            links.append(link)
        for link in missing:
            if link.status != LinkStatus.ERP_MISSING:
                new_errors.append(link.pk)
            link.status, link.last_error = (
                LinkStatus.ERP_MISSING,
                _("The ERP actor no longer exists; nothing was written."),
            )
            links.append(link)
        Link.objects.bulk_update(links, ["baseline", "erp_last_modified", "last_synced_at", "status", "last_error"])
        # A dismissed failure stays dismissed while it is the same failure; a new one needs a new look.
        Link.objects.filter(pk__in=new_errors).update(dismissed_at=None, dismissed_reason="")
        entries = [entry for record in records for entry in record.logs]
        entries += [SyncLogEntry(link=link, connection=connection, actor_type=link.actor_type, erp_key=link.erp_key,
                                 outcome=LogOutcome.ERROR, reason=link.last_error) for link in missing]  # fmt: skip
        for entry in entries:
            entry.run = run
        SyncLogEntry.objects.bulk_create(entries)
        failed = sum(1 for record in records if record.errors) + len(missing)
        changed = sum(1 for record in records if not record.errors and (record.crm_writes or record.erp_values))
        done = len(records) + len(missing) if records or missing else 0
        SyncRun.objects.filter(pk=run.pk).update(
            done=F("done") + done, changed=F("changed") + changed, failed=F("failed") + failed
        )
    counts.done += done
    counts.changed += changed
    counts.failed += failed
