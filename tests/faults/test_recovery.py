"""Recovery within 90 s: real workers, beat and a real Demo ERP; a worker is SIGKILLed mid Sync all and mid import,
a pool process is killed, Redis restarts empty while runs are queued. Each run goes on from its last committed
batch and finishes with every record written once, which the Demo ERP's own count of writes confirms.

The lease is 3 s here (FAULTS_LEASE_SECONDS); docs/operations.md has the times measured with the default, 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from connections import importing, jobs, services
from connections.choices import ImportAction, ImportOutcome, LogOutcome, RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ImportRow, Link, SyncChunk, SyncLogEntry, SyncRun, SyncSettings
from connectors.demo.store import Store
from crm.models import Company

from ..conftest import STOP_GRACE, Process, RunningConnector, free_port, start_demo, wait_for
from ..factories import UserFactory
from ..sync_helpers import active_connection, change_in_erp, company, customers_for_import, erp_values, new_customer
from .conftest import (
    LEASE_SECONDS,
    RECOVERY_LIMIT,
    map_every_country,
    pool_processes,
    resumed,
    scenario_for,
    start_beat,
    start_worker,
    wait_until_ended,
)
from .proxy import Fault, FaultyConnector

pytestmark = pytest.mark.django_db(transaction=True)

SAVE, GET = "/v1/save-actors", "/v1/get-actors"
LEASE = float(LEASE_SECONDS)


class Erp:
    """A Demo ERP process of the test's own, seeded with ``customers`` and more, and its database file."""

    def __init__(self, directory: Path, actors: int) -> None:
        directory.mkdir()
        self.running = start_demo(directory, seed_actors=actors)
        self.store = Store(directory / "demo-erp.sqlite3")

    def customers(self) -> list[tuple[str, dict[str, Any]]]:
        with self.store.read() as db:
            rows = db.execute("SELECT key, vals FROM actors WHERE actor_type = 'Customer' ORDER BY key").fetchall()
        return [(key, json.loads(values)) for key, values in rows]


@pytest.fixture
def processes(redis_queue: str, tmp_path: Path) -> Iterator[dict[str, Process]]:
    """Two workers and beat; a test that kills one kills the one running its run."""
    started = {
        "first": start_worker(tmp_path / "first.log", name="first", ERPSYNC_JOB_TIMEOUT="300", ERPSYNC_PART_SIZE="600"),
        "second": start_worker(
            tmp_path / "second.log", name="second", ERPSYNC_JOB_TIMEOUT="300", ERPSYNC_PART_SIZE="600"
        ),
        "beat": start_beat(tmp_path / "beat.log"),
    }
    for name in ("first", "second"):
        wait_for(ready(started[name]), 60, f"worker {name} to start")
    yield started
    for process in started.values():
        process.stop(STOP_GRACE)


def ready(worker: Process) -> Callable[[], bool]:
    return lambda: " ready." in worker.output()


def holder(processes: dict[str, Process]) -> tuple[Process, Process]:
    """The worker that received the test's run (the only run_sync message sent), and the other one."""

    def received() -> str | None:
        for name in ("first", "second"):
            if "Task connections.run_sync[" in processes[name].output():
                return name
        return None

    name = wait_for(received, 30, "a worker to receive the run")
    other = "second" if name == "first" else "first"
    return processes[name], processes[other]


def kill(worker: Process) -> float:
    os.killpg(worker.popen.pid, signal.SIGKILL)
    worker.popen.wait(10)
    return time.monotonic()


def written(link: Link, run: SyncRun) -> list[str]:
    entries = SyncLogEntry.objects.filter(link=link, run=run, outcome=LogOutcome.WRITTEN)
    return sorted(entries.values_list("field_key", flat=True))


@pytest.fixture
def erp_for_sync(tmp_path: Path) -> Iterator[Erp]:
    erp = Erp(tmp_path / "erp", actors=2000)  # 1,200 customers: two batches of Sync all
    yield erp
    erp.running.process.stop()


def part_of(run: SyncRun, number: int = 1) -> SyncChunk:
    return wait_for(lambda: SyncChunk.objects.filter(run=run, number=number).first(), 30, f"part {number} of the run")


def worker_of(part: SyncChunk, processes: dict[str, Process]) -> tuple[Process, Process]:
    """The worker process working on ``part`` (its process id is in ``part.worker``), and the other one."""
    pid = int(part.worker.rsplit(":", 1)[1])
    name = next(name for name in ("first", "second") if os.getpgid(pid) == processes[name].popen.pid)
    return processes[name], processes["second" if name == "first" else "first"]


