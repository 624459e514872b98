"""Stored ERP values as pages show them: the sync history and log, and the ERP tab's synced values.

The values are kept in their canonical form (``connections.sync.values``): a list field holds the ERP item's key,
whose text comes from the list mapping; numbers, dates and times are formatted by ``connections.display``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from . import display
from .models import ErpActorType, ErpField, ListMapping

FieldId = tuple[int, str, str]  # connection id, actor type, ERP field key


def item_texts(fields: Iterable[FieldId]) -> dict[FieldId, dict[str, str]]:
    """The ERP item texts of list fields, in the reader's language, from their list mappings (one query)."""
    wanted = set(fields)
    if not wanted:
        return {}
    query = Q()
    for connection_id, actor_type, key in wanted:
        query |= Q(connection_id=connection_id, actor_type=actor_type, field_key=key)
    texts: dict[FieldId, dict[str, str]] = {}
    for row in ListMapping.objects.filter(query).only(
        "connection_id", "actor_type", "field_key", "erp_key", "erp_text", "erp_labels"
    ):
        field_id = (row.connection_id, row.actor_type, row.field_key)
        texts.setdefault(field_id, {})[row.erp_key] = display.pick(row.erp_labels, row.erp_text)
    return texts


def describe_log(entries: Iterable[Any]) -> list[Any]:
    """Give each sync log entry ``field_label``, ``old_text`` and ``new_text`` as the reader reads them: the ERP
    field's label in their language, list values as item texts, numbers, dates and times in their format. Two
    queries for any number of entries."""
    entries = list(entries)
    ids = {(e.connection_id, e.actor_type, e.field_key) for e in entries if e.field_key}
    fields: dict[FieldId, ErpField] = {}
    if ids:
        query = Q()
        for connection_id, actor_type, key in ids:
            query |= Q(connection_id=connection_id, actor_type=actor_type, key=key)
        fields = {(f.connection_id, f.actor_type, f.key): f for f in ErpField.objects.filter(query)}
    texts = item_texts(i for i, f in fields.items() if f.type == "list")
    for entry in entries:
        field_id = (entry.connection_id, entry.actor_type, entry.field_key)
        field = fields.get(field_id)
        if field is None:
            entry.field_label = entry.field_key
            entry.old_text, entry.new_text = display.format_value(entry.old), display.format_value(entry.new)
            continue
        entry.field_label = field.display_label
        entry.old_text = field.format(entry.old, texts.get(field_id) if field.type == "list" else None)
        entry.new_text = field.format(entry.new, texts.get(field_id) if field.type == "list" else None)
    return entries


def type_labels(connection: Any, actor_type: str) -> dict[str, str] | None:
    """The connector's names of ``actor_type`` in ``connection`` by language (read once per connection object)."""
    if connection is None or not getattr(connection, "pk", None):
        return None
    labels = getattr(connection, "_actor_type_labels", None)
    if labels is None:
        labels = {t.actor_type: t.labels for t in ErpActorType.objects.filter(connection_id=connection.pk)}
        connection._actor_type_labels = labels
    return labels.get(actor_type)


def actor_type_name(connection: Any, actor_type: str) -> str:
    """An actor type's name in a heading or cell, in the reader's language (the connection's connector's, else ours)."""
    return display.actor_type_name(actor_type, type_labels(connection, actor_type))


def actor_type_word(connection: Any, actor_type: str) -> str:
    """An actor type's name inside a sentence."""
    return display.actor_type_word(actor_type, type_labels(connection, actor_type))
