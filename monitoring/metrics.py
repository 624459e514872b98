"""Prometheus metrics: what the database says at scrape time, and connector calls as they happen.

Two kinds of figures, collected two ways:

- **From the database** (runs, their durations, queued runs, failed links, worker heartbeats): the same for
  every process, so :class:`DatabaseCollector` reads them when ``/metrics`` is scraped, one aggregate query per
  family. Only the web app's ``/metrics`` serves them.
- **Connector calls** (latency and errors per operation) happen in web processes and in Celery workers, and are
  counted where they happen through the client's observer hook (:func:`record_connector_call`). A process that
  forks several more (gunicorn, a prefork worker) counts in prometheus_client's multiprocess mode: with
  ``PROMETHEUS_MULTIPROC_DIR`` set, every process writes its own file there and a scrape adds them up. The web
  app's ``/metrics`` serves the web processes' calls; each worker serves its own on ERPSYNC_WORKER_METRICS_PORT
  (``monitoring.worker``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from connections.choices import DriftState, LinkStatus, RunKind, RunStatus
from connections.models import ErpConnection, SyncRun, WorkerHeartbeat, heartbeat_stale_after
from connectors.client import (
    ConnectorError,
    ConnectorNotAllowed,
    ConnectorRejected,
    ConnectorTimeout,
    ConnectorUnreachable,
    GatewayError,
    ProtocolError,
)

log = logging.getLogger(__name__)

# A call answers in milliseconds when all is well; a job waits up to ERPSYNC_JOB_TIMEOUT (60 s) for one.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# A Sync now takes a second; a first Sync all or an import of many actors, up to the task time limit and beyond.
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 14400)

CONNECTOR_CALL_SECONDS = Histogram(
    "erpsync_connector_call_duration_seconds",
    "Time a call to a Sync Connector took until its answer or its failure, by protocol operation.",
    ["operation"],
    buckets=CALL_BUCKETS,
)
CONNECTOR_CALL_ERRORS = Counter(
    "erpsync_connector_call_errors",
    "Calls to Sync Connectors that failed, by protocol operation and error "
    "(unreachable, timeout, gateway, protocol, not_allowed, or the connector's error code).",
    ["operation", "error"],
)


def error_label(error: ConnectorError) -> str:
    """A short, bounded name for why a call failed."""
    if isinstance(error, ConnectorNotAllowed):
        return "not_allowed"
    if isinstance(error, ConnectorRejected):
        return error.error_code.value  # one of the protocol's error codes
    if isinstance(error, GatewayError):
        return "gateway"
    if isinstance(error, ConnectorTimeout):
        return "timeout"
    if isinstance(error, ConnectorUnreachable):
        return "unreachable"
    if isinstance(error, ProtocolError):
        return "protocol"
    return "error"


def record_connector_call(operation: str, seconds: float, error: ConnectorError | None) -> None:
    """The client's observer: every call's time, and its error if it failed."""
    if error is not None:
        CONNECTOR_CALL_ERRORS.labels(operation, error_label(error)).inc()
        if isinstance(error, ConnectorNotAllowed):
            return  # nothing was sent, so there is no time to record
    CONNECTOR_CALL_SECONDS.labels(operation).observe(seconds)


# Processes that fork: prometheus_client's multiprocess mode


def multiprocess_directory() -> str:
    """Where the processes of this machine write their figures; empty when each process counts alone."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def prepare_multiprocess_directory() -> None:
    """Create the directory if it is missing: the first call a process counts would fail without it."""
    directory = multiprocess_directory()
    if directory:
        os.makedirs(directory, exist_ok=True)


def process_metrics() -> Collector:
    """This process's connector calls; in multiprocess mode, those of every process sharing the directory."""
    directory = multiprocess_directory()
    if directory:
        return MultiProcessCollector(None, path=directory)
    return REGISTRY  # also Python's own process and garbage-collector figures


# Figures from the database, read at scrape time


def _age_seconds(moment: Any, now: Any) -> float:
    return max(0.0, (now - moment).total_seconds())


