"""Run leases: a running run is its worker's only while the worker renews its lease; a run whose lease ran out is
taken back and goes on from its last committed batch, and the worker that lost it commits nothing more.

The fault suite (tests/faults/) does the same with real processes killed; these tests take the steps one by one.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from connections import jobs, services
from connections.choices import LogOutcome, RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, SyncChunk, SyncLogEntry, SyncRun
from connections.sync import engine
from connections.sync.parts import run_part
from crm.models import Company

from .conftest import Connector, port_open, require_service
from .sync_helpers import active_connection, change_in_erp, company, new_customer


def expire(run: SyncRun) -> None:
    """The run's worker stopped renewing its lease a while ago."""
    SyncRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def connection(demo_erp: Connector, db: Any) -> ErpConnection:
    return active_connection(demo_erp)


def linked(demo_erp: Connector, connection: ErpConnection, count: int) -> list[Link]:
    """``count`` companies linked to new ERP customers and in step, each with a phone changed in the ERP since."""
    links = []
    for i in range(count):
        actor = new_customer(demo_erp, connection, NAME=f"Del {i} AB", PHONE=f"+46 8 {i}")
        links.append(services.link_record(connection, "Customer", actor.key or "", company(name=f"Del {i} AB"), None))
    first = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": first.pk})
    assert SyncRun.objects.get(pk=first.pk).status == RunStatus.SUCCEEDED
    for i, link in enumerate(links):
        change_in_erp(demo_erp, connection, link.erp_key, PHONE=f"+46 8 {i} changed")
    return links


@pytest.mark.django_db
def test_a_running_run_is_claimed_again_only_once_its_lease_has_run_out(connection: ErpConnection) -> None:
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    assert jobs.claim(run.pk) == 1
    assert jobs.claim(run.pk) == 0  # a duplicate delivery while the worker works does nothing
    assert jobs.sweep_stuck_runs() == []  # nor does the sweeper
    expire(run)
    assert jobs.claim(run.pk) == 2  # the worker is gone: the next delivery takes the run back
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.lease_expires_at is not None
    assert run.lease_expires_at > timezone.now() + timedelta(seconds=25)  # ERPSYNC_RUN_LEASE_SECONDS, 30


@pytest.mark.django_db
def test_the_sweeper_takes_back_a_run_whose_lease_ran_out_and_says_so(
    connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[list[int]] = []
    monkeypatch.setattr(jobs, "send", sent.append)
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    jobs.claim(run.pk)
    expire(run)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobs.transaction, "on_commit", lambda send: send())
        assert jobs.sweep_stuck_runs() == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.error == "Its worker stopped; the run goes on from where it was."
    assert sent == [[run.pk]]
    # The attempt that lost it can no longer finish it, nor put it back in the queue.
    jobs.finish(run.pk, RunStatus.SUCCEEDED, attempt=1)
    jobs.requeue(run.pk, "later", attempt=1)
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.QUEUED, "Its worker stopped; the run goes on from where it was.")


@pytest.mark.django_db
def test_a_run_whose_worker_kept_dying_is_given_up_rather_than_taken_back(connection: ErpConnection) -> None:
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL, attempts=jobs.MAX_RETRIES)
    assert jobs.claim(run.pk) == jobs.MAX_RETRIES + 1
    expire(run)
    assert jobs.claim(run.pk) == 0
    assert jobs.sweep_stuck_runs() == []
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error.startswith("Gave up after 6 attempts")


@pytest.mark.django_db
def test_a_worker_that_lost_its_run_commits_nothing_more(demo_erp: Connector, connection: ErpConnection) -> None:
    [link] = linked(demo_erp, connection, 1)
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    jobs.claim(run.pk)
    slow = SyncRun.objects.get(pk=run.pk)  # what the first worker read; then it stalled past its lease
    expire(run)
    assert jobs.claim(run.pk) == 2
    with pytest.raises(jobs.LeaseLost):
        engine.sync_links(slow, [link])
    # The batch was rolled back: the CRM has not heard of the ERP's change, nothing was logged or counted.
    assert Company.objects.get(pk=link.company_id or 0).phone == "+46 8 0"
    assert not SyncLogEntry.objects.filter(run=run).exists()
    assert SyncRun.objects.get(pk=run.pk).done == 0


