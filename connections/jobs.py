"""The job machinery: a run's row and its lifecycle (queue, send, claim, finish, retry, sweep), the Celery task
that runs every kind of run, and automatic sync's tick.

It knows no kind's work: the engine and the import register what performs each kind (``performs``), so this
module imports neither, and both may queue through it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from celery import Task, chain, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django import db
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from connectors.client import ConnectorError, ConnectorTimeout, ConnectorUnreachable, GatewayError, ProtocolError

from . import said
from .choices import ACTIVE_RUN_STATUSES, BULK_RUN_KINDS, RunKind, RunStatus
from .models import ErpConnection, Link, SyncChunk, SyncRun, SyncSettings

log = logging.getLogger(__name__)
MAX_RETRIES = 5


class AlreadyRunning(Exception):
    pass


class SyncRefused(Exception):
    """A run may not start, or stops, for a reason the user can act on; its message says which."""


class Deferred(Exception):
    """A run cannot go on yet for a reason that passes by itself (a bulk run has still to reach its record): it
    goes back to the queue, without counting as an attempt, and is looked at again after ``seconds``."""

    def __init__(self, reason: str, seconds: float = 2.0) -> None:
        super().__init__(reason)
        self.seconds = seconds


class LeaseLost(Exception):
    """The run was taken back from this worker (its lease ran out): another attempt owns it now, and this one must
    write nothing more. Raised in a batch's transaction, it rolls the batch back."""


def sync_refusal(connection: ErpConnection) -> str:
    """Why jobs cannot run for the connection now, or ''. Checked when queued and again in the worker."""
    message = sync_refusal_said(connection)
    return said.render(message) if message is not None else ""


def sync_refusal_said(connection: ErpConnection) -> said.Message | None:
    """``sync_refusal`` kept for each reader's language (a worker's refusal is read later, by someone else)."""
    if connection.deleted_at is not None:
        return said.msg(N_("%(name)s was deleted."), name=str(connection))
    if not connection.is_active:
        return said.msg(N_("%(name)s is not active."), name=str(connection))
    if not connection.last_test_ok:
        return said.msg(N_("%(name)s has not passed its last test."), name=str(connection))
    return None


@dataclass
class Counts:
    """What a run did: records done, fields changed, records failed."""

    done: int = 0
    changed: int = 0
    failed: int = 0


# A performer answers the run's counts, or None when the run goes on in parts of its own, which end it.
Performer = Callable[[SyncRun], Counts | None]
_performers: dict[str, Performer] = {}
P = TypeVar("P", bound=Performer)


def performs(*kinds: str) -> Callable[[P], P]:
    """Register the function that does the work of runs of these kinds (the engine's and the import's modules)."""

    def register(performer: P) -> P:
        for kind in kinds:
            _performers[kind] = performer
        return performer

    return register


def queue_bulk(connection: ErpConnection, kind: str, user: Any = None, keep_non_blank: bool = False) -> SyncRun:
    """Queue Sync all or Resync from CRM for a connection; refused while another bulk run of it is queued or running."""
    refusal = sync_refusal(connection)
    if refusal:
        raise SyncRefused(refusal)
    return new_bulk_run(connection, kind, user=user, total=connection.links.count(), keep_non_blank=keep_non_blank)


def new_bulk_run(
    connection: ErpConnection,
    kind: str,
    *,
    user: Any = None,
    total: int = 0,
    keep_non_blank: bool = False,
    send_task: bool = True,
    **fields: Any,
) -> SyncRun:
    """The run row of a bulk job (Sync all, Resync, an import's preview or import); its task is sent once the
    caller's transaction commits, unless ``send_task`` is false (the caller runs it). ``fields``: more of the run's
    fields (``planned_kind``, ``plan``). Refused while another
    bulk run of the connection is queued or running: the database's partial unique index decides."""
    who = user if getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                connection=connection,
                kind=kind,
                total=total,
                keep_non_blank=keep_non_blank,
                created_by=who,
                **fields,  # a plan's planned kind, or the plan a run carries out
            )
    except IntegrityError:
        raise AlreadyRunning(
            _("%(name)s is already running an import or a bulk sync; try again when it has finished.")
            % {"name": connection}
        ) from None
    if send_task:
        transaction.on_commit(lambda: send([run.pk]))
    return run


