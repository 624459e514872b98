"""Import from ERP: read ERP actors, find what the CRM already has, let an admin review the plan, then import.

Two jobs, both SyncRun rows of the connection (so only one bulk job of a connection runs at a time):

* the **preview** reads the actors (the selected keys, or the whole change feed page by page), matches each
  against the CRM (``matching``) and writes one ImportRow per actor. Persons and projects bring their
  company's actor along when it is not linked yet. Nothing in the CRM changes.
* the **import** works through the ticked rows in chunks: companies first, then what belongs to them. A chunk
  is one transaction: new records, links with their baselines, updated records, one sync log entry per
  record and the rows' outcomes. A row that cannot be imported fails alone, with its reason, and can be
  retried. An ERP actor that is already linked is never linked twice (the database refuses it), so running
  the same import again creates nothing new.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from connectors import protocol as p
from core.iterators import read_ahead

from . import display, filters, jobs, matching, shown
from .bulk import insert_rows, update_rows
from .choices import Direction, ImportAction, ImportOutcome, LinkStatus, LogOutcome, MatchKind, RunKind
from .jobs import Counts, SyncRefused, sync_refusal
from .mapping import CRM_MODEL
from .models import ErpConnection, ErpImport, ImportRow, Link, SyncChunk, SyncLogEntry, SyncRun, SyncSettings
from .sync import parts
from .sync.values import FieldConverter, FieldError, ValueRefused, converters_for, mapped_fields

log = logging.getLogger(__name__)
CHUNK = 1000
# ERP keys in one query's IN list: within the parameter limit of every backend (SQLite's was 999 before 3.32).
KEYS_PER_QUERY = 500
# What a person's or project's company is, in the ERP: the actor types a parent may have.
HAS_COMPANY = ("Person", "Project")
Progress = Callable[[int, int], None]  # (done, total or 0 when not known yet)


class ImportRefused(Exception):
    """The import cannot start now; the message says why and what to do."""


# Starting


def eligible_actor_types(connection: ErpConnection) -> list[str]:
    """Actor types that can be imported: sync on, at least one mapped field and one searchable field."""
    enabled = connection.actor_types.filter(sync_enabled=True).values_list("actor_type", flat=True)
    types = []
    for actor_type in p.ActorType:
        if actor_type.value not in enabled or actor_type.value not in CRM_MODEL:
            continue
        fields = connection.erp_fields.filter(actor_type=actor_type.value, missing_in_erp=False)
        if fields.filter(searchable=True).exists() and mapped_fields(connection, actor_type.value):
            types.append(actor_type.value)
    return types


def automatic_sync_refusal(connection: ErpConnection) -> str:
    """Why an import from ``connection`` cannot run now because automatic sync may run meanwhile (on in Sync
    settings and not paused on the connection), or ''."""
    if not connection.automatic_sync or not SyncSettings.load().automatic_sync:
        return ""
    return _(
        "Automatic sync is on for %(name)s. Pause it on the connection's page (or turn it off under Sync settings) "
        "before importing, so that no sync runs between the preview and the import; resume it afterwards."
    ) % {"name": connection}


def start_preview(
    connection: ErpConnection,
    actor_type: str,
    *,
    keys: list[str] | None = None,
    everything: bool = False,
    description: str = "",
    user: Any = None,
    language: str = "en",
    send: bool = True,
) -> ErpImport:
    """Queue the preview of an import. Refused while the connection cannot run jobs or runs another bulk job.
    With ``send=False`` no task is sent: the caller runs the job itself (the management command)."""
    refusal = sync_refusal(connection)
    if refusal:
        raise ImportRefused(refusal)
    if actor_type not in eligible_actor_types(connection):
        raise ImportRefused(
            _("%(type)s cannot be imported from %(name)s: its sync is off, or no field is mapped or searchable.")
            % {"type": shown.actor_type_name(connection, actor_type), "name": connection}
        )
    keys = list(dict.fromkeys(k for k in keys or [] if k))
    if not everything and not keys:
        raise ImportRefused(_("Select at least one row to import, or import every actor of the type."))
    who = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        erp_import = ErpImport.objects.create(
            connection=connection,
            actor_type=actor_type,
            everything=everything,
            keys=[] if everything else keys,
            description=description[:500],
            language=language,
            created_by=who,
        )
        erp_import.preview_run = jobs.new_bulk_run(
            connection, RunKind.IMPORT_PREVIEW, user=who, total=0 if everything else len(keys), send_task=send
        )
        erp_import.save(update_fields=["preview_run"])
    return erp_import


def prepare_again(erp_import: ErpImport, user: Any, language: str) -> ErpImport:
    """A new preview of the same selection: after the mapping was corrected, or the CRM changed."""
    return start_preview(
        erp_import.connection,
        erp_import.actor_type,
        keys=erp_import.keys,
        everything=erp_import.everything,
        description=erp_import.description,
        user=user,
        language=language,
    )


def summary(erp_import: ErpImport) -> dict[str, Any]:
    """Counts of the plan by what was found, and of the result by outcome."""
    rows = erp_import.rows.all()
    kinds = dict(rows.values_list("kind").annotate(n=Count("pk")).order_by())
    outcomes = dict(rows.values_list("outcome").annotate(n=Count("pk")).order_by())
    return {
        "kinds": {kind: kinds.get(kind, 0) for kind in MatchKind.values},
        "outcomes": {outcome: outcomes.get(outcome, 0) for outcome in ImportOutcome.values},
        "undecided": undecided(erp_import).count(),
        "to_import": to_import(erp_import).count(),
    }


def undecided(erp_import: ErpImport) -> models.QuerySet[ImportRow]:
    return erp_import.rows.filter(included=True, action="", kind=MatchKind.AMBIGUOUS)


def to_import(erp_import: ErpImport) -> models.QuerySet[ImportRow]:
    return erp_import.rows.filter(
        included=True, action__in=[ImportAction.CREATE, ImportAction.LINK], outcome=ImportOutcome.PENDING
    )


def decide(
    row: ImportRow, *, included: bool | None = None, action: str | None = None, target: int | None = None
) -> None:
    """An admin's decision on one row of a plan that is ready; a decision that cannot work is refused."""
    if row.erp_import.phase != "ready":
        raise ImportRefused(_("This plan can no longer be changed: it has been imported."))
    if row.kind in (MatchKind.LINKED, MatchKind.BLOCKED):
        raise ImportRefused(_("This row cannot be imported: %(reason)s") % {"reason": row.reason})
    if included is not None:
        row.included = included
    if action is not None:
        if action not in ("", *ImportAction.values):
            raise ImportRefused(_("Choose create, link or skip."))
        if action == ImportAction.LINK:
            offered = {c["id"]: c for c in row.candidates}
            if target not in offered:
                raise ImportRefused(_("Choose one of the records offered for this row."))
            if offered[target]["linked_to"]:
                raise ImportRefused(
                    _("%(name)s is already linked to %(actor)s.")
                    % {"name": offered[target]["name"], "actor": offered[target]["linked_to"]}
                )
            other = (
                row.erp_import.rows.filter(action=ImportAction.LINK, target_id=target, included=True, level=row.level)
                .exclude(pk=row.pk)
                .first()
            )
            if other is not None:
                raise ImportRefused(
                    _("%(name)s is already chosen for %(actor)s in this import; a record links to one actor.")
                    % {"name": offered[target]["name"], "actor": f"{other.actor_type} {other.erp_key}"}
                )
            row.target_id = target
        else:
            row.target_id = None
        row.action = action
    row.save(update_fields=["included", "action", "target_id"])


