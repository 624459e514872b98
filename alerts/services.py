"""Domain actions of the alerts app: evaluate the conditions, open and resolve incidents, send their notices,
save the settings and send a test alert.

Concurrency is the database's: at most one open incident per key (a partial unique index), an incident is
resolved by the one UPDATE that finds it still open, and a notice is sent by the one UPDATE that claims it. So two
evaluations at once (two beats, beat and ``manage.py evaluate_alerts``) open, resolve and send everything once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from connections.choices import AuditAction
from connections.models import AuditEntry, ErpConnection

from . import channels, conditions, describe
from .choices import Channel, Condition, DeliveryStatus, Event, Resolution
from .conditions import Finding
from .models import AlertSettings, ConnectionAlertSettings, Delivery, Incident, split_addresses

log = logging.getLogger(__name__)

AUDIT_SUBJECT = "Alerts"  # the audit entries of this page carry this subject, so that it can list them
MAX_ATTEMPTS = 5  # a notice that cannot be sent is tried at this many evaluations (after 1, 2, 4, 8 minutes)
CLAIM = timedelta(minutes=5)  # a sender that died holding a notice leaves it to be tried again after this long


@dataclass
class Evaluation:
    """What one evaluation did."""

    opened: list[Incident] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)
    sent: int = 0
    failed: int = 0


# Evaluating


def evaluate(now: datetime | None = None) -> Evaluation:
    """Check every condition, open an incident for each new finding, resolve those that cleared, send notices."""
    now = now or timezone.now()
    alert_settings = AlertSettings.load()
    outcome = Evaluation()
    for condition, check in conditions.CHECKS.items():
        if alert_settings.is_on(condition):
            try:
                findings = {finding.key: finding for finding in check(alert_settings, now)}
            except Exception:
                # One broken check must not stop the others, nor resolve its incidents as if all were well.
                log.exception("alert condition %s could not be evaluated", condition)
                continue
        else:
            findings = {}
            conditions.forget_watches(condition)
        _reconcile(condition, findings, alert_settings, now, outcome)
    deliver_pending(outcome, now)
    return outcome


def _reconcile(
    condition: Condition,
    findings: dict[str, Finding],
    alert_settings: AlertSettings,
    now: datetime,
    outcome: Evaluation,
) -> None:
    open_incidents = {
        incident.key: incident
        for incident in Incident.objects.filter(condition=condition, resolved_at=None).select_related(
            "connection", "connector"
        )
    }
    for key, finding in findings.items():
        if key not in open_incidents:
            incident = open_incident(finding, alert_settings, now)
            if incident is not None:
                outcome.opened.append(incident)
    for key, incident in open_incidents.items():
        if key not in findings and resolve_incident(incident, _resolution(incident, alert_settings), now):
            outcome.resolved.append(incident)


def open_incident(finding: Finding, alert_settings: AlertSettings, now: datetime) -> Incident | None:
    """Open the incident and plan its alert on each configured channel; None when it is open already."""
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                key=finding.key,
                condition=finding.condition,
                connection_id=finding.connection_id,
                connector_id=finding.connector_id,
                subject=finding.subject[:200],
                facts=finding.facts,
                since=min(finding.since, now),
                opened_at=now,
            )
            addresses = recipients_for(incident, alert_settings)
            planned = (
                [
                    Delivery(
                        incident=incident,
                        event=Event.OPENED,
                        channel=Channel.EMAIL,
                        recipients="\n".join(addresses),
                        next_try_at=now,
                    )
                ]
                if addresses
                else []
            )
            if alert_settings.webhook_url_encrypted:
                planned.append(
                    Delivery(incident=incident, event=Event.OPENED, channel=Channel.WEBHOOK, next_try_at=now)
                )
            Delivery.objects.bulk_create(planned)
    except IntegrityError:
        return None  # another evaluation opened it a moment ago
    log.warning("alert opened: %s", finding.key)
    return incident


def resolve_incident(incident: Incident, resolution: Resolution, now: datetime) -> bool:
    """Close an open incident and plan the recovery notice wherever the alert went; False when already closed.

    An alert still waiting to be sent is cancelled: the recovery notice tells the whole story."""
    with transaction.atomic():
        if not Incident.objects.filter(pk=incident.pk, resolved_at=None).update(resolved_at=now, resolution=resolution):
            return False
        incident.resolved_at, incident.resolution = now, resolution
        alerts = list(incident.deliveries.filter(event=Event.OPENED))
        incident.deliveries.filter(event=Event.OPENED, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED
        )
        Delivery.objects.bulk_create(
            [
                Delivery(
                    incident=incident,
                    event=Event.RESOLVED,
                    channel=alert.channel,
                    recipients=alert.recipients,
                    next_try_at=now,
                )
                for alert in alerts
            ]
        )
    log.warning("alert resolved: %s", incident.key)
    return True


def _resolution(incident: Incident, alert_settings: AlertSettings) -> Resolution:
    """Cleared, or no longer watched: the condition was turned off, or what it was about is gone or inactive."""
    if not alert_settings.is_on(incident.condition):
        return Resolution.NOT_WATCHED
    if incident.condition in (Condition.RUN_FAILED, Condition.FAILED_RECORDS):
        if incident.connection is None or not incident.connection.is_active:
            return Resolution.NOT_WATCHED
    elif incident.condition == Condition.RUN_STUCK and incident.connection is None:
        return Resolution.NOT_WATCHED
    elif incident.condition == Condition.CONNECTOR_DOWN:
        connector = incident.connector
        if connector is None or connector.deleted_at is not None:
            return Resolution.NOT_WATCHED
        if not ErpConnection.objects.filter(connector=connector, is_active=True).exists():
            return Resolution.NOT_WATCHED
    return Resolution.CLEARED


def recipients_for(incident: Incident, alert_settings: AlertSettings) -> list[str]:
    """The global recipients hear of every incident; a connection's recipients also of that connection's, and of
    its connector's."""
    connections: Any = ErpConnection.objects.none()
    if incident.connection_id is not None:
        connections = ErpConnection.objects.filter(pk=incident.connection_id)
    elif incident.connector_id is not None:
        connections = ErpConnection.objects.filter(connector_id=incident.connector_id, is_active=True)
    own = ConnectionAlertSettings.objects.filter(connection__in=connections).order_by("connection__name")
    return split_addresses("\n".join([alert_settings.recipients, *(row.recipients for row in own)]))