def send(run_ids: list[int], countdown: float = 0) -> None:
    """Send the runs' tasks, chained so that they run one after another; the first starts after ``countdown`` s.

    A broker that cannot be reached does not fail the request that queued the runs: they stay queued, marked,
    and the sweeper sends them again at its next round."""
    if not run_ids:
        return
    try:
        # The limits travel with each message; taken from the settings here, so they are what ops configured.
        hard, soft = settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT
        signatures = [
            run_sync.si(run_id=run_id).set(time_limit=hard, soft_time_limit=soft)  # type: ignore[call-arg]  # not in the stubs
            for run_id in run_ids
        ]
        if countdown > 0:
            chain(*signatures).apply_async(countdown=countdown)
        else:
            chain(*signatures).apply_async()
    except Exception:
        log.warning("the broker did not take runs %s; the sweeper sends them again", run_ids, exc_info=True)
        SyncRun.objects.filter(pk__in=run_ids, status=RunStatus.QUEUED).update(send_failed_at=timezone.now())


def automatic_interval(connection: ErpConnection, settings_row: SyncSettings) -> timedelta:
    """How often automatic sync runs for ``connection``: its own interval, else the one of Sync settings."""
    return timedelta(minutes=connection.automatic_interval_minutes or settings_row.interval_minutes)


def automatic_due_at(connection: ErpConnection, settings_row: SyncSettings) -> datetime | None:
    """When automatic sync next queues a run of ``connection`` (beat asks every minute, so up to a minute later),
    or None when it does not run for it: off in Sync settings, paused, inactive or not tested, deleted."""
    if not settings_row.automatic_sync or not connection.automatic_sync or sync_refusal(connection):
        return None
    if connection.last_automatic_at is None:
        return timezone.now()
    return max(connection.last_automatic_at + automatic_interval(connection, settings_row), timezone.now())


@transaction.atomic
def tick_automatic_sync(now: datetime | None = None) -> list[int]:
    """Called every minute by beat: while automatic sync is on (Sync settings, the master switch), queue a run of
    each active connection that is not paused and is due by its own interval, in sync-priority order, chained so
    that they run one after another. Returns the queued run ids."""
    now = now or timezone.now()
    settings_row = SyncSettings.objects.select_for_update().get_or_create(pk=1)[0]
    if not settings_row.automatic_sync:
        return []
    queued = []
    due = ErpConnection.objects.select_for_update().filter(is_active=True, last_test_ok=True, automatic_sync=True)
    for connection in due.order_by("priority", "pk"):
        last = connection.last_automatic_at
        if last is not None and now - last < automatic_interval(connection, settings_row):
            continue
        try:
            with transaction.atomic():
                queued.append(SyncRun.objects.create(connection=connection, kind=RunKind.AUTOMATIC).pk)
        except IntegrityError:
            continue  # this connection's previous bulk run is still going: it is queued once that has ended
        ErpConnection.objects.filter(pk=connection.pk).update(last_automatic_at=now)
    if queued:
        settings_row.last_automatic_at = now
        settings_row.save(update_fields=["last_automatic_at", "updated_at"])
    transaction.on_commit(lambda: send(queued))
    return queued


# Sync soon: runs started by changes (protocol v1.1 change notifications, linked CRM records saved)


class Queued(StrEnum):
    """What ``queue_soon`` did."""

    NEW = "new"  # a run was queued, to start after the delay
    JOINED = "joined"  # a run already queued and not started takes the changes too
    AFTER = "after"  # the run going on is followed by one more when it ends


def queue_soon(connection: ErpConnection, link: Link | None = None, delay: float | None = None) -> Queued:
    """Sync the changes just made within seconds, coalesced: an automatic run of the connection (a connector said
    its actors changed), or a Sync now of ``link`` (its CRM record was saved). Sent after ``delay`` seconds
    (ERPSYNC_CHANGE_SYNC_DELAY), so that changes made meanwhile join it: a run of the same kind already queued
    takes them, if it has not started yet; one started (running, or queued again to go on from a checkpoint) or
    another bulk run of the connection, which holds its place, is marked to be followed by one more when it ends
    (``again``), since it may have read before the change. The database's
    unique indexes keep it to one queued or running run, as for any run."""
    delay = float(settings.ERPSYNC_CHANGE_SYNC_DELAY if delay is None else delay)
    kind = RunKind.SYNC_NOW if link is not None else RunKind.AUTOMATIC
    if link is not None:
        active = SyncRun.objects.filter(link=link, status__in=ACTIVE_RUN_STATUSES)
    else:
        active = SyncRun.objects.filter(connection=connection, kind__in=BULK_RUN_KINDS, status__in=ACTIVE_RUN_STATUSES)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                run = SyncRun.objects.create(connection=connection, link=link, kind=kind, total=1 if link else 0)
        except IntegrityError:
            if active.filter(status=RunStatus.QUEUED, kind=kind, started_at__isnull=True).exists():
                return Queued.JOINED  # it has read nothing yet
            if active.update(again=True):
                return Queued.AFTER
            continue  # it ended meanwhile: queue a new one
        transaction.on_commit(partial(send, [run.pk], countdown=delay))
        return Queued.NEW
    return Queued.JOINED  # runs kept ending and starting under this one: the last of them has the changes


