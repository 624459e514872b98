"""Change notifications (protocol v1.1, change_notifications) and sync on save, in the CRM.

The endpoint is tried through Django's test client: what it refuses (bad signature, replayed nonce, unknown
connector, oversized body, too many) queues nothing, and a burst of notifications makes one run, plus one after a
run that was going on. A linked record saved makes one Sync now per link however often it is saved, and a save
made by a sync makes none. The end-to-end tests are in test_change_notifications_live.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import jobs, services
from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, NotificationNonce, SyncRun, SyncSettings
from connectors import protocol as p
from crm.models import Company

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, new_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], float]]:
    """The runs whose tasks would be sent to the broker, and after how many seconds."""
    calls: list[tuple[list[int], float]] = []
    monkeypatch.setattr(jobs, "send", lambda run_ids, countdown=0: calls.append((list(run_ids), countdown)))
    return calls


@pytest.fixture
def connection(demo_erp: Connector) -> ErpConnection:
    connection = active_connection(demo_erp)
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True})
    return connection


def path_of(connection: ErpConnection) -> str:
    return reverse("connector-notify", args=[connection.connector_id])


def body_for(*connections: ErpConnection, actor_types: list[str] | None = None) -> bytes:
    changes = [{"connection_id": str(c.guid), "actor_types": actor_types or ["Customer"]} for c in connections]
    return json.dumps({"changes": changes}).encode()


def notify(
    client: Any,
    connection: ErpConnection,
    body: bytes | None = None,
    *,
    secret: str | None = None,
    path: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a notification signed as a connector signs it (``secret``: another secret; ``headers``: replaced)."""
    path = path or path_of(connection)
    body = body_for(connection) if body is None else body
    signed = p.signed_headers(secret or connection.connector.secret, path, body)
    signed.update(headers or {})
    return client.post(path, data=body, content_type="application/json", headers=signed)


def envelope(response: Any) -> p.Envelope:
    assert response["Content-Type"] == "application/json"
    return p.Envelope.model_validate_json(response.content)


def automatic_runs(connection: ErpConnection) -> list[SyncRun]:
    return list(SyncRun.objects.filter(connection=connection, kind=RunKind.AUTOMATIC))