def decide_all(erp_import: ErpImport, what: str, kind: str = "") -> int:
    """Bulk decisions on a ready plan: tick or untick every row of a kind, or decide every undecided row."""
    if erp_import.phase != "ready":
        raise ImportRefused(_("This plan can no longer be changed: it has been imported."))
    rows = erp_import.rows.exclude(kind__in=[MatchKind.LINKED, MatchKind.BLOCKED])
    if kind:
        rows = rows.filter(kind=kind)
    if what == "include":
        return rows.update(included=True)
    if what == "exclude":
        return rows.update(included=False)
    if what in (ImportAction.CREATE, ImportAction.SKIP):
        return undecided(erp_import).update(action=what)
    raise ImportRefused(_("Unknown bulk action."))


def start_import(erp_import: ErpImport, user: Any = None, *, retry: bool = False, send: bool = True) -> SyncRun:
    """Queue the import of a ready plan, or the retry of its failed rows."""
    connection = erp_import.connection
    refusal = sync_refusal(connection) or automatic_sync_refusal(connection)
    if refusal:
        raise ImportRefused(refusal)
    phase = erp_import.phase
    if retry:
        if phase != "finished":
            raise ImportRefused(_("Only a finished import can be retried."))
        # The failed rows, and those a run that failed as a whole (automatic sync was on) never reached.
        if not (erp_import.rows.filter(outcome=ImportOutcome.FAILED).exists() or to_import(erp_import).exists()):
            raise ImportRefused(_("No row failed: there is nothing to retry."))
    elif phase != "ready":
        raise ImportRefused(_("This plan has already been imported; prepare a new preview to import again."))
    else:
        waiting = undecided(erp_import).count()
        if waiting:
            raise ImportRefused(
                _("%(count)s rows need a decision: link each to a record, create a new record, or skip it.")
                % {"count": waiting}
            )
        if not to_import(erp_import).exists():
            raise ImportRefused(_("No row is ticked for import."))
    with transaction.atomic():
        if retry:
            erp_import.rows.filter(outcome=ImportOutcome.FAILED).update(outcome=ImportOutcome.PENDING, error="")
        run = jobs.new_bulk_run(
            connection, RunKind.IMPORT, user=user, total=to_import(erp_import).count(), send_task=send
        )
        erp_import.import_run = run
        erp_import.save(update_fields=["import_run"])
    return run


# The jobs


@jobs.performs(RunKind.IMPORT_PREVIEW, RunKind.IMPORT)
def perform(run: SyncRun, progress: Progress | None = None, *, inline: bool = False) -> Counts | None:
    """The body of an import's preview or import run. On a worker the import goes in parts that any worker takes
    (``import_part``), and the last part to end ends the run (None: the run goes on in its parts); ``inline``
    (the command) imports every row here."""
    erp_import = ErpImport.objects.select_related("connection__connector").get(Q(preview_run=run) | Q(import_run=run))
    with translation.override(erp_import.language):
        if run.kind == RunKind.IMPORT_PREVIEW:
            return prepare(erp_import, run, progress)
        refusal = automatic_sync_refusal(erp_import.connection)
        if refusal:
            raise SyncRefused(refusal)
        if inline:
            return execute(erp_import, run, progress)
        return _split(erp_import, run)


def _split(erp_import: ErpImport, run: SyncRun) -> Counts | None:
    """Split the rows to import into parts: companies (level 0) in the first stage, the persons and projects
    under them in the next, which starts once every company part has ended. Done in one transaction with the
    rows the plan skips, so a run taken back finds either nothing done or its parts made."""
    if run.chunks.exists():  # taken back after its parts were made: send those not sent yet
        parts.dispatch(run.pk)
        return None
    with transaction.atomic():
        _Importer(erp_import, run, None).skip_rows()
        made = parts.split(run, to_import(erp_import).values_list("pk", "actor_type", "level"))
    if not made:
        return Counts()
    parts.dispatch(run.pk)
    return None


