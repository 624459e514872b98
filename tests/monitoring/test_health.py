"""Liveness and readiness against the real database, broker and connectors on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu import Connection

from connections.models import WorkerHeartbeat

from ..conftest import REDIS_TEST_URL, free_port, port_open, require_service
from ..connectors.servers import hold, serving
from ..factories import UserFactory
from .conftest import CONNECTOR_SECRET, OUTSIDE, TOKEN, connector_with_active_connection, sample, scrape

pytestmark = pytest.mark.django_db
READY = "/health/ready/"


def heartbeat(seconds_ago: float, hostname: str = "celery@worker-1") -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(hostname=hostname, last_seen=timezone.now() - timedelta(seconds=seconds_ago))


def checks(response: Any, key: str) -> list[dict[str, Any]]:
    return list(response.json()["checks"][key])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that takes connections and never says a word: a hung broker."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


# Liveness


def test_liveness_answers_without_login_and_without_reading_the_database(
    client: Client, django_assert_num_queries: Any
) -> None:
    assert reverse("health") == "/health/"
    with django_assert_num_queries(0):
        response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


# Readiness: database, broker, workers


def test_ready_when_the_database_the_broker_and_a_worker_are_fine(client: Client, monitoring: Any) -> None:
    heartbeat(10)
    response = client.get(READY)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "pass"
    assert set(body["checks"]) == {"database:responseTime", "broker:responseTime", "workers:heartbeat"}
    [database] = checks(response, "database:responseTime")
    assert database["status"] == "pass" and database["componentType"] == "datastore"
    assert database["observedUnit"] == "ms" and database["observedValue"] >= 0
    [broker] = checks(response, "broker:responseTime")
    assert broker["status"] == "pass" and broker["output"].endswith("waiting")
    [worker] = checks(response, "workers:heartbeat")
    assert worker["componentId"] == "celery@worker-1" and worker["observedUnit"] == "s"
    assert 9 <= worker["observedValue"] <= 30
    assert worker["time"].endswith("Z")


def test_a_worker_counts_as_gone_after_three_heartbeat_intervals_as_on_the_sync_tab(
    client: Client, monitoring: Any
) -> None:
    monitoring.ERPSYNC_HEARTBEAT_SECONDS = 40  # three intervals: 120 s
    row = heartbeat(110)
    assert client.get(READY).status_code == 200
    WorkerHeartbeat.objects.filter(pk=row.pk).update(last_seen=timezone.now() - timedelta(seconds=125))
    response = client.get(READY)
    assert response.status_code == 503 and response.json()["status"] == "fail"
    [worker] = checks(response, "workers:heartbeat")
    assert worker["status"] == "fail" and worker["componentId"] == "celery@worker-1"
    assert "No worker has reported for 12" in worker["output"] and "after 120 s" in worker["output"]


def test_not_ready_before_any_worker_has_reported(client: Client, monitoring: Any) -> None:
    response = client.get(READY)
    assert response.status_code == 503
    [worker] = checks(response, "workers:heartbeat")
    assert worker["output"].startswith("No worker has ever reported")


def test_only_the_workers_still_reporting_are_listed(client: Client, monitoring: Any) -> None:
    heartbeat(5, "celery@a")
    heartbeat(3600, "celery@gone")
    heartbeat(20, "celery@b")
    response = client.get(READY)
    assert response.status_code == 200
    assert [w["componentId"] for w in checks(response, "workers:heartbeat")] == ["celery@a", "celery@b"]


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_the_broker_is_reached_for_real_on_redis_and_on_the_embedded_broker(
    client: Client, monitoring: Any, broker: str, tmp_path: Any
) -> None:
    if broker == "redis":
        require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
        monitoring.CELERY_BROKER_URL = REDIS_TEST_URL
    else:
        monitoring.CELERY_BROKER_URL = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
        with Connection(monitoring.CELERY_BROKER_URL) as conn:  # two jobs no worker has taken yet
            queue = conn.SimpleQueue("celery")
            queue.put({"job": 1})
            queue.put({"job": 2})
            queue.close()
    heartbeat(1)
    response = client.get(READY)
    assert response.status_code == 200, response.json()
    [check] = checks(response, "broker:responseTime")
    assert check["status"] == "pass" and check["observedUnit"] == "ms"
    if broker == "embedded":
        assert check["output"] == "2 messages waiting"


def test_not_ready_when_nothing_answers_at_the_broker_and_its_password_is_not_shown(
    client: Client, monitoring: Any
) -> None:
    monitoring.CELERY_BROKER_URL = f"redis://:broker-password-9d2e@127.0.0.1:{free_port()}/0"
    heartbeat(1)
    response = client.get(READY)
    assert response.status_code == 503 and response.json()["status"] == "fail"
    [check] = checks(response, "broker:responseTime")
    assert check["status"] == "fail" and check["output"].startswith("The broker cannot be reached:")
    assert "broker-password-9d2e" not in response.content.decode()


def test_a_hung_broker_costs_the_answer_about_two_seconds(
    client: Client, monitoring: Any, silent_listener: int
) -> None:
    monitoring.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_listener}/0"
    heartbeat(1)
    started = time.monotonic()
    response = client.get(READY)
    assert time.monotonic() - started < 3.5
    assert response.status_code == 503
    [check] = checks(response, "broker:responseTime")
    assert check["status"] == "fail"


def test_the_embedded_broker_in_a_directory_that_does_not_exist_is_not_ready(
    client: Client, monitoring: Any, tmp_path: Any
) -> None:
    monitoring.CELERY_BROKER_URL = f"sqla+sqlite:///{tmp_path / 'missing' / 'broker.sqlite3'}"
    heartbeat(1)
    response = client.get(READY)
    assert response.status_code == 503
    assert checks(response, "broker:responseTime")[0]["output"].startswith("The broker cannot be reached:")


# Readiness: connectors, reported apart


def test_each_active_connector_is_called_and_reported_apart(client: Client, monitoring: Any, address_book: str) -> None:
    heartbeat(1)
    connector_with_active_connection("Address Book", address_book)
    connector_with_active_connection("Stopped ERP", f"http://127.0.0.1:{free_port()}")
    connector_with_active_connection("Wrong secret", address_book, secret="not-the-connector-secret")
    connector_with_active_connection("Inactive", f"http://127.0.0.1:{free_port()}", active=False)
    lost_key = connector_with_active_connection("Lost key", address_book)
    lost_key.secret_encrypted = Fernet(Fernet.generate_key()).encrypt(b"a secret saved with another key").decode()
    lost_key.save()
    before = scrape(client)
    response = client.get(READY)
    assert response.status_code == 200  # connectors never make the service unready
    assert response.json()["status"] == "warn"
    found = {c["componentId"]: c for c in checks(response, "connectors:reachability")}
    assert set(found) == {"Address Book", "Stopped ERP", "Wrong secret", "Lost key"}
    assert found["Address Book"]["status"] == "pass"
    assert found["Stopped ERP"]["status"] == "warn"
    assert found["Stopped ERP"]["output"].startswith("Nothing answers at this address.")
    assert found["Wrong secret"]["status"] == "warn"
    assert found["Wrong secret"]["output"] == "The connector refused the shared secret."
    assert found["Lost key"]["status"] == "warn"
    assert found["Lost key"]["output"].startswith("Its shared secret cannot be decrypted with ERPSYNC_FERNET_KEYS")
    after = scrape(client)
    # One GetConfigData per active connector, counted like every other connector call.
    calls = "erpsync_connector_call_duration_seconds_count"
    assert sample(after, calls, operation="GetConfigData") - sample(before, calls, operation="GetConfigData") == 3
    assert CONNECTOR_SECRET not in response.content.decode()


def test_hanging_connectors_are_checked_at_the_same_time_each_within_two_seconds(
    client: Client, monitoring: Any
) -> None:
    def hang(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        hold(environ, 3)  # past the two seconds readiness waits
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    heartbeat(1)
    with serving(hang, threads=8) as url:
        for number in range(3):
            connector_with_active_connection(f"Slow ERP {number}", url)
        started = time.monotonic()
        response = client.get(READY)
        elapsed = time.monotonic() - started
    assert elapsed < 3.5, elapsed
    assert response.status_code == 200 and response.json()["status"] == "warn"
    found = checks(response, "connectors:reachability")
    assert len(found) == 3 and {c["status"] for c in found} == {"warn"}
    # The client's own timeout, or the readiness bound when a thread was not even done by then.
    assert {c["output"] for c in found} <= {
        "The connector did not answer in time.",
        "The connector did not answer within 2 s.",
    }


# Who sees what


def test_anyone_else_gets_the_status_alone_and_no_connector_is_called(
    client: Client, monitoring: Any, address_book: str
) -> None:
    heartbeat(1)
    connector_with_active_connection("Stopped ERP", f"http://127.0.0.1:{free_port()}")
    before = scrape(client)
    response = client.get(READY, REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 200 and response.json() == {"status": "pass"}
    licensed = UserFactory.create(username="anna", perms=["connections.use_erp_sync"])
    client.force_login(licensed)
    assert client.get(READY, REMOTE_ADDR=OUTSIDE).json() == {"status": "pass"}
    errors = "erpsync_connector_call_errors_total"
    assert sample(scrape(client), errors, operation="GetConfigData", error="unreachable") == sample(
        before, errors, operation="GetConfigData", error="unreachable"
    )


def test_not_ready_shows_fail_to_anyone_without_saying_why(client: Client, monitoring: Any) -> None:
    response = client.get(READY, REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 503 and response.json() == {"status": "fail"}


@pytest.mark.parametrize("who", ["superuser", "erp admin", "token"])
def test_admins_and_holders_of_the_token_see_the_detail_from_anywhere(
    client: Client, monitoring: Any, address_book: str, who: str
) -> None:
    heartbeat(1)
    connector_with_active_connection("Address Book", address_book)
    headers: dict[str, Any] = {}
    if who == "superuser":
        client.force_login(UserFactory.create(username="ada", is_superuser=True))
    elif who == "erp admin":
        client.force_login(UserFactory.create(username="erpadmin", perms=["connections.manage_erp_sync"]))
    else:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    body = client.get(READY, REMOTE_ADDR=OUTSIDE, **headers).json()
    assert body["status"] == "pass"
    assert [c["componentId"] for c in body["checks"]["connectors:reachability"]] == ["Address Book"]


def test_the_detail_is_written_in_the_language_asked_for(client: Client, monitoring: Any) -> None:
    response = client.get(READY, HTTP_ACCEPT_LANGUAGE="sv")
    [worker] = checks(response, "workers:heartbeat")
    assert worker["output"].startswith("Ingen arbetare har någonsin rapporterat")
