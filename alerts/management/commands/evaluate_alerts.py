"""Evaluate the alert conditions once, outside Celery: for cron, so that "no worker" is noticed even when no
worker (or no beat) runs to do it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from alerts import describe, services


class Command(BaseCommand):
    help = (
        "Check every alert condition once, open and resolve incidents and send their notices. Beat does this every "
        "minute through a worker; run this from cron as well so that a stopped worker or beat is alerted on."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = services.evaluate()
        for incident in outcome.opened:
            self.stdout.write(f"opened: {describe.title(incident)}")
        for incident in outcome.resolved:
            self.stdout.write(f"resolved: {describe.title(incident)}")
        self.stdout.write(f"notices sent: {outcome.sent}, not sent: {outcome.failed}")
