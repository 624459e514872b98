"""Bulk runs in parts, with real worker processes: one Sync all is worked on by several processes at once, and
it lasts longer than a task may (the soft time limit) yet ends with every record written once.

The Demo ERP answers GetActors after a second here (a proxy delays it), as a slow ERP would; the time limit is
5 s, and the run needs about twice that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connections import jobs
from connections.choices import LogOutcome, RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import Link, SyncChunk, SyncLogEntry, SyncRun
from connectors.demo.store import Store
from crm.models import Company

from ..conftest import STOP_GRACE, free_port, start_demo, wait_for
from ..sync_helpers import active_connection, erp_values
from .conftest import map_every_country, start_worker, wait_until_ended
from .proxy import Fault, FaultyConnector

pytestmark = pytest.mark.django_db(transaction=True)

SOFT_LIMIT = 5
PART_SIZE = 20


def test_one_sync_all_is_worked_on_by_several_processes_and_outlasts_the_time_limit(
    redis_queue: str, tmp_path: Path, settings: Any
) -> None:
    # The limits travel with each task's message, from the process that sends it: this one and the worker's.
    settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT = SOFT_LIMIT, 2 * SOFT_LIMIT
    (tmp_path / "erp").mkdir()
    erp = start_demo(tmp_path / "erp", seed_actors=400)
    proxy = FaultyConnector(erp.url, free_port())
    proxy.start()
    worker = None
    try:
        store = Store(tmp_path / "erp" / "demo-erp.sqlite3")
        with store.read() as db:
            customers = db.execute("SELECT key, vals FROM actors WHERE actor_type = 'Customer' ORDER BY key").fetchall()
        connection = active_connection(erp)
        map_every_country(connection)
        companies = Company.objects.bulk_create(
            [
                Company(name=json.loads(values)["NAME"], phone=json.loads(values).get("PHONE") or "")
                for _k, values in customers
            ]
        )
        links = Link.objects.bulk_create(
            [
                Link(connection=connection, actor_type="Customer", erp_key=key, company=record)
                for (key, _values), record in zip(customers, companies, strict=True)
            ]
        )
        first = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
        run_sync.apply(kwargs={"run_id": first.pk})  # in step, with baselines, in this process
        assert SyncRun.objects.get(pk=first.pk).status == RunStatus.SUCCEEDED

        # Every name changes in the CRM; each must reach the ERP once. The ERP answers reads after a second.
        for record in companies:
            Company.objects.filter(pk=record.pk).update(name=f"Ny {record.pk} AB")
        writes_before = store.writes()
        type(connection.connector).objects.filter(pk=connection.connector_id).update(url=proxy.url)
        proxy.fail("/v1/get-actors", Fault("delay", seconds=1.0, times=10_000))
        worker = start_worker(
            tmp_path / "worker.log",
            pool="prefork",
            concurrency="2",
            ERPSYNC_PART_SIZE=str(PART_SIZE),
            CELERY_TASK_SOFT_TIME_LIMIT=str(SOFT_LIMIT),
            CELERY_TASK_TIME_LIMIT=str(2 * SOFT_LIMIT),
        )
        wait_for(lambda: " ready." in worker.output(), 60, "the worker to start")
        run = jobs.queue_bulk(connection, RunKind.SYNC_ALL)
        done = wait_until_ended(run, worker, 180)
        last_name = erp_values(erp, connection, links[-1].erp_key)["NAME"]
    finally:
        proxy.close()
        if worker is not None:
            worker.stop(STOP_GRACE)
        erp.process.stop()

    count = len(links)
    parts = list(SyncChunk.objects.filter(run=run))
    assert len(parts) == -(-count // PART_SIZE) > 2
    assert (done.status, done.total, done.done, done.changed) == (RunStatus.SUCCEEDED, count, count, count), done.error
    assert [(part.status, part.attempts) for part in parts] == [(RunStatus.SUCCEEDED, 1)] * len(parts)
    # The run's parts were worked on by both pool processes, and the run outlasted what one task may take.
    assert len({part.worker for part in parts}) == 2
    assert done.started_at and done.finished_at
    assert (done.finished_at - done.started_at).total_seconds() > SOFT_LIMIT
    # Every record written once: the ERP counted one write per name, and the log has one entry per record.
    assert store.writes() - writes_before == count
    written = SyncLogEntry.objects.filter(run=run, outcome=LogOutcome.WRITTEN)
    assert sorted(written.values_list("link_id", flat=True)) == sorted(link.pk for link in links)
    assert last_name == f"Ny {links[-1].company_id} AB"