def test_a_signed_notification_queues_one_automatic_run_after_the_delay(
    client: Any, connection: ErpConnection, sent: list[Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ERPSYNC_CHANGE_SYNC_DELAY = 3
    with django_capture_on_commit_callbacks(execute=True):
        response = notify(client, connection)
    assert response.status_code == 200, response.content
    answer = envelope(response)
    assert answer.ok and answer.state == p.State.OK
    assert p.NotificationData.model_validate(answer.data).accepted == [str(connection.guid)]
    [run] = automatic_runs(connection)
    assert run.status == RunStatus.QUEUED
    assert sent == [([run.pk], 3.0)]


@pytest.mark.parametrize(
    ("case", "status", "code", "says"),
    [
        ("bad signature", 401, "unauthorized", "signature is wrong"),
        ("no signature", 401, "unauthorized", "not signed"),
        ("stale timestamp", 401, "unauthorized", "too old"),
        ("unknown connector", 404, "not_found", "No Sync Connector"),
        ("oversized body", 413, "payload_too_large", "too large"),
        ("not JSON", 400, "invalid_request", "not valid"),
        ("no connection named", 400, "invalid_request", "not valid"),
        ("unknown key id", 401, "unauthorized", "key the CRM does not hold"),
    ],
)
def test_a_bad_notification_is_refused_in_the_envelope_and_queues_nothing(
    client: Any, connection: ErpConnection, sent: list[Any], case: str, status: int, code: str, says: str
) -> None:
    if case == "bad signature":
        response = notify(client, connection, secret="someone-elses-secret-0123")
    elif case == "no signature":
        response = client.post(path_of(connection), data=body_for(connection), content_type="application/json")
    elif case == "stale timestamp":
        body = body_for(connection)
        old = timezone.now().timestamp() - p.SIGNATURE_TOLERANCE_SECONDS - 5
        headers = p.signed_headers(connection.connector.secret, path_of(connection), body, now=old)
        response = client.post(path_of(connection), data=body, content_type="application/json", headers=headers)
    elif case == "unknown connector":
        path = reverse("connector-notify", args=[connection.connector_id + 1000])
        response = notify(client, connection, path=path)
    elif case == "oversized body":
        padding = "x" * p.MAX_NOTIFICATION_BYTES
        response = notify(client, connection, json.dumps({"changes": [], "padding": padding}).encode())
    elif case == "not JSON":
        response = notify(client, connection, b"{not json")
    elif case == "no connection named":
        response = notify(client, connection, b'{"changes": []}')
    else:
        response = notify(client, connection, headers={p.HEADER_KEY_ID: "k9"})
    assert response.status_code == status, response.content
    answer = envelope(response)
    assert not answer.ok and answer.error_code == p.ErrorCode(code)
    assert says in answer.user_explanation["en"] and answer.user_explanation["sv"]
    assert SyncRun.objects.count() == 0 and sent == []


def test_a_replayed_notification_is_refused(
    client: Any, connection: ErpConnection, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    body = body_for(connection)
    headers = p.signed_headers(connection.connector.secret, path_of(connection), body)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(path_of(connection), data=body, content_type="application/json", headers=headers)
        SyncRun.objects.update(status=RunStatus.SUCCEEDED)  # the run it queued has run
        again = client.post(path_of(connection), data=body, content_type="application/json", headers=headers)
    assert first.status_code == 200
    assert again.status_code == 401
    assert envelope(again).user_explanation["en"] == "The notification was already received."
    assert len(automatic_runs(connection)) == 1 and len(sent) == 1
    # The nonce is kept in the database, which every web process shares, for twice the clock tolerance.
    nonce = NotificationNonce.objects.get(nonce=headers[p.HEADER_NONCE])
    assert (nonce.keep_until - nonce.received_at).total_seconds() == p.NONCE_RETENTION_SECONDS


def test_get_is_answered_405_with_allow(client: Any, connection: ErpConnection) -> None:
    response = client.get(path_of(connection))
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert envelope(response).error_code == p.ErrorCode.INVALID_REQUEST


def test_a_connector_over_its_rate_is_answered_429_with_when_to_send_again(
    client: Any, connection: ErpConnection, sent: list[Any], settings: Any
) -> None:
    settings.ERPSYNC_NOTIFY_RATE_LIMIT = 5
    answers = [notify(client, connection).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    refused = notify(client, connection)
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    answer = envelope(refused)
    assert answer.error_code == p.ErrorCode.RATE_LIMITED and answer.retry_after


def test_a_notification_during_key_rotation_is_taken_with_either_key(
    client: Any, connection: ErpConnection, sent: list[Any]
) -> None:
    connector = connection.connector
    connector.set_secret(connector.secret, key_id="k1")
    connector.stage_next_secret("the-next-secret-0123456789", key_id="k2")
    connector.save()
    connection.refresh_from_db()
    assert notify(client, connection, headers={p.HEADER_KEY_ID: "k1"}).status_code == 200
    assert (
        notify(client, connection, secret="the-next-secret-0123456789", headers={p.HEADER_KEY_ID: "k2"}).status_code
        == 200
    )
    refused = notify(client, connection, secret="the-next-secret-0123456789", headers={p.HEADER_KEY_ID: "k1"})
    assert refused.status_code == 401


def test_connections_that_do_not_sync_on_notification_are_named_as_ignored(
    client: Any, connection: ErpConnection, sent: list[Any], demo_erp: Connector
) -> None:
    stranger = '{"changes": [{"connection_id": "0f6a3a55-2c1e-4a8e-9a5e-7d0c3b1e9f20"}]}'
    answer = envelope(notify(client, connection, stranger.encode()))
    assert answer.ok and answer.state == p.State.OK_WITH_INFO
    data = p.NotificationData.model_validate(answer.data)
    assert data.accepted == [] and [i.reason for i in data.ignored] == [p.IgnoreReason.UNKNOWN_CONNECTION]

    data = p.NotificationData.model_validate(
        envelope(notify(client, connection, body_for(connection, actor_types=["Project"]))).data
    )
    assert [i.reason for i in data.ignored] == [p.IgnoreReason.NOT_SYNCED]  # only Customers sync here

    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    data = p.NotificationData.model_validate(envelope(notify(client, connection)).data)
    assert [i.reason for i in data.ignored] == [p.IgnoreReason.AUTOMATIC_SYNC_OFF]

    SyncSettings.objects.filter(pk=1).update(automatic_sync=True)
    services.save_connection_automatic_sync(connection, False, None, None)  # paused on the connection
    data = p.NotificationData.model_validate(envelope(notify(client, connection)).data)
    assert [i.reason for i in data.ignored] == [p.IgnoreReason.AUTOMATIC_SYNC_OFF]
    services.save_connection_automatic_sync(connection, True, None, None)

    services.set_active(connection, False, None)
    data = p.NotificationData.model_validate(envelope(notify(client, connection)).data)
    assert [i.reason for i in data.ignored] == [p.IgnoreReason.INACTIVE]
    assert SyncRun.objects.count() == 0 and sent == []


def test_a_burst_of_a_thousand_notifications_makes_one_run_and_one_more_after_a_run_going_on(
    client: Any, connection: ErpConnection, sent: list[Any], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ERPSYNC_NOTIFY_RATE_LIMIT = 10_000
    statuses = set()
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(1000):
            if number == 500:
                # Halfway through, a worker takes the run: what comes after may not have been read by it.
                [run] = automatic_runs(connection)
                assert jobs.claim(run.pk)
            statuses.add(notify(client, connection).status_code)
    assert statuses == {200}
    [run] = automatic_runs(connection)
    assert run.status == RunStatus.RUNNING and run.again
    assert len(sent) == 1
    # The run ends: one more is queued for the notifications that came while it ran, and no other.
    with django_capture_on_commit_callbacks(execute=True):
        jobs.finish(run.pk, RunStatus.SUCCEEDED, attempt=run.attempts + 1)
        jobs.finish(run.pk, RunStatus.SUCCEEDED)
    runs = automatic_runs(connection)
    assert len(runs) == 2 and len(sent) == 2
    follower = next(r for r in runs if r.pk != run.pk)
    assert follower.status == RunStatus.QUEUED and not follower.again


def test_ten_saves_of_a_linked_company_in_a_second_make_one_sync_now(
    connection: ErpConnection, demo_erp: Connector, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    actor = new_customer(demo_erp, connection)
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(10):
            record.phone = f"+46 {number}"
            record.save()
    [run] = SyncRun.objects.filter(link=link)
    assert run.kind == RunKind.SYNC_NOW and run.created_by is None
    assert len(sent) == 1
    # A save while it runs makes one more, after it.
    assert jobs.claim(run.pk)
    with django_capture_on_commit_callbacks(execute=True):
        record.save()
        record.save()
        jobs.finish(run.pk, RunStatus.SUCCEEDED)
    assert SyncRun.objects.filter(link=link).count() == 2 and len(sent) == 2


def test_saving_through_the_edit_form_syncs_the_links_and_nothing_when_automatic_sync_is_off(
    connection: ErpConnection,
    demo_erp: Connector,
    sent: list[Any],
    client: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    actor = new_customer(demo_erp, connection)
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    user = UserFactory.create(username="anna", perms=["crm.view_company", "crm.change_company"])
    client.force_login(user)
    url = reverse("crm:company-edit", args=[record.pk])
    data = {
        bound.name: "" if bound.value() is None else str(bound.value()) for bound in client.get(url).context["form"]
    }
    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {**data, "phone": "+46 off"}).status_code == 302
    assert not SyncRun.objects.filter(link=link).exists()
    SyncSettings.objects.filter(pk=1).update(automatic_sync=True)
    settings.ERPSYNC_SYNC_ON_SAVE = False  # ops turned it off: saved records wait for the next round
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {**data, "phone": "+46 ops"}).status_code == 302
    assert not SyncRun.objects.filter(link=link).exists()
    settings.ERPSYNC_SYNC_ON_SAVE = True
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {**data, "phone": "+46 on"}).status_code == 302
    assert SyncRun.objects.filter(link=link, kind=RunKind.SYNC_NOW).count() == 1


def test_a_save_made_by_a_sync_starts_no_sync(
    connection: ErpConnection, demo_erp: Connector, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    actor = new_customer(demo_erp, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 from the ERP")
    run, _created = services.start_sync_now(link, None)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.run_sync.apply(kwargs={"run_id": run.pk})
        with jobs.running_a_run():  # a run's own save, as an import or a sync would make it
            Company.objects.get(pk=record.pk).save()
    run.refresh_from_db()
    record.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and record.phone == "+46 from the ERP"
    assert list(SyncRun.objects.filter(link=link)) == [run]
    assert sent == []