def automatic_sync_on(connection: ErpConnection | None = None) -> bool:
    """Whether automatic sync is on (read without creating the settings' row): in Sync settings, the master switch,
    and, for ``connection``, on the connection too (not paused)."""
    if connection is not None and not connection.automatic_sync:
        return False
    return SyncSettings.objects.filter(pk=1, automatic_sync=True).exists()


def follow_up(run_id: int) -> None:
    """Once a run has ended: if changes came while it ran (``again``), queue the run that syncs them, as long as
    automatic sync is on. Exactly one caller clears the mark, so one run follows."""
    run = SyncRun.objects.select_related("connection", "link").filter(pk=run_id, again=True).first()
    if run is None or run.status in ACTIVE_RUN_STATUSES:
        return
    if not SyncRun.objects.filter(pk=run_id, again=True).update(again=False):
        return
    if not automatic_sync_on(run.connection) or sync_refusal(run.connection):
        return
    if run.link is not None:
        queue_soon(run.connection, run.link)
    elif run.kind in BULK_RUN_KINDS:
        queue_soon(run.connection)


# A CRM record written by a run changes nothing the run has not synced: its saves start no sync (no loop).
_in_a_run: ContextVar[bool] = ContextVar("erpsync_in_a_run", default=False)


@contextmanager
def running_a_run() -> Iterator[None]:
    """Mark what the block does as a run's work (``in_a_run``)."""
    token = _in_a_run.set(True)
    try:
        yield
    finally:
        _in_a_run.reset(token)


def in_a_run() -> bool:
    """True inside a run's work (a sync or an import writing CRM records)."""
    return _in_a_run.get()


def sweep_stuck_runs(now: datetime | None = None, *, lost: bool | None = None) -> list[int]:
    """Take back the runs whose worker is gone (running, lease run out) and send again those whose message was
    lost: all queued runs when the broker lost what it held (a Redis restarted without persistence), those still
    queued past ERPSYNC_RUN_STUCK_AFTER, and at once those whose task the broker did not take. The task claims a
    run only while it is queued or its lease has run out, so a run is never executed twice at once; one that has
    used up its attempts is failed, saying so."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.ERPSYNC_RUN_STUCK_AFTER)
    due = (
        Q(status=RunStatus.RUNNING, lease_expires_at__lt=now)
        | Q(status=RunStatus.QUEUED, created_at__lt=deadline)
        | Q(status=RunStatus.QUEUED, send_failed_at__isnull=False)
    )
    if broker_lost_messages() if lost is None else lost:
        log.warning("the broker lost its messages (restarted empty?); every queued run is sent again")
        due |= Q(status=RunStatus.QUEUED)
    resent = []
    with transaction.atomic():
        for run in SyncRun.objects.select_for_update(skip_locked=True).filter(due):
            if run.attempts > MAX_RETRIES:
                gave_up = said.msg(
                    N_("Gave up after %(n)s attempts; the worker kept stopping during this run."), n=run.attempts
                )
                error = said.render(gave_up)
                SyncRun.objects.filter(pk=run.pk).update(
                    status=RunStatus.FAILED, finished_at=now, error=error, error_said=said.kept(error, gave_up)
                )
                continue
            back = {"status": RunStatus.QUEUED, "created_at": now, "send_failed_at": None, "lease_expires_at": None}
            if run.status == RunStatus.RUNNING:
                log.warning("run %s lost its worker (its lease ran out); it goes on from its checkpoint", run.pk)
                stopped = said.msg(N_("Its worker stopped; the run goes on from where it was."))
                text = said.render(stopped)
                back["error"], back["error_said"] = text, said.kept(text, stopped)
            SyncRun.objects.filter(pk=run.pk).update(**back)
            resent.append(run.pk)
        transaction.on_commit(lambda: _send_again(resent))
    return resent


def _send_again(run_ids: list[int]) -> None:
    """Automatic runs go again as one chain in sync-priority order, as beat's tick sent them; others each alone."""
    runs = SyncRun.objects.filter(pk__in=run_ids).order_by("connection__priority", "connection_id", "pk")
    automatic = [pk for pk, kind in runs.values_list("pk", "kind") if kind == RunKind.AUTOMATIC]
    if automatic:
        send(automatic)
    for run_id in run_ids:
        if run_id not in automatic:
            send([run_id])