# Sending


def deliver_pending(outcome: Evaluation | None = None, now: datetime | None = None) -> Evaluation:
    """Send every notice that is due. Each is claimed first by an UPDATE that only one process can make."""
    outcome = outcome or Evaluation()
    now = now or timezone.now()
    due = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_try_at__lte=now)
        .select_related("incident__connection", "incident__connector")
        .order_by("pk")[:200]
    )
    for delivery in due:
        claimed = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, next_try_at__lte=now).update(
            next_try_at=now + CLAIM, attempts=F("attempts") + 1
        )
        if not claimed:
            continue  # another evaluation is sending it
        attempts = delivery.attempts + 1
        try:
            send(delivery)
        except channels.DeliveryFailed as failure:
            last = attempts >= MAX_ATTEMPTS
            # Only while still pending: an alert cancelled meanwhile (its incident resolved) is not tried again.
            Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
                status=DeliveryStatus.FAILED if last else DeliveryStatus.PENDING,
                error=str(failure)[:2000],
                next_try_at=now + timedelta(minutes=2 ** (attempts - 1)),
            )
            log.warning("alert notice %s not sent (attempt %s): %s", delivery.pk, attempts, failure)
            outcome.failed += 1
        else:
            # Sent is sent: this also overrides a cancellation made while the message was on its way.
            Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENT, sent_at=timezone.now(), error="")
            outcome.sent += 1
    return outcome


def send(delivery: Delivery) -> None:
    """Send one notice, worded in the installation's language (LANGUAGE_CODE)."""
    with translation.override(settings.LANGUAGE_CODE):
        note = describe.notice(delivery.incident, resolved=delivery.event == Event.RESOLVED)
        if delivery.channel == Channel.EMAIL:
            channels.send_email(delivery.recipient_list(), note.subject, note.email_body())
            return
        url = AlertSettings.current().webhook_url
        if not url:
            raise channels.DeliveryFailed(_("The webhook was removed before the notice could be sent."))
        channels.post_webhook(url, note.webhook_text())


# The settings page


@dataclass(frozen=True)
class TestResult:
    channel: Channel
    ok: bool
    message: str


class NothingToSend(Exception):
    """A test alert was asked for, but no recipient and no webhook are configured."""


def configured_recipients(alert_settings: AlertSettings) -> list[str]:
    """Every address any alert may go to: the global recipients and each connection's."""
    rows = ConnectionAlertSettings.objects.exclude(recipients="").order_by("connection__name")
    return split_addresses("\n".join([alert_settings.recipients, *(row.recipients for row in rows)]))


