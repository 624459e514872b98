"""Converting field values between the CRM and the protocol's typed JSON, in one canonical form per field.

Both sides are compared, and baselines stored, in the canonical form of the CRM field: text (None when
empty), an ISO date, or, for list fields, the ERP item key the CRM item is mapped to.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import models
from django.utils.translation import gettext as _

from connectors.protocol import FieldType

from ..mapping import CRM_MODEL, crm_field_type


class FieldError(Exception):
    """A value that cannot be converted, or a list item with no mapping: fails this field of this record only."""


class FieldConverter:
    """Conversions for one mapped ERP field of one connection."""

    def __init__(self, model: type[models.Model], erp_field: Any, list_map: dict[str, int | None]) -> None:
        self.erp = erp_field
        self.attribute = model.field_keys[erp_field.crm_field]  # type: ignore[attr-defined]
        self.model_field = model._meta.get_field(self.attribute)
        self.crm_type = crm_field_type(model, erp_field.crm_field)
        self.to_crm_item = {key: item for key, item in list_map.items() if item is not None}
        self.to_erp_item = {item: key for key, item in self.to_crm_item.items()}

    @property
    def column(self) -> str:
        """The model attribute to set (``country_id`` for a list field)."""
        return f"{self.attribute}_id" if self.crm_type == FieldType.LIST else self.attribute

    def from_crm(self, record: models.Model) -> Any:
        value = getattr(record, self.column)
        if value in (None, ""):
            return None
        if self.crm_type == FieldType.LIST:
            if value not in self.to_erp_item:
                raise FieldError(
                    _("no ERP item is mapped to CRM item %(item)s") % {"item": getattr(record, self.attribute)}
                )
            return self.to_erp_item[value]
        if self.crm_type == FieldType.DATE:
            return value.isoformat()
        return str(value)

    def from_erp(self, value: Any) -> Any:
        if value in (None, ""):
            return None
        if self.crm_type == FieldType.TEXT:
            if isinstance(value, bool):
                raise FieldError(_("a yes/no value cannot be stored as text"))
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return str(value)
        if self.crm_type == FieldType.DATE:
            try:
                return date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError:
                raise FieldError(_("%(value)r is not a date") % {"value": value}) from None
        return str(value)

    def to_crm_value(self, canonical: Any) -> Any:
        """The value to set on the CRM record's ``column``."""
        if canonical is None:
            return None if self.crm_type != FieldType.TEXT else ""
        if self.crm_type == FieldType.LIST:
            if canonical not in self.to_crm_item:
                raise FieldError(_("no CRM item is mapped to ERP item %(item)s") % {"item": canonical})
            return self.to_crm_item[canonical]
        if self.crm_type == FieldType.DATE:
            return date.fromisoformat(canonical)
        limit = getattr(self.model_field, "max_length", None)
        if limit and len(canonical) > limit:
            raise FieldError(
                _("%(length)s characters do not fit the CRM field (at most %(limit)s)")
                % {"length": len(canonical), "limit": limit}
            )
        return canonical

    def to_erp_value(self, canonical: Any) -> Any:
        """The protocol value to send in SaveActors."""
        if canonical is None:
            return None
        if self.erp.max_length and isinstance(canonical, str) and len(canonical) > self.erp.max_length:
            raise FieldError(
                _("%(length)s characters do not fit the ERP field (at most %(limit)s)")
                % {"length": len(canonical), "limit": self.erp.max_length}
            )
        return canonical


def mapped_fields(connection: Any, actor_type: str) -> list[Any]:
    """The ERP fields of ``actor_type`` that sync: mapped to a CRM field, with a direction."""
    return [f for f in connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False)
            if f.crm_field and f.direction]  # fmt: skip


def converters_for(connection: Any, actor_type: str, mapped: list[Any]) -> dict[str, FieldConverter]:
    """A converter per mapped field, with the connection's list mappings (one query)."""
    from ..models import ListMapping

    lists: dict[str, dict[str, int | None]] = {}
    for row in ListMapping.objects.filter(connection=connection, actor_type=actor_type):
        lists.setdefault(row.field_key, {})[row.erp_key] = row.crm_item_id
    model = CRM_MODEL[actor_type]
    return {f.key: FieldConverter(model, f, lists.get(f.key, {})) for f in mapped}
