"""Sync log rows older than the retention are deleted in small batches, by beat's task or by a command."""

from __future__ import annotations

import io
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone
from kombu import Connection

from connections import retention, tasks
from connections.models import Link, SyncLogEntry, SyncRun
from erpsync_admin.celery import app

from .conftest import REDIS_TEST_URL, database_url, port_open, require_service, venv_bin, wait_for
from .factories import LinkFactory, SyncRunFactory, UserFactory
from .test_settings import run_check

NOW = timezone.now()


@pytest.fixture
def link(db: Any) -> Link:
    return LinkFactory.create(connection__name="Demo ERP – Sweden", erp_key="10001", company__name="Granbygg AB")


def log_rows(link: Link, *ages_in_days: float) -> list[int]:
    """One log row per age (days before NOW), in a run of its own; their ids, in the order given."""
    run = SyncRunFactory.create(link=link, status="succeeded")
    entries = SyncLogEntry.objects.bulk_create(
        SyncLogEntry(
            run=run,
            link=link,
            connection=link.connection,
            actor_type="Customer",
            erp_key=link.erp_key,
            field_key="PHONE",
            outcome="written",
            old=f"+46 {n}",
            new=f"+46 {n + 1}",
            at=NOW - timedelta(days=age),
        )
        for n, age in enumerate(ages_in_days)
    )
    return [entry.pk for entry in entries]


def remaining() -> set[int]:
    return set(SyncLogEntry.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_only_rows_older_than_the_retention_go_and_each_batch_is_one_short_delete(link: Link) -> None:
    old = log_rows(link, *[400 + n for n in range(12)], 365.01)
    kept = log_rows(link, 364.99, 200, 30, 1, 0)
    totals: list[int] = []
    with CaptureQueriesContext(db) as queries:
        result = retention.prune_sync_log(days=365, batch_size=5, now=NOW, progress=totals.append)
    assert (result.deleted, result.batches, result.finished) == (13, 3, True)
    assert totals == [5, 10, 13]
    assert remaining() == set(kept) and not set(old) & remaining()
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("DELETE")]
    assert len(deletes) == 3  # one statement per batch: nothing cascades from a log row
    # Nothing refers to a log row: the run, the link and its record are all still there.
    assert SyncRun.objects.count() == 2 and Link.objects.filter(pk=link.pk).exists()


@pytest.mark.django_db
def test_a_run_out_of_time_stops_after_whole_batches_and_the_next_run_goes_on(link: Link) -> None:
    old = log_rows(link, *[500 - n for n in range(12)])  # the first is the oldest
    kept = log_rows(link, 10)
    first = retention.prune_sync_log(days=365, batch_size=5, budget_seconds=0, now=NOW)
    assert (first.deleted, first.batches, first.finished) == (5, 1, False)
    assert remaining() == set(old[5:] + kept)  # the oldest went first
    second = retention.prune_sync_log(days=365, batch_size=5, budget_seconds=0, now=NOW)
    assert (second.deleted, second.finished) == (5, False)
    last = retention.prune_sync_log(days=365, batch_size=5, budget_seconds=0, now=NOW)
    assert (last.deleted, last.finished) == (2, True)
    assert remaining() == set(kept)


@pytest.mark.django_db
@override_settings(ERPSYNC_SYNC_LOG_RETENTION_DAYS=0)
def test_a_retention_of_zero_days_keeps_the_log_for_ever(link: Link) -> None:
    rows = log_rows(link, 5000, 1)
    assert retention.prune_sync_log() == retention.PruneResult(cutoff=None)
    tasks.prune_sync_log.apply()
    assert remaining() == set(rows)


