"""The watched conditions. Each check returns what holds now, past its threshold: one finding per incident key.

A check reads the database (and, for connectors, asks them); it opens and resolves nothing itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone, translation

from connections import services as connection_services
from connections.choices import ACTIVE_RUN_STATUSES, LinkStatus, RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncRun, WorkerHeartbeat
from connectors.client import ConnectorError
from connectors.models import SyncConnector
from core import crypto

from .choices import Condition
from .models import AlertSettings, ConnectionAlertSettings, Watch

# The runs nobody watches as they happen: automatic runs, and the bulk jobs an admin starts and leaves running.
# An import has its own result page with Retry, and is not repeated, so it has nothing to recover to.
WATCHED_RUN_KINDS = (RunKind.AUTOMATIC, RunKind.SYNC_ALL, RunKind.RESYNC)
FINISHED_RUN_STATUSES = (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_FAILED, RunStatus.FAILED)
FAILED_LINK_STATUSES = (LinkStatus.FAILED, LinkStatus.ERP_MISSING)
PROBE_THREADS = 8
# Watches (things seen wrong, not yet for long enough) by condition, so that turning a condition off forgets them.
WATCH_PREFIXES = {Condition.RUN_STUCK: "run:", Condition.CONNECTOR_DOWN: "connector:", Condition.NO_WORKER: "worker"}


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: what an open incident with this key is about."""

    key: str
    condition: Condition
    since: datetime
    subject: str = ""
    connection_id: int | None = None
    connector_id: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def failed_runs(alert_settings: AlertSettings, now: datetime) -> list[Finding]:
    """Per active connection and kind of run: its latest finished run failed or partially failed.

    One incident per connection and kind, not per run: automatic sync failing every quarter of an hour is one
    incident, resolved by the next run of that kind that succeeds.
    """
    findings = []
    for connection in ErpConnection.objects.filter(is_active=True):
        for kind in WATCHED_RUN_KINDS:
            run = (
                SyncRun.objects.filter(connection=connection, kind=kind, status__in=FINISHED_RUN_STATUSES)
                .exclude(finished_at=None)
                .order_by("-finished_at", "-pk")
                .first()
            )
            if run is None or run.status == RunStatus.SUCCEEDED or run.finished_at is None:
                continue
            if run.finished_at < alert_settings.created_at:
                continue  # it failed before alerting began: history, not news
            findings.append(
                Finding(
                    key=f"{Condition.RUN_FAILED}:{connection.pk}:{kind}",
                    condition=Condition.RUN_FAILED,
                    since=run.finished_at,
                    subject=connection.name,
                    connection_id=connection.pk,
                    facts={
                        "run": run.pk,
                        "kind": kind,
                        "status": run.status,
                        "error": run.error[:1000],
                        "failed": run.failed,
                        "total": run.total,
                        "finished_at": run.finished_at.isoformat(),
                    },
                )
            )
    return findings


def stuck_runs(alert_settings: AlertSettings, now: datetime) -> list[Finding]:
    """Per connection: runs queued or running for longer than the threshold.

    A run's age is counted from when it was first seen waiting (or created, if earlier): the sweeper sends a lost
    run again with a new ``created_at``, so that alone would never grow old.
    """
    active = list(
        SyncRun.objects.filter(status__in=ACTIVE_RUN_STATUSES)
        .values("pk", "connection_id", "connection__name", "kind", "status", "created_at")
        .order_by("pk")
    )
    since = _watch({f"run:{run['pk']}": run["created_at"] for run in active}, "run:", now)
    limit = now - timedelta(minutes=alert_settings.run_stuck_minutes)
    by_connection: dict[int, list[tuple[datetime, Any]]] = defaultdict(list)
    for run in active:
        started = since[f"run:{run['pk']}"]
        if started <= limit:
            by_connection[run["connection_id"]].append((started, run))
    findings = []
    for connection_id, runs in by_connection.items():
        oldest_since, oldest = min(runs, key=lambda pair: (pair[0], pair[1]["pk"]))
        findings.append(
            Finding(
                key=f"{Condition.RUN_STUCK}:{connection_id}",
                condition=Condition.RUN_STUCK,
                since=oldest_since,
                subject=oldest["connection__name"],
                connection_id=connection_id,
                facts={
                    "count": len(runs),
                    "minutes": alert_settings.run_stuck_minutes,
                    "oldest_run": oldest["pk"],
                    "oldest_kind": oldest["kind"],
                    "oldest_status": oldest["status"],
                },
            )
        )
    return findings


