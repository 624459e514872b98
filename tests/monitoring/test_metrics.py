"""GET /metrics: who may read it, the figures the database holds, and connector calls as they happen."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncRun, WorkerHeartbeat
from connectors import client as client_module
from connectors import hosts
from connectors.client import ConnectorClient, ConnectorError, ConnectorNotAllowed, ConnectorUnreachable, Timeouts
from crm.models import Company
from monitoring.metrics import record_connector_call

from ..conftest import free_port
from .conftest import CONNECTOR_SECRET, OUTSIDE, TOKEN, connector_with_active_connection, parse, sample, scrape

pytestmark = pytest.mark.django_db
FAST = Timeouts(connect=1, read=2, total=2)


# Who may read it


def test_metrics_are_not_found_while_neither_a_token_nor_a_network_is_set(client: Client, settings: Any) -> None:
    settings.ERPSYNC_MONITORING_NETWORKS, settings.ERPSYNC_METRICS_TOKEN = [], ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_a_scraper_needs_the_token_or_an_allowed_address(client: Client, monitoring: Any) -> None:
    refused = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert refused.status_code == 403 and refused["WWW-Authenticate"] == "Bearer"
    assert "ERPSYNC_MONITORING_NETWORKS" in refused.content.decode()
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 403
    allowed = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200 and allowed["Content-Type"].startswith("text/plain; version=")
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_being_logged_in_is_not_enough_to_read_metrics(client: Client, monitoring: Any, admin_user: Any) -> None:
    client.force_login(admin_user)
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403


def test_openmetrics_is_answered_to_a_scraper_that_asks_for_it(client: Client, monitoring: Any) -> None:
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")


# Figures from the database


def run(connection: ErpConnection, kind: str, status: str, seconds: float | None = None, **fields: Any) -> SyncRun:
    now = timezone.now()
    timing = {"started_at": now - timedelta(seconds=seconds), "finished_at": now} if seconds is not None else {}
    return SyncRun.objects.create(connection=connection, kind=kind, status=status, **timing, **fields)


def test_runs_are_counted_by_kind_and_status_with_zeros_for_the_rest(client: Client, monitoring: Any) -> None:
    connection = connector_with_active_connection("Counted ERP", f"http://127.0.0.1:{free_port()}").connections.get()
    run(connection, "sync_all", "succeeded", 3)
    run(connection, "resync", "failed", 1)
    run(connection, "import", "failed", 2)
    run(connection, "automatic", "partially_failed", 5)
    samples = scrape(client)
    assert sample(samples, "erpsync_sync_runs", kind="sync_all", status="succeeded") == 1
    assert sample(samples, "erpsync_sync_runs", kind="resync", status="failed") == 1
    assert sample(samples, "erpsync_sync_runs", kind="import", status="failed") == 1
    assert sample(samples, "erpsync_sync_runs", kind="automatic", status="partially_failed") == 1
    zero = ("erpsync_sync_runs", frozenset({"kind": "sync_now", "status": "failed"}.items()))
    assert samples[zero] == 0  # present, so that a first failure is an increase
    assert len([key for key in samples if key[0] == "erpsync_sync_runs"]) == len(RunKind.values) * len(RunStatus.values)


def test_run_durations_are_a_histogram_of_finished_runs_by_kind(client: Client, monitoring: Any) -> None:
    connection = connector_with_active_connection("Timed ERP", f"http://127.0.0.1:{free_port()}").connections.get()
    for seconds in (3, 40, 1000):
        run(connection, "sync_all", "succeeded", seconds)
    run(connection, "import", "failed", 0.5)
    run(connection, "import", "running", started_at=timezone.now())  # not finished: not measured
    samples = scrape(client)
    bucket = "erpsync_sync_run_duration_seconds_bucket"
    expected = {"1.0": 0, "5.0": 1, "30.0": 1, "60.0": 2, "900.0": 2, "1800.0": 3, "14400.0": 3, "+Inf": 3}
    for bound, count in expected.items():
        assert sample(samples, bucket, kind="sync_all", le=bound) == count, bound
    assert sample(samples, "erpsync_sync_run_duration_seconds_count", kind="sync_all") == 3
    assert sample(samples, "erpsync_sync_run_duration_seconds_sum", kind="sync_all") == pytest.approx(1043, abs=0.01)
    assert sample(samples, bucket, kind="import", le="1.0") == 1
    assert sample(samples, "erpsync_sync_run_duration_seconds_count", kind="import") == 1


def test_queued_runs_their_age_and_the_ones_the_broker_did_not_take(client: Client, monitoring: Any) -> None:
    connection = connector_with_active_connection("Queue ERP", f"http://127.0.0.1:{free_port()}").connections.get()
    empty = scrape(client)
    assert sample(empty, "erpsync_queued_runs") == 0 and sample(empty, "erpsync_oldest_queued_run_age_seconds") == 0
    run(connection, "sync_all", "queued", created_at=timezone.now() - timedelta(minutes=10))
    companies = [Company.objects.create(name=f"Queued {n} AB") for n in range(2)]
    for number, company in enumerate(companies):
        link = Link.objects.create(connection=connection, actor_type="Customer", erp_key=f"Q{number}", company=company)
        run(connection, "sync_now", "queued", link=link, send_failed_at=timezone.now() if number else None)
    samples = scrape(client)
    assert sample(samples, "erpsync_queued_runs") == 3
    assert sample(samples, "erpsync_queued_runs_unsent") == 1
    assert 600 <= sample(samples, "erpsync_oldest_queued_run_age_seconds") < 660


def test_failed_links_per_connection_leave_out_dismissed_ones(client: Client, monitoring: Any) -> None:
    first = connector_with_active_connection("First ERP", f"http://127.0.0.1:{free_port()}").connections.get()
    second = connector_with_active_connection("Second ERP", f"http://127.0.0.1:{free_port()}").connections.get()
    states = [
        (first, "failed", None),
        (first, "failed", None),
        (first, "failed", timezone.now()),
        (first, "erp_missing", None),
        (first, "ok", None),
        (second, "ok", None),
    ]
    for number, (connection, status, dismissed_at) in enumerate(states):
        Link.objects.create(
            connection=connection,
            actor_type="Customer",
            erp_key=f"K{number}",
            status=status,
            dismissed_at=dismissed_at,
            company=Company.objects.create(name=f"Link {number} AB"),
        )
    samples = scrape(client)
    assert sample(samples, "erpsync_failed_links", connection="First ERP connection", status="failed") == 2
    assert sample(samples, "erpsync_failed_links", connection="First ERP connection", status="erp_missing") == 1
    assert (
        "erpsync_failed_links",
        frozenset({"connection": "Second ERP connection", "status": "failed"}.items()),
    ) in samples


def test_the_drift_reconciliation_found_is_a_health_summary_per_connection(client: Client, monitoring: Any) -> None:
    first = connector_with_active_connection("First ERP", "http://127.0.0.1:9").connections.get()
    for number, drift in enumerate(["in_step", "in_step", "drifted", "missing", ""]):
        Link.objects.create(
            connection=first,
            actor_type="Customer",
            erp_key=f"K{number}",
            drift=drift,
            company=Company.objects.create(name=f"Link {number} AB"),
        )
    samples = scrape(client)
    name = first.name
    assert sample(samples, "erpsync_link_drift", connection=name, state="in_step") == 2
    assert sample(samples, "erpsync_link_drift", connection=name, state="drifted") == 1
    assert sample(samples, "erpsync_link_drift", connection=name, state="missing") == 1
    assert sample(samples, "erpsync_link_drift", connection=name, state="failed") == 0  # present: an increase


def test_worker_heartbeat_age_per_worker_and_how_many_are_alive(client: Client, monitoring: Any) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="celery@a", last_seen=now - timedelta(seconds=12))
    WorkerHeartbeat.objects.create(hostname="celery@b", last_seen=now - timedelta(seconds=600))
    samples = scrape(client)
    assert 12 <= sample(samples, "erpsync_worker_heartbeat_age_seconds", worker="celery@a") < 20
    assert 600 <= sample(samples, "erpsync_worker_heartbeat_age_seconds", worker="celery@b") < 610
    assert sample(samples, "erpsync_workers_alive") == 1
    assert sample(samples, "erpsync_database_up") == 1


def test_each_family_from_the_database_costs_one_query(
    client: Client, monitoring: Any, django_assert_max_num_queries: Any
) -> None:
    connection = connector_with_active_connection("Busy ERP", f"http://127.0.0.1:{free_port()}").connections.get()
    for seconds in range(20):
        run(connection, "sync_all" if seconds % 2 else "import", "succeeded", seconds)
    WorkerHeartbeat.objects.create(hostname="celery@a", last_seen=timezone.now())
    # runs, durations, queued runs, failed links, drift, heartbeats; the session and user of the request take none.
    with django_assert_max_num_queries(6):
        client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


# Connector calls, counted through the client's observer


def test_connector_calls_are_timed_and_their_errors_counted_by_operation(
    client: Client, monitoring: Any, address_book: str
) -> None:
    before = scrape(client)
    with ConnectorClient(address_book, CONNECTOR_SECRET, timeouts=FAST) as good:
        good.get_config_data()
    with ConnectorClient(address_book, "a-wrong-shared-secret", timeouts=FAST) as wrong, pytest.raises(ConnectorError):
        wrong.get_config_data()
    down = ConnectorClient(f"http://127.0.0.1:{free_port()}", CONNECTOR_SECRET, timeouts=FAST)
    with down, pytest.raises(ConnectorUnreachable):
        down.test_config_data({"owner": "x"})
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    count, errors = "erpsync_connector_call_duration_seconds_count", "erpsync_connector_call_errors_total"
    assert delta(count, operation="GetConfigData") == 2  # answered, and refused
    assert delta(count, operation="TestConfigData") == 1
    assert delta(errors, operation="GetConfigData", error="unauthorized") == 1
    assert delta(errors, operation="TestConfigData", error="unreachable") == 1
    assert delta("erpsync_connector_call_duration_seconds_sum", operation="GetConfigData") > 0
    assert delta("erpsync_connector_call_duration_seconds_bucket", operation="GetConfigData", le="60.0") == 2


def test_a_call_refused_by_the_host_allow_list_is_an_error_without_a_time(
    client: Client, monitoring: Any, address_book: str
) -> None:
    monitoring.ERPSYNC_CONNECTOR_HOSTS = ["erp.example.com"]
    before = scrape(client)
    refused = ConnectorClient(address_book, CONNECTOR_SECRET, timeouts=FAST, refusal=hosts.url_problem)
    with refused, pytest.raises(ConnectorNotAllowed):
        refused.get_config_data()
    after = scrape(client)
    errors = "erpsync_connector_call_errors_total"
    count = "erpsync_connector_call_duration_seconds_count"
    assert (
        sample(after, errors, operation="GetConfigData", error="not_allowed")
        - sample(before, errors, operation="GetConfigData", error="not_allowed")
        == 1
    )
    assert sample(after, count, operation="GetConfigData") == sample(before, count, operation="GetConfigData")


def test_an_observer_that_fails_never_fails_the_call(
    address_book: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(operation: str, seconds: float, error: ConnectorError | None) -> None:
        raise RuntimeError("the metrics store is full")

    monkeypatch.setattr(client_module, "_observers", [broken, record_connector_call])
    connector = ConnectorClient(address_book, CONNECTOR_SECRET, timeouts=FAST)
    with caplog.at_level(logging.ERROR, logger="connectors.client"), connector:
        fields = connector.get_config_data().data.fields
    assert [f.key for f in fields] == ["owner"]
    assert "A connector call observer failed" in caplog.text


def test_the_observer_is_registered_once_when_the_app_starts() -> None:
    assert client_module._observers.count(record_connector_call) == 1
    client_module.observe_calls(record_connector_call)
    assert client_module._observers.count(record_connector_call) == 1


def test_the_exposition_parses_as_prometheus_text(client: Client, monitoring: Any) -> None:
    text = client.get("/metrics").content.decode()
    families = {name for name, _ in parse(text)}
    for name in ("erpsync_sync_runs", "erpsync_queued_runs", "erpsync_workers_alive", "erpsync_database_up"):
        assert name in families, name
