"""Incidents in words, in the active language: for the history on the page, e-mails and webhook messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from connections.choices import RunKind, RunStatus

from .choices import Condition, Resolution
from .models import Incident


def title(incident: Incident) -> str:
    """One line saying what is wrong (or was, for a resolved incident)."""
    facts = incident.facts
    name = incident.subject
    if incident.condition == Condition.RUN_FAILED:
        kind = _label(RunKind, facts.get("kind"))
        if facts.get("status") == RunStatus.PARTIALLY_FAILED:
            return _("%(kind)s of %(connection)s partially failed: %(failed)s of %(total)s records failed") % {
                "kind": kind,
                "connection": name,
                "failed": facts.get("failed", 0),
                "total": facts.get("total", 0),
            }
        return _("%(kind)s of %(connection)s failed") % {"kind": kind, "connection": name}
    if incident.condition == Condition.RUN_STUCK:
        return _("Sync jobs of %(connection)s queued or running for more than %(minutes)s minutes: %(count)s") % {
            "connection": name,
            "minutes": facts.get("minutes"),
            "count": facts.get("count"),
        }
    if incident.condition == Condition.CONNECTOR_DOWN:
        return _("Sync Connector %(name)s has not answered for %(minutes)s minutes") % {
            "name": name,
            "minutes": facts.get("minutes"),
        }
    if incident.condition == Condition.NO_WORKER:
        return _("No worker has reported for %(minutes)s minutes") % {"minutes": facts.get("minutes")}
    return _("%(connection)s has %(count)s failed records, more than %(threshold)s") % {
        "connection": name,
        "count": facts.get("count"),
        "threshold": facts.get("threshold"),
    }


def details(incident: Incident) -> list[str]:
    """What was seen, beyond the title: the reason a run gave, the connector's answer, the last heartbeat."""
    facts = incident.facts
    lines = []
    if incident.condition == Condition.RUN_FAILED:
        lines.append(
            _("Job #%(run)s finished %(when)s.") % {"run": facts.get("run"), "when": when(facts.get("finished_at"))}
        )
        if facts.get("error"):
            lines.append(_("Reason: %(reason)s") % {"reason": facts["error"]})
    elif incident.condition == Condition.RUN_STUCK:
        lines.append(
            _("The oldest, job #%(run)s (%(kind)s), is %(status)s.")
            % {
                "run": facts.get("oldest_run"),
                "kind": _label(RunKind, facts.get("oldest_kind")),
                "status": _label(RunStatus, facts.get("oldest_status")).lower(),
            }
        )
        lines.append(_("Check that a worker runs and that the job queue (the broker) can be reached."))
    elif incident.condition == Condition.CONNECTOR_DOWN:
        if facts.get("problem"):
            lines.append(_("Last answer: %(problem)s") % {"problem": facts["problem"]})
        if facts.get("technical"):
            lines.append(facts["technical"])
    elif incident.condition == Condition.NO_WORKER:
        if facts.get("last_seen"):
            lines.append(
                _("Last heartbeat: %(when)s, from %(worker)s.")
                % {"when": when(facts["last_seen"]), "worker": facts.get("worker", "?")}
            )
        else:
            lines.append(_("No worker has ever reported."))
        lines.append(_("Sync jobs wait in the queue until a worker runs."))
    else:
        lines.append(_("Links whose last sync failed and that were not dismissed."))
    return lines


def resolution_text(incident: Incident) -> str:
    if incident.resolution == Resolution.NOT_WATCHED:
        return _(
            "No longer watched: the alert was turned off, or the connection or connector was deactivated or deleted."
        )
    return _("The condition cleared.")


def when(value: datetime | str | None) -> str:
    """A moment in the installation's time zone, in the active language's short format."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        return "—"
    return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    if minutes < 120:
        return _("%(n)s min") % {"n": minutes}
    return _("%(hours)s h %(minutes)s min") % {"hours": minutes // 60, "minutes": minutes % 60}


def page_url(incident: Incident) -> str:
    """Where to look: the connection's page, or the Alerts tab; absolute when ERPSYNC_SITE_URL is set."""
    path = incident.connection.get_absolute_url() if incident.connection else reverse("alerts:settings")
    return settings.ERPSYNC_SITE_URL.rstrip("/") + path if settings.ERPSYNC_SITE_URL else ""


@dataclass(frozen=True)
class Notice:
    """What an alert, a recovery notice or a test alert says: a subject line, then lines of detail."""

    subject: str
    lines: list[str]

    def email_body(self) -> str:
        return "\n".join(self.lines) + "\n"

    def webhook_text(self) -> str:
        return "\n".join([self.subject, *self.lines])


def notice(incident: Incident, resolved: bool) -> Notice:
    """The alert (``resolved`` False) or the recovery notice of an incident."""
    head = title(incident)
    if resolved:
        subject = _("[erpsync] Resolved: %(title)s") % {"title": head}
    else:
        subject = _("[erpsync] Problem: %(title)s") % {"title": head}
    lines = [*details(incident), _("Since: %(when)s") % {"when": when(incident.since)}]
    if resolved and incident.resolved_at:
        lines.append(
            _("Resolved: %(when)s, after %(duration)s. %(why)s")
            % {
                "when": when(incident.resolved_at),
                "duration": duration(incident.resolved_at - incident.since),
                "why": resolution_text(incident),
            }
        )
    lines.append(page_url(incident) or _("See Settings and maintenance → Quote/Sync → Alerts."))
    return Notice(subject, lines)


def test_notice() -> Notice:
    return Notice(
        _("[erpsync] Test alert"),
        [
            _(
                "This is a test alert from erpsync. Alerts and recovery notices about sync jobs, Sync Connectors, workers and failed records come here."
            )
        ],
    )


def _label(choices: Any, value: Any) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value or "?")
