"""Field mapping: which CRM record and fields an ERP actor type maps to, which directions can work, and the
actions that change a connection's mapping, list mapping, defaults, rank and the sync priority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_noop as N_

from connectors.protocol import ActorType, FieldAccess, FieldType
from crm.models import Company, Contact, ListItem, Project

from . import said
from .audit import audit
from .choices import AuditAction, Direction
from .display import actor_type_word, field_type_name
from .models import ErpConnection, ErpField, FieldDefault, ListMapping, SyncSettings

CRM_MODEL: dict[str, type[Company] | type[Contact] | type[Project]] = {
    ActorType.CUSTOMER: Company,
    ActorType.SUPPLIER: Company,
    ActorType.PARTNER: Company,
    ActorType.PERSON: Contact,
    ActorType.PROJECT: Project,
}
CRM_OBJECT_NAME = {Company: gettext_lazy("Company"), Contact: gettext_lazy("Contact"), Project: gettext_lazy("Project")}
# CRM fields the CRM computes itself; none of the mapped ones yet, but the rule is here for when one is.
CRM_READ_ONLY: frozenset[tuple[type[models.Model], str]] = frozenset()


def crm_field_type(model: type[models.Model], key: str) -> str:
    """The protocol field type that a CRM field (by its original key, e.g. NAME) holds."""
    field = model._meta.get_field(model.field_keys[key])  # type: ignore[attr-defined]
    if isinstance(field, models.ForeignKey) and issubclass(field.related_model, ListItem):  # type: ignore[arg-type]
        return FieldType.LIST
    if isinstance(field, models.DateField):
        return FieldType.DATE
    if isinstance(field, models.DecimalField):
        return FieldType.DECIMAL
    return FieldType.TEXT


def crm_list_model(actor_type: str, crm_key: str) -> type[ListItem] | None:
    """The CRM list table a list field's values come from, or None for other fields."""
    model = CRM_MODEL[actor_type]
    field = model._meta.get_field(model.field_keys[crm_key])
    related = getattr(field, "related_model", None)
    return related if isinstance(related, type) and issubclass(related, ListItem) else None


NUMBERS = (FieldType.INTEGER, FieldType.DOUBLE, FieldType.DECIMAL)


def _flows_to_crm(erp_type: str, crm_type: str) -> bool:
    """A CRM text field takes any ERP number as text; a CRM decimal field takes any ERP number (a value with more
    decimal places than the CRM field keeps fails that record's field, it is never rounded)."""
    return erp_type == crm_type or (crm_type in (FieldType.TEXT, FieldType.DECIMAL) and erp_type in NUMBERS)


def _flows_to_erp(erp_type: str, crm_type: str) -> bool:
    """A CRM decimal goes to an ERP decimal exactly, and to an ERP double as the nearest double."""
    return erp_type == crm_type or (crm_type == FieldType.DECIMAL and erp_type == FieldType.DOUBLE)


def compatible(erp_type: str, crm_type: str) -> bool:
    """Whether values can flow between the two at all, in at least one direction."""
    return _flows_to_crm(erp_type, crm_type) or _flows_to_erp(erp_type, crm_type)


def auto_map(actor_type: str, erp_key: str, erp_type: str) -> str:
    """The CRM field key an ERP field maps to by name (case-insensitive), or '' if none fits."""
    model = CRM_MODEL.get(actor_type)
    if model is None:
        return ""
    key = erp_key.upper()
    if key in model.field_keys and compatible(erp_type, crm_field_type(model, key)):
        return key
    return ""


def crm_field_choices(actor_type: str, erp_type: str) -> list[tuple[str, str]]:
    """CRM fields an ERP field of ``erp_type`` may map to: (key, label)."""
    model = CRM_MODEL[actor_type]
    choices = []
    for key, name in model.field_keys.items():
        if compatible(erp_type, crm_field_type(model, key)):
            label = str(model._meta.get_field(name).verbose_name)  # type: ignore[union-attr]
            choices.append((key, f"{label[:1].upper()}{label[1:]} ({key})"))
    return choices


