"""Bulk runs in parts: a Sync all, Resync from CRM or automatic run splits its links into parts that any worker
takes on, so that one connection's bulk work uses every worker and no task's time limit bounds it.

Parts are rows (``SyncChunk``) claimed from the table, not a Celery chord. A part has the run's own lifecycle in
small: it is claimed under a lease, commits each batch with its checkpoint, is taken back when its worker stops
(by its redelivered message or by the sweeper) and retried alone after a passing fault. The run adds up its parts'
counts as they commit, and the part that ends last ends the run. A chord would keep its count in the result
backend, lose it with a Redis restarted empty, and could not resume one member from its last batch.

Guarantees: a link is in one part only, so no two workers sync it at once; a connector's
``max_parallel_parts`` bounds how many parts of its connections are worked on at once; Sync now on a link a
bulk run has still to reach waits for it (``covering_bulk_run``).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Task, current_task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Model, Q
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from connectors.models import SyncConnector

from .. import jobs, said
from ..choices import ACTIVE_RUN_STATUSES, RunKind, RunStatus
from ..jobs import MAX_RETRIES, Counts, LeaseLost, Outcome
from ..models import Link, SyncChunk, SyncRun

log = logging.getLogger(__name__)

# The kinds of run that go in parts.
PARTED_KINDS = (RunKind.SYNC_ALL, RunKind.RESYNC, RunKind.AUTOMATIC, RunKind.SYNC_DRIFTED)
# A part that finds its connector's parts all busy looks again after this many seconds.
BUSY_WAIT = 1.0
BUSY = -1

PartPerformer = Callable[[SyncChunk], Counts]
RunFinisher = Callable[[SyncRun], None]
_performers: dict[str, PartPerformer] = {}
_finishers: dict[str, RunFinisher] = {}
P = TypeVar("P", bound=PartPerformer)


def performs_parts(*kinds: str) -> Callable[[P], P]:
    """Register what syncs a part of runs of these kinds."""

    def register(performer: P) -> P:
        for kind in kinds:
            _performers[kind] = performer
        return performer

    return register


def when_finished(kind: str, finisher: RunFinisher) -> None:
    """Register what a run of ``kind`` does once its last part has ended and none failed (automatic sync saves
    where the change feed resumes)."""
    _finishers[kind] = finisher


def finish_without_parts(run: SyncRun) -> None:
    """What a run that found nothing to split does before it ends (automatic sync moves past what it read)."""
    finisher = _finishers.get(run.kind)
    if finisher is not None:
        finisher(run)


# Splitting a run


def split(run: SyncRun, links: Iterable[tuple[int, str] | tuple[int, str, int]], size: int | None = None) -> int:
    """Make the run's parts from ``links`` (id, actor type), or (id, actor type, stage): each part has links of
    one actor type and stage, in the order of their ids, at most ``size`` (ERPSYNC_PART_SIZE) of them; parts of
    stage 0 come first. Made in one transaction with the run's total, so a run taken back never finds half its
    parts. Answers the number of parts."""
    size = size or settings.ERPSYNC_PART_SIZE
    groups: dict[tuple[int, str], list[int]] = {}
    for item in links:
        link_id, actor_type, stage = item if len(item) == 3 else (*item, 0)
        groups.setdefault((stage, actor_type), []).append(link_id)
    parts: list[SyncChunk] = []
    for (stage, actor_type), ids in sorted(groups.items(), key=lambda group: group[0][0]):
        ids.sort()
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            parts.append(
                SyncChunk(
                    run=run,
                    number=len(parts) + 1,
                    stage=stage,
                    actor_type=actor_type,
                    link_ids=chunk,
                    first_link_id=chunk[0],
                    last_link_id=chunk[-1],
                )
            )
    total = sum(len(part.link_ids) for part in parts)
    with transaction.atomic():
        SyncChunk.objects.bulk_create(parts, batch_size=500)
        SyncRun.objects.filter(pk=run.pk).update(total=total)
    return len(parts)


def dispatch(run_id: int) -> list[int]:
    """Send the tasks of as many of the run's waiting parts as its connector takes at once, less those already
    on their way or being worked on; each part that ends calls this again for the next. Answers the parts sent."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().select_related("connection__connector").filter(pk=run_id).first()
        if run is None:
            return []
        parts = SyncChunk.objects.filter(run_id=run_id)
        on_their_way = parts.filter(
            Q(status=RunStatus.RUNNING) | Q(status=RunStatus.QUEUED, sent_at__isnull=False)
        ).count()
        free = max(0, run.connection.connector.max_parallel_parts - on_their_way)
        # Only the earliest stage that has parts still to end: a later stage waits for it.
        stage = parts.filter(status__in=ACTIVE_RUN_STATUSES).aggregate(stage=Min("stage"))["stage"]
        chosen = list(
            parts.filter(status=RunStatus.QUEUED, sent_at__isnull=True, stage=stage)
            .order_by("number")
            .values_list("pk", flat=True)[:free]
        )
        SyncChunk.objects.filter(pk__in=chosen).update(sent_at=timezone.now())
    for part_id in chosen:
        _send(part_id)
    return chosen