class DatabaseCollector(Collector):
    """Runs, run durations, queued runs, failed links and worker heartbeats, as the database has them now."""

    def collect(self) -> Iterable[Metric]:
        try:
            families = [
                *self.runs(),
                self.run_durations(),
                *self.queued_runs(),
                self.failed_links(),
                self.drift(),
                *self.workers(),
            ]
        except DatabaseError:
            log.warning("Metrics could not read the database", exc_info=True)
            families = []
        up = GaugeMetricFamily(
            "erpsync_database_up", "1 when this scrape could read the figures kept in the database, else 0."
        )
        up.add_metric([], 1 if families else 0)
        return [*families, up]

    def runs(self) -> Iterator[Metric]:
        counts = {
            (row["kind"], row["status"]): row["n"]
            for row in SyncRun.objects.order_by().values("kind", "status").annotate(n=Count("pk"))
        }
        family = GaugeMetricFamily(
            "erpsync_sync_runs", "Sync runs in the database, by kind and status.", labels=["kind", "status"]
        )
        # Every combination, zeros too, so that a first failure is an increase from 0, not a new series.
        for kind in RunKind.values:
            for status in RunStatus.values:
                family.add_metric([kind, status], counts.pop((kind, status), 0))
        for (kind, status), count in counts.items():  # a value no longer in the choices: shown, not hidden
            family.add_metric([kind, status], count)
        yield family

    def run_durations(self) -> Metric:
        """From started to finished, of every finished run, by kind: cumulative, like a counter."""
        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        buckets = {
            f"le_{index}": Count("pk", filter=Q(finished_at__lte=F("started_at") + timedelta(seconds=bound)))
            for index, bound in enumerate(RUN_BUCKETS)
        }
        rows = (
            SyncRun.objects.filter(started_at__isnull=False, finished_at__isnull=False)
            .order_by()
            .values("kind")
            .annotate(n=Count("pk"), total=Sum(duration), **buckets)
        )
        family = HistogramMetricFamily(
            "erpsync_sync_run_duration_seconds",
            "Time from start to finish of finished sync runs, by kind (every finished run in the database).",
            labels=["kind"],
        )
        for row in rows:
            # The same bucket labels ("60.0") as the histograms prometheus_client keeps itself.
            bounds = [(floatToGoString(bound), float(row[f"le_{index}"])) for index, bound in enumerate(RUN_BUCKETS)]
            total = row["total"] or timedelta(0)
            family.add_metric(
                [row["kind"]], buckets=[*bounds, ("+Inf", float(row["n"]))], sum_value=max(0.0, total.total_seconds())
            )
        return family

    def queued_runs(self) -> Iterator[Metric]:
        now = timezone.now()
        row = SyncRun.objects.filter(status=RunStatus.QUEUED).aggregate(
            n=Count("pk"), unsent=Count("pk", filter=Q(send_failed_at__isnull=False)), oldest=Min("created_at")
        )
        queued = GaugeMetricFamily("erpsync_queued_runs", "Sync runs waiting for a worker.")
        queued.add_metric([], row["n"])
        yield queued
        unsent = GaugeMetricFamily(
            "erpsync_queued_runs_unsent", "Queued runs the broker did not take; the sweeper sends them again."
        )
        unsent.add_metric([], row["unsent"])
        yield unsent
        oldest = GaugeMetricFamily(
            "erpsync_oldest_queued_run_age_seconds", "Seconds since the oldest queued run was written; 0 when none."
        )
        oldest.add_metric([], _age_seconds(row["oldest"], now) if row["oldest"] else 0.0)
        yield oldest

    def failed_links(self) -> Metric:
        """Links shown under Failed records: their last sync failed or their ERP actor is gone, not dismissed."""
        open_failure = Q(links__dismissed_at__isnull=True)
        rows = (
            ErpConnection.objects.order_by("name")
            .values("name")
            .annotate(
                failed=Count("links", filter=open_failure & Q(links__status=LinkStatus.FAILED)),
                erp_missing=Count("links", filter=open_failure & Q(links__status=LinkStatus.ERP_MISSING)),
            )
        )
        family = GaugeMetricFamily(
            "erpsync_failed_links",
            "Links whose last sync failed (failed) or whose ERP actor is gone (erp_missing), not dismissed, "
            "by connection.",
            labels=["connection", "status"],
        )
        for row in rows:
            family.add_metric([row["name"], LinkStatus.FAILED.value], row["failed"])
            family.add_metric([row["name"], LinkStatus.ERP_MISSING.value], row["erp_missing"])
        return family

    def drift(self) -> Metric:
        """Links by the state reconciliation (or a sync since) found them in, by connection: a health summary."""
        rows = (
            ErpConnection.objects.order_by("name")
            .values("name")
            .annotate(**{state: Count("links", filter=Q(links__drift=state)) for state in DriftState.values})
        )
        family = GaugeMetricFamily(
            "erpsync_link_drift",
            "Links by what reconciliation, or a sync since, found of their mapped fields (in_step, drifted, failed, "
            "missing, outside), by connection.",
            labels=["connection", "state"],
        )
        for row in rows:
            for state in DriftState.values:
                family.add_metric([row["name"], state], row[state])
        return family

    def workers(self) -> Iterator[Metric]:
        now = timezone.now()
        stale_after = heartbeat_stale_after()
        rows = list(WorkerHeartbeat.objects.values_list("hostname", "last_seen"))
        age = GaugeMetricFamily(
            "erpsync_worker_heartbeat_age_seconds",
            "Seconds since each worker host last ran the heartbeat job.",
            labels=["worker"],
        )
        for hostname, last_seen in rows:
            age.add_metric([hostname], _age_seconds(last_seen, now))
        yield age
        alive = GaugeMetricFamily(
            "erpsync_workers_alive",
            "Workers that ran the heartbeat job within three heartbeat intervals (at least 90 s), as the Sync tab "
            "judges them.",
        )
        alive.add_metric([], sum(1 for _, last_seen in rows if now - last_seen < stale_after))
        yield alive


class _Together:
    """Several collectors read as one, for one exposition."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(accept: str | None, *, include_database: bool) -> tuple[bytes, str]:
    """The metrics as text, in the format the scraper's Accept header asks for (Prometheus text or OpenMetrics)."""
    collectors = [process_metrics()]
    if include_database:
        collectors.append(DatabaseCollector())
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Together(*collectors)), content_type
