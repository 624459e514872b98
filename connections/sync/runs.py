"""What a sync run does, by kind: Sync now (one link), Sync all and Resync from CRM (every link of the
connection) and automatic sync (the links that changed on either side since the last run)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors import protocol as p

from ..choices import MARKED_STATUSES, LinkStatus, RunKind, RunStatus
from ..jobs import Counts, Deferred, SyncRefused, checkpoint, performs
from ..mapping import CRM_MODEL
from ..models import ErpConnection, Link, SyncChunk, SyncRun
from . import parts, plan, tombstones
from .engine import not_yet_synced, sync_links


@performs(RunKind.SYNC_NOW, RunKind.SYNC_ALL, RunKind.RESYNC, RunKind.AUTOMATIC)
def perform_sync(run: SyncRun) -> Counts | None:
    """Sync now syncs its link here. A bulk run chooses its links and splits them into parts, which workers sync
    (``perform_part``); the last part to end ends the run. A bulk run taken back after its worker stopped while
    choosing finds its parts made (they are made in one transaction) and sends those not yet sent."""
    if run.kind == RunKind.SYNC_NOW:
        if run.link is None:
            raise SyncRefused(_("The link was removed before the sync ran."))
        bulk = parts.covering_bulk_run(run.link)
        if bulk is not None:
            raise Deferred(
                _("Waiting for %(run)s, which has still to reach this record.") % {"run": bulk.get_kind_display()}
            )
        one = not_yet_synced(run, [run.link])
        SyncRun.objects.filter(pk=run.pk).update(total=F("done") + len(one))
        return sync_links(run, one)
    if run.chunks.exists():
        parts.dispatch(run.pk)
        return None
    if run.kind == RunKind.AUTOMATIC:
        chosen = automatic_links(run)
    elif run.plan_id is not None:
        chosen = plan.planned_links(run)  # an approved plan: exactly its links
    else:
        chosen = list(run.connection.links.values_list("pk", "actor_type"))
    if not parts.split(run, chosen):
        # Nothing to sync: the run ends here (automatic sync still moves past the changes it read).
        parts.finish_without_parts(run)
        return Counts()
    parts.dispatch(run.pk)
    return None


@parts.performs_parts(RunKind.SYNC_ALL, RunKind.RESYNC, RunKind.AUTOMATIC)
def perform_part(part: SyncChunk) -> Counts:
    """Sync the part's links past its checkpoint. A link whose own Sync now is running is left to it. A run that
    carries out an approved plan writes only the planned fields, each as planned (``plan.execute_part``)."""
    run = part.run
    if run.plan_id is not None:
        return plan.execute_part(part)
    wanted = [link_id for link_id in part.link_ids if link_id > part.position]
    busy = set(
        SyncRun.objects.filter(kind=RunKind.SYNC_NOW, status=RunStatus.RUNNING, link_id__in=wanted).values_list(
            "link_id", flat=True
        )
    )
    links = list(Link.objects.filter(pk__in=[i for i in wanted if i not in busy]).order_by("pk"))
    gone = len(wanted) - len(links)  # removed since the run chose them, or being synced by their Sync now
    if gone:
        parts.checkpoint(part, gone, 0, 0, [])

    def record(done: int, changed: int, failed: int, batch: list[Link]) -> None:
        parts.checkpoint(part, done, changed, failed, batch)

    counts = sync_links(run, links, resync=run.kind == RunKind.RESYNC, keep_non_blank=run.keep_non_blank, record=record)
    counts.done += gone
    return counts


def save_feed_position(run: SyncRun) -> None:
    """Once every part of an automatic run has ended, none failed: automatic sync moves past the changes it read."""
    since = run.started_at or timezone.now()
    save_resume_points(run.connection, {t: (c, since) for t, c in run.checkpoint.get("cursors", {}).items()})


parts.when_finished(RunKind.AUTOMATIC, save_feed_position)


def automatic_links(run: SyncRun) -> list[tuple[int, str]]:
    """The links (id, actor type) an automatic run syncs. Where each actor type's change feed resumes next time
    goes into the run's checkpoint, and is saved once every part has ended (``save_feed_position``). A run taken
    back before its parts were made keeps its first attempt's cursors: links changed again since are synced by
    the next run.

    ERP side: every page of the change feed from the saved cursor. CRM side: records changed since the last run.
    Links that failed before are always included, so a failure is retried until it succeeds. Tombstones in the
    feed mark their links, which are left out until their actor comes back (``tombstones``).
    """
    connection = run.connection
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    if client.notify_url != connection.notify_url_sent:
        # The connector took up change notifications, or the CRM's address changed, since the connection was
        # saved: the connector is told where to send them (or, with none, to stop).
        client.save()
        ErpConnection.objects.filter(pk=connection.pk).update(notify_url_sent=client.notify_url)
    cursors: dict[str, str] = {}
    selected = Q(status__in=[LinkStatus.FAILED])
    for actor_type in connection.actor_types.filter(sync_enabled=True):
        changed: set[str] = set()
        cursor = actor_type.feed_cursor or None
        gone: dict[str, tombstones.FeedEvent] = {}
        for page in client.changes(p.ActorType(actor_type.actor_type), cursor=cursor, page_size=p.MAX_PAGE_SIZE):
            events = tombstones.last_events(page) if page.tombstones else {}
            keys = {actor.key for actor in page.actors if actor.key and not events.get(actor.key, _CHANGED).kind}
            changed = (changed - {k for k, e in events.items() if e.kind}) | keys
            gone = {k: e for k, e in {**gone, **events}.items() if e.kind and k not in keys}
            cursor = page.next_cursor
        tombstones.apply(run, actor_type.actor_type, changed, gone)
        cursors[actor_type.actor_type] = cursor or ""
        selected |= Q(actor_type=actor_type.actor_type, erp_key__in=changed)
        since = actor_type.crm_changes_since
        model = CRM_MODEL[actor_type.actor_type]
        attribute = {"Person": "contact", "Project": "project"}.get(actor_type.actor_type, "company")
        recent = model._default_manager.filter(updated_at__gte=since) if since else model._default_manager.all()
        selected |= Q(actor_type=actor_type.actor_type, **{f"{attribute}__in": recent.values("pk")})
    if "cursors" not in run.checkpoint:
        with transaction.atomic():
            checkpoint(run, position={**run.checkpoint, "cursors": cursors})
    chosen = connection.links.filter(selected).exclude(status__in=MARKED_STATUSES)
    return list(chosen.distinct().values_list("pk", "actor_type"))


_CHANGED = tombstones.FeedEvent()


def save_resume_points(connection: ErpConnection, resume: dict[str, tuple[str, datetime]]) -> None:
    for actor_type, (cursor, since) in resume.items():
        connection.actor_types.filter(actor_type=actor_type).update(feed_cursor=cursor, crm_changes_since=since)