@pytest.mark.django_db
@override_settings(ERPSYNC_SYNC_LOG_RETENTION_DAYS=30)
def test_beat_runs_the_task_hourly_and_it_follows_the_setting(link: Link) -> None:
    rows = log_rows(link, 31, 29)
    schedule: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["prune-sync-log"]
    assert schedule["task"] == tasks.prune_sync_log.name == "connections.prune_sync_log"
    assert schedule["schedule"] == 3600 and 0 < schedule["options"]["expires"] < 3600
    assert tasks.prune_sync_log.name in app.tasks
    tasks.prune_sync_log.apply()
    assert remaining() == {rows[1]}


@pytest.mark.django_db
def test_pruning_keeps_what_the_failed_records_and_the_record_history_need(client: Client, link: Link) -> None:
    """A failed record's error is on its link, not in the log: pruning its old log rows leaves the page as it was."""
    log_rows(link, 400)
    recent = log_rows(link, 2)
    Link.objects.filter(pk=link.pk).update(status="failed", last_error="no CRM item is mapped to ERP item NO")
    retention.prune_sync_log(days=365)
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    page = client.get(reverse("connections:failed-records", args=[link.connection_id])).content.decode()
    assert "1 failed record" in page and "no CRM item is mapped to ERP item NO" in page
    history = client.get(reverse("connections:sync-log", args=[link.connection_id]))
    assert [entry.pk for entry in history.context["page"].object_list] == recent


@pytest.mark.django_db
def test_the_command_counts_deletes_and_refuses_bad_values(link: Link) -> None:
    log_rows(link, 100, 90, 80, 5)
    out = io.StringIO()
    call_command("prune_sync_log", "--days", "60", "--dry-run", stdout=out)
    assert "3 sync log rows are older than 60 days" in out.getvalue() and SyncLogEntry.objects.count() == 4
    out = io.StringIO()
    call_command("prune_sync_log", "--days", "85", "--batch-size", "1", stdout=out)
    assert "Deleted 2 sync log rows older than 85 days" in out.getvalue() and "in 2 batches" in out.getvalue()
    assert SyncLogEntry.objects.count() == 2
    out = io.StringIO()
    call_command("prune_sync_log", "--days", "0", stdout=out)
    assert "kept for ever" in out.getvalue() and SyncLogEntry.objects.count() == 2
    with override_settings(ERPSYNC_SYNC_LOG_RETENTION_DAYS=70):
        call_command("prune_sync_log", stdout=io.StringIO())
    assert SyncLogEntry.objects.count() == 1
    for args, message in (
        (["--days", "-1"], "--days must be 0"),
        (["--batch-size", "0"], "--batch-size must be"),
        (["--budget", "-5"], "--budget must be"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("prune_sync_log", *args, stdout=io.StringIO())


def test_a_bad_retention_setting_stops_start_up_naming_it() -> None:
    result = run_check(DEBUG="1", ERPSYNC_SYNC_LOG_RETENTION_DAYS="a year")
    assert result.returncode != 0
    assert "ERPSYNC_SYNC_LOG_RETENTION_DAYS='a year' is not valid: expected a whole number from 0 to 36500" in (
        result.stderr
    )


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_prunes_the_log_when_the_task_arrives(start_process: Any, tmp_path: Path, link: Link) -> None:
    old, kept = log_rows(link, 400, 380), log_rows(link, 3)
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis"):
        require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
        broker = REDIS_TEST_URL
    else:
        broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    queue = f"prune-{uuid.uuid4().hex[:8]}"
    worker = start_process(
        [
            venv_bin("celery"),
            "-A",
            "erpsync_admin",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            f"--queues={queue}",
            f"--hostname={queue}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env={"DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker, "ERPSYNC_SYNC_LOG_RETENTION_DAYS": "365"},
        name="worker",
    )
    with Connection(broker) as conn:
        app.send_task(tasks.prune_sync_log.name, queue=queue, connection=conn)
    try:
        wait_for(lambda: not SyncLogEntry.objects.filter(pk__in=old).exists(), 60, "the old rows to be deleted")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None
    assert remaining() == set(kept)
