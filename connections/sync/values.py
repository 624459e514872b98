"""Converting field values between the CRM and the protocol's typed JSON, in one canonical form per field.

Both sides are compared, and baselines stored, in the canonical form of the CRM field: text (None when
empty), an ISO date, for list fields the ERP item key the CRM item is mapped to, or for decimal fields the
number as a string with the CRM field's decimal places ("1234.50"), so that equal amounts compare equal
whatever form each side wrote them in, and no float ever stands in between.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_noop as N_

from connectors.protocol import FieldType, decimal_value, parse_decimal
from crm.validators import clean_value

from .. import said
from ..mapping import CRM_MODEL, crm_field_type
from ..models import ListMapping


class FieldError(Exception):
    """A value that cannot be converted, or a list item with no mapping: fails this field of this record only.

    ``str(error)`` is the reason in the active language; ``error.said`` the same for each reader's language."""

    def __init__(self, text: str, message: said.Message | None = None) -> None:
        super().__init__(text)
        self.said = message if message is not None else said.texts({}, text)

    @classmethod
    def of(cls, msgid: str, **params: Any) -> FieldError:
        message = said.msg(msgid, **params)
        return cls(said.render(message), message)

    @classmethod
    def refused(cls, error: ValidationError) -> FieldError:
        """What the CRM's own checks said, each of their messages kept for each reader's language."""
        parts = []
        for item in error.error_list:
            params = {k: v if isinstance(v, str | int | float) else str(v) for k, v in (item.params or {}).items()}
            # A lazy message (gettext_lazy) knows its msgid; a plural one or a plain string is kept as it reads.
            args: tuple[Any, ...] = getattr(item.message, "_args", ()) if isinstance(item.message, Promise) else ()
            msgid = args[0] if len(args) == 1 and not getattr(item.message, "_kw", None) else None
            if isinstance(msgid, str):
                parts.append(said.msg(msgid, **params))
            else:
                parts.append(said.texts({}, str(item.message % params if params else item.message)))
        return cls(" ".join(error.messages), said.lines(parts, " "))


class ValueRefused(FieldError):
    """A value the CRM refuses to store (what its edit form would refuse): that field is left as the CRM has it."""


class FieldConverter:
    """Conversions for one mapped ERP field of one connection."""

    def __init__(self, model: type[models.Model], erp_field: Any, list_map: dict[str, int | None]) -> None:
        self.erp = erp_field
        self.attribute = model.field_keys[erp_field.crm_field]  # type: ignore[attr-defined]
        self.model_field = cast("models.Field[Any, Any]", model._meta.get_field(self.attribute))
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
                raise FieldError.of(
                    N_("no ERP item is mapped to CRM item %(item)s"), item=str(getattr(record, self.attribute))
                )
            return self.to_erp_item[value]
        if self.crm_type == FieldType.DATE:
            return value.isoformat()
        if self.crm_type == FieldType.DECIMAL:
            return self._canonical_decimal(value)
        return str(value)

    def _canonical_decimal(self, value: Any) -> str:
        """A number as the CRM decimal field keeps it: its decimal places, exactly, or FieldError."""
        try:
            number = parse_decimal(value)
            return decimal_value(number, self.model_field.decimal_places)  # type: ignore[attr-defined]
        except ValueError:
            raise FieldError.of(
                N_("%(value)s does not fit the CRM field (at most %(places)s decimal places)"),
                value=str(value),
                places=self.model_field.decimal_places,  # type: ignore[attr-defined]
            ) from None

    def from_erp(self, value: Any) -> Any:
        if value in (None, ""):
            return None
        if self.crm_type == FieldType.DECIMAL:
            if isinstance(value, bool):
                raise FieldError.of(N_("a yes/no value cannot be stored as a number"))
            return self._canonical_decimal(value)
        if self.crm_type == FieldType.TEXT:
            if isinstance(value, bool):
                raise FieldError.of(N_("a yes/no value cannot be stored as text"))
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            # The CRM field's own reading of the text (a web address without a scheme is taken as https), so
            # both sides are compared in the form the CRM stores.
            return self.model_field.to_python(str(value))
        if self.crm_type == FieldType.DATE:
            try:
                return date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError:
                raise FieldError.of(N_("%(value)r is not a date"), value=value) from None
        return str(value)

    def to_crm_value(self, canonical: Any) -> Any:
        """The value to set on the CRM record's ``column``."""
        if canonical is None and self.crm_type != FieldType.TEXT:
            return None
        if self.crm_type == FieldType.LIST:
            if canonical not in self.to_crm_item:
                raise FieldError.of(N_("no CRM item is mapped to ERP item %(item)s"), item=str(canonical))
            return self.to_crm_item[canonical]
        if self.crm_type == FieldType.DATE:
            return date.fromisoformat(canonical)
        if self.crm_type == FieldType.DECIMAL:
            try:
                return clean_value(self.model_field, Decimal(canonical))
            except ValidationError as error:
                raise ValueRefused.refused(error) from None
        # What a form would refuse is refused here too: a required field left blank, lengths, e-mail, web
        # addresses, control characters.
        try:
            return clean_value(self.model_field, "" if canonical is None else canonical)
        except ValidationError as error:
            raise ValueRefused.refused(error) from None

    def to_erp_value(self, canonical: Any) -> Any:
        """The protocol value to send in SaveActors."""
        if canonical is None:
            return None
        if self.crm_type == FieldType.DECIMAL:
            if self.erp.type == FieldType.DOUBLE:
                return float(canonical)
            places = self.erp.decimal_places
            try:
                if places is None or len(canonical.partition(".")[2]) <= places:
                    return canonical
                return decimal_value(parse_decimal(canonical), places)  # "1234.50" to one place: "1234.5"
            except ValueError:
                raise FieldError.of(
                    N_("%(value)s does not fit the ERP field (at most %(places)s decimal places)"),
                    value=str(canonical),
                    places=self.erp.decimal_places,
                ) from None
        if self.erp.max_length and isinstance(canonical, str) and len(canonical) > self.erp.max_length:
            raise FieldError.of(
                N_("%(length)s characters do not fit the ERP field (at most %(limit)s)"),
                length=len(canonical),
                limit=self.erp.max_length,
            )
        return canonical


def mapped_fields(connection: Any, actor_type: str) -> list[Any]:
    """The ERP fields of ``actor_type`` that sync: mapped to a CRM field, with a direction."""
    return [
        f
        for f in connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False)
        if f.crm_field and f.direction
    ]


def converters_for(connection: Any, actor_type: str, mapped: list[Any]) -> dict[str, FieldConverter]:
    """A converter per mapped field, with the connection's list mappings (one query)."""
    lists: dict[str, dict[str, int | None]] = {}
    for row in ListMapping.objects.filter(connection=connection, actor_type=actor_type):
        lists.setdefault(row.field_key, {})[row.erp_key] = row.crm_item_id
    model = CRM_MODEL[actor_type]
    return {f.key: FieldConverter(model, f, lists.get(f.key, {})) for f in mapped}
