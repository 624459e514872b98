"""Many hands at once: twenty presses of Sync now on one link, and automatic sync against an import."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections import importing, jobs
from connections.choices import RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, SyncRun, SyncSettings
from connectors import protocol as p
from crm.models import Company

from ..conftest import STOP_GRACE, RunningConnector
from ..factories import UserFactory
from ..sync_helpers import erp
from .conftest import scenario_for, start_worker, wait_until_ended

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_users_pressing_sync_now_on_one_link_make_one_run_and_one_change(
    worker: Any, demo_connector: RunningConnector
) -> None:
    scenario = scenario_for(demo_connector, demo_connector.url, count=1)
    scenario.change_both_sides("twenty")
    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    [link] = scenario.links
    clients = []
    for i in range(20):
        client = Client()
        client.force_login(UserFactory.create(username=f"user{i}", perms=["connections.use_erp_sync"]))
        clients.append(client)
    answers: list[tuple[int, dict[str, Any]]] = []
    barrier = threading.Barrier(20)

    def press(client: Client) -> None:
        barrier.wait()
        try:
            response = client.post(reverse("erp:sync-now", args=[link.pk]))
            answers.append((response.status_code, response.json()))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=press, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 20
    assert {status for status, _answer in answers} <= {200, 202}
    # Every press is answered with the run of the link: the one it made (202) or the one already queued or
    # running (200). A press that comes after the run has finished makes a new one, never one beside it.
    runs = SyncRun.objects.filter(link=link).order_by("pk")
    assert [status for status, _answer in answers].count(202) == runs.count()
    assert {answer["run"] for _status, answer in answers} == set(runs.values_list("pk", flat=True))
    for run in runs:
        assert wait_until_ended(run, worker).status == RunStatus.SUCCEEDED
    ended = list(runs.all())
    for earlier, later in itertools.pairwise(ended):
        assert earlier.finished_at is not None and later.created_at >= earlier.finished_at
    assert [run.changed for run in ended if run.changed] == [2], "one run writes the two changed fields, no other"
    scenario.assert_converged(ended[0])


def test_automatic_sync_and_an_import_never_run_together_on_one_connection(
    redis_queue: str, empty_demo: RunningConnector, import_connection: ErpConnection, tmp_path: Path
) -> None:
    client = erp(empty_demo, import_connection)
    for i in range(30):
        client.create_actor(
            p.Actor(actor_type=p.ActorType.CUSTOMER, values={"NAME": f"Kund {i} AB", "VATNO": f"SE55600{i:05}"})
        )
    settings_row = SyncSettings.load()

    # An automatic run is queued (no worker is running yet): an import cannot start beside it.
    settings_row.automatic_sync = True
    settings_row.save()
    [automatic] = jobs.tick_automatic_sync()
    with pytest.raises(jobs.AlreadyRunning, match="already running an import or a bulk sync"):
        importing.start_preview(import_connection, "Customer", everything=True)

    worker = start_worker(tmp_path / "worker.log")
    try:
        assert wait_until_ended(SyncRun.objects.get(pk=automatic), worker).status == RunStatus.SUCCEEDED

        # Automatic sync off, the plan made, the import queued; automatic sync is turned on again before a
        # worker takes the import, and beat ticks: no automatic run joins the import, and the import refuses.
        settings_row.automatic_sync = False
        settings_row.save()
        erp_import = importing.start_preview(import_connection, "Customer", everything=True, send=False)
        assert erp_import.preview_run is not None
        run_sync.apply(kwargs={"run_id": erp_import.preview_run.pk})
        erp_import.refresh_from_db()
        assert erp_import.rows.count() == 30
        worker.stop(STOP_GRACE)
        imported = importing.start_import(erp_import)
        settings_row.automatic_sync = True
        settings_row.last_automatic_at = None
        settings_row.save()
        assert jobs.tick_automatic_sync() == []  # the connection's bulk slot is the import's
        worker = start_worker(tmp_path / "worker-2.log", name="faults-2")
        refused = wait_until_ended(imported, worker)
        assert refused.status == RunStatus.FAILED and refused.error.startswith("Automatic sync is on for ")
        assert Company.objects.count() == 0 and Link.objects.count() == 0  # nothing half-imported

        # Turned off again, the import is continued and completes; then automatic sync finds nothing to do.
        settings_row.automatic_sync = False
        settings_row.save()
        erp_import.refresh_from_db()
        continued = importing.start_import(erp_import, retry=True)
        assert wait_until_ended(continued, worker).status == RunStatus.SUCCEEDED
        settings_row.automatic_sync = True
        settings_row.save()
        [after] = jobs.tick_automatic_sync(timezone.now() + timedelta(hours=1))
        done = wait_until_ended(SyncRun.objects.get(pk=after), worker)
    finally:
        worker.stop(STOP_GRACE)
    assert done.status == RunStatus.SUCCEEDED and done.kind == RunKind.AUTOMATIC and done.changed == 0
    assert Company.objects.count() == 30
    links = Link.objects.filter(connection=import_connection)
    assert links.count() == 30 and links.values("erp_key").distinct().count() == 30
