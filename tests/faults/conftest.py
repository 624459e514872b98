"""The fault-injection suite's processes: a real Celery worker on Redis, and a misbehaving connector on loopback.

Every test here ends by comparing both sides with the state they must reach: the CRM's records and the ERP's
actors, read directly from the Demo ERP, not through the proxy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connections import services
from connections.choices import LinkStatus, LogOutcome, RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncLogEntry, SyncRun, SyncSettings
from connections.tasks import run_sync
from crm.models import Company

from ..conftest import (
    REDIS_TEST_URL,
    ROOT,
    Process,
    RunningConnector,
    database_url,
    free_port,
    port_open,
    require_service,
    venv_bin,
    wait_for,
)
from ..sync_helpers import active_connection, change_in_erp, erp_values, new_customer
from .proxy import FaultyConnector

# What the worker is started with: short timeouts and retries, so that a fault and its recovery take seconds.
WORKER_SETTINGS = {"ERPSYNC_JOB_TIMEOUT": "2", "ERPSYNC_RETRY_DELAY": "1"}


def start_worker(log: Path, broker: str = REDIS_TEST_URL, name: str = "faults", pool: str = "threads",
                 **settings: str) -> Process:  # fmt: skip
    return Process(
        [venv_bin("celery"), "-A", "erpsync_admin", "worker", f"--pool={pool}", "--concurrency=4", "--loglevel=INFO",
         f"--hostname={name}@%h", "--without-mingle", "--without-gossip", "--queues=celery"],
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker,
             **WORKER_SETTINGS, **settings},
        cwd=ROOT, log=log,
    )  # fmt: skip


def use_broker(url: str) -> Callable[[], None]:
    """Send this process's tasks to ``url``; returns the function that puts the previous broker back."""
    from erpsync_admin.celery import app

    def switch(to: str, options: dict[str, Any], environ: str | None) -> None:
        # The connection and producer pools were built for the previous broker: new ones are made on next use.
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None  # type: ignore[attr-defined]
        app.conf.update(broker_url=to, broker_transport_options=options)
        # Celery prefers the environment's CELERY_BROKER_URL to its configuration.
        if environ is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = environ

    previous, previous_environ = app.conf.broker_url, os.environ.get("CELERY_BROKER_URL")
    switch(url, {"visibility_timeout": 3600}, url)
    return lambda: switch(previous, {}, previous_environ)


@pytest.fixture
def redis_queue() -> Iterator[str]:
    """Redis database 15, emptied: nothing a previous test left queued is delivered here."""
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    restore = use_broker(REDIS_TEST_URL)
    yield REDIS_TEST_URL
    restore()


@pytest.fixture
def worker(redis_queue: str, tmp_path: Path, settings: Any) -> Iterator[Process]:
    settings.ERPSYNC_JOB_TIMEOUT = int(WORKER_SETTINGS["ERPSYNC_JOB_TIMEOUT"])
    process = start_worker(tmp_path / "worker.log")
    yield process
    process.stop()


@pytest.fixture
def faulty(demo_connector: RunningConnector) -> Iterator[FaultyConnector]:
    proxy = FaultyConnector(demo_connector.url, free_port())
    proxy.start()
    yield proxy
    proxy.close()


@dataclass
class Scenario:
    """Three CRM companies linked to three Demo ERP customers and in step; then each side changes one field:
    the ERP the phone, the CRM the name. Both must end with both changes, each applied and logged once."""

    demo: RunningConnector
    connection: ErpConnection
    links: list[Link]
    names: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)

    def change_both_sides(self, tag: str) -> None:
        self.names = [f"Bygg {i} {tag} AB" for i in range(len(self.links))]
        self.phones = [f"+46 8 {i}{i}{i} {tag}" for i in range(len(self.links))]
        for link, name, phone in zip(self.links, self.names, self.phones, strict=True):
            change_in_erp(self.demo, self.connection, link.erp_key, PHONE=phone)
            record = Company.objects.get(pk=link.company_id or 0)
            record.name = name
            record.save()

    def automatic_run(self) -> SyncRun:
        """Queue an automatic run of the connection, as beat's tick does, and send it to the worker."""
        from connections import jobs

        run = SyncRun.objects.create(connection=self.connection, kind=RunKind.AUTOMATIC)
        jobs.send([run.pk])
        return run

    def assert_converged(self, log_since: SyncRun, name_sent_unheard: bool = False) -> None:
        """Both sides hold both changes; each change was written and logged exactly once; no link was added.

        ``name_sent_unheard``: the ERP applied the name but its answer was lost, so the next run finds the two
        sides agreeing and has nothing to write (or log) for it; it is never logged twice."""
        assert Link.objects.filter(connection=self.connection).count() == len(self.links)
        assert Company.objects.filter(pk__in=[link.company_id for link in self.links]).count() == len(self.links)
        for link, name, phone in zip(self.links, self.names, self.phones, strict=True):
            record = Company.objects.get(pk=link.company_id or 0)
            assert (record.name, record.phone) == (name, phone)
            values = erp_values(self.demo, self.connection, link.erp_key)
            assert (values["NAME"], values["PHONE"]) == (name, phone)
            assert Link.objects.get(pk=link.pk).status == LinkStatus.OK
            written = SyncLogEntry.objects.filter(link=link, outcome=LogOutcome.WRITTEN, run_id__gte=log_since.pk)
            fields = sorted(written.values_list("field_key", flat=True))
            expected = [["PHONE"], ["NAME", "PHONE"]] if name_sent_unheard else [["NAME", "PHONE"]]
            assert fields in expected, list(written.values())


def scenario_for(demo: RunningConnector, url: str, count: int = 3) -> Scenario:
    """The connection (through ``url``), its links, a first Sync all and a first automatic run, all in step."""
    connection = active_connection(demo)
    type(connection.connector).objects.filter(pk=connection.connector_id).update(url=url)
    connection.refresh_from_db()
    links = []
    for i in range(count):
        actor = new_customer(demo, connection, NAME=f"Bygg {i} AB", PHONE=f"+46 8 {i}")
        record = Company.objects.create(name=f"Bygg {i} AB", phone=f"+46 8 {i}")
        links.append(services.link_record(connection, "Customer", actor.key or "", record, None))
    for kind in (RunKind.SYNC_ALL, RunKind.AUTOMATIC):  # in step, and the change feed's cursor saved
        run = SyncRun.objects.create(connection=connection, kind=kind)
        run_sync.apply(kwargs={"run_id": run.pk})
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error
    settings_row = SyncSettings.load()
    settings_row.automatic_sync = True
    settings_row.save()
    return Scenario(demo, connection, links)


def ended(run: SyncRun) -> SyncRun | None:
    run.refresh_from_db()
    return run if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING) else None


def wait_until_ended(run: SyncRun, worker: Process, seconds: float = 60) -> SyncRun:
    try:
        return wait_for(lambda: ended(run), seconds, f"run {run.pk} to end")
    except AssertionError:
        raise AssertionError(worker.output()[-4000:]) from None