def direction_problems(actor_type: str, erp_type: str, erp_access: str, crm_key: str) -> dict[str, str]:
    """Why each direction cannot work for this pair, by direction; a direction missing here can work."""
    model = CRM_MODEL[actor_type]
    crm_type = crm_field_type(model, crm_key)
    to_crm = ""
    if (model, crm_key) in CRM_READ_ONLY:
        to_crm = _("The CRM field cannot be written.")
    elif not _flows_to_crm(erp_type, crm_type):
        to_crm = _("An ERP %(erp)s value cannot be stored in a CRM %(crm)s field.") % {
            "erp": field_type_name(erp_type),
            "crm": field_type_name(crm_type),
        }
    to_erp = ""
    if erp_access == FieldAccess.READ_ONLY:
        to_erp = _("The ERP field is read-only.")
    elif not _flows_to_erp(erp_type, crm_type):
        to_erp = _("A CRM %(crm)s value cannot be written to an ERP %(erp)s field.") % {
            "crm": field_type_name(crm_type),
            "erp": field_type_name(erp_type),
        }
    problems = {}
    if to_crm:
        problems[Direction.ERP_TO_CRM.value] = to_crm
    if to_erp:
        problems[Direction.CRM_TO_ERP.value] = to_erp
    if to_crm or to_erp:
        problems[Direction.BOTH.value] = to_crm or to_erp
    return problems


def default_direction(actor_type: str, erp_type: str, erp_access: str, crm_key: str, meta: dict[str, Any]) -> str:
    """The direction an auto-mapped field starts with: the connector's suggestion (``meta["suggested_direction"]``)
    when it can work, else ERP → CRM for a read-only ERP field when that can work, else none: the admin decides."""
    problems = direction_problems(actor_type, erp_type, erp_access, crm_key)
    suggested = str(meta.get("suggested_direction") or "")
    if suggested in Direction.values and suggested not in problems:
        return suggested
    if suggested == Direction.BOTH:  # both ways cannot work: the one way that can, of the two suggested
        return next((d.value for d in (Direction.ERP_TO_CRM, Direction.CRM_TO_ERP) if d.value not in problems), "")
    if erp_access == FieldAccess.READ_ONLY and Direction.ERP_TO_CRM.value not in problems:
        return Direction.ERP_TO_CRM.value
    return ""


