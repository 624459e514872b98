"""Sync filters: which records of an actor type sync at all.

A connection's actor type may hold two kinds of condition, kept on its ``ErpActorType``:
- **CRM side** (``crm_filter``): for each CRM list field of the record (a company's country, business and category; a
  contact's position and country; a project's type), the items the record must have one of;
- **ERP side** (``erp_filter``): restrictions on the connector's searchable fields, with the operators of advanced
  search (``connectors.protocol.Restriction``), met as ``restriction_matches`` says.
A record syncs only when it meets every condition. Automatic sync, Sync all, Resync, Sync now and the import apply
them; a record outside the filter is left alone on both sides (nothing is deleted), and its link keeps why
(``Link.outside_filter``), which its ERP tab shows in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from connectors import protocol as p
from crm.models import ListItem

from . import display
from .mapping import CRM_MODEL
from .models import ErpActorType, ErpConnection, ErpField, ListMapping

OPERATOR_LABELS: dict[str, Any] = {
    "equals": gettext_lazy("is"),
    "is_not": gettext_lazy("is not"),
    "begins": gettext_lazy("begins with"),
    "contains": gettext_lazy("contains"),
    "ends": gettext_lazy("ends with"),
    "not_begins": gettext_lazy("does not begin with"),
    "not_contains": gettext_lazy("does not contain"),
    "not_ends": gettext_lazy("does not end with"),
    "between": gettext_lazy("is between"),
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "lt": "<",
    "gte": "≥",
    "lte": "≤",
    "before": gettext_lazy("before"),
    "after": gettext_lazy("after"),
    "before_or_equal": gettext_lazy("on or before"),
    "after_or_equal": gettext_lazy("on or after"),
    "one_of": gettext_lazy("is one of"),
    "not_one_of": gettext_lazy("is not one of"),
}


def operator_label(operator: str) -> str:
    return str(OPERATOR_LABELS.get(operator, operator))


def crm_filter_fields(actor_type: str) -> list[models.ForeignKey[Any, Any]]:
    """The CRM list fields a filter of ``actor_type`` may name: the record's foreign keys to CRM lists."""
    model = CRM_MODEL.get(actor_type)
    if model is None:
        return []
    return [
        f
        for f in model._meta.get_fields()
        if isinstance(f, models.ForeignKey) and issubclass(f.related_model, ListItem)  # type: ignore[arg-type]
    ]


@dataclass(frozen=True)
class SyncFilter:
    """The conditions of one actor type of one connection; empty: every record syncs."""

    crm: dict[str, list[int]]  # CRM field name → the item ids the record must have one of
    erp: list[p.Restriction]
    erp_types: dict[str, p.FieldType]

    @classmethod
    def of(cls, connection: ErpConnection, actor_type: str) -> SyncFilter:
        """The stored filter; a condition on an ERP field the connector no longer returns is left out (the sync could
        not read the field), and the filter page no longer shows it."""
        row = ErpActorType.objects.filter(connection=connection, actor_type=actor_type).first()
        if row is None:
            return cls({}, [], {})
        erp = [p.Restriction.model_validate(r) for r in row.erp_filter]
        types = dict(
            ErpField.objects.filter(
                connection=connection, actor_type=actor_type, key__in=[r.field_key for r in erp], missing_in_erp=False
            ).values_list("key", "type")
        )
        return cls(
            {name: list(ids) for name, ids in row.crm_filter.items() if ids},
            [r for r in erp if r.field_key in types],
            {key: p.FieldType(kind) for key, kind in types.items()},
        )

    def __bool__(self) -> bool:
        return bool(self.crm or self.erp)

    @property
    def erp_keys(self) -> list[str]:
        """The ERP fields the conditions read: a sync asks the connector for them with the mapped ones."""
        return list(dict.fromkeys(r.field_key for r in self.erp))

    def outside_crm(self, record: Any) -> dict[str, Any] | None:
        for name, ids in self.crm.items():
            if getattr(record, f"{name}_id", None) not in ids:
                return {"side": "crm", "field": name, "items": ids}
        return None

    def outside_erp(self, values: dict[str, p.Value]) -> dict[str, Any] | None:
        for r in self.erp:
            if not p.restriction_matches(
                self.erp_types[r.field_key], r.operator, list(r.values), values.get(r.field_key)
            ):
                return {"side": "erp", "field": r.field_key, "operator": r.operator, "values": list(r.values)}
        return None

    def outside(self, record: Any, values: dict[str, p.Value] | None) -> dict[str, Any] | None:
        """The first condition the record (CRM side) or its ERP actor's ``values`` does not meet, or None."""
        return self.outside_crm(record) or (self.outside_erp(values) if values is not None else None)


def describe_condition(connection: ErpConnection, actor_type: str, condition: dict[str, Any]) -> str:
    """One condition in the reader's language: "Country is one of Sweden, Norway", "Name begins with A"."""
    if condition.get("side") == "crm":
        model = CRM_MODEL[actor_type]
        field = model._meta.get_field(condition["field"])
        assert isinstance(field, models.ForeignKey)
        related = cast("type[ListItem]", field.related_model)
        names = list(related._default_manager.filter(pk__in=condition["items"]).values_list("name", flat=True))
        return _("%(field)s is one of %(items)s") % {
            "field": str(field.verbose_name).capitalize(),
            "items": ", ".join(names) or "—",
        }
    erp_field = ErpField.objects.filter(connection=connection, actor_type=actor_type, key=condition["field"]).first()
    label = erp_field.display_label if erp_field else condition["field"]
    texts = {
        item.erp_key: display.pick(item.erp_labels, item.erp_text)
        for item in ListMapping.objects.filter(
            connection=connection, actor_type=actor_type, field_key=condition["field"]
        )
    }
    values = [erp_field.format(v, texts) if erp_field else str(v) for v in condition.get("values", [])]
    joined = _(" and ").join(values) if condition.get("operator") == "between" else ", ".join(values)
    return f"{label} {operator_label(condition.get('operator', ''))} {joined}"


def describe_filter(connection: ErpConnection, actor_type: str, sync_filter: SyncFilter) -> list[str]:
    """Every condition of a filter in the reader's language (for the audit and the connection page)."""
    conditions = [{"side": "crm", "field": name, "items": ids} for name, ids in sync_filter.crm.items()]
    conditions += [
        {"side": "erp", "field": r.field_key, "operator": r.operator, "values": list(r.values)} for r in sync_filter.erp
    ]
    return [describe_condition(connection, actor_type, c) for c in conditions]


def outside_reason(connection: ErpConnection, actor_type: str, condition: dict[str, Any]) -> str:
    """Why a record does not sync, for its ERP tab."""
    where = _("in the CRM") if condition.get("side") == "crm" else _("in the ERP")
    return _("Not synced: it is outside the sync filter (%(condition)s, %(where)s).") % {
        "condition": describe_condition(connection, actor_type, condition),
        "where": where,
    }
