"""Real Celery worker processes, on the embedded broker and on Redis, run jobs that write to the database."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from connections.models import WorkerHeartbeat
from connections.tasks import worker_heartbeat
from erpsync_admin.celery import app

from .conftest import REDIS_TEST_URL, database_url, port_open, require_service, venv_bin, wait_for


@pytest.fixture(params=["embedded", "redis"])
def broker_url(request: Any, tmp_path: Path) -> str:
    if request.param == "redis":
        require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
        return REDIS_TEST_URL
    return f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"


def start_worker(start_process: Any, broker: str, queue: str, hostname: str) -> Any:
    return start_process(
        [
            venv_bin("celery"),
            "-A",
            "erpsync_admin",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            f"--queues={queue}",
            f"--hostname={hostname}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env={"DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker},
        name="worker",
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_runs_a_queued_job_that_writes_a_row(start_process: Any, broker_url: str) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(start_process, broker_url, queue, hostname=queue)
    with Connection(broker_url) as conn:
        app.send_task(worker_heartbeat.name, queue=queue, connection=conn)
    try:
        heartbeat = wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname__startswith=f"{queue}@").first(), 60, "the heartbeat row"
        )
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None
    # One heartbeat when the worker started, one from the job sent through the broker.
    wait_for(lambda: WorkerHeartbeat.objects.get(pk=heartbeat.pk).jobs_run == 2, 60, "the queued job")
    assert WorkerHeartbeat.objects.get(pk=heartbeat.pk).is_alive


@pytest.mark.django_db(transaction=True)
def test_beat_schedules_heartbeats_that_a_worker_runs(start_process: Any, tmp_path: Path) -> None:
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    env = {"DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker, "ERPSYNC_HEARTBEAT_SECONDS": "1"}
    worker = start_process(
        [venv_bin("celery"), "-A", "erpsync_admin", "worker", "--pool=solo", "--hostname=beat-test@%h"],
        env=env,
        name="worker",
    )
    beat = start_process(
        [venv_bin("celery"), "-A", "erpsync_admin", "beat", f"--schedule={tmp_path / 'beat-schedule'}"],
        env=env,
        name="beat",
    )

    def two_heartbeats() -> bool:
        row = WorkerHeartbeat.objects.filter(hostname__startswith="beat-test@").first()
        return row is not None and row.jobs_run >= 3  # the start-up report and two scheduled heartbeats

    try:
        wait_for(two_heartbeats, 60, "two scheduled heartbeats")
    except AssertionError:
        raise AssertionError(worker.output()[-2000:] + beat.output()[-2000:]) from None