class MappingInvalid(Exception):
    """The submitted mapping breaks a rule; ``errors`` maps an ERP field key ('' for the whole form) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


HOLD_ONLY_BOTH_WAYS = gettext_lazy(
    "Only a field synced both ways can have conflicts: choose Both ways, or untick Hold conflicts for review."
)


@dataclass(frozen=True)
class FieldRow:
    key: str
    crm_field: str
    direction: str
    show_in_search: bool
    show_in_tab: bool
    hold_conflicts: bool = False


@transaction.atomic
def save_field_mapping(
    connection: Any, actor_type: str, sync_enabled: bool, rows: list[FieldRow], user: Any
) -> list[str]:
    """Apply a submitted field-mapping tab; every rule is checked here. Returns the changes made, for the audit."""

    fields = {
        f.key: f for f in ErpField.objects.select_for_update().filter(connection=connection, actor_type=actor_type)
    }
    errors: dict[str, str] = {}
    used: dict[str, str] = {}
    for row in rows:
        field = fields.get(row.key)
        if field is None:
            errors[row.key] = _("The connector has no such field.")
            continue
        if row.crm_field:
            if field.missing_in_erp:
                errors[row.key] = _("The field is missing in the ERP: it can only be unmapped.")
                continue
            allowed = dict(crm_field_choices(actor_type, field.type))
            if row.crm_field not in allowed:
                errors[row.key] = _("%(crm)s does not fit an ERP %(type)s field.") % {
                    "crm": row.crm_field,
                    "type": field_type_name(field.type),
                }
                continue
            if row.crm_field in used:
                errors[row.key] = _("%(crm)s is already mapped to %(other)s.") % {
                    "crm": row.crm_field,
                    "other": used[row.crm_field],
                }
                continue
            used[row.crm_field] = field.display_label
            problem = direction_problems(actor_type, field.type, field.access, row.crm_field).get(row.direction)
            if row.direction and problem:
                errors[row.key] = problem
                continue
        elif row.direction:
            errors[row.key] = _("Choose a CRM field before a direction.")
            continue
        if row.show_in_tab and row.crm_field and row.direction:
            errors[row.key] = _("A synced field is stored in the CRM; it cannot also be shown live on the ERP tab.")
        elif row.hold_conflicts and not (row.crm_field and row.direction == Direction.BOTH):
            errors[row.key] = str(HOLD_ONLY_BOTH_WAYS)
    if errors:
        raise MappingInvalid(errors)
    changes = []
    for row in rows:
        field = fields[row.key]
        new = {
            "crm_field": row.crm_field,
            "direction": row.direction if row.crm_field else "",
            "show_in_search": row.show_in_search,
            "show_in_tab": row.show_in_tab,
            "hold_conflicts": row.hold_conflicts,
        }
        old = {name: getattr(field, name) for name in new}
        if new != old:
            if new["crm_field"] != old["crm_field"] or new["direction"] != old["direction"]:
                field.auto_mapped = field.auto_mapped and new["crm_field"] == old["crm_field"] and not new["direction"]
                arrow = str(dict(Direction.choices).get(str(new["direction"]))) if new["direction"] else "—"
                changes.append(f"{actor_type}.{field.key} → {new['crm_field'] or '—'} {arrow}".strip())
            if new["hold_conflicts"] != old["hold_conflicts"]:
                changes.append(
                    (
                        _("%(field)s: conflicts held for review")
                        if new["hold_conflicts"]
                        else _("%(field)s: conflicts decided by priority")
                    )
                    % {"field": f"{actor_type}.{field.key}"}
                )
            for name, value in new.items():
                setattr(field, name, value)
            field.save()
    actor = connection.actor_types.get(actor_type=actor_type)
    if actor.sync_enabled != sync_enabled:
        actor.sync_enabled = sync_enabled
        actor.save(update_fields=["sync_enabled"])
        changes.append(
            _("sync of %(type)s %(state)s") % {"type": actor_type, "state": _("on") if sync_enabled else _("off")}
        )
    if changes:
        audit(
            user,
            AuditAction.CHANGED,
            connection,
            said.msg(N_("field mapping: %(changes)s"), changes="; ".join(changes)),
        )
    return changes


@dataclass(frozen=True)
class UndecidedOutcome:
    """What "set every undecided direction" did: the fields set, and those the direction cannot work for (each
    with why), which keep no direction."""

    changed: list[str]
    refused: list[tuple[str, str]]


def undecided_fields(connection: Any, actor_type: str) -> list[ErpField]:
    """Mapped fields of ``actor_type`` without a direction: decisions left to the admin."""
    return list(
        connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False, direction="").exclude(crm_field="")
    )


@transaction.atomic
def set_undecided_directions(connection: Any, actor_type: str, direction: str, user: Any) -> UndecidedOutcome:
    """Give ``direction`` to every mapped field of the actor type that has none, where it can work; audited."""
    if direction not in Direction.values:
        raise MappingInvalid({"": _("Choose a direction.")})
    changed: list[str] = []
    refused: list[tuple[str, str]] = []
    fields = ErpField.objects.select_for_update().filter(
        connection=connection, actor_type=actor_type, missing_in_erp=False, direction=""
    )
    for field in fields.exclude(crm_field=""):
        problem = direction_problems(actor_type, field.type, field.access, field.crm_field).get(direction)
        if problem:
            refused.append((field.display_label, problem))
            continue
        field.direction = direction
        field.save(update_fields=["direction"])
        changed.append(field.key)
    if changed:
        arrow = str(dict(Direction.choices)[direction])
        audit(
            user,
            AuditAction.CHANGED,
            connection,
            _("field mapping: undecided %(type)s fields set to %(direction)s: %(fields)s")
            % {"type": actor_type_word(actor_type), "direction": arrow, "fields": ", ".join(changed)},
        )
    return UndecidedOutcome(changed, refused)


@transaction.atomic
def move_field(connection: Any, actor_type: str, key: str, up: bool) -> None:
    """Swap a field's rank with its neighbour's (the order on the ERP tab and in search results)."""

    ordered = list(ErpField.objects.select_for_update().filter(connection=connection, actor_type=actor_type))
    index = next((i for i, f in enumerate(ordered) if f.key == key), None)
    if index is None:
        raise MappingInvalid({key: _("The connector has no such field.")})
    other = index - 1 if up else index + 1
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
    for rank, field in enumerate(ordered):
        if field.rank != rank:
            ErpField.objects.filter(pk=field.pk).update(rank=rank)


def suggest_list_matches(erp_items: list[tuple[str, str]], crm_items: Sequence[ListItem]) -> dict[str, int]:
    """ERP item key → CRM item id: first where the ERP key is the CRM item's code (ISO country, language or
    currency codes on both sides), then, for the items left, where the texts match (ignoring case).

    A CRM item stands for one ERP item only, so a code match is never taken away by a name match."""
    by_code = {str(getattr(item, "code", "")).casefold(): item.pk for item in crm_items if getattr(item, "code", "")}
    by_name: dict[str, int] = {}
    for item in crm_items:
        by_name.setdefault(item.name.casefold(), item.pk)
    suggestions: dict[str, int] = {}
    taken: set[int] = set()
    for lookup, of_item in ((by_code, 0), (by_name, 1)):
        for pair in erp_items:
            found = lookup.get(pair[of_item].strip().casefold())
            if pair[0] not in suggestions and found and found not in taken:
                suggestions[pair[0]] = found
                taken.add(found)
    return suggestions


@transaction.atomic
def match_list_items(
    connection: Any,
    field: ErpField,
    erp_items: list[tuple[str, str]],
    labels: dict[str, dict[str, str]] | None = None,
) -> int:
    """Store the ERP list's items for a mapped list field and match those without a CRM item by code, then name.

    An item that already has a CRM item keeps it; an ERP item new to the list is added. Returns how many items
    were matched now. ``labels``: the items' texts by language (protocol v1.1), by key."""
    labels = labels or {}
    model = crm_list_model(field.actor_type, field.crm_field) if field.crm_field else None
    if model is None:
        return 0
    rows = {
        m.erp_key: m
        for m in ListMapping.objects.select_for_update().filter(
            connection=connection, actor_type=field.actor_type, field_key=field.key
        )
    }
    taken = {m.crm_item_id for m in rows.values() if m.crm_item_id is not None}
    open_items = [(key, text) for key, text in erp_items if key not in rows or rows[key].crm_item_id is None]
    free = [item for item in model._default_manager.all() if item.pk not in taken]
    suggestions = suggest_list_matches(open_items, free)
    for key, text in erp_items:
        row = rows.get(key)
        if row is None:
            ListMapping.objects.create(
                connection=connection,
                actor_type=field.actor_type,
                field_key=field.key,
                erp_key=key,
                erp_text=text[:200],
                erp_labels=labels.get(key, {}),
                crm_item_id=suggestions.get(key),
            )
        elif (
            (row.crm_item_id is None and key in suggestions)
            or row.erp_text != text[:200]
            or row.erp_labels != labels.get(key, {})
        ):
            row.crm_item_id = row.crm_item_id or suggestions.get(key)
            row.erp_text = text[:200]
            row.erp_labels = labels.get(key, {})
            row.save(update_fields=["crm_item_id", "erp_text", "erp_labels"])
    return len(suggestions)


