"""States and kinds used by the connections app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Visibility(models.TextChoices):
    EVERYONE = "everyone", _("Everyone")
    SPECIFIED = "specified", _("Specified users + groups")


class Direction(models.TextChoices):
    ERP_TO_CRM = "erp_to_crm", _("ERP → CRM")
    CRM_TO_ERP = "crm_to_erp", _("CRM → ERP")
    BOTH = "both", _("Both ways")


class AuditAction(models.TextChoices):
    CREATED = "created", _("created")
    CHANGED = "changed", _("changed")
    TESTED = "tested", _("tested")
    ACTIVATED = "activated", _("activated")
    DEACTIVATED = "deactivated", _("deactivated")
    REFRESHED = "refreshed", _("refreshed from connector")
    DELETED = "deleted", _("deleted")


class LinkStatus(models.TextChoices):
    OK = "ok", _("In step")
    FAILED = "failed", _("Failed")
    ERP_MISSING = "erp_missing", _("Missing in the ERP")


class RunKind(models.TextChoices):
    SYNC_NOW = "sync_now", _("Sync now")
    AUTOMATIC = "automatic", _("Automatic sync")
    SYNC_ALL = "sync_all", _("Sync all")
    RESYNC = "resync", _("Resync from CRM")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIALLY_FAILED = "partially_failed", _("Partially failed")
    FAILED = "failed", _("Failed")


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
BULK_RUN_KINDS = (RunKind.AUTOMATIC, RunKind.SYNC_ALL, RunKind.RESYNC)


class LogOutcome(models.TextChoices):
    WRITTEN = "written", _("written")
    SKIPPED = "skipped", _("skipped")
    ERROR = "error", _("error")