@parts.performs_parts(RunKind.IMPORT)
def import_part(part: SyncChunk) -> Counts:
    """Import the part's rows past its checkpoint, a chunk per transaction, each committed with the part's
    position and counts."""
    erp_import = ErpImport.objects.select_related("connection__connector").get(import_run_id=part.run_id)
    with translation.override(erp_import.language):
        refusal = automatic_sync_refusal(erp_import.connection)
        if refusal:
            raise SyncRefused(refusal)
        return _Importer(erp_import, part.run, None, part=part).import_part()


@dataclass
class _Values:
    canonical: dict[str, Any] = field(default_factory=dict)  # ERP field key → canonical value: the baseline
    columns: dict[str, Any] = field(default_factory=dict)  # model column → the value to set
    matchable: dict[str, Any] = field(default_factory=dict)  # CRM attribute → canonical value: what rules read
    problems: list[str] = field(default_factory=list)  # what stops the row from being imported
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (ERP field key, CRM field, why) per field

    def refusals(self, labels: dict[str, str]) -> str:
        """The refused values, for people: "Website: Enter a valid URL." per field."""
        return " ".join(f"{labels.get(key, key)}: {why}" for key, _crm_field, why in self.refused)


@dataclass
class _Type:
    """What planning and importing need to know about one actor type of the connection."""

    actor_type: str
    model: type[models.Model]
    converters: dict[str, FieldConverter]
    index: matching.Index | None = None
    sync_filter: filters.SyncFilter = field(default_factory=lambda: filters.SyncFilter({}, [], {}))

    @classmethod
    def of(cls, connection: ErpConnection, actor_type: str) -> _Type:
        model = CRM_MODEL[actor_type]
        converters = converters_for(connection, actor_type, mapped_fields(connection, actor_type))
        return cls(actor_type, model, converters, sync_filter=filters.SyncFilter.of(connection, actor_type))

    @property
    def field_keys(self) -> list[str]:
        """The ERP fields to read: the mapped ones and those the sync filter's conditions name."""
        return list(dict.fromkeys([*self.converters, *self.sync_filter.erp_keys]))

    @property
    def attribute(self) -> str:
        return Link.attribute_for(self.model)

    @cached_property
    def labels(self) -> dict[str, str]:
        """ERP field key → the field's label in the ERP."""
        return {key: converter.erp.label for key, converter in self.converters.items()}

    def build_index(self, connection: ErpConnection, since: Any = None) -> matching.Index:
        rules = matching.usable_rules(self.model, (c.attribute for c in self.converters.values()))
        records = self.model._default_manager.all()
        links = Link.objects.filter(connection=connection, **{f"{self.attribute}__isnull": False})
        if since is not None:
            # Records added since the preview, less those already linked (an earlier part of this import made
            # most of them): a linked record is never a twin, and is left out in the query, not in Python.
            records = records.filter(created_at__gte=since).exclude(pk__in=links.values(f"{self.attribute}_id"))
            linked: dict[Any, str] = {}
        else:
            linked = {
                record_id: f"{actor_type} {key}"
                for record_id, actor_type, key in links.values_list(f"{self.attribute}_id", "actor_type", "erp_key")
            }
        self.index = matching.Index(self.model, rules, records, linked)
        return self.index

    def convert(self, values: dict[str, Any]) -> _Values:
        """One actor's ERP values converted once, for matching, for the baseline and for the CRM record."""
        converted = _Values()
        for key, converter in self.converters.items():
            try:
                canonical = converter.from_erp(values.get(key))
                column = converter.to_crm_value(canonical)
            except ValueRefused as error:
                # Not stored, and an error of its field; the rest of the record is imported (a required field
                # left without a value stops it, as missing_required says).
                converted.refused.append((key, converter.erp.crm_field, str(error)))
                continue
            except FieldError as error:
                converted.problems.append(f"{converter.erp.label}: {error}")
                converted.refused.append((key, converter.erp.crm_field, str(error)))
                continue
            converted.canonical[key] = canonical
            converted.columns[converter.column] = column
            converted.matchable[converter.attribute] = canonical
        return converted

    def missing_required(self, converted: dict[str, Any]) -> list[str]:
        """Labels of the CRM fields a new record must have that these values leave empty."""
        return [str(f.verbose_name) for f in self.required if not converted.get(f.attname)]

    @cached_property
    def required(self) -> list[Any]:
        return [f for f in self.model._meta.concrete_fields if isinstance(f, models.CharField) and not f.blank]


def _pages(
    erp_import: ErpImport, client: Any, actor_type: str, keys: list[str] | None, field_keys: list[str]
) -> Iterator[tuple[list[p.Actor], list[str]]]:
    """The actors to plan, a page at a time, with the keys the ERP no longer has."""
    if keys is None:
        for page in client.changes(p.ActorType(actor_type), field_keys=field_keys, page_size=p.MAX_PAGE_SIZE):
            yield list(page.actors), []
        return
    for start in range(0, len(keys), p.MAX_KEYS_PER_CALL):
        data = client.get_actors(p.ActorType(actor_type), keys[start : start + p.MAX_KEYS_PER_CALL], field_keys)
        yield list(data.actors), list(data.missing_keys)


