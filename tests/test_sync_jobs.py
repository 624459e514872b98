"""Sync now as a job: a real worker on Redis runs it against the real Demo ERP; one run per link at a time."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from connections import services
from connections.models import ErpConnection, SyncRun

from .conftest import (
    REDIS_TEST_URL,
    Connector,
    RunningConnector,
    database_url,
    port_open,
    require_service,
    use_broker,
    venv_bin,
    wait_for,
)
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, new_customer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(start_process: Any, settings: Any) -> Any:
    """A real Celery worker on Redis; this test process sends its tasks to the same Redis."""
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    settings.CELERY_BROKER_URL = REDIS_TEST_URL
    restore = use_broker(REDIS_TEST_URL)
    process = start_process(
        [
            venv_bin("celery"),
            "-A",
            "erpsync_admin",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=INFO",
            "--hostname=sync-test@%h",
            "--without-mingle",
            "--without-gossip",
            "--queues=celery",
        ],
        env={"DATABASE_URL": database_url(), "CELERY_BROKER_URL": REDIS_TEST_URL, "ERPSYNC_RUN_LEASE_SECONDS": "2"},
        name="worker",
    )
    yield process
    restore()


def finished(run_id: int) -> SyncRun | None:
    run = SyncRun.objects.get(pk=run_id)
    return run if run.status not in ("queued", "running") else None


def test_sync_now_runs_on_a_worker_and_reaches_the_erp(
    worker: Any, demo_connector: RunningConnector, client: Any
) -> None:
    connection = active_connection(demo_connector)
    actor = new_customer(demo_connector, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    change_in_erp(demo_connector, connection, actor.key or "", PHONE="+46 from the ERP")
    user = UserFactory.create(username="anna", perms=["connections.use_erp_sync"])
    client.force_login(user)
    response = client.post(reverse("erp:sync-now", args=[link.pk]))
    assert response.status_code == 202, response.content
    run_id = response.json()["run"]
    try:
        run = wait_for(lambda: finished(run_id), 60, "the run to finish")
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None
    assert run.status == "succeeded" and run.changed == 1 and run.progress == 100
    record.refresh_from_db()
    assert record.phone == "+46 from the ERP"
    status = client.get(reverse("erp:run", args=[run_id])).json()
    assert status["status"] == "succeeded" and status["status_text"] == "Succeeded"


def test_twenty_sync_now_at_once_make_one_run(demo_erp: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = active_connection(demo_erp)
    actor = new_customer(demo_erp, connection)
    link = services.link_record(connection, "Customer", actor.key or "", company(), None)
    sent: list[int] = []
    monkeypatch.setattr(services, "_send_run", sent.append)  # count the tasks that would be sent
    results: list[tuple[int, bool]] = []
    barrier = threading.Barrier(20)

    def press() -> None:
        barrier.wait()
        try:
            run, created = services.start_sync_now(link, None)
            results.append((run.pk, created))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=press) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 20
    assert len({run_id for run_id, _created in results}) == 1
    assert sum(created for _run_id, created in results) == 1 and len(sent) == 1
    assert SyncRun.objects.filter(link=link).count() == 1


def test_sync_now_is_refused_for_an_inactive_connection_and_rechecked_in_the_worker(
    demo_erp: Connector, client: Any
) -> None:
    connection = active_connection(demo_erp)
    actor = new_customer(demo_erp, connection)
    link = services.link_record(connection, "Customer", actor.key or "", company(), None)
    user = UserFactory.create(username="anna", perms=["connections.use_erp_sync"])
    client.force_login(user)
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=False)
    refused = client.post(reverse("erp:sync-now", args=[link.pk]))
    assert refused.status_code == 409 and refused.json()["error"] == "Demo ERP – Sweden is not active."
    # Queued while active, deactivated before the worker got to it: the worker refuses it too.
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=True)
    from connections import jobs

    run = SyncRun.objects.create(connection=connection, link=link, kind="sync_now", total=1)
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=False)
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == "failed" and run.error == "Demo ERP – Sweden is not active."
    jobs.run_sync.apply(kwargs={"run_id": run.pk})  # a duplicate delivery does nothing
    assert SyncRun.objects.get(pk=run.pk).attempts == 1


def test_links_of_hidden_connections_cannot_be_synced_or_watched(demo_erp: Connector, client: Any) -> None:
    connection = active_connection(demo_erp)
    ErpConnection.objects.filter(pk=connection.pk).update(visibility="specified")
    actor = new_customer(demo_erp, connection)
    link = services.link_record(connection, "Customer", actor.key or "", company(), None)
    run = SyncRun.objects.create(connection=connection, link=link, kind="sync_now", total=1)
    client.force_login(UserFactory.create(username="erik", perms=["connections.use_erp_sync"]))
    assert client.post(reverse("erp:sync-now", args=[link.pk])).status_code == 404
    assert client.get(reverse("erp:run", args=[run.pk])).status_code == 404
    client.logout()
    assert client.post(reverse("erp:sync-now", args=[link.pk])).status_code == 302


def test_a_worker_killed_mid_run_is_recovered_by_the_sweeper(
    worker: Any, start_process: Any, demo_connector: RunningConnector, settings: Any
) -> None:
    """The first worker dies inside GetActors (a slow connector); the sweeper sends the run again and a second
    worker finishes it: the record is synced once, completely."""
    import os
    import signal
    import time

    import httpx

    from connections import jobs

    from .connectors.servers import serving

    def slow_proxy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ["PATH_INFO"] == "/v1/get-actors":
            time.sleep(4)
        headers = {
            k: environ[f"HTTP_{k.upper().replace('-', '_')}"]
            for k in ("X-Erpsync-Timestamp", "X-Erpsync-Nonce", "X-Erpsync-Signature")
        }
        answer = httpx.post(
            demo_connector.url + environ["PATH_INFO"],
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        start_response(f"{answer.status_code} OK", [("Content-Type", "application/json")])
        return [answer.content]

    with serving(slow_proxy, threads=8) as proxy_url:
        connection = active_connection(demo_connector)
        actor = new_customer(demo_connector, connection, PHONE="+46 1")
        record = company(phone="+46 1")
        link = services.link_record(connection, "Customer", actor.key or "", record, None)
        change_in_erp(demo_connector, connection, actor.key or "", PHONE="+46 after the crash")
        type(connection.connector).objects.filter(pk=connection.connector_id).update(url=proxy_url)
        run, _created = services.start_sync_now(link, None)
        wait_for(lambda: SyncRun.objects.get(pk=run.pk).status == "running", 30, "the first worker to start the run")
        time.sleep(1)
        os.killpg(worker.popen.pid, signal.SIGKILL)  # the worker dies inside GetActors
        worker.popen.wait(10)
        assert SyncRun.objects.get(pk=run.pk).status == "running"
        second = start_process(
            [
                venv_bin("celery"),
                "-A",
                "erpsync_admin",
                "worker",
                "--pool=threads",
                "--concurrency=2",
                "--hostname=sync-test-2@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            env={"DATABASE_URL": database_url(), "CELERY_BROKER_URL": REDIS_TEST_URL},
            name="worker2",
        )
        # The dead worker's lease (2 s here) runs out, and beat's sweeper takes the run back.
        wait_for(lambda: jobs.sweep_stuck_runs() == [run.pk], 10, "the run's lease to run out", interval=0.5)
        try:
            done = wait_for(lambda: finished(run.pk), 60, "the second worker to finish the run")
        except AssertionError:
            raise AssertionError(second.output()[-3000:]) from None
    assert done.status == "succeeded" and done.attempts == 2
    record.refresh_from_db()
    assert record.phone == "+46 after the crash"
    assert SyncRun.objects.filter(link=link).count() == 1
