"""Celery tasks. Arguments are ids and small values; the work itself lives in services."""

from __future__ import annotations

import socket

from celery import Task, shared_task

from . import services


@shared_task(name="connections.worker_heartbeat", bind=True, ignore_result=True)
def worker_heartbeat(self: Task) -> None:
    """Scheduled by beat: proves that the broker delivers and a worker writes to the database."""
    services.record_worker_heartbeat(self.request.hostname or socket.gethostname())
