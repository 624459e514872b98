"""Domain actions of the connections app."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import WorkerHeartbeat


@transaction.atomic
def record_worker_heartbeat(hostname: str) -> WorkerHeartbeat:
    """Note that the worker on ``hostname`` is running jobs now."""
    heartbeat, created = WorkerHeartbeat.objects.select_for_update().get_or_create(
        hostname=hostname[:200], defaults={"last_seen": timezone.now(), "jobs_run": 1}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(last_seen=timezone.now(), jobs_run=F("jobs_run") + 1)
        heartbeat.refresh_from_db()
    return heartbeat
