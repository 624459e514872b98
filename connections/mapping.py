"""Field mapping: which CRM record and fields an ERP actor type maps to, which directions can work, and the
actions that change a connection's mapping, list mapping, defaults, rank and the sync priority."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from connectors.protocol import ActorType, FieldAccess, FieldType
from crm.models import Company, Contact, ListItem, Project

from .choices import AuditAction, Direction

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
    return FieldType.TEXT


def crm_list_model(actor_type: str, crm_key: str) -> type[ListItem] | None:
    """The CRM list table a list field's values come from, or None for other fields."""
    model = CRM_MODEL[actor_type]
    field = model._meta.get_field(model.field_keys[crm_key])
    related = getattr(field, "related_model", None)
    return related if isinstance(related, type) and issubclass(related, ListItem) else None


def _flows_to_crm(erp_type: str, crm_type: str) -> bool:
    return erp_type == crm_type or (crm_type == FieldType.TEXT and erp_type in (FieldType.INTEGER, FieldType.DOUBLE))


def _flows_to_erp(erp_type: str, crm_type: str) -> bool:
    return erp_type == crm_type


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
        to_crm = _("An ERP %(erp)s value cannot be stored in a CRM %(crm)s field.") % {"erp": erp_type, "crm": crm_type}
    to_erp = ""
    if erp_access == FieldAccess.READ_ONLY:
        to_erp = _("The ERP field is read-only.")
    elif not _flows_to_erp(erp_type, crm_type):
        to_erp = _("A CRM %(crm)s value cannot be written to an ERP %(erp)s field.") % {
            "crm": crm_type,
            "erp": erp_type,
        }
    problems = {}
    if to_crm:
        problems[Direction.ERP_TO_CRM.value] = to_crm
    if to_erp:
        problems[Direction.CRM_TO_ERP.value] = to_erp
    if to_crm or to_erp:
        problems[Direction.BOTH.value] = to_crm or to_erp
    return problems


class MappingInvalid(Exception):
    """The submitted mapping breaks a rule; ``errors`` maps an ERP field key ('' for the whole form) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class FieldRow:
    key: str
    crm_field: str
    direction: str
    show_in_search: bool
    show_in_tab: bool


@transaction.atomic
def save_field_mapping(
    connection: Any, actor_type: str, sync_enabled: bool, rows: list[FieldRow], user: Any
) -> list[str]:
    """Apply a submitted field-mapping tab; every rule is checked here. Returns the changes made, for the audit."""
    from .models import ErpField
    from .services import audit

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
                    "type": field.type,
                }
                continue
            if row.crm_field in used:
                errors[row.key] = _("%(crm)s is already mapped to %(other)s.") % {
                    "crm": row.crm_field,
                    "other": used[row.crm_field],
                }
                continue
            used[row.crm_field] = field.label
            problem = direction_problems(actor_type, field.type, field.access, row.crm_field).get(row.direction)
            if row.direction and problem:
                errors[row.key] = problem
                continue
        elif row.direction:
            errors[row.key] = _("Choose a CRM field before a direction.")
            continue
        if row.show_in_tab and row.crm_field and row.direction:
            errors[row.key] = _("A synced field is stored in the CRM; it cannot also be shown live on the ERP tab.")
    if errors:
        raise MappingInvalid(errors)
    changes = []
    for row in rows:
        field = fields[row.key]
        new = {"crm_field": row.crm_field, "direction": row.direction if row.crm_field else "",
               "show_in_search": row.show_in_search, "show_in_tab": row.show_in_tab}  # fmt: skip
        old = {name: getattr(field, name) for name in new}
        if new != old:
            if new["crm_field"] != old["crm_field"] or new["direction"] != old["direction"]:
                field.auto_mapped = field.auto_mapped and new["crm_field"] == old["crm_field"] and not new["direction"]
                arrow = str(dict(Direction.choices).get(str(new["direction"]))) if new["direction"] else "—"
                changes.append(f"{actor_type}.{field.key} → {new['crm_field'] or '—'} {arrow}".strip())
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
        audit(user, AuditAction.CHANGED, connection, _("field mapping: %(changes)s") % {"changes": "; ".join(changes)})
    return changes


@transaction.atomic
def move_field(connection: Any, actor_type: str, key: str, up: bool) -> None:
    """Swap a field's rank with its neighbour's (the order on the ERP tab and in search results)."""
    from .models import ErpField

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


def suggest_list_matches(erp_items: list[tuple[str, str]], crm_items: list[ListItem]) -> dict[str, int]:
    """ERP item key → CRM item id where the texts match (ignoring case), or a country's ISO code matches."""
    by_name = {item.name.casefold(): item.pk for item in crm_items}
    by_code = {str(getattr(item, "code", "")).casefold(): item.pk for item in crm_items if getattr(item, "code", "")}
    suggestions: dict[str, int] = {}
    taken: set[int] = set()
    for key, text in erp_items:
        found = by_name.get(text.casefold()) or by_code.get(key.casefold())
        if found and found not in taken:
            suggestions[key] = found
            taken.add(found)
    return suggestions


