"""States and kinds used by the alerts app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Condition(models.TextChoices):
    """What is watched. Each open incident is one of these, about one connection, connector or the install."""

    RUN_FAILED = "run_failed", _("Sync job failed")
    RUN_STUCK = "run_stuck", _("Sync job stuck")
    CONNECTOR_DOWN = "connector_down", _("Sync Connector not answering")
    NO_WORKER = "no_worker", _("No worker")
    FAILED_RECORDS = "failed_records", _("Failed records")


class Event(models.TextChoices):
    OPENED = "opened", _("Alert")
    RESOLVED = "resolved", _("Recovery notice")


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhook")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Could not be sent")
    CANCELLED = "cancelled", _("Not sent: resolved first")


class Resolution(models.TextChoices):
    CLEARED = "cleared", _("The condition cleared")
    NOT_WATCHED = "not_watched", _("No longer watched")