class _Planner:
    """Writes the plan of one import: a row per actor, and the rows of companies brought along."""

    def __init__(self, erp_import: ErpImport, run: SyncRun, progress: Progress | None) -> None:
        self.erp_import = erp_import
        self.connection = erp_import.connection
        self.run = run
        self.progress = progress
        self.client = self.connection.connector.client().connection(
            str(self.connection.guid), self.connection.config_values
        )
        self.types: dict[str, _Type] = {}
        self.done = 0
        # Identifying keys of the rows planned as new: a later ERP actor that looks the same is shown to the admin.
        self.planned: dict[tuple[str, str], str] = {}
        self.parents: dict[tuple[str, str], list[str]] = defaultdict(list)  # unlinked parent → child keys

    def type(self, actor_type: str) -> _Type:
        if actor_type not in self.types:
            planned = _Type.of(self.connection, actor_type)
            planned.build_index(self.connection)
            self.types[actor_type] = planned
        return self.types[actor_type]

    def run_plan(self) -> Counts:
        erp_import = self.erp_import
        erp_import.rows.all().delete()  # a preview that is run again starts from the beginning
        main = self.type(erp_import.actor_type)
        keys = None if erp_import.everything else list(erp_import.keys)
        total = 0 if keys is None else len(keys)
        level = 1 if main.actor_type in HAS_COMPANY else 0
        # The next page is read from the connector while this one is matched and saved.
        pages = read_ahead(_pages(erp_import, self.client, main.actor_type, keys, main.field_keys))
        for actors, missing in pages:
            linked = self.linked(main.actor_type, [a.key for a in actors if a.key])
            companies = self.parent_companies(actors) if level else {}
            rows = [self.plan(main, actor, level, linked, companies) for actor in actors]
            rows += [self.missing_row(main, key) for key in missing]
            self.save(rows, total)
        self.bring_parents()
        self.mark_shared_targets()
        erp_import.prepared_at = timezone.now()
        erp_import.save(update_fields=["prepared_at"])
        counts = Counter(erp_import.rows.values_list("kind", flat=True))
        return Counts(done=self.done, changed=0, failed=counts.get(MatchKind.BLOCKED, 0))

    def save(self, rows: list[ImportRow], total: int) -> None:
        seen: set[tuple[str, str]] = set()
        unique = []
        for row in rows:  # a feed may repeat an actor that changed while it was read
            if (row.actor_type, row.erp_key) not in seen:
                seen.add((row.actor_type, row.erp_key))
                unique.append(row)
        existing = set(
            self.erp_import.rows.filter(erp_key__in=[r.erp_key for r in unique]).values_list("actor_type", "erp_key")
        )
        unique = [row for row in unique if (row.actor_type, row.erp_key) not in existing]
        insert_rows(ImportRow, unique)
        self.done += len(rows)
        SyncRun.objects.filter(pk=self.run.pk).update(done=self.done, total=max(total, self.done))
        # A preview taken back after its worker stopped starts again: its plan is only rows of its own.
        jobs.keep(self.run)
        if self.progress:
            self.progress(self.done, total)

    def linked(self, actor_type: str, keys: list[str]) -> dict[str, str]:
        planned = self.type(actor_type)
        index = planned.index
        assert index is not None
        found = Link.objects.filter(connection=self.connection, actor_type=actor_type, erp_key__in=keys)
        return {
            key: index.names.get(pk, str(pk)) for key, pk in found.values_list("erp_key", f"{planned.attribute}_id")
        }

    def parent_companies(self, actors: list[p.Actor]) -> dict[tuple[str, str], int]:
        """The CRM companies of these actors' parents that are linked already."""
        parents = [
            (actor.parent_actor_type.value, actor.parent_key)
            for actor in actors
            if actor.parent_actor_type and actor.parent_key
        ]
        return _companies(self.connection, parents)

    def plan(
        self, planned: _Type, actor: p.Actor, level: int, linked: dict[str, str], companies: dict[tuple[str, str], int]
    ) -> ImportRow:
        assert actor.key is not None and planned.index is not None
        values = {key: actor.values.get(key) for key in planned.converters}
        converted_values = planned.convert(values)
        converted, problems = converted_values.matchable, converted_values.problems
        row = ImportRow(
            erp_import=self.erp_import,
            level=level,
            actor_type=planned.actor_type,
            erp_key=actor.key,
            name=(matching.label(planned.model, converted) or actor.key)[:200],
            parent_actor_type=actor.parent_actor_type.value if actor.parent_actor_type else "",
            parent_key=actor.parent_key or "",
            erp_last_modified=actor.last_modified,
            values=values,
        )
        if actor.key in linked:
            row.kind, row.action = MatchKind.LINKED, ImportAction.SKIP
            row.reason = _("Linked to %(record)s") % {"record": linked[actor.key]}
            return row
        outside = planned.sync_filter.outside_erp(actor.values)
        if outside is not None:
            return self.outside_filter(row, planned, outside)
        if planned.actor_type in HAS_COMPANY:
            company_problem = self.company_of(row, converted, companies)
            if company_problem:
                problems.append(company_problem)
        keys = planned.index.keys_of(converted)
        found = matching.verdict(planned.index.candidates(converted, keys=keys))
        row.kind, row.action, row.target_id, row.score, row.reason = (
            found.kind,
            found.action,
            found.target,
            found.score,
            found.reason,
        )
        row.candidates = [c.as_json() for c in found.candidates]
        if found.kind == MatchKind.MATCH and found.target is not None and planned.sync_filter.crm:
            target = planned.model._default_manager.filter(pk=found.target).first()
            outside = planned.sync_filter.outside_crm(target) if target is not None else None
            if outside is not None:
                row.candidates = []
                return self.outside_filter(row, planned, outside)
        if found.kind == MatchKind.NEW:
            required = planned.missing_required(converted)
            if required:
                problems.append(_("The CRM needs a value for %(fields)s.") % {"fields": ", ".join(required)})
            else:
                twin = self.twin_of(planned, row, keys)
                if twin:
                    row.kind, row.action, row.reason = MatchKind.AMBIGUOUS, "", twin
        if problems:
            row.kind, row.action, row.target_id = MatchKind.BLOCKED, ImportAction.SKIP, None
            refused = [f"{planned.labels[key]}: {why}" for key, _field, why in converted_values.refused]
            row.reason = " ".join(dict.fromkeys([*refused, *problems]))
        return row

    def outside_filter(self, row: ImportRow, planned: _Type, condition: dict[str, Any]) -> ImportRow:
        """A row whose actor (or the CRM record it matches) is outside the sync filter: not imported."""
        row.kind, row.action, row.target_id = MatchKind.BLOCKED, ImportAction.SKIP, None
        row.reason = _("Outside the sync filter: %(condition)s.") % {
            "condition": filters.describe_condition(self.connection, planned.actor_type, condition)
        }
        return row

    def company_of(self, row: ImportRow, converted: dict[str, Any], companies: dict[tuple[str, str], int]) -> str:
        """Sets ``company_id`` for matching when the parent is linked; otherwise notes the parent to bring along."""
        if not row.parent_key or not row.parent_actor_type:
            return _("The ERP gives no company for it, and the CRM needs one.")
        company_id = companies.get((row.parent_actor_type, row.parent_key))
        if company_id is not None:
            converted["company_id"] = company_id
        else:
            self.parents[(row.parent_actor_type, row.parent_key)].append(row.erp_key)
        return ""

    def twin_of(self, planned: _Type, row: ImportRow, keys: dict[str, str]) -> str:
        """Why a new row looks like one planned before it (the ERP has both), or ''. Only identifiers and name +
        city count: ERP customers often share an invoice mailbox or a domain."""
        assert planned.index is not None
        for rule in planned.index.rules:
            key = keys.get(rule.name)
            if not key or not (rule.identifies or rule.name == "name_city"):
                continue
            first = self.planned.setdefault((f"{planned.actor_type}:{rule.name}", key), row.erp_key)
            if first != row.erp_key:
                return _("The ERP has another actor in this import that looks the same: %(key)s (%(rule)s).") % {
                    "key": first,
                    "rule": rule.reason,
                }
        return ""

    def missing_row(self, planned: _Type, key: str) -> ImportRow:
        return ImportRow(
            erp_import=self.erp_import,
            level=0,
            actor_type=planned.actor_type,
            erp_key=key,
            name=key,
            kind=MatchKind.BLOCKED,
            action=ImportAction.SKIP,
            reason=_("The ERP no longer has this actor."),
        )

    def bring_parents(self) -> None:
        """The companies of persons and projects that are not linked yet are planned too, before them."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for parent_type, parent_key in self.parents:
            by_type[parent_type].append(parent_key)
        enabled = set(self.connection.actor_types.filter(sync_enabled=True).values_list("actor_type", flat=True))
        for parent_type, keys in by_type.items():
            if (
                parent_type not in enabled
                or CRM_MODEL.get(parent_type) is not CRM_MODEL["Customer"]
                or not mapped_fields(self.connection, parent_type)
            ):
                self.block_children(
                    parent_type,
                    keys,
                    _(
                        "Its company, %(actor)s, is not linked in the CRM, and %(type)s actors are not synced on this "
                        "connection, so it cannot be brought along."
                    ),
                )
                continue
            planned = self.type(parent_type)
            for actors, missing in _pages(self.erp_import, self.client, parent_type, keys, planned.field_keys):
                linked = self.linked(parent_type, [a.key for a in actors if a.key])
                self.save([self.plan(planned, actor, 0, linked, {}) for actor in actors], 0)
                self.block_children(parent_type, missing, _("Its company, %(actor)s, is no longer in the ERP."))

    def block_children(self, parent_type: str, keys: list[str], reason: str) -> None:
        for key in keys:
            children = self.parents.get((parent_type, key), [])
            self.erp_import.rows.filter(level=1, erp_key__in=children).update(
                kind=MatchKind.BLOCKED,
                action=ImportAction.SKIP,
                target_id=None,
                reason=reason % {"actor": f"{parent_type} {key}", "type": parent_type},
            )

    def mark_shared_targets(self) -> None:
        """Two actors whose best match is the same record cannot both be linked to it: a person decides."""
        shared = (
            self.erp_import.rows.filter(kind=MatchKind.MATCH)
            .values("level", "target_id")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        for group in shared:
            rows = self.erp_import.rows.filter(kind=MatchKind.MATCH, level=group["level"], target_id=group["target_id"])
            keys = ", ".join(rows.values_list("erp_key", flat=True)[:10])
            rows.update(
                kind=MatchKind.AMBIGUOUS,
                action="",
                target_id=None,
                reason=_("The same CRM record is the best match of several actors in this import: %(keys)s.")
                % {"keys": keys},
            )


def prepare(erp_import: ErpImport, run: SyncRun, progress: Progress | None = None) -> Counts:
    return _Planner(erp_import, run, progress).run_plan()


# Importing


@dataclass
class _Chunk:
    """What one chunk will write, decided before anything is written."""

    new: list[tuple[ImportRow, models.Model, dict[str, Any]]] = field(default_factory=list)
    updated: list[tuple[ImportRow, models.Model, dict[str, Any], list[SyncLogEntry]]] = field(default_factory=list)
    skipped: list[ImportRow] = field(default_factory=list)
    failed: list[ImportRow] = field(default_factory=list)
    refused: list[SyncLogEntry] = field(default_factory=list)  # the errors of the values refused
    refusals: dict[str, str] = field(default_factory=dict)  # ERP key → what was refused, of the rows imported

    def fail(self, row: ImportRow, reason: str) -> None:
        row.outcome, row.error = ImportOutcome.FAILED, reason
        self.failed.append(row)


class _Importer:
    def __init__(
        self, erp_import: ErpImport, run: SyncRun, progress: Progress | None, *, part: SyncChunk | None = None
    ) -> None:
        self.erp_import = erp_import
        self.connection = erp_import.connection
        self.run = run
        self.progress = progress
        self.part = part  # the part of the run being imported; None: every row, here
        self.types: dict[str, _Type] = {}
        self.counts = Counts()

    @cached_property
    def total(self) -> int:
        return to_import(self.erp_import).count()

    def type(self, actor_type: str) -> _Type:
        if actor_type not in self.types:
            planned = _Type.of(self.connection, actor_type)
            # Records created since the preview are matched again: a new record must not duplicate them.
            planned.build_index(self.connection, since=self.erp_import.prepared_at or timezone.now())
            self.types[actor_type] = planned
        return self.types[actor_type]

    def skip_rows(self) -> None:
        """The rows the plan skips are marked so, and the values the preview refused logged, in one transaction."""
        skipped = self.erp_import.rows.filter(outcome=ImportOutcome.PENDING, included=True, action=ImportAction.SKIP)
        with transaction.atomic():
            self.log_refused_values(skipped.filter(kind=MatchKind.BLOCKED))
            skipped.update(outcome=ImportOutcome.SKIPPED)

    def import_part(self) -> Counts:
        assert self.part is not None
        wanted = [row_id for row_id in self.part.link_ids if row_id > self.part.position]
        for start in range(0, len(wanted), CHUNK):
            ids = wanted[start : start + CHUNK]
            rows = list(to_import(self.erp_import).filter(pk__in=ids).order_by("pk"))
            gone = len(ids) - len(rows)  # no longer to import: counted as done, as a sync counts a removed link
            if gone:
                with transaction.atomic():
                    parts.checkpoint(self.part, gone, 0, 0, [])
                self.counts.done += gone
            if rows:
                self.import_rows(rows)
        return self.counts

    def run_import(self) -> Counts:
        self.skip_rows()
        # A run taken back after its worker stopped goes on with the rows not yet done: the rows' outcomes are its
        # checkpoint, committed with each chunk, as are the run's counts, which carry on.
        SyncRun.objects.filter(pk=self.run.pk).update(total=F("done") + self.total)
        for level in (0, 1):
            last = 0
            while True:
                chunk = list(to_import(self.erp_import).filter(level=level, pk__gt=last).order_by("pk")[:CHUNK])
                if not chunk:
                    break
                last = chunk[-1].pk
                for actor_type in dict.fromkeys(row.actor_type for row in chunk):
                    self.import_rows([row for row in chunk if row.actor_type == actor_type])
        return self.counts

    def log_refused_values(self, blocked: models.QuerySet[ImportRow]) -> None:
        """Each value the preview refused is an error of its field in this run's sync log, as the sync records it."""
        types: dict[str, _Type] = {}
        entries: list[SyncLogEntry] = []
        for row in blocked.iterator(chunk_size=CHUNK):
            if row.actor_type not in types:
                types[row.actor_type] = _Type.of(self.connection, row.actor_type)
            planned = types[row.actor_type]
            entries.extend(
                self.entry(planned, row, key, crm_field, None, None, reason, LogOutcome.ERROR)
                for key, crm_field, reason in planned.convert(row.values).refused
            )
            if len(entries) >= CHUNK:
                insert_rows(SyncLogEntry, entries)
                entries = []
        insert_rows(SyncLogEntry, entries)

    def import_rows(self, rows: list[ImportRow]) -> None:
        try:
            with transaction.atomic():
                self.write(self.decide(rows))
        except IntegrityError:
            # Someone linked one of these actors or records meanwhile: each row on its own, so only it fails.
            for row in rows:
                try:
                    with transaction.atomic():
                        self.write(self.decide([row]))
                except IntegrityError:
                    chunk = _Chunk()
                    chunk.fail(row, _("It was linked by someone else during the import; nothing was written."))
                    self.write(chunk)

    def decide(self, rows: list[ImportRow]) -> _Chunk:
        planned = self.type(rows[0].actor_type)
        model, attribute = planned.model, planned.attribute
        chunk = _Chunk()
        linked = dict(
            Link.objects.filter(
                connection=self.connection, actor_type=planned.actor_type, erp_key__in=[r.erp_key for r in rows]
            ).values_list("erp_key", f"{attribute}_id")
        )
        companies = self.companies(rows) if planned.actor_type in HAS_COMPANY else {}
        targets = model._default_manager.select_for_update().in_bulk(
            [r.target_id for r in rows if r.action == ImportAction.LINK and r.target_id]
        )
        taken = set(
            Link.objects.filter(connection=self.connection, **{f"{attribute}__in": list(targets)}).values_list(
                f"{attribute}_id", flat=True
            )
        )
        for row in rows:
            if row.erp_key in linked:
                row.outcome, row.error = ImportOutcome.SKIPPED, _("Already linked.")
                chunk.skipped.append(row)
                continue
            converted = planned.convert(row.values)
            # Each refused value is an error of its field in the sync log, and is never stored.
            chunk.refused.extend(
                self.entry(planned, row, key, crm_field, None, None, reason, LogOutcome.ERROR)
                for key, crm_field, reason in converted.refused
            )
            if converted.problems:
                chunk.fail(row, " ".join(converted.problems))
                continue
            if converted.refused:
                chunk.refusals[row.erp_key] = converted.refusals(planned.labels)
            company_id = None
            if planned.actor_type in HAS_COMPANY:
                company_id = companies.get((row.parent_actor_type, row.parent_key))
                if company_id is None:
                    chunk.fail(
                        row,
                        _("Its company, %(actor)s, is not in the CRM: import or link it, then retry.")
                        % {"actor": f"{row.parent_actor_type} {row.parent_key}"},
                    )
                    continue
                converted.matchable["company_id"] = converted.columns["company_id"] = company_id
            if row.action == ImportAction.CREATE:
                self.create(planned, row, converted, chunk)
            else:
                target = targets.get(row.target_id)
                if target is None:
                    chunk.fail(row, _("The CRM record chosen for it no longer exists."))
                elif target.pk in taken:
                    chunk.fail(row, _("%(record)s is already linked to another actor.") % {"record": target})
                else:
                    self.update(planned, row, converted, target, chunk)
        return chunk

    def companies(self, rows: list[ImportRow]) -> dict[tuple[str, str], int]:
        return _companies(self.connection, [(row.parent_actor_type, row.parent_key) for row in rows])

    def create(self, planned: _Type, row: ImportRow, converted: _Values, chunk: _Chunk) -> None:
        required = planned.missing_required(converted.matchable)
        if required:
            chunk.fail(row, _("The CRM needs a value for %(fields)s.") % {"fields": ", ".join(required)})
            return
        assert planned.index is not None
        recent = planned.index.candidates(converted.matchable) if planned.index.names else []
        twin = next((c for c in recent if c.score >= matching.MATCH_AT and not c.linked_to), None)
        if twin is not None:
            chunk.fail(
                row,
                _(
                    "%(record)s was added to the CRM after the preview and looks the same (%(why)s); "
                    "link it instead, or prepare a new preview."
                )
                % {"record": twin.name, "why": ", ".join(twin.reasons)},
            )
            return
        chunk.new.append((row, planned.model(**converted.columns), converted.canonical))

    def update(self, planned: _Type, row: ImportRow, converted: _Values, record: models.Model, chunk: _Chunk) -> None:
        """Link an existing record: ERP values win where the direction lets them, without blanking CRM values
        of two-way fields. The baseline is the ERP's value, so a CRM-owned value that differs is sent to the
        ERP by the next sync, as the direction says."""
        entries = []
        for key, converter in planned.converters.items():
            if key not in converted.canonical:
                continue  # refused: the CRM keeps its value, and the next sync tries again
            erp = converted.canonical[key]
            try:
                crm = converter.from_crm(record)
            except FieldError:
                crm = None
            direction = converter.erp.direction
            if crm == erp or direction == Direction.CRM_TO_ERP or (direction == Direction.BOTH and erp is None):
                continue
            setattr(record, converter.column, converted.columns[converter.column])
            entries.append(
                self.entry(
                    planned,
                    row,
                    key,
                    converter.erp.crm_field,
                    crm,
                    erp,
                    _("imported from %(erp)s") % {"erp": self.connection.name},
                )
            )
        chunk.updated.append((row, record, converted.canonical, entries))

    def entry(
        self,
        planned: _Type,
        row: ImportRow,
        key: str,
        crm_field: str,
        old: Any,
        new: Any,
        reason: str,
        outcome: str = LogOutcome.WRITTEN,
    ) -> SyncLogEntry:
        return SyncLogEntry(
            run=self.run,
            connection=self.connection,
            actor_type=planned.actor_type,
            erp_key=row.erp_key,
            field_key=key,
            crm_field=crm_field,
            direction=Direction.ERP_TO_CRM,
            old=old,
            new=new,
            outcome=outcome,
            reason=reason,
        )

    def write(self, chunk: _Chunk) -> None:
        """Everything the chunk decided, in the caller's transaction."""
        now = timezone.now()
        links, entries = [], []
        if chunk.new:
            model = type(chunk.new[0][1])
            insert_rows(model, [record for _row, record, _b in chunk.new])
            planned = self.type(chunk.new[0][0].actor_type)
            for row, record, baseline in chunk.new:
                links.append(self.link(planned, row, record, baseline, now, chunk.refusals.get(row.erp_key, "")))
                entries.append(
                    self.entry(planned, row, "", "", None, row.name, _("created in the CRM by Import from ERP"))
                )
                row.outcome = ImportOutcome.NEW
        if chunk.updated:
            planned = self.type(chunk.updated[0][0].actor_type)
            changed: list[models.Model] = []
            columns = {"updated_at"}
            for row, record, baseline, changes in chunk.updated:
                if changes:  # a record that already holds the ERP's values is linked, not rewritten
                    record.updated_at = now  # type: ignore[attr-defined]
                    changed.append(record)
                    columns.update(planned.converters[entry.field_key].column for entry in changes)
                links.append(self.link(planned, row, record, baseline, now, chunk.refusals.get(row.erp_key, "")))
                entries.extend(changes)
                row.outcome = ImportOutcome.UPDATED
            update_rows(planned.model, changed, sorted(columns))
        insert_rows(Link, links)
        by_key = {link.erp_key: link for link in links}
        for entry in entries + chunk.refused:
            entry.link = by_key.get(entry.erp_key)
        insert_rows(SyncLogEntry, entries + chunk.refused)
        # Outcomes, one UPDATE per (outcome, error): rows that fail usually fail for the same reason.
        by_outcome: dict[tuple[str, str], list[int]] = defaultdict(list)
        for row in (*[n[0] for n in chunk.new], *[u[0] for u in chunk.updated], *chunk.skipped, *chunk.failed):
            by_outcome[(row.outcome, row.error if row.outcome != ImportOutcome.NEW else "")].append(row.pk)
        for (outcome, error), pks in by_outcome.items():
            ImportRow.objects.filter(pk__in=pks).update(outcome=outcome, error=error)
        handled = len(chunk.new) + len(chunk.updated) + len(chunk.skipped) + len(chunk.failed)
        written = len(chunk.new) + len(chunk.updated)
        # Raises LeaseLost, rolling the chunk back, when the run (or the part) was taken back from this worker.
        if self.part is not None:
            rows = [*(n[0] for n in chunk.new), *(u[0] for u in chunk.updated), *chunk.skipped, *chunk.failed]
            parts.checkpoint(self.part, handled, written, len(chunk.failed), rows)
        else:
            jobs.checkpoint(self.run, done=handled, changed=written, failed=len(chunk.failed))
        self.counts.done += handled
        self.counts.changed += len(chunk.new) + len(chunk.updated)
        self.counts.failed += len(chunk.failed)
        if self.progress:
            transaction.on_commit(lambda: self.progress and self.progress(self.counts.done, self.total))

    def link(
        self, planned: _Type, row: ImportRow, record: models.Model, baseline: dict[str, Any], now: Any, refused: str
    ) -> Link:
        """The new link; one whose record came in without a refused value has failed, as a sync's would, and the
        next sync tries that field again (it has no baseline)."""
        return Link(
            connection=self.connection,
            actor_type=planned.actor_type,
            erp_key=row.erp_key,
            erp_last_modified=row.erp_last_modified,
            baseline=baseline,
            last_synced_at=now,
            status=LinkStatus.FAILED if refused else LinkStatus.OK,
            last_error=refused,
            **{planned.attribute: record},
        )


