"""Held conflicts for people: what is held (for the ERP tab and the per-connection queue) and resolving one.

The engine holds a conflict on a field that holds conflicts for review (``connections.sync.held``). Resolving it
here keeps the chosen value on the row, audited, and queues Sync now of the link: that sync writes the chosen value
to each side that lacks it and closes the row (docs/sync-semantics.md, "Held conflicts").
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from connectors.protocol import FieldType
from crm.forms import LINE_BREAK
from crm.validators import is_multiline

from . import display, jobs, said, services, shown
from .audit import audit
from .choices import AuditAction
from .mapping import CRM_MODEL
from .models import ErpConnection, ErpField, HeldConflict, ListMapping, SyncRun
from .sync.values import FieldConverter, FieldError, converters_for

Choice = HeldConflict.Choice
# The choices as the audit keeps them, for each admin's language.
CHOICE_SAID = {
    Choice.CRM.value: N_("the CRM value"),
    Choice.ERP.value: N_("the ERP value"),
    Choice.EDITED.value: N_("an edited value"),
}


class ConflictRefused(Exception):
    """A resolution that cannot be made; the message says why, and nothing was changed."""


def gone_text() -> str:
    return _("This conflict is no longer held: a sync has settled it meanwhile. Reload the page.")


def open_conflicts(connection: ErpConnection) -> QuerySet[HeldConflict]:
    """The connection's held conflicts still open, oldest first, with their links' records."""
    return (
        HeldConflict.objects.filter(connection=connection, closed_at__isnull=True)
        .select_related("link__company", "link__contact", "link__project", "resolved_by")
        .order_by("first_seen", "pk")
    )


def open_count(connection: ErpConnection) -> int:
    return HeldConflict.objects.filter(connection=connection, closed_at__isnull=True).count()


def for_links(links: list[Any]) -> dict[int, list[HeldConflict]]:
    """The open held conflicts of ``links``, as people read them, by link id."""
    if not links:
        return {}
    rows = HeldConflict.objects.filter(link__in=links, closed_at__isnull=True).select_related("link", "resolved_by")
    by_link: dict[int, list[HeldConflict]] = {}
    for row in describe(list(rows.order_by("first_seen", "pk"))):
        by_link.setdefault(row.link_id, []).append(row)
    return by_link


def describe(rows: list[HeldConflict]) -> list[HeldConflict]:
    """Give each row ``field_label``, ``crm_text``, ``erp_text``, ``base_text`` and ``resolved_text`` in the
    reader's language and format, and ``options`` (list fields: the mapped items an edited value may be) —
    a fixed number of queries for any number of rows."""
    if not rows:
        return rows
    connections = {row.connection_id for row in rows}
    fields = {
        (f.connection_id, f.actor_type, f.key): f
        for f in ErpField.objects.filter(connection__in=connections, key__in={row.field_key for row in rows})
    }
    ids = {(row.connection_id, row.link.actor_type, row.field_key) for row in rows}
    texts = shown.item_texts(i for i in ids if i in fields and fields[i].type == FieldType.LIST)
    mapped: dict[tuple[int, str, str], list[str]] = {}
    for item in ListMapping.objects.filter(connection__in=connections, crm_item_id__isnull=False).order_by("erp_key"):
        mapped.setdefault((item.connection_id, item.actor_type, item.field_key), []).append(item.erp_key)
    for row in rows:
        field_id = (row.connection_id, row.link.actor_type, row.field_key)
        erp_field = fields.get(field_id)
        item_texts = texts.get(field_id)

        def text(value: Any, erp_field: ErpField | None = erp_field, item_texts: Any = item_texts) -> str:
            return erp_field.format(value, item_texts) if erp_field else display.format_value(value)

        row.field_label = erp_field.display_label if erp_field else row.field_key  # type: ignore[attr-defined]
        row.crm_text, row.erp_text = text(row.crm_value), text(row.erp_value)  # type: ignore[attr-defined]
        row.base_text = text(row.base_value)  # type: ignore[attr-defined]
        row.resolved_text = text(row.resolved_value) if row.resolved_at else ""  # type: ignore[attr-defined]
        row.edit_value = edit_text(erp_field, row.crm_value)  # type: ignore[attr-defined]
        # A field of several lines (an address) is edited in a box of several lines, and shown with its lines.
        row.multiline = multiline(row.link.actor_type, erp_field)  # type: ignore[attr-defined]
        row.options = (  # type: ignore[attr-defined]
            [(key, (item_texts or {}).get(key, key)) for key in mapped.get(field_id, [])]
            if erp_field and erp_field.type == FieldType.LIST
            else []
        )
    return rows


def multiline(actor_type: str, erp_field: ErpField | None) -> bool:
    """Whether the CRM field ``erp_field`` syncs with may hold several lines."""
    model = CRM_MODEL.get(actor_type)
    if erp_field is None or model is None or erp_field.crm_field not in model.field_keys:
        return False
    return is_multiline(model._meta.get_field(model.field_keys[erp_field.crm_field]))


def edit_text(erp_field: ErpField | None, value: Any) -> str:
    """A canonical value as the edit box starts from it: numbers and dates as the reader types them (their decimal
    mark and date format, no grouping), so that keeping it as it is reads back the same value."""
    if value is None:
        return ""
    try:
        if erp_field is not None and erp_field.type in (FieldType.DECIMAL, FieldType.DOUBLE):
            return str(formats.localize_input(Decimal(str(value))))
        if erp_field is not None and erp_field.type == FieldType.DATE:
            return str(formats.localize_input(date.fromisoformat(str(value)[:10])))
    except (ArithmeticError, ValueError):
        pass
    return str(value)


def parse_edited(converter: FieldConverter, text: str) -> Any:
    """An edited value, typed as the reader writes it, in the field's canonical form; FieldError or
    ValidationError when it is not one, or when either side would refuse it."""
    text = text.strip()
    if not text:
        canonical = None
    elif converter.crm_type == FieldType.DATE:
        canonical = forms.DateField(localize=True).clean(text).isoformat()
    elif converter.crm_type == FieldType.DECIMAL:
        canonical = converter.from_erp(str(forms.DecimalField(localize=True).clean(text)))
    else:
        canonical = converter.from_erp(text)
    converter.to_crm_value(canonical)  # what the CRM's edit form would refuse
    converter.to_erp_value(canonical)  # what does not fit the ERP field
    return canonical


def _same_as_a_side(row: HeldConflict, erp_field: ErpField, edited: str) -> Any:
    """The CRM's or the ERP's value, to the byte, when the edited value is that value as its box showed it (a
    browser sends a box's line breaks back as CRLF); else None."""
    sent = LINE_BREAK.sub("\n", edited)
    for value in (row.crm_value, row.erp_value):
        if value is not None and sent == LINE_BREAK.sub("\n", edit_text(erp_field, value)):
            return value
    return None


def resolve(conflict: HeldConflict, choice: str, edited: str, user: Any) -> tuple[str, SyncRun | None]:
    """Resolve an open held conflict with the CRM value, the ERP value or an edited value; queue Sync now of its
    link. Returns what was done, for the user, and the Sync now run (None when the connection cannot sync now: the
    chosen value is written by the link's next sync); ConflictRefused (nothing changed) when it cannot be done."""
    if choice not in Choice.values:
        raise ConflictRefused(_("Choose the CRM value, the ERP value or an edited value."))
    with transaction.atomic():
        row = HeldConflict.objects.select_for_update().select_related("link", "connection").get(pk=conflict.pk)
        if row.closed_at is not None:
            raise ConflictRefused(gone_text())
        link = row.link
        erp_field = ErpField.objects.filter(
            connection=row.connection, actor_type=link.actor_type, key=row.field_key, missing_in_erp=False
        ).first()
        if erp_field is None or not erp_field.crm_field or not erp_field.direction:
            raise ConflictRefused(_("The field no longer syncs; map it again to resolve this conflict."))
        if choice == Choice.CRM:
            value = row.crm_value
        elif choice == Choice.ERP:
            value = row.erp_value
        elif (kept := _same_as_a_side(row, erp_field, edited)) is not None:
            value = kept
        else:
            converter = converters_for(row.connection, link.actor_type, [erp_field])[erp_field.key]
            try:
                value = parse_edited(converter, LINE_BREAK.sub("\n", edited))
            except FieldError as error:
                raise ConflictRefused(
                    _("%(field)s: the edited value cannot be used: %(why)s")
                    % {"field": erp_field.display_label, "why": error}
                ) from None
            except ValidationError as error:
                raise ConflictRefused(
                    _("%(field)s: the edited value cannot be used: %(why)s")
                    % {"field": erp_field.display_label, "why": " ".join(error.messages)}
                ) from None
        row.choice, row.resolved_value = choice, value
        row.resolved_at, row.resolved_by = timezone.now(), user if getattr(user, "is_authenticated", False) else None
        row.save(update_fields=["choice", "resolved_value", "resolved_at", "resolved_by"])
        audit(
            user,
            AuditAction.CHANGED,
            row.connection,
            said.msg(
                N_("held conflict on %(field)s of %(record)s resolved with %(choice)s: %(value)s"),
                field=f"{link.actor_type}.{row.field_key}",
                record=str(link.crm_record),
                choice=said.msg(CHOICE_SAID[choice]),
                value="—" if value is None else str(value),
            ),
        )
    field_id = (row.connection_id, link.actor_type, erp_field.key)
    texts = shown.item_texts([field_id]).get(field_id) if erp_field.type == FieldType.LIST else None
    done = _("%(field)s: %(value)s is kept.") % {
        "field": erp_field.display_label,
        "value": erp_field.format(value, texts),
    }
    link.connection = row.connection
    try:
        run, _created = services.start_sync_now(link, user)
    except jobs.SyncRefused as refusal:
        return _("%(done)s It is written when the link syncs next: %(why)s") % {"done": done, "why": refusal}, None
    return _("%(done)s Syncing now.") % {"done": done}, run
