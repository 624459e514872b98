"""Celery tasks. Arguments are ids and small values; the work itself lives in services and the engine."""

from __future__ import annotations

import logging
import random
import socket
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django import db
from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.client import ConnectorError

from . import importing, jobs, services
from .choices import RunKind, RunStatus
from .models import SyncRun
from .sync.engine import sync_links

log = logging.getLogger(__name__)
MAX_RETRIES = 5


@shared_task(name="connections.worker_heartbeat", bind=True, ignore_result=True)
def worker_heartbeat(self: Task) -> None:
    """Scheduled by beat: proves that the broker delivers and a worker writes to the database."""
    services.record_worker_heartbeat(self.request.hostname or socket.gethostname())


@worker_ready.connect
def announce_worker(sender: Any = None, **kwargs: Any) -> None:
    """A worker that has just started shows up at once instead of at beat's next heartbeat."""
    services.record_worker_heartbeat(getattr(sender, "hostname", None) or socket.gethostname())
    # The pool's processes are forked from this one: they must not share its database connection.
    db.connections.close_all()


def finish(run_id: int, status: str, error: str = "") -> None:
    SyncRun.objects.filter(pk=run_id).update(status=status, error=error[:4000], finished_at=timezone.now())


def claim(run_id: int) -> bool:
    """Mark a queued run as running; False when it is not queued (already claimed, or finished)."""
    return bool(SyncRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1, done=0, changed=0, failed=0
    ))  # fmt: skip


@shared_task(name="connections.run_sync", bind=True, ignore_result=True, max_retries=MAX_RETRIES)
def run_sync(self: Task, run_id: int) -> None:
    """Run one sync job. Only a queued run is claimed, so a duplicate delivery does nothing."""
    if not claim(run_id):
        return
    run = SyncRun.objects.select_related("connection__connector", "link").get(pk=run_id)
    refusal = services.sync_refusal(run.connection)
    if refusal:
        finish(run_id, RunStatus.FAILED, refusal)
        return
    resume = None
    try:
        if run.kind in (RunKind.IMPORT_PREVIEW, RunKind.IMPORT):
            counts = importing.perform(run)
            finish(run_id, RunStatus.PARTIALLY_FAILED if counts.failed else RunStatus.SUCCEEDED)
            return
        if run.kind == RunKind.SYNC_NOW:
            if run.link is None:
                finish(run_id, RunStatus.FAILED, _("The link was removed before the sync ran."))
                return
            links = [run.link]
        elif run.kind == RunKind.AUTOMATIC:
            links, resume = jobs.automatic_links(run.connection, run.started_at or timezone.now())
        else:
            links = list(run.connection.links.all())
        SyncRun.objects.filter(pk=run_id).update(total=len(links))
        counts = sync_links(run, links, resync=run.kind == RunKind.RESYNC, keep_non_blank=run.keep_non_blank)
        if resume is not None:
            # Only now that every write is committed does automatic sync move past these changes.
            jobs.save_resume_points(run.connection, resume)
    except ConnectorError as error:
        if not error.permanent and self.request.retries < MAX_RETRIES:
            raise _retry_later(self, run_id, str(error), error) from error
        finish(run_id, RunStatus.FAILED, str(error))
        return
    except (db.OperationalError, db.InterfaceError) as error:
        # The database connection dropped (a restart, a failover, a killed backend). What was committed stays;
        # the run starts again on a new connection and finds those records already in step.
        log.warning("sync run %s lost its database connection: %s", run_id, error)
        db.connection.close()
        if self.request.retries < MAX_RETRIES:
            raise _retry_later(
                self, run_id, _("The database connection was lost; the run is tried again."), error
            ) from error
        finish(run_id, RunStatus.FAILED, _("The database connection was lost; the worker's log has the details."))
        return
    except services.SyncRefused as refusal:
        finish(run_id, RunStatus.FAILED, str(refusal))
        return
    except SoftTimeLimitExceeded:
        limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
        finish(
            run_id, RunStatus.FAILED, _("The run was stopped after %(n)s s, the time limit of a job.") % {"n": limit}
        )
        return
    except Exception:
        log.exception("sync run %s failed", run_id)
        finish(run_id, RunStatus.FAILED, _("The sync failed unexpectedly; the worker's log has the details."))
        return
    finish(run_id, RunStatus.PARTIALLY_FAILED if counts.failed else RunStatus.SUCCEEDED)


def _retry_later(task: Task, run_id: int, reason: str, error: Exception) -> Exception:
    """Put the run back in the queue with its reason, and schedule the retry: exponential backoff with jitter."""
    try:
        SyncRun.objects.filter(pk=run_id).update(status=RunStatus.QUEUED, error=reason[:4000])
    except (db.OperationalError, db.InterfaceError):
        # Still no database: the run stays "running", and the sweeper sends it again after ERPSYNC_RUN_STUCK_AFTER.
        db.connection.close()
    base = settings.ERPSYNC_RETRY_DELAY
    delay = min(300, base * 2**task.request.retries) + random.uniform(0, base)  # noqa: S311  (jitter)
    return task.retry(countdown=delay, exc=error)


@shared_task(name="connections.automatic_sync_tick", ignore_result=True)
def automatic_sync_tick() -> None:
    """Scheduled by beat every minute; the interval and on/off live in the database, so changes need no restart."""
    jobs.tick_automatic_sync()


@shared_task(name="connections.sweep_stuck_runs", ignore_result=True)
def sweep_stuck_runs() -> None:
    """Scheduled by beat every minute: recovers runs whose worker died or whose message was lost."""
    jobs.sweep_stuck_runs()