# Kept in the broker: a broker that no longer has it has lost its messages too (restarted without persistence,
# flushed, or failed over to an empty replica).
BROKER_MARK = "erpsync:broker-mark"


def broker_lost_messages() -> bool:
    """True when the broker no longer holds what the sweeper left there at its previous round, so the messages
    of the queued runs are gone with it. Only a Redis broker can lose them; any other answers False."""
    try:
        with current_app.connection_for_write() as conn:
            if conn.transport.driver_type != "redis":
                return False
            conn.ensure_connection(max_retries=1)
            # SET NX succeeds only where the mark is missing: the first round ever, or a broker that lost it.
            client = conn.default_channel.client  # type: ignore[attr-defined]  # kombu's Redis channel
            return bool(client.set(BROKER_MARK, timezone.now().isoformat(), nx=True))
    except Exception:
        log.warning("could not ask the broker whether it lost messages", exc_info=True)
        return False


# The lifecycle of a run on a worker


def lease_seconds() -> float:
    return float(settings.ERPSYNC_RUN_LEASE_SECONDS)


def lease_from(now: datetime) -> datetime:
    return now + timedelta(seconds=lease_seconds())


# Rows that run under a lease: runs, and the parts of bulk runs (``sync/parts.py``). Each has a status, an
# attempt count, a lease and a start time, and every write of an attempt is checked against its number.
Leased = TypeVar("Leased", SyncRun, SyncChunk)


def startable(now: datetime) -> Q:
    """Rows an attempt may start: queued, or still running with the lease run out (the worker is gone) while
    attempts remain."""
    return Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, lease_expires_at__lt=now, attempts__lte=MAX_RETRIES)


def take(model: type[Leased], pk: int, now: datetime, **also: Any) -> int:
    """Start an attempt at a ``startable`` row, setting ``also`` too. Answers the attempt's number, or 0 when
    the row is not to be started here (another worker has it, or it has ended)."""
    with transaction.atomic():
        claimed = model._default_manager.filter(startable(now), pk=pk).update(
            status=RunStatus.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            attempts=F("attempts") + 1,
            lease_expires_at=lease_from(now),
            **also,
        )
        if not claimed:
            return 0
        return int(model._default_manager.values_list("attempts", flat=True).get(pk=pk))


def held(model: type[Leased], pk: int, attempt: int) -> QuerySet[Leased]:
    """The row, while it is running as this attempt."""
    return model._default_manager.filter(pk=pk, status=RunStatus.RUNNING, attempts=attempt)


def renew_lease(model: type[Leased], pk: int, attempt: int) -> bool:
    """Extend the attempt's lease; False when the row is no longer this attempt's."""
    return bool(held(model, pk, attempt).update(lease_expires_at=lease_from(timezone.now())))


def lease_to_watch(model: type[Leased], pk: int, seen: list[Any] | None) -> tuple[float, list[Any]] | None:
    """For a message that found the row held by another attempt: when the lease is the one this message saw
    before, unrenewed (or it has not looked yet), the seconds until just after it runs out and the lease to see
    then; None when a live worker has renewed or taken it over (the delivery was a duplicate), or the row has
    ended or run out of attempts (the sweeper fails it)."""
    found = (
        model._default_manager.filter(pk=pk, status=RunStatus.RUNNING)
        .values_list("attempts", "lease_expires_at")
        .first()
    )
    now = timezone.now()
    if found is None or found[1] is None or found[1] <= now:
        return None
    now_seen = [found[0], found[1].isoformat()]
    if seen is not None and seen != now_seen:
        return None
    return max(0.0, (found[1] - now).total_seconds()) + 0.5, now_seen


