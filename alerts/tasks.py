"""Celery tasks of the alerts app."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="alerts.evaluate", ignore_result=True)
def evaluate_alerts() -> None:
    """Scheduled by beat every minute: opens and resolves incidents and sends their notices."""
    services.evaluate()
