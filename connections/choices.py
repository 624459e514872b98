"""States and kinds used by the connections app."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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
    RESTORED = "restored", _("restored")
    PURGED = "purged", _("deleted for good")


class LinkStatus(models.TextChoices):
    OK = "ok", _("In step")
    FAILED = "failed", _("Failed")
    ERP_MISSING = "erp_missing", _("Missing in the ERP")
    # Protocol v1.1, capability tombstones: what the change feed said became of the ERP actor.
    ERP_DELETED = "erp_deleted", _("Deleted in the ERP")
    ERP_MERGED = "erp_merged", _("Merged in the ERP")
    ERP_ARCHIVED = "erp_archived", _("Archived in the ERP")


# A link in one of these states is not synced until its actor comes back in the change feed (or it is relinked).
MARKED_STATUSES = (LinkStatus.ERP_DELETED, LinkStatus.ERP_MERGED, LinkStatus.ERP_ARCHIVED)
TOMBSTONE_STATUS = {
    "deleted": LinkStatus.ERP_DELETED,
    "merged": LinkStatus.ERP_MERGED,
    "archived": LinkStatus.ERP_ARCHIVED,
}


class RunKind(models.TextChoices):
    SYNC_NOW = "sync_now", _("Sync now")
    AUTOMATIC = "automatic", _("Automatic sync")
    SYNC_ALL = "sync_all", _("Sync all")
    RESYNC = "resync", _("Resync from CRM")
    IMPORT_PREVIEW = "import_preview", _("Import preview")
    IMPORT = "import", _("Import from ERP")
    # Compares every link's mapped fields on both sides without writing (``connections.sync.reconcile``).
    RECONCILE = "reconcile", _("Reconciliation")
    # Syncs the links the last reconciliation found drifted.
    SYNC_DRIFTED = "sync_drifted", _("Sync drifted records")
    UNDO = "undo", pgettext_lazy("kind of run", "Undo")
    # What a Sync all or Resync from CRM would change, per record and field, without writing
    # (``connections.sync.plan``); approved, it runs as a Sync all or Resync limited to exactly that.
    PLAN = "plan", _("Plan")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIALLY_FAILED = "partially_failed", _("Partially failed")
    FAILED = "failed", _("Failed")


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
# At most one of these is queued or running per connection (a database constraint): an import never races
# a Sync all, an automatic run or another import for the same ERP keys.
# An undo is one of them: it never races a sync of the records it puts back.
BULK_RUN_KINDS = (
    RunKind.AUTOMATIC,
    RunKind.SYNC_ALL,
    RunKind.RESYNC,
    RunKind.IMPORT_PREVIEW,
    RunKind.IMPORT,
    RunKind.RECONCILE,
    RunKind.SYNC_DRIFTED,
    RunKind.UNDO,
    RunKind.PLAN,
)
# The runs whose writes can be undone (an import creates records, which an undo does not delete).
UNDOABLE_RUN_KINDS = (RunKind.SYNC_NOW, RunKind.AUTOMATIC, RunKind.SYNC_ALL, RunKind.RESYNC, RunKind.SYNC_DRIFTED)


class PlanOutcome(models.TextChoices):
    """What the approved run did with one planned field."""

    PLANNED = "", _("Planned")
    WRITTEN = "written", _("Written")
    CHANGED = "changed", _("Changed since the plan")
    FAILED = "failed", _("Failed")


class DriftState(models.TextChoices):
    """What reconciliation (or the link's last sync) found of a link's mapped fields on both sides."""

    IN_STEP = "in_step", _("In step")
    DRIFTED = "drifted", _("Drifted")
    FAILED = "failed", _("Failed")
    MISSING = "missing", _("Missing or archived in the ERP")
    OUTSIDE = "outside", _("Outside the sync filter")


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
