"""The processes around a run fail: the worker is killed, Redis restarts, PostgreSQL drops the connection.

Recovery is what beat's sweeper does every half lease, never a manual step; both sides end as expected.
test_recovery.py has the same faults with a second worker alive, timed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from connections import jobs
from connections.choices import RunStatus
from connections.models import SyncChunk, SyncRun
from connections.sync import parts

from ..conftest import STOP_GRACE, Process, RunningConnector, wait_for
from ..factories import UserFactory
from .conftest import resumed, scenario_for, start_worker, wait_until_ended
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
    [part] = SyncChunk.objects.filter(run=run)
    second = start_worker(tmp_path / "second-worker.log", name="faults-2")
    try:
        # beat's sweeper, every half lease: the dead worker's lease runs out, and the run's part is taken back
        wait_for(lambda: parts.sweep_stuck_parts() == [part.pk], 30, "the part's lease to run out", interval=0.5)
        done = wait_until_ended(run, second)
    finally:
        second.stop(STOP_GRACE)
    part.refresh_from_db()
    assert done.status == RunStatus.SUCCEEDED and part.attempts == 2
    scenario.assert_converged(run, name_sent_unheard=True)


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
        first.stop(STOP_GRACE)

    # 2. Redis restarts while a run is queued and no worker is running: the message is lost with it.
    queued = scenario.automatic_run()
    own_redis.stop()
    own_redis.start()
    second = start_worker(tmp_path / "second-worker.log", broker=own_redis.url, name="faults-redis-2")
    try:
        time.sleep(3)
        assert SyncRun.objects.get(pk=queued.pk).status == RunStatus.QUEUED  # nothing delivered it
        assert jobs.sweep_stuck_runs() == [queued.pk]  # the broker lost its mark: its messages are gone
        finished = wait_until_ended(queued, second)
    finally:
        second.stop(STOP_GRACE)
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
    fault_at = time.monotonic()
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1
    [part] = SyncChunk.objects.filter(run=run)
    resumed(part, 1, fault_at, "database connections dropped mid-run", worker)
    done = wait_until_ended(run, worker)
    part.refresh_from_db()
    assert done.status == RunStatus.SUCCEEDED and part.attempts == 2, (done.status, done.error)
    assert "lost its database connection" in worker.output()  # the log says what happened
    scenario.assert_converged(run, name_sent_unheard=True)