def mapped_list_fields(connection: Any) -> list[ErpField]:
    """The connection's ERP list fields that are mapped to a CRM list field (and still in the ERP)."""
    return [
        field
        for field in connection.erp_fields.filter(type=FieldType.LIST, missing_in_erp=False).exclude(crm_field="")
        if crm_list_model(field.actor_type, field.crm_field) is not None and field.list_name
    ]


@transaction.atomic
def save_list_mapping(
    connection: Any,
    actor_type: str,
    field_key: str,
    erp_items: list[tuple[str, str]],
    chosen: dict[str, int | None],
    user: Any,
) -> None:
    """Store ERP item → CRM item for one list field; a CRM item may stand for one ERP item only."""

    field = connection.erp_fields.get(actor_type=actor_type, key=field_key)
    model = crm_list_model(actor_type, field.crm_field) if field.crm_field else None
    if model is None:
        raise MappingInvalid({"": _("Map the field to a CRM list field first.")})
    valid = set(model._default_manager.values_list("pk", flat=True))
    errors: dict[str, str] = {}
    seen: dict[int, str] = {}
    for key, _text in erp_items:
        crm_id = chosen.get(key)
        if crm_id is None:
            continue
        if crm_id not in valid:
            errors[key] = _("No such CRM list item.")
        elif crm_id in seen:
            errors[key] = _("The same CRM item is chosen for %(other)s; each CRM item may stand for one ERP item.") % {
                "other": seen[crm_id]
            }
            errors.setdefault(seen[crm_id], errors[key])
        else:
            seen[crm_id] = key
    if errors:
        raise MappingInvalid(errors)
    rows = ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key=field_key)
    # The items' texts by language, read from the connector when the list was matched, are kept: the page's
    # texts are in one reader's language.
    kept = {row.erp_key: (row.erp_text, row.erp_labels) for row in rows if row.erp_labels}
    rows.delete()
    ListMapping.objects.bulk_create(
        ListMapping(
            connection=connection,
            actor_type=actor_type,
            field_key=field_key,
            erp_key=key,
            erp_text=kept[key][0] if key in kept else text[:200],
            erp_labels=kept[key][1] if key in kept else {},
            crm_item_id=chosen.get(key),
        )
        for key, text in erp_items
    )
    mapped = sum(1 for key, _text in erp_items if chosen.get(key))
    audit(
        user,
        AuditAction.CHANGED,
        connection,
        said.msg(
            N_("list mapping of %(field)s: %(mapped)s of %(total)s items"),
            field=f"{actor_type}.{field_key}",
            mapped=mapped,
            total=len(erp_items),
        ),
    )


