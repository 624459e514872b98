"""Evaluating the conditions: one alert per incident, a recovery notice when it clears, each condition, recipients,
retries, and evaluations running at once. Mail goes to a real SMTP server, webhook posts to a real receiver."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.db import connection as db_connection
from django.utils import timezone

from alerts import services
from alerts.choices import Condition, DeliveryStatus, Event, Resolution
from alerts.models import AlertSettings, Delivery, Incident, Watch
from alerts.tasks import evaluate_alerts
from connections import services as connection_services
from connections.choices import LinkStatus, RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncRun, WorkerHeartbeat
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp

from ..connectors.servers import serving
from ..connectors.tiny_connector import AddressBook
from ..factories import CompanyFactory
from .conftest import MailServer, WebhookReceiver, make_connection, watch_only

pytestmark = pytest.mark.django_db


def finished_run(connection: ErpConnection, status: str, kind: str = RunKind.AUTOMATIC, **values: Any) -> SyncRun:
    now = timezone.now()
    return SyncRun.objects.create(
        connection=connection, kind=kind, status=status, started_at=now, finished_at=now, **values
    )


def failed_links(connection: ErpConnection, count: int, **values: Any) -> None:
    for number in range(count):
        Link.objects.create(
            connection=connection,
            actor_type="Customer",
            erp_key=f"K{connection.pk}-{number}",
            company=CompanyFactory.create(),
            status=LinkStatus.FAILED,
            last_error="NAME: too long",
            **values,
        )


def test_a_failed_automatic_run_alerts_once_and_its_recovery_is_noticed_once(
    mail_server: MailServer, webhook: WebhookReceiver
) -> None:
    watch_only(Condition.RUN_FAILED, webhook_url=webhook.url)
    connection = make_connection()
    finished_run(connection, RunStatus.FAILED, error="GetActors: the connector did not answer in time")

    first = services.evaluate()
    assert [i.key for i in first.opened] == [f"run_failed:{connection.pk}:automatic"] and first.sent == 2
    [mail] = mail_server.received
    assert mail.recipients == ["ops@example.com"] and mail.sender == "erpsync@crm.example.com"
    assert mail.subject == "[erpsync] Problem: Automatic sync of Demo ERP – Sweden failed"
    assert "Reason: GetActors: the connector did not answer in time" in mail.body
    [text] = webhook.texts()
    assert text.startswith("[erpsync] Problem: Automatic sync of Demo ERP – Sweden failed\n")
    assert webhook.posts[0]["_content_type"] == "application/json"

    # Still failing, and failing again: the same incident, nothing sent again.
    services.evaluate()
    finished_run(connection, RunStatus.FAILED, error="again")
    services.evaluate()
    assert len(mail_server.received) == 1 and len(webhook.posts) == 1
    assert Incident.objects.count() == 1

    finished_run(connection, RunStatus.SUCCEEDED)
    recovered = services.evaluate()
    assert len(recovered.resolved) == 1 and recovered.sent == 2
    incident = Incident.objects.get()
    assert incident.resolved_at is not None and incident.resolution == Resolution.CLEARED
    assert mail_server.received[1].subject == "[erpsync] Resolved: Automatic sync of Demo ERP – Sweden failed"
    assert "The condition cleared." in mail_server.received[1].body
    assert webhook.texts()[1].startswith("[erpsync] Resolved: ")
    services.evaluate()
    assert len(mail_server.received) == 2 and len(webhook.posts) == 2


def test_a_partially_failed_sync_all_is_an_incident_of_its_own_kind(mail_server: MailServer) -> None:
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    finished_run(connection, RunStatus.SUCCEEDED)  # automatic: fine
    finished_run(connection, RunStatus.PARTIALLY_FAILED, kind=RunKind.SYNC_ALL, total=1200, failed=3)
    services.evaluate()
    [incident] = Incident.objects.all()
    assert incident.key == f"run_failed:{connection.pk}:sync_all"
    assert mail_server.received[0].subject == (
        "[erpsync] Problem: Sync all of Demo ERP – Sweden partially failed: 3 of 1200 records failed"
    )


def test_runs_nobody_waits_for_alone_are_watched(mail_server: MailServer) -> None:
    """A failed Sync now is seen by the user who pressed it (and counts as a failed record); an import has its own
    result page; a failure from before alerting began is history."""
    connection = make_connection()
    finished_run(connection, RunStatus.FAILED, kind=RunKind.AUTOMATIC)
    watch_only(Condition.RUN_FAILED)
    AlertSettings.objects.filter(pk=1).update(created_at=timezone.now())
    finished_run(connection, RunStatus.FAILED, kind=RunKind.SYNC_NOW)
    finished_run(connection, RunStatus.FAILED, kind=RunKind.IMPORT)
    services.evaluate()
    assert not Incident.objects.exists() and not mail_server.received


def test_a_run_is_stuck_once_it_has_waited_past_the_threshold_even_when_the_sweeper_sends_it_again(
    mail_server: MailServer,
) -> None:
    watch_only(Condition.RUN_STUCK, run_stuck_minutes=30)
    connection = make_connection()
    now = timezone.now()
    run = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL, created_at=now - timedelta(minutes=20))
    assert not services.evaluate(now).opened
    # The sweeper sends a lost run again with a new created_at; it has still been waiting since it was first seen.
    SyncRun.objects.filter(pk=run.pk).update(created_at=now + timedelta(minutes=5))
    later = services.evaluate(now + timedelta(minutes=11))
    [incident] = later.opened
    assert incident.since == now - timedelta(minutes=20)
    assert mail_server.received[0].subject == (
        "[erpsync] Problem: Sync jobs of Demo ERP – Sweden queued or running for more than 30 minutes: 1"
    )
    assert f"The oldest, job #{run.pk} (Sync all), is queued." in mail_server.received[0].body

    SyncRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=now)
    assert services.evaluate(now + timedelta(minutes=12)).resolved
    assert not Watch.objects.exists()
    assert mail_server.received[1].subject.startswith("[erpsync] Resolved: Sync jobs of Demo ERP – Sweden")


def test_a_connector_that_does_not_answer_alerts_after_the_threshold_and_recovers(
    mail_server: MailServer, webhook: WebhookReceiver
) -> None:
    watch_only(Condition.CONNECTOR_DOWN, webhook_url=webhook.url, connector_down_minutes=5)
    connection = make_connection(recipients="erp-team@example.com")
    make_connection("Unused", active=False)  # an inactive connection's connector is not asked
    now = timezone.now()
    assert not services.evaluate(now).opened  # down, but not for 5 minutes yet
    connector = SyncConnector.objects.get(pk=connection.connector_id)
    assert connector.last_check_ok is False and "Nothing answers at this address" in connector.last_check_message
    assert SyncConnector.objects.get(name="Unused connector").last_checked_at is None

    outcome = services.evaluate(now + timedelta(minutes=5))
    [incident] = outcome.opened
    assert incident.connector_id == connector.pk and incident.since == now
    [mail] = mail_server.received
    assert sorted(mail.recipients) == ["erp-team@example.com", "ops@example.com"]
    assert (
        mail.subject == "[erpsync] Problem: Sync Connector Demo ERP – Sweden connector has not answered for 5 minutes"
    )
    assert "Last answer: Nothing answers at this address." in mail.body
    assert len(webhook.posts) == 1

    with serving(ConnectorApp(AddressBook(), "alerts-tests-connector-secret")) as url:
        SyncConnector.objects.filter(pk=connector.pk).update(url=url)
        assert services.evaluate(now + timedelta(minutes=6)).resolved
    connector.refresh_from_db()
    assert connector.last_check_ok is True
    assert mail_server.received[1].subject.startswith("[erpsync] Resolved: Sync Connector")
    assert sorted(mail_server.received[1].recipients) == ["erp-team@example.com", "ops@example.com"]


def test_no_worker_alerts_to_the_global_recipients_and_recovers_with_the_next_heartbeat(
    mail_server: MailServer,
) -> None:
    watch_only(Condition.NO_WORKER, no_worker_minutes=5)
    make_connection(recipients="erp-team@example.com")
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="celery@worker-1", last_seen=now - timedelta(minutes=4))
    assert not services.evaluate(now).opened
    assert services.evaluate(now + timedelta(minutes=1)).opened
    [mail] = mail_server.received
    assert mail.recipients == ["ops@example.com"]  # install-wide: the global recipients only
    assert mail.subject == "[erpsync] Problem: No worker has reported for 5 minutes"
    assert "from celery@worker-1" in mail.body

    connection_services.record_worker_heartbeat("celery@worker-2")
    assert services.evaluate().resolved
    assert mail_server.received[1].subject == "[erpsync] Resolved: No worker has reported for 5 minutes"


def test_no_worker_ever_is_counted_from_the_first_evaluation(mail_server: MailServer) -> None:
    watch_only(Condition.NO_WORKER, no_worker_minutes=5)
    now = timezone.now()
    assert not services.evaluate(now).opened
    assert services.evaluate(now + timedelta(minutes=5)).opened
    assert "No worker has ever reported." in mail_server.received[0].body


def test_failed_records_above_the_threshold_alert_per_connection(mail_server: MailServer) -> None:
    watch_only(Condition.FAILED_RECORDS, failed_records_threshold=2)
    nordic = make_connection("Nordic", recipients="nordic@example.com")
    baltic = make_connection("Baltic", recipients="baltic@example.com", threshold=5)
    failed_links(nordic, 3)
    failed_links(baltic, 4)  # above the default, not above its own threshold
    services.evaluate()
    [incident] = Incident.objects.all()
    assert incident.connection_id == nordic.pk
    [mail] = mail_server.received
    assert mail.subject == "[erpsync] Problem: Nordic has 3 failed records, more than 2"
    assert sorted(mail.recipients) == ["nordic@example.com", "ops@example.com"]  # not Baltic's recipients

    # Dismissed failures do not count: down to the threshold, the incident is over.
    first_link = Link.objects.filter(connection=nordic).order_by("pk")[0]
    Link.objects.filter(pk=first_link.pk).update(dismissed_at=timezone.now(), dismissed_reason="known")
    assert services.evaluate().resolved
    assert sorted(mail_server.received[1].recipients) == ["nordic@example.com", "ops@example.com"]


def test_a_deactivated_connection_and_a_condition_turned_off_resolve_as_no_longer_watched(
    mail_server: MailServer,
) -> None:
    watch_only(Condition.RUN_FAILED, Condition.FAILED_RECORDS, failed_records_threshold=0)
    first, second = make_connection("First"), make_connection("Second")
    finished_run(first, RunStatus.FAILED, error="boom")
    failed_links(second, 1)
    assert len(services.evaluate().opened) == 2
    ErpConnection.objects.filter(pk=first.pk).update(is_active=False)
    services.evaluate()
    assert Incident.objects.get(connection=first).resolution == Resolution.NOT_WATCHED
    watch_only(Condition.RUN_FAILED)  # failed records turned off
    services.evaluate()
    assert Incident.objects.get(connection=second).resolution == Resolution.NOT_WATCHED
    assert "No longer watched" in mail_server.received[-1].body
    assert len(mail_server.received) == 4  # two alerts, two recovery notices


def test_a_notice_that_cannot_be_sent_is_tried_again_later(settings: Any, no_mail_server: int) -> None:
    watch_only(Condition.RUN_FAILED)
    finished_run(make_connection(), RunStatus.FAILED)
    now = timezone.now()
    outcome = services.evaluate(now)
    assert outcome.failed == 1 and outcome.sent == 0
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert f"Nothing answers at the mail server's address 127.0.0.1:{no_mail_server}" in delivery.error
    assert services.evaluate(now + timedelta(seconds=30)).failed == 0  # not due yet

    server = MailServer("127.0.0.1", no_mail_server)
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    try:
        assert services.evaluate(now + timedelta(minutes=1)).sent == 1
    finally:
        controller.stop()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 2 and delivery.error == ""
    assert len(server.received) == 1


def test_a_notice_is_given_up_after_five_attempts_and_the_reason_is_kept(no_mail_server: int) -> None:
    watch_only(Condition.RUN_FAILED)
    finished_run(make_connection(), RunStatus.FAILED)
    now = timezone.now()
    for minutes in (0, 1, 3, 7, 15, 31, 63):
        services.evaluate(now + timedelta(minutes=minutes))
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == services.MAX_ATTEMPTS
    assert "Nothing answers at the mail server's address" in delivery.error


def test_a_resolved_incident_whose_alert_never_got_out_sends_only_the_recovery_notice(
    settings: Any, no_mail_server: int
) -> None:
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    finished_run(connection, RunStatus.FAILED)
    services.evaluate()
    finished_run(connection, RunStatus.SUCCEEDED)
    services.evaluate()
    alert = Delivery.objects.get(event=Event.OPENED)
    recovery = Delivery.objects.get(event=Event.RESOLVED)
    assert alert.status == DeliveryStatus.CANCELLED
    assert recovery.status == DeliveryStatus.PENDING and recovery.recipients == "ops@example.com"


def test_nothing_is_planned_when_no_recipient_and_no_webhook_are_set(mail_server: MailServer) -> None:
    watch_only(Condition.RUN_FAILED, recipients="")
    finished_run(make_connection(), RunStatus.FAILED)
    services.evaluate()
    assert Incident.objects.count() == 1 and not Delivery.objects.exists() and not mail_server.received


def test_notices_are_worded_in_the_installations_language(settings: Any, mail_server: MailServer) -> None:
    settings.LANGUAGE_CODE = "sv"
    settings.ERPSYNC_SITE_URL = "https://crm.example.com"
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    finished_run(connection, RunStatus.FAILED, error="boom")
    services.evaluate()
    [mail] = mail_server.received
    assert mail.subject == "[erpsync] Problem: Automatisk synk av Demo ERP – Sweden misslyckades"
    assert "Orsak: boom" in mail.body
    assert f"https://crm.example.com/settings/quote-sync/connections/{connection.pk}/" in mail.body


@pytest.mark.django_db(transaction=True)
def test_evaluations_running_at_once_open_and_send_each_incident_once(
    mail_server: MailServer, webhook: WebhookReceiver
) -> None:
    watch_only(Condition.RUN_FAILED, Condition.FAILED_RECORDS, webhook_url=webhook.url, failed_records_threshold=0)
    connections = [make_connection(f"Connection {n}") for n in range(3)]
    for connection in connections:
        finished_run(connection, RunStatus.FAILED, error="boom")
        failed_links(connection, 1)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            start.wait(10)
            services.evaluate()
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert Incident.objects.count() == 6
    assert len(mail_server.received) == 6 and len(webhook.posts) == 6
    assert len({mail.subject for mail in mail_server.received}) == 6
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}


def test_beat_evaluates_every_minute_and_cron_can_do_the_same(mail_server: MailServer, settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["evaluate-alerts"]
    assert entry["task"] == "alerts.evaluate" and entry["schedule"] == 60.0 and entry["options"]["expires"] < 60
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    finished_run(connection, RunStatus.FAILED)
    evaluate_alerts.apply()
    assert len(mail_server.received) == 1
    finished_run(connection, RunStatus.SUCCEEDED)
    out = StringIO()
    call_command("evaluate_alerts", stdout=out)
    assert out.getvalue() == ("resolved: Automatic sync of Demo ERP – Sweden failed\nnotices sent: 1, not sent: 0\n")