def claim(run_id: int) -> int:
    """Start an attempt at a run (``take``). Returns the attempt's number, which the attempt's writes are
    checked against, or 0 when the run is not to be started here."""
    return take(SyncRun, run_id, timezone.now(), waiting=False)


def _held(run_id: int, attempt: int) -> QuerySet[SyncRun]:
    return held(SyncRun, run_id, attempt)


def renew(run_id: int, attempt: int) -> bool:
    """Extend the attempt's lease; False when the run is no longer this attempt's."""
    return renew_lease(SyncRun, run_id, attempt)


def keep(run: SyncRun) -> None:
    """Renew the lease of the attempt ``run`` was read for, or raise LeaseLost."""
    if not renew(run.pk, run.attempts):
        raise LeaseLost(f"run {run.pk} is no longer attempt {run.attempts}'s")


def checkpoint(
    run: SyncRun, *, done: int = 0, changed: int = 0, failed: int = 0, position: dict[str, Any] | None = None
) -> None:
    """Record a batch in the caller's transaction: its counts, where the run goes on from should its worker
    stop (``position``, kept on ``run`` too), and a renewed lease. Raises LeaseLost when the run is no longer
    this attempt's, which rolls the batch back: a worker that lost its run commits nothing more."""
    updates: dict[str, Any] = {
        "done": F("done") + done,
        "changed": F("changed") + changed,
        "failed": F("failed") + failed,
        "lease_expires_at": lease_from(timezone.now()),
    }
    if position is not None:
        updates["checkpoint"] = position
    if not _held(run.pk, run.attempts).update(**updates):
        raise LeaseLost(f"run {run.pk} is no longer attempt {run.attempts}'s")
    if position is not None:
        run.checkpoint = position


@contextmanager
def renewing(run_id: int, attempt: int) -> Iterator[None]:
    """Renew the attempt's lease from a thread, every third of the lease, while the caller works: a connector
    call that takes minutes does not cost the run its lease. The thread stops when the block ends, or when the
    run was taken back (the attempt's next checkpoint then raises LeaseLost)."""
    with renewing_with(lambda: renew(run_id, attempt), f"run {run_id}"):
        yield


@contextmanager
def renewing_with(renew_lease: Callable[[], bool], what: str) -> Iterator[None]:
    """``renewing`` for any lease: ``renew_lease`` answers False once the lease is no longer the caller's."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(lease_seconds() / 3):
                try:
                    if not renew_lease():
                        return
                except (db.OperationalError, db.InterfaceError):
                    log.warning("could not renew the lease of %s", what, exc_info=True)
                    db.connection.close()
        finally:
            db.connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"lease {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def finish(
    run_id: int, status: str, error: str = "", attempt: int | None = None, message: said.Message | None = None
) -> None:
    """End a run; with ``attempt``, only while it is still that attempt's. Changes that came while it ran are
    synced by the run that follows it (``follow_up``). ``message``: the error for each reader's language."""
    runs = _held(run_id, attempt) if attempt is not None else SyncRun.objects.filter(pk=run_id)
    error = error[:4000]
    kept = said.kept(error, message)
    if runs.update(status=status, error=error, error_said=kept, finished_at=timezone.now(), lease_expires_at=None):
        follow_up(run_id)


def finish_with(run_id: int, counts: Counts, attempt: int | None = None) -> None:
    """Succeeded, or partially failed when a record failed in this attempt or in an earlier one."""
    failed = counts.failed or SyncRun.objects.filter(pk=run_id, failed__gt=0).exists()
    finish(run_id, RunStatus.PARTIALLY_FAILED if failed else RunStatus.SUCCEEDED, attempt=attempt)


def requeue(run_id: int, reason: str, attempt: int | None = None, message: said.Message | None = None) -> None:
    """Put a running run back in the queue with the reason of its last attempt, to be tried again."""
    runs = _held(run_id, attempt) if attempt is not None else SyncRun.objects.filter(pk=run_id)
    reason = reason[:4000]
    try:
        runs.update(status=RunStatus.QUEUED, error=reason, error_said=said.kept(reason, message), lease_expires_at=None)
    except (db.OperationalError, db.InterfaceError):
        # Still no database: the run stays "running" until its lease runs out; then it is taken back.
        db.connection.close()


