"""ERP connections and the jobs that keep CRM and ERP in step."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def heartbeat_stale_after() -> timedelta:
    """A worker that has not reported for this long (three missed heartbeats, at least 90 s) is shown as gone."""
    return timedelta(seconds=max(90, 3 * settings.ERPSYNC_HEARTBEAT_SECONDS))


class ErpSyncAccess(models.Model):
    """Carries the ERP Sync permissions given to users and groups; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_erp_sync", _("ERP sync user licence: sees the ERP tab")),
            ("manage_erp_sync", _("Administers ERP sync: connectors, connections and mappings")),
        ]

    def __str__(self) -> str:
        return "ERP sync access"


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker on one host ran the scheduled heartbeat job."""

    hostname = models.CharField(_("worker"), max_length=200, unique=True)
    last_seen = models.DateTimeField(_("last seen"))
    jobs_run = models.PositiveBigIntegerField(_("heartbeats"), default=0)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_alive(self) -> bool:
        return timezone.now() - self.last_seen < heartbeat_stale_after()
