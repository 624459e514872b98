"""Celery tasks. Arguments are ids and small values; the work itself lives in services."""

from __future__ import annotations

import socket
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from django import db

from . import services


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
