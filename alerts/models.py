"""Alerts: what is watched and who hears of it, the incidents found, and every notice sent about them."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connections.models import ErpConnection
from connectors.models import SyncConnector
from core import crypto

from .choices import Channel, Condition, DeliveryStatus, Event, Resolution

MINUTES = [MinValueValidator(1), MaxValueValidator(1440)]


class AlertSettings(models.Model):
    """Installation-wide alert settings: one row. Who hears of every incident, the webhook, and the thresholds."""

    recipients = models.TextField(_("recipients"), blank=True)  # e-mail addresses, one per line
    webhook_url_encrypted = models.TextField(blank=True, editable=False)  # the URL holds a token: kept encrypted
    run_failed_on = models.BooleanField(_("a sync job failed or partially failed"), default=True)
    run_stuck_on = models.BooleanField(_("a sync job is stuck"), default=True)
    run_stuck_minutes = models.PositiveIntegerField(
        _("queued or running for (minutes)"), default=30, validators=MINUTES
    )
    connector_down_on = models.BooleanField(_("a Sync Connector does not answer"), default=True)
    connector_down_minutes = models.PositiveIntegerField(
        _("not answering for (minutes)"), default=5, validators=MINUTES
    )
    no_worker_on = models.BooleanField(_("no worker reports"), default=True)
    no_worker_minutes = models.PositiveIntegerField(_("no heartbeat for (minutes)"), default=5, validators=MINUTES)
    failed_records_on = models.BooleanField(_("too many failed records"), default=True)
    failed_records_threshold = models.PositiveIntegerField(
        _("more failed records than"), default=10, validators=[MaxValueValidator(1_000_000)]
    )
    # Alerting began here: runs that finished before it are history, not news.
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("alert settings")
        verbose_name_plural = _("alert settings")

    def __str__(self) -> str:
        return "Alert settings"

    @classmethod
    def load(cls) -> AlertSettings:
        """The row, made on first use (the first evaluation, usually)."""
        row, _created = cls.objects.get_or_create(pk=1)
        return row

    @classmethod
    def current(cls) -> AlertSettings:
        """The row, or the defaults without saving them: for pages, whose GET changes nothing."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @property
    def webhook_url(self) -> str:
        return crypto.decrypt(self.webhook_url_encrypted) if self.webhook_url_encrypted else ""

    def set_webhook_url(self, url: str) -> None:
        self.webhook_url_encrypted = crypto.encrypt(url) if url else ""

    def is_on(self, condition: str) -> bool:
        return bool(getattr(self, f"{condition}_on"))

    def recipient_list(self) -> list[str]:
        return split_addresses(self.recipients)


class ConnectionAlertSettings(models.Model):
    """Who also hears of one connection's incidents, and its own failed-records threshold (blank: the default)."""

    connection = models.OneToOneField(ErpConnection, on_delete=models.CASCADE, related_name="alert_settings")
    recipients = models.TextField(_("recipients"), blank=True)
    failed_records_threshold = models.PositiveIntegerField(
        _("more failed records than"), null=True, blank=True, validators=[MaxValueValidator(1_000_000)]
    )

    class Meta:
        verbose_name = _("connection alert settings")
        verbose_name_plural = _("connection alert settings")

    def __str__(self) -> str:
        return f"Alert settings of {self.connection}"

    def recipient_list(self) -> list[str]:
        return split_addresses(self.recipients)


class Incident(models.Model):
    """One stretch of time during which a watched condition held, for one connection, connector or the install.

    ``key`` names what it is about (``run_failed:3:automatic``, ``connector_down:2``, ``no_worker``); at most one
    incident per key is open at a time, a database constraint, so evaluations running at once open it once.
    ``facts`` are what was seen when it opened; pages and notices word them in their reader's language.
    """

    key = models.CharField(max_length=200)
    condition = models.CharField(_("condition"), max_length=20, choices=Condition.choices)
    connection = models.ForeignKey(
        ErpConnection, on_delete=models.SET_NULL, null=True, blank=True, related_name="alert_incidents"
    )
    connector = models.ForeignKey(
        SyncConnector, on_delete=models.SET_NULL, null=True, blank=True, related_name="alert_incidents"
    )
    subject = models.CharField(max_length=200, blank=True)  # the connection's or connector's name, kept
    facts = models.JSONField(default=dict, blank=True)
    since = models.DateTimeField(_("since"))  # when the condition began, as far as is known
    opened_at = models.DateTimeField(_("opened"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(resolved_at__isnull=True), name="alerts_one_open_incident_per_key"
            )
        ]
        indexes = [models.Index(fields=["condition", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.key} opened {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class Delivery(models.Model):
    """One notice (the alert, or the recovery notice) of one incident on one channel, and whether it got out.

    Written in the transaction that opens or resolves the incident, then sent by whichever evaluation claims it
    first; one that fails is tried again at later evaluations, a few times.
    """

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20, choices=Event.choices)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    recipients = models.TextField(blank=True)  # e-mail: the addresses, one per line, as planned
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Not to be tried before this: the claim of a sender at work, or the wait before a retry.
    next_try_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["incident", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "event", "channel"], name="alerts_one_delivery_per_channel")
        ]
        indexes = [models.Index(fields=["status", "next_try_at"])]

    def __str__(self) -> str:
        return f"{self.event} of incident {self.incident_id} by {self.channel}: {self.status}"

    def recipient_list(self) -> list[str]:
        return split_addresses(self.recipients)


class Watch(models.Model):
    """Something seen wrong, and since when, while it has not lasted long enough to alert on: a connector that
    does not answer (``connector:2``), a run still queued or running (``run:41``), no worker at all (``worker``)."""

    key = models.CharField(max_length=200, unique=True)
    since = models.DateTimeField()
    detail = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.key} since {self.since:%Y-%m-%d %H:%M}"


def split_addresses(text: str) -> list[str]:
    """E-mail addresses from text with one per line (commas and semicolons also separate), each once."""
    seen: dict[str, str] = {}
    for part in text.replace(",", "\n").replace(";", "\n").splitlines():
        address = part.strip()
        if address and address.lower() not in seen:
            seen[address.lower()] = address
    return list(seen.values())