@transaction.atomic
def save_list_mapping(connection: Any, actor_type: str, field_key: str, erp_items: list[tuple[str, str]],
                      chosen: dict[str, int | None], user: Any) -> None:  # fmt: skip
    """Store ERP item → CRM item for one list field; a CRM item may stand for one ERP item only."""
    from .models import ListMapping
    from .services import audit

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
    ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key=field_key).delete()
    ListMapping.objects.bulk_create(
        ListMapping(connection=connection, actor_type=actor_type, field_key=field_key, erp_key=key, erp_text=text[:200],
                    crm_item_id=chosen.get(key))
        for key, text in erp_items
    )  # fmt: skip
    mapped = sum(1 for key, _text in erp_items if chosen.get(key))
    audit(user, AuditAction.CHANGED, connection,
          _("list mapping of %(field)s: %(mapped)s of %(total)s items") % {"field": f"{actor_type}.{field_key}", "mapped": mapped, "total": len(erp_items)})  # fmt: skip


def default_fields(connection: Any, actor_type: str) -> list[Any]:
    """ERP fields that a new actor created from the CRM does not get from a mapped CRM field."""
    return [
        f for f in connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False)
        if f.access != FieldAccess.READ_ONLY and f.type != FieldType.LABEL
        and not (f.crm_field and f.direction in (Direction.CRM_TO_ERP, Direction.BOTH))
    ]  # fmt: skip


@transaction.atomic
def save_defaults(connection: Any, actor_type: str, values: dict[str, tuple[Any, bool, bool]], user: Any) -> None:
    """values: ERP field key → (default value, ask the user, mandatory). The connector's mandatory fields stay mandatory."""
    from .models import FieldDefault
    from .services import audit

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
            connection=connection, actor_type=actor_type, field_key=key,
            defaults={"value": value, "ask_user": ask, "mandatory": mandatory},
        )  # fmt: skip
    audit(user, AuditAction.CHANGED, connection, _("default values of %(type)s") % {"type": actor_type})


# Sync priority

CRM_ENTRY = "crm"


def priority_entries() -> list[tuple[str, Any]]:
    """The sync priority, highest first: ('crm', None) for the CRM itself, ('connection', conn) for each connection."""
    from .models import ErpConnection, SyncSettings

    settings_row = SyncSettings.load()
    entries: list[tuple[int, int, str, Any]] = [(settings_row.crm_priority, 0, CRM_ENTRY, None)]
    for connection in ErpConnection.objects.select_related("connector"):
        entries.append((connection.priority, connection.pk, "connection", connection))
    return [(kind, obj) for _p, _pk, kind, obj in sorted(entries, key=lambda e: (e[0], e[2] != CRM_ENTRY, e[1]))]


@transaction.atomic
def move_priority(entry: str, up: bool, user: Any) -> None:
    """Move the CRM ('crm') or a connection ('connection:<pk>') one place up or down; renumbers 0, 1, 2 …"""
    from .models import ErpConnection, SyncSettings
    from .services import audit

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
    from .models import ErpConnection, SyncSettings

    highest = ErpConnection.objects.aggregate(top=Max("priority"))["top"]
    return max(highest if highest is not None else -1, SyncSettings.load().crm_priority) + 1