def test_a_part_of_sync_all_whose_worker_is_killed_goes_on_from_its_checkpoint_on_the_other_worker(
    processes: dict[str, Process], erp_for_sync: Erp
) -> None:
    """Sync all of 1,200 customers in two parts of 600 (the workers' ERPSYNC_PART_SIZE), one on each worker. The
    second SaveActors to reach the ERP hangs, and its worker is killed: the other worker takes the part back."""
    erp = erp_for_sync
    proxy = FaultyConnector(erp.running.url, free_port())
    proxy.start()
    try:
        connection = active_connection(erp.running)
        type(connection.connector).objects.filter(pk=connection.connector_id).update(url=proxy.url)
        map_every_country(connection)
        customers = erp.customers()
        companies = Company.objects.bulk_create(
            [Company(name=values["NAME"], phone=values.get("PHONE") or "") for _key, values in customers]
        )
        links = Link.objects.bulk_create(
            [
                Link(connection=connection, actor_type="Customer", erp_key=key, company=record)
                for (key, _values), record in zip(customers, companies, strict=True)
            ]
        )
        first = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
        run_sync.apply(kwargs={"run_id": first.pk})  # in step, with baselines
        assert SyncRun.objects.get(pk=first.pk).status == RunStatus.SUCCEEDED

        # In each part, three names change in the CRM and three phones in the ERP.
        to_erp = [links[i] for i in (0, 1, 2, 600, 601, 602)]
        to_crm = [links[i] for i in (3, 4, 5, 603, 604, 605)]
        for link in to_erp:
            Company.objects.filter(pk=link.company_id or 0).update(name=f"Ny {link.erp_key} AB")
        for link in to_crm:
            change_in_erp(erp.running, connection, link.erp_key, PHONE=f"+46 8 {link.erp_key}")
        writes_before = erp.store.writes()

        # The second SaveActors reaches the ERP, and its answer waits: its worker is killed meanwhile.
        proxy.fail(SAVE, Fault("hang", seconds=300, after_forwarding=True, skip=1))
        run = jobs.queue_bulk(connection, RunKind.SYNC_ALL)
        wait_for(lambda: proxy.injected, 60, "the second SaveActors")
        # The call lasts longer than the lease, which the worker's heartbeat keeps renewing. (Measuring with the
        # default lease, 30 s, it lasts 20 s: the client's read timeout, 30 s, would end it first.)
        time.sleep(min(2 * LEASE, 20))
        hung_now = SyncChunk.objects.filter(run=run, status=RunStatus.RUNNING).first()
        if hung_now is None:  # what the workers did, for whoever reads the failure
            states = list(SyncChunk.objects.filter(run=run).values_list("number", "status", "attempts", "error"))
            logs = "\n".join(f"--- {name}\n{processes[name].output()[-3000:]}" for name in ("first", "second"))
            raise AssertionError(f"no part is held by the hung call: {states}; proxy: {proxy.injected}\n{logs}")
        hung = hung_now
        other_part = SyncChunk.objects.get(run=run, number=3 - hung.number)
        assert (other_part.status, other_part.done, hung.attempts, hung.done) == (RunStatus.SUCCEEDED, 600, 1, 0)
        dying, other = worker_of(hung, processes)
        calls = len(proxy.calls)
        fault_at = kill(dying)
        resumed(hung, 1, fault_at, "worker SIGKILLed mid Sync all", other, processes["beat"])
        done = wait_until_ended(run, other)
    finally:
        proxy.close()
    hung.refresh_from_db()
    assert (done.status, done.total, done.done) == (RunStatus.SUCCEEDED, 1200, 1200), done.error
    assert (hung.status, hung.attempts) == (RunStatus.SUCCEEDED, 2)
    assert proxy.calls[calls:].count(GET) == 1  # only the part taken back read its batch again
    assert erp.store.writes() - writes_before == 6  # each CRM change reached the ERP once
    for link in to_erp:
        assert erp_values(erp.running, connection, link.erp_key)["NAME"] == f"Ny {link.erp_key} AB"
    for link in to_crm:
        assert Company.objects.get(pk=link.company_id or 0).phone == f"+46 8 {link.erp_key}"
        assert written(link, run) == ["PHONE"]
    # The names of the part that ended were written and logged once; those of the part taken back reached the
    # ERP before the kill, and the part taken up again found both sides agreeing: nothing written twice.
    first_part = [link for link in to_erp if link.pk in other_part.link_ids]
    second_part = [link for link in to_erp if link.pk in hung.link_ids]
    assert [written(link, run) for link in first_part] == [["NAME"]] * 3
    assert [written(link, run) for link in second_part] == [[]] * 3
    assert done.changed == 9
    assert Link.objects.filter(connection=connection).count() == 1200


