"""The ERP tab's search asks the connector for every actor type at once, and shows what it did one type at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.signals import connection_created

from connections import linking, services
from connectors import client as client_module
from connectors.client import ConnectorError
from connectors.models import SyncConnector

from .conftest import Connector, start_demo
from .sync_helpers import company, saved_connection

pytestmark = pytest.mark.django_db
# Every actor type Demo ERP has. A company's page offers the organisations among them; the search takes any list.
ALL_TYPES = ["Customer", "Supplier", "Person", "Project"]
LATENCY = 1.0  # seconds a call, as the slow Demo ERP process answers


def one_type_at_a_time(connection: Any, record: Any) -> linking.SearchResult:
    """The search as it was: each actor type searched after the one before it."""
    whole = linking.SearchResult()
    for actor_type in ALL_TYPES:
        alone = linking.search(connection, record, [actor_type], "en")
        assert alone.problem is None, alone.problem
        whole.columns, whole.rows = alone.columns, whole.rows + alone.rows
    return whole


def test_four_actor_types_are_searched_at_once_against_a_slow_erp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One Demo ERP store behind two processes: one answering at once, to set the connection up and to search the
    # old way, and one waiting a second before every protocol call, as a real ERP may.
    for directory in ("fast", "slow"):
        (tmp_path / directory).mkdir()
    fast = start_demo(tmp_path / "fast", seed_actors=300)
    slow = start_demo(tmp_path / "slow", seed_actors=0, latency_ms="1000", data=tmp_path / "fast" / "demo-erp.sqlite3")
    try:
        connection = saved_connection(fast, "Demo ERP – Sweden", {})
        record = company(name="Kvarnbygg AB")
        expected = one_type_at_a_time(connection, record)
        assert [t for t in ALL_TYPES if any(row.actor_type == t for row in expected.rows)] == ALL_TYPES
        taken = expected.rows[1]  # an actor linked to another record shows that record in the result
        other = company(name="Granbygg AB")
        services.link_record(connection, taken.actor_type, taken.key, other, None)
        expected.rows[1].linked = other

        SyncConnector.objects.filter(pk=connection.connector_id).update(url=slow.url)
        connection.refresh_from_db()
        calls: list[tuple[str, float, float]] = []  # operation, started, ended

        def record_call(operation: str, seconds: float, error: ConnectorError | None) -> None:
            ended = time.monotonic()
            calls.append((operation, ended - seconds, ended))

        monkeypatch.setattr(client_module, "_observers", [*client_module._observers, record_call])
        database_threads: list[str] = []

        def opened(sender: Any, connection: Any, **kwargs: Any) -> None:
            database_threads.append(threading.current_thread().name)

        connection_created.connect(opened)
        try:
            started = time.monotonic()
            result = linking.search(connection, record, ALL_TYPES, "en")
            took = time.monotonic() - started
        finally:
            connection_created.disconnect(opened)
    finally:
        slow.process.stop()
        fast.process.stop()

    assert result.problem is None, result.problem
    assert result.rows == expected.rows and result.columns == expected.columns
    assert [operation for operation, *_ in calls] == ["SearchActors"] * 4
    # All four were under way at once: the last one started before the first one ended.
    assert max(start for _, start, _ in calls) < min(end for *_, end in calls)
    assert LATENCY <= took < 2 * LATENCY, f"4 searches at {LATENCY:g} s a call took {took:.2f} s"
    assert database_threads == [], "a worker thread opened a database connection"


def test_a_failing_actor_type_gives_the_problem_after_the_rows_of_the_types_before_it(demo_erp: Connector) -> None:
    connection = saved_connection(demo_erp, "Demo ERP – Sweden", {})
    record = company(name="Kvarnbygg AB")
    customers = linking.search(connection, record, ["Customer"], "en")
    # Demo ERP has no partners: its SearchActors for them fails, while the customers and projects are found.
    result = linking.search(connection, record, ["Customer", "Partner", "Project"], "en")
    assert result.rows == customers.rows and customers.rows
    assert result.problem is not None and result.problem.kind == "rejected"
    assert result.problem.message == "Demo ERP has no Partner actors."
