"""Sync log retention: rows older than ``ERPSYNC_SYNC_LOG_RETENTION_DAYS`` are deleted in small batches.

The log is only ever read, never relied on: the engine keeps its baselines on the link, a failed record's
error is on the link (``Link.last_error``), a failed run's on the run (``SyncRun.error``). So an old row can go
without anything else changing; what goes is the history of old values, which is the point (they may be
personal data, such as e-mail addresses and phone numbers).

Each batch is its own short transaction that deletes at most ``batch_size`` rows by primary key, oldest first,
so a worker writing the log waits for one batch at most, and a run stopped half way (the time budget, a
restart) has deleted only whole batches and carries on where it stopped the next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import PlanRow, SyncLogEntry

BATCH_SIZE = 5000
# The beat task runs hourly; a minute a run deletes millions of rows an hour, and leaves the worker free.
TIME_BUDGET_SECONDS = 60.0


@dataclass(frozen=True)
class PruneResult:
    """What one pruning did: rows deleted, in how many batches, and whether rows older than the cutoff remain."""

    cutoff: datetime | None  # None: retention is off (0 days), nothing was looked at
    deleted: int = 0
    batches: int = 0
    finished: bool = True


def retention_cutoff(days: int | None = None, now: datetime | None = None) -> datetime | None:
    """The moment before which log rows are deleted, or None when they are kept for ever (0 days)."""
    days = settings.ERPSYNC_SYNC_LOG_RETENTION_DAYS if days is None else days
    if days < 0:
        raise ValueError(f"the retention must be 0 (keep for ever) or a number of days, not {days}")
    return None if days == 0 else (now or timezone.now()) - timedelta(days=days)


def prune_sync_log(
    *,
    days: int | None = None,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float | None = TIME_BUDGET_SECONDS,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete sync log rows older than the retention, ``batch_size`` at a time, oldest first.

    No new batch starts once ``budget_seconds`` have passed (None: go on until none is left); at least one
    batch always runs. ``progress`` is called with the running total after each batch.
    """
    if batch_size < 1:
        raise ValueError(f"the batch size must be at least 1, not {batch_size}")
    cutoff = retention_cutoff(days, now)
    if cutoff is None:
        return PruneResult(cutoff=None)
    started = time.monotonic()
    deleted = batches = 0
    while True:
        with transaction.atomic():
            # Oldest first, on the index on "at": a run cut short leaves the newest of the old rows, never a gap.
            ids = list(
                SyncLogEntry.objects.filter(at__lt=cutoff)
                .order_by("at", "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if ids:
                # No model points at a log row and no signal listens, so this is one DELETE ... WHERE id IN (...).
                deleted += SyncLogEntry.objects.filter(pk__in=ids).delete()[0]
                batches += 1
        if progress is not None and ids:
            progress(deleted)
        if len(ids) < batch_size:
            return PruneResult(cutoff=cutoff, deleted=deleted, batches=batches, finished=True)
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            finished = not SyncLogEntry.objects.filter(at__lt=cutoff).exists()
            return PruneResult(cutoff=cutoff, deleted=deleted, batches=batches, finished=finished)


def prune_plans(*, days: int | None = None, batch_size: int = BATCH_SIZE, now: datetime | None = None) -> int:
    """The rows of plans of bulk work (old and new values, as the sync log keeps them) go with the same retention:
    those of plans made before the cutoff are deleted, ``batch_size`` at a time; the plan's run stays, as any
    run does. Answers the rows deleted."""
    cutoff = retention_cutoff(days, now)
    if cutoff is None:
        return 0
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                PlanRow.objects.filter(run__created_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if ids:
                deleted += PlanRow.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            return deleted