@pytest.fixture
def erp_for_import(tmp_path: Path) -> Iterator[Erp]:
    erp = Erp(tmp_path / "erp", actors=3300)  # 1,980 customers: two chunks of an import
    yield erp
    erp.running.process.stop()


def _hold_rows(pks: list[int], held: threading.Event, release: threading.Event) -> None:
    """Lock the rows of the import's second chunk in a transaction of its own until ``release``."""
    try:
        with transaction.atomic():
            list(ImportRow.objects.select_for_update().filter(pk__in=pks).values_list("pk", flat=True))
            held.set()
            release.wait(60)
    finally:
        db_connection.close()


@pytest.mark.skipif(
    db_connection.vendor != "postgresql", reason="holds rows of the import with row locks; runs in the PostgreSQL pass"
)
def test_an_import_whose_worker_is_killed_goes_on_with_the_rows_left_on_the_other_worker(
    processes: dict[str, Process], erp_for_import: Erp
) -> None:  # 1,980 customers: four parts of at most 600 rows (the workers' ERPSYNC_PART_SIZE)
    connection = customers_for_import(erp_for_import.running)
    map_every_country(connection)
    erp_import = importing.start_preview(connection, "Customer", everything=True, send=False)
    assert erp_import.preview_run is not None
    run_sync.apply(kwargs={"run_id": erp_import.preview_run.pk})
    erp_import.refresh_from_db()
    importing.decide_all(erp_import, ImportAction.CREATE)  # the Demo ERP's look-alikes are new records too
    rows = list(importing.to_import(erp_import).order_by("pk").values_list("pk", flat=True))
    assert len(rows) > 3 * 600

    # The parts after the first wait for these row locks, with their records written but not committed.
    release, held = threading.Event(), threading.Event()
    holding = threading.Thread(target=_hold_rows, args=(rows[600:], held, release))
    holding.start()
    assert held.wait(10)
    try:
        run = importing.start_import(erp_import)

        def a_part_waiting() -> SyncChunk | None:
            if SyncRun.objects.get(pk=run.pk).done < 600:
                return None
            # Not part 1: its rows are not locked, and it may still be ending after its last batch was counted.
            running = SyncChunk.objects.filter(run=run, status=RunStatus.RUNNING, number__gt=1, done=0)
            return running.exclude(worker="").first()

        part = wait_for(a_part_waiting, 60, "the first part to end and the next to wait", 0.05)
        time.sleep(0.5)  # into the part's transaction, up to the locked rows
        dying, other = worker_of(part, processes)
        fault_at = kill(dying)
        assert SyncRun.objects.get(pk=run.pk).status == RunStatus.RUNNING, "the import ended before the kill"
    finally:
        release.set()
        holding.join(10)
    resumed(part, 1, fault_at, "worker SIGKILLed mid import", other, processes["beat"])
    done = wait_until_ended(run, other)
    count = len(rows)
    assert (done.status, done.total, done.done) == (RunStatus.SUCCEEDED, count, count), done.error
    part.refresh_from_db()
    assert (part.status, part.attempts) == (RunStatus.SUCCEEDED, 2)
    assert Company.objects.count() == count
    links = Link.objects.filter(connection=connection)
    assert links.count() == count and links.values("erp_key").distinct().count() == count
    assert set(ImportRow.objects.filter(pk__in=rows).values_list("outcome", flat=True)) == {ImportOutcome.NEW}
    created = SyncLogEntry.objects.filter(run=run, field_key="")
    assert created.count() == count and created.values("erp_key").distinct().count() == count


