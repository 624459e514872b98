"""Celery tasks sent by beat. Arguments are ids and small values; the work lives in services and the job machinery
(``jobs.run_sync`` runs every queued run)."""

from __future__ import annotations

import logging
import socket
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from django import db

from . import jobs, retention, services
from .sync import parts, reconcile

log = logging.getLogger(__name__)


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


@shared_task(name="connections.automatic_sync_tick", ignore_result=True)
def automatic_sync_tick() -> None:
    """Scheduled by beat every minute; the interval and on/off live in the database, so changes need no restart."""
    jobs.tick_automatic_sync()


@shared_task(name="connections.sweep_stuck_runs", ignore_result=True)
def sweep_stuck_runs() -> None:
    """Scheduled by beat every half lease (ERPSYNC_RUN_LEASE_SECONDS / 2): takes back runs and parts of runs whose
    worker died and sends again those whose message was lost."""
    lost = jobs.broker_lost_messages()
    jobs.sweep_stuck_runs(lost=lost)
    parts.sweep_stuck_parts(lost=lost)


@shared_task(name="connections.prune_sync_log", ignore_result=True)
def prune_sync_log() -> None:
    """Scheduled by beat every hour: deletes sync log rows older than ERPSYNC_SYNC_LOG_RETENTION_DAYS, for a minute
    at most; what is left is deleted at the next run. The rows of plans made before then go too."""
    result = retention.prune_sync_log()
    if result.deleted:
        log.info(
            "sync log: deleted %s rows older than %s in %s batches%s",
            result.deleted,
            result.cutoff,
            result.batches,
            "" if result.finished else "; more are left for the next run",
        )
    plan_rows = retention.prune_plans()
    if plan_rows:
        log.info("plans: deleted %s rows of plans made before %s", plan_rows, result.cutoff)


@shared_task(name="connections.purge_deleted_connections", ignore_result=True)
def purge_deleted_connections() -> None:
    """Scheduled by beat every hour: deletes for good the ERP connections deleted more than
    ERPSYNC_DELETED_CONNECTION_DAYS ago, with their links, sync log and imports."""
    for name in services.purge_deleted_connections():
        log.info("deleted ERP connection %s purged", name)


@shared_task(name="connections.reconcile_tick", ignore_result=True)
def reconcile_tick() -> None:
    """Scheduled by beat every 10 minutes: within ERPSYNC_RECONCILE_HOUR, reconciles the connections that reconcile
    every night and were not reconciled in the last 20 hours."""
    for run_id in reconcile.tick():
        log.info("reconciliation run %s queued", run_id)