def send_test_alert(user: Any) -> list[TestResult]:
    """Send a test alert at once to every configured address and the webhook, in the active language."""
    alert_settings = AlertSettings.current()
    addresses, url = configured_recipients(alert_settings), alert_settings.webhook_url
    if not addresses and not url:
        raise NothingToSend(_("Add recipients or a webhook first; there is nowhere to send a test alert."))
    note = describe.test_notice()
    results = []
    if addresses:
        try:
            channels.send_email(addresses, note.subject, note.email_body())
        except channels.DeliveryFailed as failure:
            results.append(
                TestResult(Channel.EMAIL, False, _("The test e-mail could not be sent. %(why)s") % {"why": failure})
            )
        else:
            results.append(
                TestResult(
                    Channel.EMAIL, True, _("Test e-mail sent to %(recipients)s.") % {"recipients": ", ".join(addresses)}
                )
            )
    if url:
        try:
            channels.post_webhook(url, note.webhook_text())
        except channels.DeliveryFailed as failure:
            results.append(
                TestResult(
                    Channel.WEBHOOK, False, _("The webhook did not take the test alert. %(why)s") % {"why": failure}
                )
            )
        else:
            results.append(TestResult(Channel.WEBHOOK, True, _("The webhook took the test alert.")))
    _audit(user, AuditAction.TESTED, _("test alert: %(results)s") % {"results": " ".join(r.message for r in results)})
    return results


# The fields the settings form sets.
SETTING_FIELDS = (
    "recipients",
    "run_failed_on",
    "run_stuck_on",
    "run_stuck_minutes",
    "connector_down_on",
    "connector_down_minutes",
    "no_worker_on",
    "no_worker_minutes",
    "failed_records_on",
    "failed_records_threshold",
)


@transaction.atomic
def save_alert_settings(values: dict[str, Any], webhook_url: str | None, user: Any) -> list[str]:
    """Apply the page's settings; ``webhook_url`` None keeps the stored webhook, "" removes it. Returns what changed
    (as audited: the webhook's address is never written down, it holds its token)."""
    row = AlertSettings.objects.select_for_update().get_or_create(pk=1)[0]
    changes = []
    for name in SETTING_FIELDS:
        if name in values and getattr(row, name) != values[name]:
            changes.append(_change(AlertSettings, name, getattr(row, name), values[name]))
            setattr(row, name, values[name])
    if webhook_url is not None and webhook_url != row.webhook_url:
        if not webhook_url:
            changes.append(_("webhook removed"))
        else:
            changes.append(_("webhook changed") if row.webhook_url_encrypted else _("webhook added"))
        row.set_webhook_url(webhook_url)
    if changes:
        row.save()
        _audit(user, AuditAction.CHANGED, "; ".join(changes))
    for condition in Condition:
        if not row.is_on(condition):
            conditions.forget_watches(condition)
    return changes


@transaction.atomic
def save_connection_alerts(connection: ErpConnection, recipients: str, threshold: int | None, user: Any) -> list[str]:
    """Set who also hears of ``connection``'s incidents, and its own failed-records threshold (None: the default)."""
    row = ConnectionAlertSettings.objects.select_for_update().get_or_create(connection=connection)[0]
    recipients = "\n".join(split_addresses(recipients))
    changes = []
    if row.recipients != recipients:
        changes.append(_change(ConnectionAlertSettings, "recipients", row.recipients, recipients))
    if row.failed_records_threshold != threshold:
        changes.append(
            _change(ConnectionAlertSettings, "failed_records_threshold", row.failed_records_threshold, threshold)
        )
    if changes:
        row.recipients, row.failed_records_threshold = recipients, threshold
        row.save()
        _audit(user, AuditAction.CHANGED, _("alerts: %(changes)s") % {"changes": "; ".join(changes)}, connection)
    return changes


def _change(model: Any, name: str, old: Any, new: Any) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, bool):
            return str(_("on") if value else _("off"))
        if value is None or value == "":
            return "—"
        return ", ".join(split_addresses(value)) if isinstance(value, str) else str(value)

    label = model._meta.get_field(name).verbose_name
    return f"{label}: {shown(old)} → {shown(new)}"


def _audit(user: Any, action: AuditAction, detail: str, connection: ErpConnection | None = None) -> None:
    """An entry in the audit the Quote/Sync pages show; also on the connection's page when it is about one."""
    AuditEntry.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        connection=connection,
        subject=AUDIT_SUBJECT,
        action=action,
        detail=detail[:2000],
    )
