"""Reconciliation: every link's mapped fields compared on both sides against the baseline, without writing.

A reconciliation is a bulk run in parts, like Sync all, but each batch only reads (GetActors and the CRM records)
and asks the sync rule what it would do (``engine._decide``); what it finds is kept on each link as its drift
state (in step, drifted, failed, missing or archived, outside the sync filter). Nothing is written on either
side, and no baseline moves. The connection's page adds the states up; "Sync drifted records" then syncs exactly
the links found drifted, through the rule, as Sync all would. A sync of a link since keeps its state up to date
(``engine._finish_batch``).

Connections that reconcile every night are reconciled by beat's tick within ERPSYNC_RECONCILE_HOUR.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ..choices import MARKED_STATUSES, DriftState, RunKind
from ..filters import SyncFilter
from ..jobs import AlreadyRunning, Counts, SyncRefused, new_bulk_run, performs, sync_refusal
from ..models import ErpConnection, Link, SyncChunk, SyncRun, SyncSettings
from . import parts
from .engine import BATCH, _decide
from .runs import perform_part
from .values import mapped_fields

log = logging.getLogger(__name__)

# The order the states are shown in.
STATES = (DriftState.IN_STEP, DriftState.DRIFTED, DriftState.FAILED, DriftState.MISSING, DriftState.OUTSIDE)


def queue_reconcile(connection: ErpConnection, user: object = None) -> SyncRun:
    """Queue a reconciliation of every link of the connection; refused as a bulk run is."""
    refusal = sync_refusal(connection)
    if refusal:
        raise SyncRefused(refusal)
    return new_bulk_run(connection, RunKind.RECONCILE, user=user, total=connection.links.count())


def queue_sync_drifted(connection: ErpConnection, user: object = None) -> SyncRun:
    """Queue a sync of the links the last reconciliation found drifted; refused when there are none."""
    refusal = sync_refusal(connection)
    if refusal:
        raise SyncRefused(refusal)
    drifted = drifted_links(connection).count()
    if not drifted:
        raise SyncRefused(_("No record of %(name)s has drifted: there is nothing to sync.") % {"name": connection})
    return new_bulk_run(connection, RunKind.SYNC_DRIFTED, user=user, total=drifted)


def drifted_links(connection: ErpConnection) -> QuerySet[Link]:
    """The links found drifted that still sync (not marked deleted, merged or archived since)."""
    return connection.links.filter(drift=DriftState.DRIFTED).exclude(status__in=MARKED_STATUSES)


def summary(connection: ErpConnection) -> dict[str, int]:
    """How many of the connection's links are in each drift state (states never looked at are left out)."""
    counted = dict(
        connection.links.exclude(drift="").values_list("drift").annotate(n=Count("pk")).values_list("drift", "n")
    )
    return {state.value: counted.get(state.value, 0) for state in STATES}


@performs(RunKind.RECONCILE, RunKind.SYNC_DRIFTED)
def perform(run: SyncRun) -> Counts | None:
    """Choose the links and split them into parts, which workers reconcile (or sync); the last part ends the run."""
    if run.chunks.exists():
        parts.dispatch(run.pk)
        return None
    if run.kind == RunKind.RECONCILE:
        chosen = list(run.connection.links.values_list("pk", "actor_type"))
    else:
        chosen = list(drifted_links(run.connection).values_list("pk", "actor_type"))
    if not parts.split(run, chosen):
        parts.finish_without_parts(run)
        return Counts()
    parts.dispatch(run.pk)
    return None


# Syncing the drifted links is syncing links: the part does what a part of Sync all does.
parts.performs_parts(RunKind.SYNC_DRIFTED)(perform_part)


@parts.performs_parts(RunKind.RECONCILE)
def reconcile_part(part: SyncChunk) -> Counts:
    """Look at the part's links past its checkpoint, batch by batch, and keep each one's state. Counts: records
    looked at (done) and found drifted (changed); a record whose values could not be compared is a state, not a
    failure of the run."""
    run = part.run
    connection = run.connection
    wanted = [link_id for link_id in part.link_ids if link_id > part.position]
    links = list(Link.objects.filter(pk__in=wanted).order_by("pk"))
    counts = Counts(done=len(wanted) - len(links))  # removed since the run chose them
    if counts.done:
        parts.checkpoint(part, counts.done, 0, 0, [])
    if not links:
        return counts
    actor_type = part.actor_type
    mapped = mapped_fields(connection, actor_type)
    enabled = connection.actor_types.filter(actor_type=actor_type, sync_enabled=True).exists()
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    crm_first = SyncSettings.load().crm_priority < connection.priority
    sync_filter = SyncFilter.of(connection, actor_type)
    for start in range(0, len(links), BATCH):
        batch = links[start : start + BATCH]
        states: dict[int, str] = {}
        looked = [link for link in batch if link.status not in MARKED_STATUSES]
        for link in batch:
            if link.status in MARKED_STATUSES:
                states[link.pk] = DriftState.MISSING  # the change feed said the actor was deleted, merged or archived
        if looked and enabled and mapped:
            records, missing, outside = _decide(
                connection, actor_type, looked, mapped, client, crm_first, False, False, sync_filter
            )
            for record in records:
                if record.errors:
                    states[record.link.pk] = DriftState.FAILED
                elif record.crm_writes or record.erp_values:
                    states[record.link.pk] = DriftState.DRIFTED
                else:
                    states[record.link.pk] = DriftState.IN_STEP
            states.update({link.pk: DriftState.MISSING for link in missing})
            states.update({link.pk: DriftState.OUTSIDE for link in outside})
        drifted = sum(1 for state in states.values() if state == DriftState.DRIFTED)
        now = timezone.now()
        with transaction.atomic():
            for state in set(states.values()):
                ids = [pk for pk, found in states.items() if found == state]
                Link.objects.filter(pk__in=ids).update(drift=state, drift_checked_at=now)
            parts.checkpoint(part, len(batch), drifted, 0, batch)
        counts.done += len(batch)
        counts.changed += drifted
    return counts


def keep_summary(run: SyncRun) -> None:
    """Once every part has ended: the states as the run left them, kept with the run for its page."""
    SyncRun.objects.filter(pk=run.pk).update(checkpoint={**run.checkpoint, "summary": summary(run.connection)})


parts.when_finished(RunKind.RECONCILE, keep_summary)


def last_reconciliation(connection: ErpConnection) -> SyncRun | None:
    """The latest reconciliation of the connection, or sync of its drifted records."""
    kinds = [RunKind.RECONCILE, RunKind.SYNC_DRIFTED]
    return connection.runs.filter(kind__in=kinds).order_by("-created_at", "-pk").first()


def tick(now: datetime | None = None) -> list[int]:
    """Beat's round: within ERPSYNC_RECONCILE_HOUR (local time), queue a reconciliation of every active connection
    that reconciles every night and has not been reconciled for 20 hours. One that cannot start now (a bulk run of
    it is running) is tried again at the next round within the hour."""
    now = now or timezone.now()
    if timezone.localtime(now).hour != settings.ERPSYNC_RECONCILE_HOUR:
        return []
    queued = []
    recent = now - timedelta(hours=20)
    for connection in ErpConnection.objects.filter(is_active=True, reconcile_nightly=True).select_related("connector"):
        if connection.runs.filter(kind=RunKind.RECONCILE, created_at__gte=recent).exists():
            continue
        try:
            queued.append(queue_reconcile(connection).pk)
        except (SyncRefused, AlreadyRunning) as refusal:
            log.info("%s is not reconciled now: %s", connection, refusal)
    return queued