@pytest.mark.django_db
def test_a_part_of_sync_all_taken_back_goes_on_from_its_last_committed_batch(
    demo_erp: Connector, connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = linked(demo_erp, connection, 5)
    monkeypatch.setattr(engine, "BATCH", 2)
    original, batches, read = engine._finish_batch, list[int](), list[str]()

    def stop_after_first_batch(*args: Any) -> None:
        if batches:
            raise KeyboardInterrupt  # the worker is killed in the second batch, before it commits
        batches.append(1)
        original(*args)

    original_decide = engine._decide

    def decide(connection: Any, actor_type: str, batch: list[Link], *args: Any) -> Any:
        read.extend(link.erp_key for link in batch)
        return original_decide(connection, actor_type, batch, *args)

    monkeypatch.setattr(engine, "_finish_batch", stop_after_first_batch)
    monkeypatch.setattr(engine, "_decide", decide)
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    with pytest.raises(KeyboardInterrupt):
        run_sync.apply(kwargs={"run_id": run.pk}, throw=True)
    run.refresh_from_db()
    assert (run.status, run.done, run.changed) == (RunStatus.RUNNING, 2, 2)
    [part] = SyncChunk.objects.filter(run=run)
    assert (part.status, part.position, part.done) == (RunStatus.RUNNING, links[1].pk, 2)

    monkeypatch.setattr(engine, "_finish_batch", original)
    read.clear()
    SyncChunk.objects.filter(pk=part.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_part.apply(kwargs={"part_id": part.pk})  # the redelivered message, or the sweeper's
    run.refresh_from_db()
    part.refresh_from_db()
    assert (run.status, run.total, run.done, run.changed) == (RunStatus.SUCCEEDED, 5, 5, 5)
    assert (part.status, part.attempts) == (RunStatus.SUCCEEDED, 2)
    assert read == [link.erp_key for link in links[2:]]  # the committed batch was not read again
    for i, link in enumerate(links):
        assert Company.objects.get(pk=link.company_id or 0).phone == f"+46 8 {i} changed"
        written = SyncLogEntry.objects.filter(link=link, run=run, outcome=LogOutcome.WRITTEN)
        assert list(written.values_list("field_key", flat=True)) == ["PHONE"]  # once, by one attempt


@pytest.mark.django_db
def test_a_run_that_failed_in_an_earlier_attempt_is_not_called_succeeded(connection: ErpConnection) -> None:
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL, failed=1)
    attempt = jobs.claim(run.pk)
    jobs.finish_with(run.pk, jobs.Counts(done=3), attempt)
    assert SyncRun.objects.get(pk=run.pk).status == RunStatus.PARTIALLY_FAILED


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_the_worker_waits_and_no_longer_once_the_run_is_taken(
    connection: ErpConnection, settings: Any
) -> None:
    settings.ERPSYNC_RUN_LEASE_SECONDS = 2  # renewed every 0.67 s
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    attempt = jobs.claim(run.pk)
    with jobs.renewing(run.pk, attempt):
        time.sleep(3)  # a connector call longer than the lease
        run.refresh_from_db()
        assert run.lease_expires_at is not None and run.lease_expires_at > timezone.now()
        # Meanwhile the run was taken back (this worker was thought gone): its lease is no longer renewed here.
        SyncRun.objects.filter(pk=run.pk).update(attempts=attempt + 1)
        taken = SyncRun.objects.get(pk=run.pk).lease_expires_at
        time.sleep(1.5)
    assert SyncRun.objects.get(pk=run.pk).lease_expires_at == taken


@pytest.mark.django_db
def test_a_broker_that_lost_its_messages_gets_every_queued_run_again(
    connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    import redis

    from .conftest import REDIS_TEST_URL, use_broker

    monkeypatch.setattr(jobs.transaction, "on_commit", lambda send: send())
    monkeypatch.setattr(jobs, "send", lambda run_ids: None)
    restore = use_broker(REDIS_TEST_URL)
    try:
        redis.Redis.from_url(REDIS_TEST_URL).delete(jobs.BROKER_MARK)
        queued = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
        assert jobs.sweep_stuck_runs() == [queued.pk]  # the first round cannot know: it sends them again
        assert jobs.sweep_stuck_runs() == []  # the broker still holds the mark: its messages are there
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()  # as a Redis restarted without persistence
        assert jobs.sweep_stuck_runs() == [queued.pk]
        assert SyncRun.objects.get(pk=queued.pk).status == RunStatus.QUEUED
    finally:
        restore()


def test_the_sweeper_runs_every_half_lease_so_a_dead_worker_is_replaced_within_one_and_a_half_leases(
    settings: Any,
) -> None:
    assert settings.ERPSYNC_RUN_LEASE_SECONDS == 30  # the default: recovery well within 90 s
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-stuck-runs"]
    assert entry["schedule"] == 15.0 and entry["options"]["expires"] == 15.0


@pytest.mark.django_db(transaction=True)
def test_a_run_left_running_by_the_previous_version_is_taken_back_at_its_old_deadline(
    connection: ErpConnection,
) -> None:
    """An existing database migrates: a run its worker left running keeps the deadline it had (16 minutes after
    it started), in case a worker of the previous version is still at it; finished runs get no lease."""
    from django.db import connection as db_connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("connections", "0004_run_send_failed_at")]
    executor = MigrationExecutor(db_connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("connections", "SyncRun")
        started = timezone.now() - timedelta(minutes=5)
        running = old.objects.create(connection_id=connection.pk, kind="sync_all", status="running", started_at=started)
        done = old.objects.create(connection_id=connection.pk, kind="sync_now", status="succeeded", started_at=started)
    finally:
        # On to the latest schema, as an upgrade does; the tests after this one in the same process need it too.
        executor = MigrationExecutor(db_connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    taken = SyncRun.objects.get(pk=running.pk)
    assert taken.lease_expires_at == started + timedelta(minutes=16) and taken.checkpoint == {}
    assert SyncRun.objects.get(pk=done.pk).lease_expires_at is None
    assert jobs.claim(running.pk) == 0  # not before that deadline
