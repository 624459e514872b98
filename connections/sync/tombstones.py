"""What the change feed's tombstones (protocol v1.1, capability tombstones) do to links: a link whose ERP actor
was deleted, merged into another or archived is marked, and is not synced until the actor comes back in the feed
(an archived one restored) or the record is linked again (to the surviving actor of a merge).

docs/sync-semantics.md, "When the ERP actor is deleted, merged or archived", is this module in prose."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from connectors import protocol as p

from ..choices import MARKED_STATUSES, TOMBSTONE_STATUS, LinkStatus, LogOutcome
from ..models import Link, SyncLogEntry, SyncRun


@dataclass(frozen=True)
class FeedEvent:
    """The last thing the feed said of one key: it changed (``kind`` empty), or a tombstone's kind."""

    kind: str = ""
    merged_into: str = ""


def last_events(page: p.FeedData) -> dict[str, FeedEvent]:
    """Per ERP key in a page, the last of its entries, actors and tombstones taken in their (last_modified, key)
    order: an actor archived and restored within one page is back."""
    entries: list[tuple[datetime, str, FeedEvent]] = []
    entries += [(a.last_modified, a.key, FeedEvent()) for a in page.actors if a.key and a.last_modified]
    entries += [(t.last_modified, t.key, FeedEvent(t.kind.value, t.merged_into or "")) for t in page.tombstones]
    events: dict[str, FeedEvent] = {}
    for _when, key, event in sorted(entries, key=lambda entry: (entry[0], entry[1])):
        events[key] = event
    return events


def message(status: str, merged_into: str = "") -> str:
    """What the CRM says of a marked link, in the active language."""
    if status == LinkStatus.ERP_ARCHIVED:
        return _("The ERP actor was archived; it can be restored in the ERP.")
    if status == LinkStatus.ERP_MERGED:
        return _("The ERP actor was merged into %(key)s.") % {"key": merged_into}
    return _("The ERP actor was deleted.")


@transaction.atomic
def apply(run: SyncRun, actor_type: str, changed: set[str], gone: dict[str, FeedEvent]) -> None:
    """Mark the links whose actor got a tombstone (``gone``; once: a link already marked so is left alone, and one
    log entry says it), and unmark those whose actor came back (among ``changed``), so that the run syncs them."""
    marked = run.connection.links.filter(actor_type=actor_type, status__in=MARKED_STATUSES)
    back = [pk for pk, key in marked.values_list("pk", "erp_key") if key in changed]
    if back:
        Link.objects.filter(pk__in=back).update(status=LinkStatus.OK, merged_into="", last_error="", repeats=0)
    if not gone:
        return
    entries = []
    for link in run.connection.links.filter(actor_type=actor_type, erp_key__in=list(gone)):
        event = gone[link.erp_key]
        status = TOMBSTONE_STATUS[event.kind]
        if (link.status, link.merged_into) == (status, event.merged_into):
            continue
        link.status, link.merged_into, link.repeats = status, event.merged_into, 0
        link.last_error = message(status, event.merged_into)
        link.save(update_fields=["status", "merged_into", "last_error", "repeats"])
        entries.append(
            SyncLogEntry(
                run=run,
                link=link,
                connection=run.connection,
                actor_type=actor_type,
                erp_key=link.erp_key,
                outcome=LogOutcome.SKIPPED,
                reason=link.last_error,
            )
        )
    SyncLogEntry.objects.bulk_create(entries)
