"""What becomes of a run that meets a database error: only a lost connection is called one and tried again; any
other error fails the run at once, in the database's own words."""

from __future__ import annotations

from typing import Any

import pytest
from django import db
from django.db import transaction

from connections import jobs
from connections.choices import RunKind, RunStatus
from connections.jobs import Counts
from connections.models import SyncRun

from .factories import SyncRunFactory

# The connection is closed by the outcome of a lost one: each test needs its own transactions, not a wrapped one.
pytestmark = pytest.mark.django_db(transaction=True)


def run_raising(monkeypatch: pytest.MonkeyPatch, perform: Any) -> SyncRun:
    """A Sync all whose work is ``perform``, run as the worker runs it, retries included."""
    monkeypatch.setitem(jobs._performers, RunKind.SYNC_ALL, perform)
    run = SyncRunFactory.create()
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    return run


def test_a_query_the_database_refuses_fails_the_run_at_once_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(run: SyncRun) -> Counts:
        with transaction.atomic(), db.connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
        return Counts()

    run = run_raising(monkeypatch, refused)
    assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
    assert run.error.startswith("A database error stopped the run: ") and "no_such_table" in run.error
    assert "connection" not in run.error


class ServerGone(Exception):
    """What the driver raises when the server ends the session (psycopg's AdminShutdown carries this state)."""

    sqlstate = "57P01"


def test_a_lost_connection_is_tried_again_and_then_fails_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def lost(run: SyncRun) -> Counts:
        raise db.OperationalError("terminating connection due to administrator command") from ServerGone()

    run = run_raising(monkeypatch, lost)
    assert (run.status, run.attempts) == (RunStatus.FAILED, jobs.MAX_RETRIES + 1)
    assert run.error == "The database connection was lost; the worker's log has the details."