def connectors_down(alert_settings: AlertSettings, now: datetime) -> list[Finding]:
    """Each live connector that an active connection uses is asked for its configuration screen (GetConfigData,
    as *Check* on the Sync tab does); one that has not answered properly for the threshold is a finding.

    The answers also refresh the connector's status on the Sync tab.
    """
    connectors = list(SyncConnector.objects.filter(connections__is_active=True).distinct().order_by("pk"))
    language = settings.LANGUAGE_CODE
    with ThreadPoolExecutor(max_workers=PROBE_THREADS) as pool:
        problems = dict(zip(connectors, pool.map(lambda c: probe(c, language), connectors), strict=True))
    checked_at = timezone.now()
    for connector, problem in problems.items():
        SyncConnector.all_objects.filter(pk=connector.pk).update(
            last_checked_at=checked_at, last_check_ok=problem is None, last_check_message=problem[0] if problem else ""
        )
    failing = {f"connector:{c.pk}": now for c, problem in problems.items() if problem}
    since = _watch(failing, "connector:", now)
    limit = now - timedelta(minutes=alert_settings.connector_down_minutes)
    findings = []
    for connector, problem in problems.items():
        started = since.get(f"connector:{connector.pk}")
        if problem is None or started is None or started > limit:
            continue
        findings.append(
            Finding(
                key=f"{Condition.CONNECTOR_DOWN}:{connector.pk}",
                condition=Condition.CONNECTOR_DOWN,
                since=started,
                subject=connector.name,
                connector_id=connector.pk,
                facts={
                    "minutes": alert_settings.connector_down_minutes,
                    "problem": problem[0],
                    "technical": problem[1],
                },
            )
        )
    return findings


def probe(connector: SyncConnector, language: str) -> tuple[str, str] | None:
    """None when the connector answers GetConfigData; else why not, for people and technically.

    Bounded by ERPSYNC_CONNECTOR_TIMEOUT, the wait of the Sync tab's *Check*. Runs in a pool thread: it touches
    no database."""
    try:
        with translation.override(language):
            connection_services.probe_connector(connector.url, connector.secret, language)
    except crypto.SecretUnreadable as error:
        return str(error), ""
    except ConnectorError as error:
        with translation.override(language):
            problem = connection_services.explain(error, language)
        return problem.message, problem.technical[:1000]
    return None


def no_worker(alert_settings: AlertSettings, now: datetime) -> list[Finding]:
    """No worker has recorded a heartbeat for the threshold (counted from the first look when none ever has)."""
    latest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    facts: dict[str, Any]
    if latest is not None:
        Watch.objects.filter(key="worker").delete()
        started, facts = latest.last_seen, {"last_seen": latest.last_seen.isoformat(), "worker": latest.hostname}
    else:
        started, facts = _watch({"worker": now}, "worker", now)["worker"], {"last_seen": None}
    if now - started < timedelta(minutes=alert_settings.no_worker_minutes):
        return []
    return [
        Finding(
            key=Condition.NO_WORKER.value,
            condition=Condition.NO_WORKER,
            since=started,
            facts={**facts, "minutes": alert_settings.no_worker_minutes},
        )
    ]


def failed_records(alert_settings: AlertSettings, now: datetime) -> list[Finding]:
    """Per active connection: more failed records (links whose last sync failed, not dismissed) than its threshold."""
    counts = (
        Link.objects.filter(connection__is_active=True, status__in=FAILED_LINK_STATUSES, dismissed_at__isnull=True)
        .values("connection_id", "connection__name")
        .annotate(count=Count("pk"))
        .order_by("connection_id")
    )
    own = dict(
        ConnectionAlertSettings.objects.filter(failed_records_threshold__isnull=False).values_list(
            "connection_id", "failed_records_threshold"
        )
    )
    findings = []
    for row in counts:
        threshold = own.get(row["connection_id"], alert_settings.failed_records_threshold)
        if row["count"] > threshold:
            findings.append(
                Finding(
                    key=f"{Condition.FAILED_RECORDS}:{row['connection_id']}",
                    condition=Condition.FAILED_RECORDS,
                    since=now,
                    subject=row["connection__name"],
                    connection_id=row["connection_id"],
                    facts={"count": row["count"], "threshold": threshold},
                )
            )
    return findings


CHECKS: dict[Condition, Callable[[AlertSettings, datetime], list[Finding]]] = {
    Condition.RUN_FAILED: failed_runs,
    Condition.RUN_STUCK: stuck_runs,
    Condition.CONNECTOR_DOWN: connectors_down,
    Condition.NO_WORKER: no_worker,
    Condition.FAILED_RECORDS: failed_records,
}


def forget_watches(condition: Condition) -> None:
    """A condition turned off starts from nothing when it is turned on again."""
    prefix = WATCH_PREFIXES.get(condition)
    if prefix:
        Watch.objects.filter(key__startswith=prefix).delete()


def _watch(seen: dict[str, datetime], prefix: str, now: datetime) -> dict[str, datetime]:
    """Keep one Watch per key in ``seen`` (values: the earliest moment known from elsewhere), drop the other
    watches under ``prefix``, and return since when each key has been seen."""
    existing = dict(Watch.objects.filter(key__startswith=prefix).values_list("key", "since"))
    new = [Watch(key=key, since=min(hint, now)) for key, hint in seen.items() if key not in existing]
    # Two evaluations at once may both add a key; the unique key keeps one, and both read back the same row.
    Watch.objects.bulk_create(new, ignore_conflicts=True)
    gone = [key for key in existing if key not in seen]
    for start in range(0, len(gone), 500):
        Watch.objects.filter(key__in=gone[start : start + 500]).delete()
    if new:
        existing = dict(Watch.objects.filter(key__startswith=prefix).values_list("key", "since"))
    return {key: min(existing.get(key, hint), hint) for key, hint in seen.items()}
