"""Connector calls counted where they happen: in gunicorn's worker processes and in a prefork Celery worker's
children, added up by prometheus_client's multiprocess mode. Real processes, a real connector, a real database."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone
from kombu import Connection

from connections import services
from connections.models import SyncRun, WorkerHeartbeat
from connectors import protocol as p
from connectors.sdk import ConnectorApp, Context
from erpsync_admin.celery import app
from monitoring.metrics import multiprocess_directory

from ..conftest import RunningConnector, database_url, free_port, venv_bin, wait_for
from ..connectors.servers import serving
from ..connectors.tiny_connector import AddressBook
from ..sync_helpers import active_connection, company, new_customer, run_for
from .conftest import CONNECTOR_SECRET, TOKEN, connector_with_active_connection, parse, sample

pytestmark = pytest.mark.django_db(transaction=True)
CALLS = "erpsync_connector_call_duration_seconds_count"


class SlowAddressBook(AddressBook):
    """Answers GetConfigData after a pause, so that requests made at once are spread over gunicorn's workers."""

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        time.sleep(0.4)
        return super().get_config_data(request, context)


def counting_processes(directory: Path) -> set[str]:
    """The processes that have written figures: prometheus_client names each file after its process id."""
    return {path.stem.rsplit("_", 1)[-1] for path in directory.glob("*.db")}


def test_gunicorn_workers_count_connector_calls_into_one_total(start_process: Any, tmp_path: Path) -> None:
    assert not multiprocess_directory(), "this test process must count alone"
    metrics_dir, broker = tmp_path / "web-metrics", f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    WorkerHeartbeat.objects.create(hostname="celery@test", last_seen=timezone.now())
    with Connection(broker) as conn:  # the embedded broker's tables exist once a worker has started, as in real life
        channel: Any = conn.default_channel
        channel.queue_declare(queue="celery")
    with serving(ConnectorApp(SlowAddressBook(), CONNECTOR_SECRET), threads=8) as connector_url:
        connector_with_active_connection("Slow Address Book", connector_url)
        port = free_port()
        server = start_process(
            [venv_bin("gunicorn"), "erpsync_admin.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            env={
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": broker,
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                "ERPSYNC_MONITORING_NETWORKS": "127.0.0.0/8",
            },
            name="gunicorn",
        )
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(up, 30, "gunicorn to answer")
        except AssertionError:
            raise AssertionError(server.output()[-3000:]) from None
        # Each readiness answer for an allow-listed client calls the connector once. Two sync workers can take two
        # requests at a time, so eight at once keep both busy.
        asked = 0
        while len(counting_processes(metrics_dir)) < 2 and asked < 32:
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda _: httpx.get(f"{base}/health/ready/", timeout=10), range(8)))
            asked += 8
            assert {a.status_code for a in answers} == {200}, [a.text for a in answers if a.status_code != 200]
            assert all(a.json()["checks"]["connectors:reachability"][0]["status"] == "pass" for a in answers)
        assert len(counting_processes(metrics_dir)) >= 2, "the requests all went to one gunicorn worker"
    # Whichever worker answers the scrape, it adds up every worker's calls.
    totals = {
        sample(parse(httpx.get(f"{base}/metrics", timeout=5).text), CALLS, operation="GetConfigData") for _ in range(8)
    }
    assert totals == {float(asked)}


def test_a_prefork_worker_serves_its_childrens_connector_calls_on_its_own_port(
    start_process: Any, tmp_path: Path, demo_connector: RunningConnector
) -> None:
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    metrics_dir, port = tmp_path / "worker-metrics", free_port()
    worker = start_process(
        [
            venv_bin("celery"),
            "-A",
            "erpsync_admin",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=INFO",
            f"--queues={queue}",
            f"--hostname={queue}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env={
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "ERPSYNC_WORKER_METRICS_PORT": str(port),
            "ERPSYNC_METRICS_TOKEN": TOKEN,
            "ERPSYNC_MONITORING_NETWORKS": "",
        },
        name="worker",
    )
    url = f"http://127.0.0.1:{port}/metrics"

    def serving_metrics() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 403  # up, and the token is required
        except httpx.HTTPError:
            return False

    try:
        wait_for(serving_metrics, 60, "the worker's metrics port")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None

    connection = active_connection(demo_connector)
    actor = new_customer(demo_connector, connection, PHONE="+46 90 1")
    link = services.link_record(connection, "Customer", actor.key or "", company(phone="+46 90 1"), None)
    run = run_for(link)
    with Connection(broker) as conn:
        app.send_task("connections.run_sync", kwargs={"run_id": run.pk}, queue=queue, connection=conn)
    try:
        finished = wait_for(lambda: SyncRun.objects.filter(pk=run.pk, finished_at__isnull=False).first(), 60, "the run")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None
    assert finished.status == "succeeded", finished.error

    samples = parse(httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).text)
    assert sample(samples, CALLS, operation="GetActors") >= 1
    assert not any(name.startswith("erpsync_sync_runs") for name, _ in samples), "database figures are the web's"
    # The call was counted in a child of the worker, not in the process serving the port.
    assert counting_processes(metrics_dir) - {str(worker.popen.pid)}