def default_fields(connection: Any, actor_type: str) -> list[Any]:
    """ERP fields that a new actor created from the CRM does not get from a mapped CRM field."""
    return [
        f
        for f in connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False)
        if f.access != FieldAccess.READ_ONLY
        and f.type != FieldType.LABEL
        and not (f.crm_field and f.direction in (Direction.CRM_TO_ERP, Direction.BOTH))
    ]


@transaction.atomic
def save_defaults(connection: Any, actor_type: str, values: dict[str, tuple[Any, bool, bool]], user: Any) -> None:
    """values: ERP field key → (default value, ask the user, mandatory). The connector's mandatory fields stay mandatory."""

    fields = {f.key: f for f in default_fields(connection, actor_type)}
    errors = {}
    for key, (value, ask, mandatory) in values.items():
        field = fields.get(key)
        if field is None:
            errors[key] = _("This field is filled from the CRM or cannot be set.")
            continue
        if field.access == FieldAccess.MANDATORY and not mandatory:
            errors[key] = _("The ERP requires this field; it stays mandatory.")
        elif mandatory and value in (None, "") and not ask:
            errors[key] = _("A mandatory field needs a default value or must be asked for.")
    if errors:
        raise MappingInvalid(errors)
    for key, (value, ask, mandatory) in values.items():
        FieldDefault.objects.update_or_create(
            connection=connection,
            actor_type=actor_type,
            field_key=key,
            defaults={"value": value, "ask_user": ask, "mandatory": mandatory},
        )
    audit(user, AuditAction.CHANGED, connection, said.msg(N_("default values of %(type)s"), type=actor_type))


# Sync priority

CRM_ENTRY = "crm"


def priority_entries() -> list[tuple[str, Any]]:
    """The sync priority, highest first: ('crm', None) for the CRM itself, ('connection', conn) for each connection."""

    settings_row = SyncSettings.load()
    entries: list[tuple[int, int, str, Any]] = [(settings_row.crm_priority, 0, CRM_ENTRY, None)]
    for connection in ErpConnection.objects.select_related("connector"):
        entries.append((connection.priority, connection.pk, "connection", connection))
    return [(kind, obj) for _p, _pk, kind, obj in sorted(entries, key=lambda e: (e[0], e[2] != CRM_ENTRY, e[1]))]


@transaction.atomic
def move_priority(entry: str, up: bool, user: Any) -> None:
    """Move the CRM ('crm') or a connection ('connection:<pk>') one place up or down; renumbers 0, 1, 2 …"""

    settings_row = SyncSettings.objects.select_for_update().get_or_create(pk=1)[0]
    list(ErpConnection.objects.select_for_update().values_list("pk"))
    entries = priority_entries()
    keys = [CRM_ENTRY if kind == CRM_ENTRY else f"connection:{obj.pk}" for kind, obj in entries]
    if entry not in keys:
        raise MappingInvalid({"": _("No such entry in the sync priority.")})
    index = keys.index(entry)
    other = index - 1 if up else index + 1
    if 0 <= other < len(entries):
        entries[index], entries[other] = entries[other], entries[index]
    for rank, (kind, obj) in enumerate(entries):
        if kind == CRM_ENTRY:
            settings_row.crm_priority = rank
            settings_row.save(update_fields=["crm_priority", "updated_at"])
        elif obj.priority != rank:
            ErpConnection.objects.filter(pk=obj.pk).update(priority=rank)
    order = ", ".join("CRM" if kind == CRM_ENTRY else str(obj) for kind, obj in priority_entries())
    audit(user, AuditAction.CHANGED, None, _("sync priority: %(order)s") % {"order": order})


def next_priority() -> int:
    """New connections go to the end of the sync priority."""

    highest = ErpConnection.objects.aggregate(top=Max("priority"))["top"]
    return max(highest if highest is not None else -1, SyncSettings.load().crm_priority) + 1