@dataclass(frozen=True)
class Outcome:
    """What becomes of a run that raised: tried again later (while attempts remain) or failed, and why."""

    retry: bool
    reason: str
    final_reason: str = ""  # when no retry is left, if it differs from ``reason``
    message: said.Message | None = None  # ``reason`` for each reader's language
    final_message: said.Message | None = None

    @classmethod
    def saying(cls, retry: bool, message: said.Message, final: said.Message | None = None) -> Outcome:
        """An outcome whose reasons are our own sentences, kept for each reader's language."""
        return cls(retry, said.render(message), said.render(final) if final else "", message, final)


# What a failure to talk with the connector means, for people, in each reader's language; the technical words
# (the operation, the address, the error) follow as they are.
TRANSPORT_FAILURES: list[tuple[type[ConnectorError], str]] = [
    (ConnectorUnreachable, N_("The connector could not be reached: %(detail)s")),
    (ConnectorTimeout, N_("The connector did not answer in time: %(detail)s")),
    (GatewayError, N_("The connector's address answers, but the connector behind it is unavailable: %(detail)s")),
    (ProtocolError, N_("The connector answered in a way the protocol does not allow: %(detail)s")),
]


def _connector_outcome(error: BaseException) -> Outcome:
    assert isinstance(error, ConnectorError)
    # The connector's explanation for people, in each language it gave; the text keeps its code and technical words.
    explained = getattr(getattr(error, "envelope", None), "user_explanation", None)
    message = said.texts(explained, str(error)) if explained else None
    if message is None:
        sentence = next((words for kind, words in TRANSPORT_FAILURES if isinstance(error, kind)), None)
        message = said.msg(sentence, detail=str(error)) if sentence else None
    return Outcome(retry=not error.permanent, reason=str(error), message=message)


# SQLSTATEs of a connection that is gone: class 08 (connection exception) and the server shutting down or starting.
LOST_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def _connection_lost(error: BaseException) -> bool:
    """Whether a database error means the connection is gone (a restart, a failover, a killed backend), rather
    than a statement the database refused on a connection that still works."""
    state = getattr(error.__cause__, "sqlstate", None) or ""
    if state.startswith(LOST_CONNECTION_STATES):
        return True
    driver = db.connection.connection
    if driver is None:  # never made, or dropped by Django after a failed rollback
        return True
    # psycopg marks a connection that broke under it; SQLite's connections are never lost.
    return bool(getattr(driver, "broken", False) or getattr(driver, "closed", False))


def _database_outcome(error: BaseException) -> Outcome:
    if not _connection_lost(error):
        # The database answered what the run asked with an error (a statement too large, a missing table, a full
        # disk): the run fails with the database's own words, not as a lost connection retried for minutes.
        log.error("a sync run failed in the database", exc_info=error)
        return Outcome.saying(False, said.msg(N_("A database error stopped the run: %(error)s"), error=str(error)))
    # The database connection dropped. What was committed stays; the run starts again on a new connection and
    # finds those records already in step.
    log.warning("a sync run lost its database connection: %s", error)
    db.connection.close()
    return Outcome.saying(
        True,
        said.msg(N_("The database connection was lost; the run is tried again.")),
        said.msg(N_("The database connection was lost; the worker's log has the details.")),
    )


def _time_limit_outcome(error: BaseException) -> Outcome:
    limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
    return Outcome.saying(False, said.msg(N_("The run was stopped after %(n)s s, the time limit of a job."), n=limit))


# From the error a run raised to what becomes of the run; the first matching row decides.
OUTCOMES: list[tuple[type[BaseException] | tuple[type[BaseException], ...], Callable[[BaseException], Outcome]]] = [
    (ConnectorError, _connector_outcome),
    ((db.DatabaseError, db.InterfaceError), _database_outcome),
    (SyncRefused, lambda error: Outcome(retry=False, reason=str(error))),
    (SoftTimeLimitExceeded, _time_limit_outcome),
]


def outcome_of(error: BaseException) -> Outcome:
    for kinds, decide in OUTCOMES:
        if isinstance(error, kinds):
            return decide(error)
    log.error("a sync run failed", exc_info=error)
    return Outcome.saying(False, said.msg(N_("The sync failed unexpectedly; the worker's log has the details.")))


