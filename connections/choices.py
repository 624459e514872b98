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
    IMPORT_PREVIEW = "import_preview", _("Import preview")
    IMPORT = "import", _("Import from ERP")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIALLY_FAILED = "partially_failed", _("Partially failed")
    FAILED = "failed", _("Failed")


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
# At most one of these is queued or running per connection (a database constraint): an import never races
# a Sync all, an automatic run or another import for the same ERP keys.
BULK_RUN_KINDS = (RunKind.AUTOMATIC, RunKind.SYNC_ALL, RunKind.RESYNC, RunKind.IMPORT_PREVIEW, RunKind.IMPORT)


class LogOutcome(models.TextChoices):
    WRITTEN = "written", _("written")
    SKIPPED = "skipped", _("skipped")
    ERROR = "error", _("error")


class MatchKind(models.TextChoices):
    """What the import found in the CRM for one ERP actor."""

    NEW = "new", _("New")
    MATCH = "match", _("Match: link and update")
    AMBIGUOUS = "ambiguous", _("Needs a decision")
    LINKED = "linked", _("Already linked")
    BLOCKED = "blocked", _("Cannot be imported")


class ImportAction(models.TextChoices):
    """What Import does with one row; blank until someone decides an ambiguous row."""

    CREATE = "create", _("Create a new record")
    LINK = "link", _("Link and update")
    SKIP = "skip", _("Skip")


class ImportOutcome(models.TextChoices):
    PENDING = "pending", _("Not imported yet")
    NEW = "new", _("New")
    UPDATED = "updated", _("Updated")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