def _send_all(part_ids: list[int]) -> None:
    for part_id in part_ids:
        _send(part_id)


def _send(part_id: int, countdown: float = 0, seen: list[Any] | None = None) -> None:
    if current_task and current_task.request.is_eager:
        # A run executed in the caller's process (``apply``) runs its parts there too, one after another.
        run_part.apply(kwargs={"part_id": part_id, "seen": seen}, throw=True)
        return
    try:
        signature = run_part.si(part_id=part_id, seen=seen)
        signature.set(  # type: ignore[call-arg]  # not in the stubs
            time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
        ).apply_async(countdown=countdown)
    except Exception:
        log.warning("the broker did not take part %s; the sweeper sends it again", part_id, exc_info=True)
        SyncChunk.objects.filter(pk=part_id, status=RunStatus.QUEUED).update(send_failed_at=timezone.now())


# Sync now beside a bulk run


def covering_bulk_run(link: Link) -> SyncRun | None:
    """The bulk run of the link's connection that has still to reach the link: one queued or still splitting
    (its parts are not known yet), or one with a part not yet past the link. Sync now waits for it."""
    active = SyncRun.objects.filter(
        connection_id=link.connection_id, kind__in=PARTED_KINDS, status__in=ACTIVE_RUN_STATUSES
    ).first()
    if active is None:
        return None
    parts = SyncChunk.objects.filter(run=active)
    if not parts.exists():
        return active if active.status == RunStatus.QUEUED or active.lease_expires_at is not None else None
    pending = parts.filter(
        status__in=ACTIVE_RUN_STATUSES,
        actor_type=link.actor_type,
        first_link_id__lte=link.pk,
        last_link_id__gte=link.pk,
        position__lt=link.pk,
    )
    return active if any(link.pk in part.link_ids for part in pending) else None


# The lifecycle of a part on a worker


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(part_id: int) -> int:
    """Start an attempt at a part, as ``jobs.claim`` does for a run: answers its number, 0 when the part is not
    to be started here (ended, or another worker has it), or BUSY when its connector already has
    ``max_parallel_parts`` parts being worked on."""
    now = timezone.now()
    found = SyncChunk.objects.filter(pk=part_id).values_list("run__connection__connector_id", flat=True).first()
    if found is None:
        return 0
    with transaction.atomic():
        # Claims of one connector's parts take turns, so two cannot both see a free place.
        connector = SyncConnector.all_objects.select_for_update().filter(pk=found).first()
        if connector is not None:
            working = SyncChunk.objects.filter(
                run__connection__connector_id=found, status=RunStatus.RUNNING, lease_expires_at__gte=now
            ).exclude(pk=part_id)
            if working.count() >= connector.max_parallel_parts:
                return BUSY if SyncChunk.objects.filter(jobs.startable(now), pk=part_id).exists() else 0
        return jobs.take(SyncChunk, part_id, now, worker=worker_name(), send_failed_at=None)


def renew(part_id: int, attempt: int) -> bool:
    return jobs.renew_lease(SyncChunk, part_id, attempt)


def checkpoint(part: SyncChunk, done: int, changed: int, failed: int, batch: Sequence[Model]) -> None:
    """Record a batch of the part (its links, or an import's plan rows), in the caller's transaction: the part's
    counts and position and a renewed lease, and the run's counts. Raises LeaseLost, which rolls the batch back,
    when the part is no longer this attempt's."""
    updates: dict[str, Any] = {
        "done": F("done") + done,
        "changed": F("changed") + changed,
        "failed": F("failed") + failed,
        "lease_expires_at": jobs.lease_from(timezone.now()),
    }
    if batch:
        part.position = max(item.pk for item in batch)
        updates["position"] = part.position
    with transaction.atomic():
        if not jobs.held(SyncChunk, part.pk, part.attempts).update(**updates):
            raise LeaseLost(f"part {part.pk} is no longer attempt {part.attempts}'s")
        # Last in the batch's transaction: the run's row is the one every part writes.
        SyncRun.objects.filter(pk=part.run_id).update(
            done=F("done") + done, changed=F("changed") + changed, failed=F("failed") + failed
        )