def _companies(connection: ErpConnection, parents: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(actor type, ERP key) → the CRM company linked to that actor, for the ``parents`` given.

    One query per actor type and batch of keys, never one condition per parent: SQLite refuses an OR of a
    thousand conditions (its expression tree is at most 1000 deep), whatever the page or chunk size."""
    keys_by_type: dict[str, set[str]] = defaultdict(set)
    for actor_type, key in parents:
        if actor_type and key:
            keys_by_type[actor_type].add(key)
    found: dict[tuple[str, str], int] = {}
    for actor_type, keys in keys_by_type.items():
        ordered = sorted(keys)
        for start in range(0, len(ordered), KEYS_PER_QUERY):
            links = Link.objects.filter(
                connection=connection,
                company__isnull=False,
                actor_type=actor_type,
                erp_key__in=ordered[start : start + KEYS_PER_QUERY],
            )
            found.update(((actor_type, key), company) for key, company in links.values_list("erp_key", "company_id"))
    return found


def execute(erp_import: ErpImport, run: SyncRun, progress: Progress | None = None) -> Counts:
    return _Importer(erp_import, run, progress).run_import()


# Showing the plan


@dataclass
class FieldChange:
    """One mapped field of one row in the preview: what the CRM has, what it will have, and why."""

    label: str
    current: str
    after: str
    note: str
    changes: bool


def field_changes(erp_import: ErpImport, rows: list[ImportRow]) -> dict[int, list[FieldChange]]:
    """Field by field, what Import will do to each of ``rows`` (one page of the preview)."""
    types: dict[str, _Type] = {}
    shown: dict[int, list[FieldChange]] = {}
    targets: dict[str, dict[int, Any]] = defaultdict(dict)
    for actor_type in {row.actor_type for row in rows}:
        types[actor_type] = _Type.of(erp_import.connection, actor_type)
        wanted = [row.target_id for row in rows if row.actor_type == actor_type and row.target_id]
        targets[actor_type] = types[actor_type].model._default_manager.in_bulk(wanted)
    item_names = _item_names(types.values())
    for row in rows:
        planned = types[row.actor_type]
        record = targets[row.actor_type].get(row.target_id or 0) if row.action == ImportAction.LINK else None
        changes = []
        for key, converter in planned.converters.items():
            label = str(getattr(converter.model_field, "verbose_name", key)).capitalize()
            try:
                erp = converter.from_erp(row.values.get(key))
            except FieldError as error:
                changes.append(FieldChange(label, "", "", str(error), False))
                continue
            try:
                converter.to_crm_value(erp)
            except ValueRefused as error:
                current = _shown(converter, _crm_value(converter, record), item_names) if record is not None else ""
                changes.append(FieldChange(label, current, current, _("not imported: %(why)s") % {"why": error}, False))
                continue
            except FieldError:
                pass  # a list item without a mapping: the row's reason says so
            after = _shown(converter, erp, item_names)
            if record is None:
                if erp is not None:
                    changes.append(FieldChange(label, "", after, "", True))
                continue
            try:
                crm = converter.from_crm(record)
            except FieldError:
                crm = None
            current = _shown(converter, crm, item_names)
            direction = converter.erp.direction
            if crm == erp:
                changes.append(FieldChange(label, current, current, _("the same on both sides"), False))
            elif direction == Direction.CRM_TO_ERP or (direction == Direction.BOTH and erp is None):
                note = _("kept: the CRM's value is sent to %(erp)s by the next sync") % {"erp": erp_import.connection}
                changes.append(FieldChange(label, current, current, note, False))
            else:
                changes.append(FieldChange(label, current, after, _("updated from the ERP"), True))
        shown[row.pk] = changes
    return shown


def _crm_value(converter: FieldConverter, record: models.Model) -> Any:
    try:
        return converter.from_crm(record)
    except FieldError:
        return None


def _item_names(types: Any) -> dict[tuple[str, int], str]:
    """Names of the CRM list items the mapped list fields can take, by (attribute, id)."""
    names: dict[tuple[str, int], str] = {}
    for planned in types:
        for converter in planned.converters.values():
            related = converter.model_field.related_model
            if related is not None and converter.to_crm_item:
                for pk, name in related.objects.filter(pk__in=converter.to_crm_item.values()).values_list("pk", "name"):
                    names[(converter.attribute, pk)] = name
    return names


def _shown(converter: FieldConverter, canonical: Any, item_names: dict[tuple[str, int], str]) -> str:
    if canonical is None:
        return ""
    if converter.to_crm_item or converter.model_field.related_model is not None:
        item = converter.to_crm_item.get(canonical)
        return item_names.get((converter.attribute, item), str(canonical)) if item is not None else str(canonical)
    if converter.crm_type == p.FieldType.DATE:
        return display.format_date(canonical)
    return str(canonical)
