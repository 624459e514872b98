"""Held conflicts, as the engine meets them (docs/sync-semantics.md, "Held conflicts").

A field that holds conflicts for review gets a ``HeldConflict`` row instead of a decision by sync priority. While
the row is open and unresolved, neither side of that field is written and its baseline stays; each sync keeps the
row's values up to date. A resolved row makes the next sync write the chosen value where it is missing, and is
closed once both sides hold it. A conflict that settles itself (both sides come to agree) is closed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..bulk import update_rows
from ..models import HeldConflict, Link
from .merge import Decision, resolved


@dataclass
class Held:
    """The open held conflicts of one link being synced, and what this sync found about them."""

    rows: dict[str, HeldConflict] = field(default_factory=dict)  # field key → open row
    new: set[str] = field(default_factory=set)  # held by this sync
    settled: set[str] = field(default_factory=set)  # both sides agree now: closed


def open_for(links: list[Link]) -> dict[int, Held]:
    """The open held conflicts of ``links``, by link id (one query)."""
    held: dict[int, Held] = {link.pk: Held() for link in links}
    for row in HeldConflict.objects.filter(link__in=links, closed_at__isnull=True):
        held[row.link_id].rows[row.field_key] = row
    return held


def decisions(held: Held, key: str, crm: Any, erp: Any, crm_changed_at: Any, erp_changed_at: Any) -> list[Decision]:
    """What a sync does with a field that has an open held row: nothing while it waits for review (its values are
    kept up to date), the chosen value once it is resolved, or agree when both sides came to the same value."""
    row = held.rows[key]
    if row.resolved_at is not None:
        return resolved(crm, erp, row.resolved_value)
    if crm == erp:
        held.settled.add(key)
        return [Decision("agree", crm)]
    if row.crm_value != crm:
        row.crm_value, row.crm_changed_at = crm, crm_changed_at
    if row.erp_value != erp:
        row.erp_value, row.erp_changed_at = erp, erp_changed_at
    return []


def hold(
    held: Held, link: Link, key: str, crm: Any, erp: Any, base: Any, crm_changed_at: Any, erp_changed_at: Any
) -> None:
    """Keep a new conflict for review."""
    held.rows[key] = HeldConflict(
        link=link,
        connection_id=link.connection_id,
        field_key=key,
        crm_value=crm,
        erp_value=erp,
        base_value=base,
        crm_changed_at=crm_changed_at,
        erp_changed_at=erp_changed_at,
    )
    held.new.add(key)


def store(records: list[Any], now: datetime) -> None:
    """After the writes, in the batch's transaction: new rows, rows with new values, and rows closed (settled, or
    resolved and now held by both sides: no error for the field, and its baseline is the chosen value)."""
    new, changed, closed = [], [], []
    for record in records:
        held: Held = record.held
        failed = {entry.field_key for entry in record.logs if entry.outcome == "error"}
        for key, row in held.rows.items():
            if key in held.new:
                row.first_seen = row.last_seen = now
                new.append(row)
            elif key in held.settled:
                closed.append(row.pk)
            elif row.resolved_at is not None:
                if key not in failed and key in record.baseline and record.baseline[key] == row.resolved_value:
                    closed.append(row.pk)
            else:  # still waiting for review: seen now, with the values seen
                row.last_seen = now
                changed.append(row)
    HeldConflict.objects.bulk_create(new, ignore_conflicts=True)
    update_rows(HeldConflict, changed, ["crm_value", "erp_value", "crm_changed_at", "erp_changed_at", "last_seen"])
    HeldConflict.objects.filter(pk__in=closed, closed_at__isnull=True).update(closed_at=now)
