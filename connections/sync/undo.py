"""Undo a run: put back, on the side the run wrote, the values it overwrote, where nobody has changed them since.

Each field the run wrote (a sync log entry "written", CRM → ERP or ERP → CRM) is read again on the side it was
written to. If it still holds what the run wrote (``new``), the value from before the run (``old``) is written
back: the CRM under a row lock, the ERP through SaveActors with the actor's ``last_modified``, as a sync writes.
A field that holds something else was changed since: it is left alone and logged with both values. A field that
already holds the value from before the run is left alone too.

The undo is a run of its own (kind "undo", ``SyncRun.undoes``) with its own sync log. Its scope is the whole run,
one record (link) or one field of one record. Each scope of a run is undone once (a database constraint on the
run and the scope); once the whole run is undone no part of it can be, and once a record is undone none of its
fields can be. A whole-run undo after a record or field undo puts back the rest (the fields already put back are
found holding their old values). An undo that failed outright frees its scope.

Baselines are left as the run left them: the next sync sees each value put back as a change on that side and
copies it to the other side where the field's direction allows (docs/sync-semantics.md, "Undo a run").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from connectors import protocol as p

from .. import said
from ..choices import UNDOABLE_RUN_KINDS, Direction, LogOutcome, RunKind, RunStatus
from ..jobs import AlreadyRunning, Counts, SyncRefused, checkpoint, performs, send, sync_refusal
from ..mapping import CRM_MODEL
from ..models import ErpConnection, ErpField, Link, ListMapping, SyncLogEntry, SyncRun
from .values import FieldConverter, FieldError

BATCH = p.MAX_KEYS_PER_CALL
WRITES = (Direction.ERP_TO_CRM, Direction.CRM_TO_ERP)


class UndoRefused(SyncRefused):
    """This undo may not be started; the message says why."""


def scope_of(link: Link | None, field_key: str = "") -> str:
    if link is None:
        return ""
    return f"link:{link.pk}:{field_key}" if field_key else f"link:{link.pk}"


def written(run: SyncRun, link: Link | None = None, field_key: str = "") -> QuerySet[SyncLogEntry]:
    """The log entries of ``run`` an undo of this scope puts back: the fields it wrote, on either side."""
    entries = run.log.filter(outcome=LogOutcome.WRITTEN, direction__in=WRITES, link__isnull=False).exclude(field_key="")
    if link is not None:
        entries = entries.filter(link=link)
    if field_key:
        entries = entries.filter(field_key=field_key)
    return entries


@dataclass
class Plan:
    """What an undo of a scope would put back, for its confirmation: fields and records on each side."""

    crm_fields: int = 0
    crm_records: int = 0
    erp_fields: int = 0
    erp_records: int = 0

    @property
    def empty(self) -> bool:
        return not (self.crm_fields or self.erp_fields)


def plan(run: SyncRun, link: Link | None = None, field_key: str = "") -> Plan:
    counts = (
        written(run, link, field_key)
        .values("direction")
        .annotate(fields=Count("pk"), records=Count("link", distinct=True))
    )
    result = Plan()
    for row in counts:
        if row["direction"] == Direction.ERP_TO_CRM:
            result.crm_fields, result.crm_records = row["fields"], row["records"]
        else:
            result.erp_fields, result.erp_records = row["fields"], row["records"]
    return result


def undone_by(run: SyncRun, link: Link | None = None, field_key: str = "") -> SyncRun | None:
    """The undo that already covers this scope of ``run`` (the whole run, the record, or the field), if any."""
    scopes = Q(undo_scope="")
    if link is not None:
        scopes |= Q(undo_scope=scope_of(link))
        if field_key:
            scopes |= Q(undo_scope=scope_of(link, field_key))
    return run.undos.exclude(status=RunStatus.FAILED).filter(scopes).order_by("pk").first()


def refusal(run: SyncRun, link: Link | None = None, field_key: str = "") -> str:
    """Why this scope of ``run`` may not be undone, or ''."""
    if run.kind not in UNDOABLE_RUN_KINDS:
        return _("A run of the kind “%(kind)s” cannot be undone.") % {"kind": run.get_kind_display()}
    if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        return _("Run #%(run)s has not finished yet; it can be undone once it has.") % {"run": run.pk}
    earlier = undone_by(run, link, field_key)
    if earlier is not None:
        if earlier.undo_scope == "":
            return _("Run #%(run)s was already undone by run #%(undo)s.") % {"run": run.pk, "undo": earlier.pk}
        return _("This was already undone by run #%(undo)s.") % {"undo": earlier.pk}
    if plan(run, link, field_key).empty:
        return _("Nothing to undo: run #%(run)s wrote no field here.") % {"run": run.pk}
    return sync_refusal(run.connection)


def queue_undo(run: SyncRun, user: Any = None, link: Link | None = None, field_key: str = "") -> SyncRun:
    """Queue the undo of ``run`` (or of one record, or one field of one record, of it). Refused, with a message
    saying why, when that was undone already or cannot be; one undo or bulk run of a connection at a time."""
    who = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        # The undone run's row lock: two undos of the same run are decided one after the other.
        run = SyncRun.objects.select_for_update().select_related("connection").get(pk=run.pk)
        why = refusal(run, link, field_key)
        if why:
            raise UndoRefused(why)
        records = written(run, link, field_key).values("link").distinct().count()
        try:
            with transaction.atomic():
                undo = SyncRun.objects.create(
                    connection=run.connection,
                    kind=RunKind.UNDO,
                    total=records,
                    created_by=who,
                    undoes=run,
                    undo_link=link,
                    undo_field=field_key,
                    undo_scope=scope_of(link, field_key),
                )
        except IntegrityError:
            raise AlreadyRunning(
                _("%(name)s is already running an import, a bulk sync or an undo; try again when it has finished.")
                % {"name": run.connection}
            ) from None
        transaction.on_commit(lambda: send([undo.pk]))
    return undo


@dataclass
class _Record:
    link: Link
    entries: list[SyncLogEntry]
    actor: p.Actor | None = None
    erp_values: dict[str, Any] = field(default_factory=dict)
    logs: list[SyncLogEntry] = field(default_factory=list)
    failed: bool = False


@performs(RunKind.UNDO)
def perform_undo(run: SyncRun) -> Counts:
    """Put back the fields of the undone run in scope, a batch of records at a time, each batch committed with
    a checkpoint (the last link done), so that a run taken back after its worker stopped goes on after it."""
    undone = run.undoes
    if undone is None:
        raise SyncRefused(_("The run to undo was deleted."))
    entries = written(undone, run.undo_link, run.undo_field)
    if run.undo_scope and run.undo_link is None:
        raise SyncRefused(_("The record's link was removed before the undo ran."))
    after = run.checkpoint.get("link", 0)
    by_link: dict[int, list[SyncLogEntry]] = defaultdict(list)
    for entry in entries.filter(link_id__gt=after).order_by("link_id", "pk"):
        by_link[entry.link_id].append(entry)  # type: ignore[index]
    links = Link.objects.select_related("company", "contact", "project").in_bulk(list(by_link))
    connection = run.connection
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    counts = Counts()
    ids = sorted(by_link)
    for start in range(0, len(ids), BATCH):
        chosen = ids[start : start + BATCH]
        # A link removed since the run counts as done: its record is no longer synced by this connection.
        batch = [_Record(links[i], by_link[i]) for i in chosen if i in links]
        by_type: dict[str, list[_Record]] = defaultdict(list)
        for record in batch:
            by_type[record.link.actor_type].append(record)
        converters = {
            actor_type: _converters(connection, actor_type, {e.field_key for r in records for e in r.entries})
            for actor_type, records in by_type.items()
        }
        for actor_type, records in by_type.items():
            _undo_erp(run, connection, actor_type, records, converters[actor_type], client)
        _finish(run, batch, converters, counts, done=len(chosen), last=chosen[-1])
    return counts


def _converters(connection: ErpConnection, actor_type: str, keys: set[str]) -> dict[str, FieldConverter | None]:
    """A converter per ERP field the entries name, or None for a field no longer mapped to a CRM field."""
    lists: dict[str, dict[str, int | None]] = {}
    for row in ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key__in=keys):
        lists.setdefault(row.field_key, {})[row.erp_key] = row.crm_item_id
    model = CRM_MODEL[actor_type]
    fields = ErpField.objects.filter(connection=connection, actor_type=actor_type, key__in=keys)
    found: dict[str, FieldConverter | None] = dict.fromkeys(keys)
    for erp_field in fields:
        if erp_field.crm_field:
            found[erp_field.key] = FieldConverter(model, erp_field, lists.get(erp_field.key, {}))
    return found


def _log(
    run: SyncRun, record: _Record, entry: SyncLogEntry, outcome: str, old: Any, new: Any, message: said.Message
) -> None:
    text = said.render(message)
    record.logs.append(
        SyncLogEntry(
            run=run,
            link=record.link,
            connection_id=run.connection_id,
            actor_type=entry.actor_type,
            erp_key=record.link.erp_key,
            field_key=entry.field_key,
            crm_field=entry.crm_field,
            direction=entry.direction,
            old=old,
            new=new,
            outcome=outcome,
            reason=text,
            reason_said=said.kept(text, message),
        )
    )
    if outcome == LogOutcome.ERROR:
        record.failed = True


def _judge(run: SyncRun, record: _Record, entry: SyncLogEntry, current: Any, converter: FieldConverter | None) -> bool:
    """Whether ``entry`` is to be put back, given the value the side now holds; logs it if not."""
    undone = run.undoes_id
    if converter is None:
        _log(run, record, entry, LogOutcome.ERROR, entry.new, entry.old, said.msg(N_("the field is no longer mapped")))
        return False
    if current == entry.new:
        return True
    if current == entry.old:
        message = said.msg(N_("already holds the value from before run #%(run)s"), run=undone)
        _log(run, record, entry, LogOutcome.SKIPPED, current, current, message)
        return False
    message = said.msg(
        N_("changed since run #%(run)s wrote %(written)s: it now holds %(now)s; not reverted"),
        run=undone,
        written=_text(entry.new),
        now=_text(current),
    )
    _log(run, record, entry, LogOutcome.SKIPPED, entry.new, current, message)
    return False


def _text(value: Any) -> str:
    return "—" if value in (None, "") else str(value)


def _reverted(run: SyncRun) -> said.Message:
    return said.msg(N_("undo of run #%(run)s"), run=run.undoes_id)


def _undo_erp(
    run: SyncRun,
    connection: ErpConnection,
    actor_type: str,
    records: list[_Record],
    converters: dict[str, FieldConverter | None],
    client: Any,
) -> None:
    """Read the ERP fields the run wrote, and put back through SaveActors those that still hold its values."""
    wanted = [r for r in records if any(e.direction == Direction.CRM_TO_ERP for e in r.entries)]
    if not wanted:
        return
    keys = sorted({e.field_key for r in wanted for e in r.entries if e.direction == Direction.CRM_TO_ERP})
    data = client.get_actors(p.ActorType(actor_type), [r.link.erp_key for r in wanted], keys)
    actors = {actor.key: actor for actor in data.actors}
    pending = []
    for record in wanted:
        record.actor = actors.get(record.link.erp_key)
        for entry in record.entries:
            if entry.direction != Direction.CRM_TO_ERP:
                continue
            if record.actor is None:
                gone = said.msg(N_("The ERP actor no longer exists; nothing was written."))
                _log(run, record, entry, LogOutcome.ERROR, entry.new, entry.old, gone)
                continue
            converter = converters.get(entry.field_key)
            try:
                current = converter.from_erp(record.actor.values.get(entry.field_key)) if converter else None
                if not _judge(run, record, entry, current, converter):
                    continue
                assert converter is not None
                record.erp_values[entry.field_key] = converter.to_erp_value(entry.old)
            except FieldError as error:
                _log(run, record, entry, LogOutcome.ERROR, entry.new, entry.old, error.said)
                continue
            _log(run, record, entry, LogOutcome.WRITTEN, entry.new, entry.old, _reverted(run))
        if record.erp_values:
            pending.append(record)
    if not pending:
        return
    results = client.save_actors(
        [
            p.Actor(
                actor_type=p.ActorType(actor_type),
                key=r.link.erp_key,
                last_modified=r.actor.last_modified if r.actor else None,
                values=r.erp_values,
            )
            for r in pending
        ]
    )
    for record, result in zip(pending, results, strict=True):
        if result.ok:
            continue
        detail = result.error
        why = (
            said.texts(detail.user_explanation, detail.technical_explanation or detail.error_code.value)
            if detail
            else said.texts({}, "?")
        )
        refused = said.msg(N_("%(erp)s refused the change: %(why)s"), erp=connection.name, why=why)
        for entry in record.logs:
            if entry.direction == Direction.CRM_TO_ERP and entry.outcome == LogOutcome.WRITTEN:
                entry.outcome, entry.reason = LogOutcome.ERROR, said.render(refused)
                entry.reason_said = said.kept(entry.reason, refused)
                record.failed = True


def _undo_crm(
    run: SyncRun, records: list[_Record], converters_by_type: dict[str, dict[str, FieldConverter | None]], now: Any
) -> None:
    """Under row locks: put back the CRM fields the run wrote that still hold its values."""
    by_model: dict[Any, list[_Record]] = defaultdict(list)
    for record in records:
        if any(e.direction == Direction.ERP_TO_CRM for e in record.entries):
            by_model[type(record.link.crm_record)].append(record)
    for model, group in by_model.items():
        locked = model._default_manager.select_for_update().in_bulk([r.link.crm_record.pk for r in group])
        for record in group:
            current_record = locked[record.link.crm_record.pk]
            converters = converters_by_type[record.link.actor_type]
            columns = set()
            for entry in record.entries:
                if entry.direction != Direction.ERP_TO_CRM:
                    continue
                converter = converters.get(entry.field_key)
                try:
                    current = converter.from_crm(current_record) if converter else None
                    if not _judge(run, record, entry, current, converter):
                        continue
                    assert converter is not None
                    setattr(current_record, converter.column, converter.to_crm_value(entry.old))
                except FieldError as error:
                    _log(run, record, entry, LogOutcome.ERROR, entry.new, entry.old, error.said)
                    continue
                columns.add(converter.column)
                _log(run, record, entry, LogOutcome.WRITTEN, entry.new, entry.old, _reverted(run))
            if columns:
                current_record.updated_at = now
                current_record.save(update_fields=sorted(columns | {"updated_at"}))


def _finish(
    run: SyncRun,
    batch: list[_Record],
    converters: dict[str, dict[str, FieldConverter | None]],
    counts: Counts,
    *,
    done: int,
    last: int,
) -> None:
    """One transaction: the CRM writes, the undo's log and its progress, past the batch's last link."""
    now = timezone.now()
    with transaction.atomic():
        _undo_crm(run, batch, converters, now)
        entries = [entry for record in batch for entry in record.logs]
        SyncLogEntry.objects.bulk_create(entries)
        changed = sum(1 for entry in entries if entry.outcome == LogOutcome.WRITTEN)
        failed = sum(1 for record in batch if record.failed)
        checkpoint(run, done=done, changed=changed, failed=failed, position={**run.checkpoint, "link": last})
    counts.done += done
    counts.changed += changed
    counts.failed += failed
