"""Queueing bulk sync jobs: Sync all, Resync from CRM, and automatic sync in sync-priority order."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import chain
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors import protocol as p

from .choices import LinkStatus, RunKind, RunStatus
from .mapping import CRM_MODEL
from .models import ErpConnection, Link, SyncRun, SyncSettings
from .services import SyncRefused, sync_refusal

log = logging.getLogger(__name__)


class AlreadyRunning(Exception):
    pass


def queue_bulk(connection: ErpConnection, kind: str, user: Any = None, keep_non_blank: bool = False) -> SyncRun:
    """Queue Sync all or Resync from CRM for a connection; refused while another bulk run of it is queued or running."""
    refusal = sync_refusal(connection)
    if refusal:
        raise SyncRefused(refusal)
    return new_bulk_run(connection, kind, user=user, total=connection.links.count(), keep_non_blank=keep_non_blank)


def new_bulk_run(connection: ErpConnection, kind: str, *, user: Any = None, total: int = 0,
                 keep_non_blank: bool = False, send_task: bool = True) -> SyncRun:  # fmt: skip
    """The run row of a bulk job (Sync all, Resync, an import's preview or import); its task is sent once the
    caller's transaction commits, unless ``send_task`` is false (the caller runs it). Refused while another
    bulk run of the connection is queued or running: the database's partial unique index decides."""
    who = user if getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(connection=connection, kind=kind, total=total, keep_non_blank=keep_non_blank,
                                         created_by=who)  # fmt: skip
    except IntegrityError:
        raise AlreadyRunning(
            _("%(name)s is already running an import or a bulk sync; try again when it has finished.")
            % {"name": connection}
        ) from None
    if send_task:
        transaction.on_commit(lambda: send([run.pk]))
    return run


def send(run_ids: list[int]) -> None:
    """Send the runs' tasks, chained so that they run one after another.

    A broker that cannot be reached does not fail the request that queued the runs: they stay queued, marked,
    and the sweeper sends them again at its next round."""
    from .tasks import run_sync

    if not run_ids:
        return
    try:
        # The limits travel with each message; taken from the settings here, so they are what ops configured.
        hard, soft = settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT
        signatures = [
            run_sync.si(run_id=run_id).set(time_limit=hard, soft_time_limit=soft)  # type: ignore[call-arg]  # not in the stubs
            for run_id in run_ids
        ]
        chain(*signatures).apply_async()
    except Exception:
        log.warning("the broker did not take runs %s; the sweeper sends them again", run_ids, exc_info=True)
        SyncRun.objects.filter(pk__in=run_ids, status=RunStatus.QUEUED).update(send_failed_at=timezone.now())


@transaction.atomic
def tick_automatic_sync(now: datetime | None = None) -> list[int]:
    """Called every minute by beat: when automatic sync is on and due, queue one run per active connection, in
    sync-priority order, chained so that they run one after another. Returns the queued run ids."""
    now = now or timezone.now()
    settings_row = SyncSettings.objects.select_for_update().get_or_create(pk=1)[0]
    if not settings_row.automatic_sync:
        return []
    last = settings_row.last_automatic_at
    if last is not None and now - last < timedelta(minutes=settings_row.interval_minutes):
        return []
    settings_row.last_automatic_at = now
    settings_row.save(update_fields=["last_automatic_at", "updated_at"])
    queued = []
    for connection in ErpConnection.objects.filter(is_active=True, last_test_ok=True).order_by("priority", "pk"):
        try:
            with transaction.atomic():
                queued.append(SyncRun.objects.create(connection=connection, kind=RunKind.AUTOMATIC).pk)
        except IntegrityError:
            continue  # this connection's previous bulk run is still going: it is not queued twice
    transaction.on_commit(lambda: send(queued))
    return queued


def automatic_links(connection: ErpConnection, started: datetime) -> tuple[list[Link], dict[str, tuple[str, datetime]]]:
    """The links an automatic run syncs, and where each actor type resumes next time (saved after the writes).

    ERP side: every page of the change feed from the saved cursor. CRM side: records changed since the last run.
    Links that failed before are always included, so a failure is retried until it succeeds.
    """
    client = connection.connector.client().connection(str(connection.guid), connection.config_values)
    keys: dict[str, set[str]] = {}
    resume: dict[str, tuple[str, datetime]] = {}
    selected = Q(status__in=[LinkStatus.FAILED])
    for actor_type in connection.actor_types.filter(sync_enabled=True):
        changed: set[str] = set()
        cursor = actor_type.feed_cursor or None
        for page in client.changes(p.ActorType(actor_type.actor_type), cursor=cursor, page_size=p.MAX_PAGE_SIZE):
            changed.update(actor.key for actor in page.actors if actor.key)
            cursor = page.next_cursor
        keys[actor_type.actor_type] = changed
        resume[actor_type.actor_type] = (cursor or "", started)
        selected |= Q(actor_type=actor_type.actor_type, erp_key__in=changed)
        since = actor_type.crm_changes_since
        model = CRM_MODEL[actor_type.actor_type]
        attribute = {"Person": "contact", "Project": "project"}.get(actor_type.actor_type, "company")
        recent = model._default_manager.filter(updated_at__gte=since) if since else model._default_manager.all()
        selected |= Q(actor_type=actor_type.actor_type, **{f"{attribute}__in": recent.values("pk")})
    return list(connection.links.filter(selected).distinct()), resume


def save_resume_points(connection: ErpConnection, resume: dict[str, tuple[str, datetime]]) -> None:
    for actor_type, (cursor, since) in resume.items():
        connection.actor_types.filter(actor_type=actor_type).update(feed_cursor=cursor, crm_changes_since=since)


def sweep_stuck_runs(now: datetime | None = None) -> list[int]:
    """Send again the runs whose worker died (still running past the deadline), whose message was lost (still
    queued past it) or whose task the broker did not take (at once). The task only claims queued runs, so a run
    is never executed twice at once; one that has used up its attempts is failed, saying so."""
    from .tasks import MAX_RETRIES

    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.ERPSYNC_RUN_STUCK_AFTER)
    resent = []
    with transaction.atomic():
        stuck = SyncRun.objects.select_for_update(skip_locked=True).filter(
            Q(status=RunStatus.RUNNING, started_at__lt=deadline)
            | Q(status=RunStatus.QUEUED, created_at__lt=deadline)
            | Q(status=RunStatus.QUEUED, send_failed_at__isnull=False)
        )
        for run in stuck:
            if run.attempts > MAX_RETRIES:
                SyncRun.objects.filter(pk=run.pk).update(
                    status=RunStatus.FAILED, finished_at=now,
                    error=_("Gave up after %(n)s attempts; the worker kept stopping during this run.") % {"n": run.attempts},
                )  # fmt: skip
                continue
            SyncRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, created_at=now, send_failed_at=None)
            resent.append(run.pk)
        transaction.on_commit(lambda: _send_each(resent))
    return resent


def _send_each(run_ids: list[int]) -> None:
    for run_id in run_ids:
        send([run_id])