def end(part_id: int, attempt: int | None, status: str, error: str = "", message: said.Message | None = None) -> None:
    """End a part (with ``attempt``, only while it is that attempt's); the last part to end ends its run.
    ``message``: the error for each reader's language."""
    now = timezone.now()
    error = error[:4000]
    with transaction.atomic():
        run_id = SyncChunk.objects.filter(pk=part_id).values_list("run_id", flat=True).first()
        if run_id is None:
            return
        # One part at a time ends parts of this run, so exactly one of them sees that none is left.
        SyncRun.objects.select_for_update().filter(pk=run_id).first()
        parts = jobs.held(SyncChunk, part_id, attempt) if attempt is not None else SyncChunk.objects.filter(pk=part_id)
        ended = parts.update(
            status=status, error=error, error_said=said.kept(error, message), finished_at=now, lease_expires_at=None
        )
        if not ended:
            return
        if finish_run_if_done(run_id):
            return
    dispatch(run_id)


def finish_run_if_done(run_id: int) -> bool:
    """End the run when none of its parts is queued or running: failed when every part failed, partially failed
    when a part or a record failed, else succeeded. Call it holding the run's row lock."""
    parts = SyncChunk.objects.filter(run_id=run_id)
    if not parts.exists() or parts.filter(status__in=ACTIVE_RUN_STATUSES).exists():
        return False
    run = SyncRun.objects.select_related("connection").filter(pk=run_id, status=RunStatus.RUNNING).first()
    if run is None:
        return False
    failed = list(parts.filter(status=RunStatus.FAILED).order_by("number").values_list("error", "error_said"))
    count = parts.count()
    message: said.Message | None = None
    if failed and len(failed) == count:
        status, (error, kept) = RunStatus.FAILED, failed[0]
        message = kept["said"] if kept and kept.get("text") == error else None
    elif failed:
        status = RunStatus.PARTIALLY_FAILED
        reason, kept = failed[0]
        message = said.plural(
            N_("%(failed)s of %(count)s part failed: %(reason)s"),
            N_("%(failed)s of %(count)s parts failed: %(reason)s"),
            count,
            failed=len(failed),
            count=count,
            reason=kept["said"] if kept and kept.get("text") == reason else reason,
        )
        error = said.render(message)
    else:
        status = RunStatus.PARTIALLY_FAILED if run.failed else RunStatus.SUCCEEDED
        error = ""
        finisher = _finishers.get(run.kind)
        if finisher is not None:
            finisher(run)
    error = error[:4000]
    SyncRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=status,
        error=error,
        error_said=said.kept(error, message),
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    jobs.follow_up(run_id)
    return True


def outcome_of(error: BaseException, progressed: bool) -> Outcome:
    """As for a run, except that a part stopped by the time limit after committing a batch (``progressed``) goes
    on from its checkpoint in a new task; one that could not finish a single batch in that time fails."""
    if isinstance(error, SoftTimeLimitExceeded) and progressed:
        return Outcome.saying(
            True,
            said.msg(N_("A part of the run reached the time limit of a job; it goes on from where it was.")),
            said.msg(
                N_("A part of the run kept reaching the time limit of a job (%(n)s s)."),
                n=settings.CELERY_TASK_SOFT_TIME_LIMIT,
            ),
        )
    return jobs.outcome_of(error)


