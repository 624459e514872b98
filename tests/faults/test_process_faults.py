"""The processes around a run fail: the worker is killed, Redis restarts, PostgreSQL drops the connection.

Recovery is what beat does every minute (the sweeper), never a manual step; both sides end as expected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from connections import jobs
from connections.choices import RunStatus
from connections.models import SyncRun

from ..conftest import Process, RunningConnector, free_port, wait_for
from ..factories import UserFactory
from .conftest import scenario_for, start_worker, use_broker, wait_until_ended
from .proxy import Fault, FaultyConnector

pytestmark = pytest.mark.django_db(transaction=True)

SAVE = "/v1/save-actors"


def test_a_worker_killed_while_the_erp_saves_is_replaced_and_the_run_finishes_once(
    worker: Process, faulty: FaultyConnector, demo_connector: RunningConnector, tmp_path: Path, settings: Any
) -> None:
    scenario = scenario_for(demo_connector, faulty.url)
    scenario.change_both_sides("killed")
    faulty.fail(SAVE, Fault("hang", seconds=30, after_forwarding=True))
    run = scenario.automatic_run()
    # The ERP has saved the CRM's names; the worker waits for the answer, and dies.
    wait_for(lambda: faulty.injected, 60, "the worker to reach SaveActors")
    os.killpg(worker.popen.pid, signal.SIGKILL)
    worker.popen.wait(10)
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    second = start_worker(tmp_path / "second-worker.log", name="faults-2")
    try:
        settings.ERPSYNC_RUN_STUCK_AFTER = 1
        time.sleep(1.5)
        assert jobs.sweep_stuck_runs() == [run.pk]  # beat's sweeper, every minute
        done = wait_until_ended(run, second)
    finally:
        second.stop()
    assert done.status == RunStatus.SUCCEEDED and done.attempts == 2
    scenario.assert_converged(run, name_sent_unheard=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Any]:
    """A Redis server of this test's own, on a free port, that the test may stop and start again."""

    class Redis:
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        process: Process | None = None

        def start(self) -> None:
            self.process = Process(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd=tmp_path, log=tmp_path / "redis.log",
            )  # fmt: skip
            wait_for(lambda: _pong(self.port), 20, "Redis to start")

        def stop(self) -> None:
            assert self.process is not None
            self.process.stop()

    server = Redis()
    server.start()
    restore = use_broker(server.url)
    yield server
    restore()
    server.stop()


def _pong(port: int) -> bool:
    answer = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False)
    return answer.stdout.strip() == "PONG"


def test_redis_restarting_loses_no_run(
    own_redis: Any, demo_connector: RunningConnector, tmp_path: Path, client: Any, settings: Any
) -> None:
    """Redis here keeps nothing on disk, like the CI's: a restart loses every message it held."""
    scenario = scenario_for(demo_connector, demo_connector.url)
    scenario.change_both_sides("redis")
    first = start_worker(tmp_path / "worker.log", broker=own_redis.url, name="faults-redis")
    try:
        wait_for(lambda: "ready" in first.output(), 30, "the worker to start")
        user = UserFactory.create(username="anna", perms=["connections.use_erp_sync"])
        client.force_login(user)

        # 1. Redis is down when Sync now is pressed: the page answers, the run waits, marked unsent.
        own_redis.stop()
        pressed = client.post(reverse("erp:sync-now", args=[scenario.links[0].pk]))
        assert pressed.status_code == 202, pressed.content
        unsent = SyncRun.objects.get(pk=pressed.json()["run"])
        assert unsent.status == RunStatus.QUEUED and unsent.send_failed_at is not None
        own_redis.start()
        assert jobs.sweep_stuck_runs() == [unsent.pk]  # at once: no need to wait for the stuck deadline
        done = wait_until_ended(unsent, first)  # the worker reconnected to the restarted Redis
        assert done.status == RunStatus.SUCCEEDED and done.send_failed_at is None
    finally:
        first.stop()

    # 2. Redis restarts while a run is queued and no worker is running: the message is lost with it.
    queued = scenario.automatic_run()
    own_redis.stop()
    own_redis.start()
    second = start_worker(tmp_path / "second-worker.log", broker=own_redis.url, name="faults-redis-2")
    try:
        time.sleep(3)
        assert SyncRun.objects.get(pk=queued.pk).status == RunStatus.QUEUED  # nothing delivered it
        settings.ERPSYNC_RUN_STUCK_AFTER = 1
        assert jobs.sweep_stuck_runs() == [queued.pk]
        finished = wait_until_ended(queued, second)
    finally:
        second.stop()
    assert finished.status == RunStatus.SUCCEEDED and finished.attempts == 1
    scenario.assert_converged(unsent)


def test_a_dropped_database_connection_puts_the_run_back_and_it_finishes(
    worker: Process, faulty: FaultyConnector, demo_connector: RunningConnector
) -> None:
    if db_connection.vendor != "postgresql":
        pytest.skip("drops PostgreSQL backends; runs in the PostgreSQL pass")
    scenario = scenario_for(demo_connector, faulty.url)
    scenario.change_both_sides("pg")
    # SaveActors answers after 1 s, within the worker's timeout; meanwhile every other backend is terminated,
    # so the worker's next query, the batch's transaction, meets a dead connection.
    faulty.fail(SAVE, Fault("delay", seconds=1.0, after_forwarding=True))
    run = scenario.automatic_run()
    wait_for(lambda: faulty.injected, 60, "the worker to reach SaveActors", interval=0.05)
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1
    done = wait_until_ended(run, worker)
    assert done.status == RunStatus.SUCCEEDED and done.attempts == 2, (done.status, done.error)
    assert "lost its database connection" in worker.output()  # the log says what happened
    scenario.assert_converged(run, name_sent_unheard=True)
