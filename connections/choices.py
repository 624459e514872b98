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