@shared_task(name="connections.run_part", bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def run_part(self: Task, part_id: int, seen: list[Any] | None = None) -> None:
    """Sync one part of a bulk run with the performer registered for the run's kind."""
    attempt = claim(part_id)
    if attempt == BUSY:
        _send(part_id, countdown=BUSY_WAIT, seen=seen)
        return
    if not attempt:
        _look_again_later(part_id, seen)
        return
    part = SyncChunk.objects.select_related("run__connection__connector").get(pk=part_id)
    part.attempts = attempt
    position = part.position
    refused = jobs.sync_refusal_said(part.run.connection)
    if refused is not None:
        end(part_id, attempt, RunStatus.FAILED, said.render(refused), refused)
        return
    try:
        if self.request.is_eager:
            with jobs.running_a_run():
                counts = _performers[part.run.kind](part)
        else:
            with jobs.renewing_with(lambda: renew(part_id, attempt), f"part {part_id}"), jobs.running_a_run():
                counts = _performers[part.run.kind](part)
    except LeaseLost:
        log.warning("part %s was taken back from this worker; attempt %s stops", part_id, attempt)
        return
    except Exception as error:
        outcome = outcome_of(error, part.position != position)
        if outcome.retry and self.request.retries < MAX_RETRIES:
            reason = outcome.reason[:4000]
            kept = said.kept(reason, outcome.message)
            back = {"status": RunStatus.QUEUED, "error": reason, "error_said": kept, "lease_expires_at": None}
            if jobs.held(SyncChunk, part_id, attempt).update(**back):
                # The run's page says why it waits, until the run ends.
                SyncRun.objects.filter(pk=part.run_id, status=RunStatus.RUNNING).update(error=reason, error_said=kept)
            raise self.retry(countdown=jobs.retry_delay(self.request.retries, error), exc=error) from error
        if outcome.final_reason:
            end(part_id, attempt, RunStatus.FAILED, outcome.final_reason, outcome.final_message)
        else:
            end(part_id, attempt, RunStatus.FAILED, outcome.reason, outcome.message)
        return
    end(part_id, attempt, RunStatus.PARTIALLY_FAILED if counts.failed else RunStatus.SUCCEEDED)


def _look_again_later(part_id: int, seen: list[Any] | None) -> None:
    """As ``jobs._look_again_later`` for a run: a part held under a lease this message saw before, unrenewed, has
    lost its worker; look again just after the lease runs out."""
    watch = jobs.lease_to_watch(SyncChunk, part_id, seen)
    if watch is not None:
        _send(part_id, countdown=watch[0], seen=watch[1])


# The sweeper's round for parts


def sweep_stuck_parts(now: datetime | None = None, *, lost: bool = False) -> list[int]:
    """Take back parts whose worker is gone (lease run out) and send again those whose message was lost (all
    queued ones when the broker lost its messages); a part out of attempts fails, saying so. Also ends a run
    whose parts have all ended but which was not ended (its last part's worker stopped just then)."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.ERPSYNC_RUN_STUCK_AFTER)
    due = (
        Q(status=RunStatus.RUNNING, lease_expires_at__lt=now)
        | Q(status=RunStatus.QUEUED, sent_at__lt=deadline)
        | Q(status=RunStatus.QUEUED, send_failed_at__isnull=False)
    )
    if lost:
        due |= Q(status=RunStatus.QUEUED, sent_at__isnull=False)
    resent: list[int] = []
    gave_up: list[tuple[int, int]] = []
    with transaction.atomic():
        for part in SyncChunk.objects.select_for_update(skip_locked=True).filter(due):
            if part.status == RunStatus.RUNNING and part.attempts > MAX_RETRIES:
                gave_up.append((part.pk, part.attempts))
                continue
            back: dict[str, Any] = {"status": RunStatus.QUEUED, "sent_at": now, "send_failed_at": None}
            if part.status == RunStatus.RUNNING:
                log.warning("part %s lost its worker (its lease ran out); it goes on from its checkpoint", part.pk)
                stopped = said.msg(N_("Its worker stopped; the part goes on from where it was."))
                back["error"] = said.render(stopped)
                back["error_said"] = said.kept(back["error"], stopped)
                back["lease_expires_at"] = None
            SyncChunk.objects.filter(pk=part.pk).update(**back)
            resent.append(part.pk)
        transaction.on_commit(lambda: _send_all(resent))
    for part_id, attempts in gave_up:
        message = said.msg(N_("Gave up after %(n)s attempts; the worker kept stopping during this part."), n=attempts)
        end(part_id, None, RunStatus.FAILED, said.render(message), message)
    # Runs in parts (running, holding no lease): one whose parts have all ended is ended; one with parts waiting
    # and fewer on their way than its connector takes (a part ended while the broker was away) sends more.
    for run_id in SyncRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__isnull=True).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            SyncRun.objects.select_for_update().filter(pk=run_id).first()
            ended = finish_run_if_done(run_id)
        if not ended:
            resent += dispatch(run_id)
    return resent