@shared_task(name="connections.run_sync", bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def run_sync(self: Task, run_id: int, seen: list[Any] | None = None) -> None:
    """Run one job with the performer registered for its kind. Only a queued run, or one whose lease has run
    out, is claimed, so a duplicate delivery does nothing; one that finds another worker's lease still running
    looks again when it runs out (``seen``: the lease it found), which is how a redelivered message takes back
    the run of a worker process that died."""
    attempt = claim(run_id)
    if not attempt:
        _look_again_later(run_id, seen)
        return
    run = SyncRun.objects.select_related("connection__connector", "link").get(pk=run_id)
    run.attempts = attempt  # what its checkpoints are checked against
    refused = sync_refusal_said(run.connection)
    if refused is not None:
        finish(run_id, RunStatus.FAILED, said.render(refused), attempt, refused)
        return
    try:
        if self.request.is_eager:  # run in the caller's process and transaction: the lease has nothing to guard
            with running_a_run():
                counts = _performers[run.kind](run)
        else:
            with renewing(run_id, attempt), running_a_run():
                counts = _performers[run.kind](run)
    except LeaseLost:
        log.warning("run %s was taken back from this worker; attempt %s stops", run_id, attempt)
        return
    except Deferred as wait:
        _defer(run_id, attempt, wait)
        return
    except Exception as error:
        outcome = outcome_of(error)
        if outcome.retry and self.request.retries < MAX_RETRIES:
            raise _retry_later(self, run_id, attempt, outcome.reason, error, outcome.message) from error
        if outcome.final_reason:
            finish(run_id, RunStatus.FAILED, outcome.final_reason, attempt, outcome.final_message)
        else:
            finish(run_id, RunStatus.FAILED, outcome.reason, attempt, outcome.message)
        return
    if counts is None:
        # The run goes on in its parts: it holds no lease of its own any more (each part holds one), and its
        # last part ends it.
        _held(run_id, attempt).update(lease_expires_at=None)
        return
    finish_with(run_id, counts, attempt)


def _defer(run_id: int, attempt: int, wait: Deferred) -> None:
    """Back to the queue, the attempt not counted, with the reason shown until it goes on; sent again later."""
    _held(run_id, attempt).update(
        status=RunStatus.QUEUED,
        attempts=F("attempts") - 1,
        lease_expires_at=None,
        error=str(wait)[:4000],
        waiting=True,
    )
    try:
        run_sync.si(run_id=run_id).set(  # type: ignore[call-arg]  # not in the stubs
            time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
        ).apply_async(countdown=wait.seconds)
    except Exception:
        log.warning("could not send run %s again; the sweeper sends it", run_id, exc_info=True)
        SyncRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(send_failed_at=timezone.now())


def _look_again_later(run_id: int, seen: list[Any] | None) -> None:
    """Another attempt holds the run. If its lease is the one this message saw before, unrenewed, its worker is
    gone: look again just after it runs out (claim then takes the run). A lease renewed or taken over since
    means a live worker has the run, and this delivery was a duplicate."""
    watch = lease_to_watch(SyncRun, run_id, seen)
    if watch is None:
        return
    wait, now_seen = watch
    try:
        signature = run_sync.si(run_id=run_id, seen=now_seen)
        signature.set(  # type: ignore[call-arg]  # not in the stubs
            time_limit=settings.CELERY_TASK_TIME_LIMIT, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT
        ).apply_async(countdown=wait)
    except Exception:
        log.warning("could not send run %s to look again; the sweeper takes it back", run_id, exc_info=True)


def _retry_later(
    task: Task, run_id: int, attempt: int, reason: str, error: Exception, message: said.Message | None = None
) -> Exception:
    """Put the run back in the queue with its reason, and schedule the retry: exponential backoff with jitter."""
    requeue(run_id, reason, attempt, message)
    return task.retry(countdown=retry_delay(task.request.retries, error), exc=error)


def retry_delay(retries: int, error: BaseException) -> float:
    """Seconds before the next try: what a rate-limited connector asked for (``retry_after``), else exponential
    backoff from ERPSYNC_RETRY_DELAY; with jitter either way, so that retries spread out."""
    base = settings.ERPSYNC_RETRY_DELAY
    jitter = random.uniform(0, base)  # noqa: S311  (jitter)
    asked = getattr(error, "retry_after", None)
    if asked:
        return min(3600.0, float(asked)) + jitter
    return min(300, base * 2**retries) + jitter