def test_a_killed_pool_process_gives_its_run_back_through_the_redelivered_message(
    redis_queue: str, faulty: FaultyConnector, demo_connector: RunningConnector, tmp_path: Path
) -> None:
    """As the OOM killer does: only the pool process dies; its worker hands the message back, which takes the
    run back once the lease has run out. No beat runs here: the message alone recovers the run."""
    scenario = scenario_for(demo_connector, faulty.url)
    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    scenario.change_both_sides("pool")
    worker = start_worker(tmp_path / "prefork.log", pool="prefork", concurrency="1", ERPSYNC_JOB_TIMEOUT="300")
    try:
        wait_for(ready(worker), 60, "the worker to start")
        faulty.fail(SAVE, Fault("hang", seconds=300, after_forwarding=True))
        run = jobs.queue_bulk(scenario.connection, RunKind.SYNC_ALL)
        wait_for(lambda: faulty.injected, 60, "the worker to reach SaveActors")
        for pid in pool_processes(worker):
            os.kill(pid, signal.SIGKILL)
        fault_at = time.monotonic()
        part = part_of(run)
        resumed(part, 1, fault_at, "pool processes killed mid Sync all", worker)
        done = wait_until_ended(run, worker)
        assert "WorkerLostError" in worker.output() or "SIGKILL" in worker.output()
    finally:
        worker.stop(STOP_GRACE)
    part.refresh_from_db()
    assert done.status == RunStatus.SUCCEEDED and part.attempts == 2, done.error
    scenario.assert_converged(run, name_sent_unheard=True)


def test_runs_queued_when_redis_restarts_empty_are_sent_again_and_run_once(
    own_redis: Any, faulty: FaultyConnector, demo_connector: RunningConnector, tmp_path: Path, client: Any
) -> None:
    """The worker is busy with one run (its connector is slow) while two more wait in Redis; Redis restarts
    without persistence and the two messages are gone. The sweeper sees that the broker lost its messages and
    sends the queued runs again."""
    scenario = scenario_for(demo_connector, faulty.url)
    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    scenario.change_both_sides("restart")
    worker = start_worker(
        tmp_path / "worker.log", broker=own_redis.url, name="busy", concurrency="1", ERPSYNC_JOB_TIMEOUT="30"
    )
    beat = start_beat(tmp_path / "beat.log", broker=own_redis.url)
    try:
        wait_for(ready(worker), 60, "the worker to start")
        client.force_login(UserFactory.create(username="anna", perms=["connections.use_erp_sync"]))
        faulty.fail(GET, Fault("delay", seconds=3))
        busy, *waiting = [
            SyncRun.objects.get(pk=client.post(reverse("erp:sync-now", args=[link.pk])).json()["run"])
            for link in scenario.links
        ]
        wait_for(lambda: faulty.injected, 60, "the first run to call the slow connector")
        time.sleep(0.3)
        assert [SyncRun.objects.get(pk=run.pk).status for run in waiting] == [RunStatus.QUEUED] * 2
        fault_at, fault_time = time.monotonic(), timezone.now()
        own_redis.stop()
        own_redis.start()
        resumed(waiting[0], 0, fault_at, "Redis restarted empty while runs were queued", worker, beat)
        ended = [wait_until_ended(run, worker) for run in [busy, *waiting]]
    finally:
        worker.stop(STOP_GRACE)
        beat.stop(STOP_GRACE)
    assert [(run.status, run.attempts) for run in ended] == [(RunStatus.SUCCEEDED, 1)] * 3
    for run in ended[1:]:
        assert run.started_at is not None and (run.started_at - fault_time).total_seconds() <= RECOVERY_LIMIT
    for link in scenario.links:
        assert SyncRun.objects.filter(link=link).count() == 1
    scenario.assert_converged(busy)


def test_a_duplicate_message_leaves_the_run_to_the_worker_that_holds_it(
    processes: dict[str, Process], demo_connector: RunningConnector
) -> None:
    """A message delivered twice (a redelivery, the sweeper's copy) finds the run's lease renewed and does nothing:
    the run has one attempt."""
    connection = active_connection(demo_connector)
    actor = new_customer(demo_connector, connection, PHONE="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", company(phone="+46 1"), None)
    change_in_erp(demo_connector, connection, actor.key or "", PHONE="+46 2")
    run, _created = services.start_sync_now(link, None)
    jobs.send([run.pk])  # a second message for the same run
    done = wait_until_ended(run, processes["first"])
    time.sleep(LEASE + 1)  # past the duplicate's second look
    done.refresh_from_db()
    assert (done.status, done.attempts, done.changed) == (RunStatus.SUCCEEDED, 1, 1)
    assert SyncLogEntry.objects.filter(link=link, outcome=LogOutcome.WRITTEN).count() == 1
