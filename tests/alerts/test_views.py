"""The Alerts tab under Quote/Sync: who may see it, saving the settings, recipients per connection, the test alert
and the incident history."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.choices import Condition
from alerts.models import AlertSettings, ConnectionAlertSettings, Incident
from connections.choices import RunKind, RunStatus
from connections.models import AuditEntry, SyncRun

from ..permission_matrix import assert_access
from .conftest import MailServer, WebhookReceiver, make_connection, watch_only

pytestmark = pytest.mark.django_db
PAGE = "/settings/quote-sync/alerts/"


def settings_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "recipients": "ops@example.com",
        "webhook_url": "",
        "run_failed_on": "on",
        "run_stuck_on": "on",
        "run_stuck_minutes": "30",
        "connector_down_on": "on",
        "connector_down_minutes": "5",
        "no_worker_on": "on",
        "no_worker_minutes": "5",
        "failed_records_on": "on",
        "failed_records_threshold": "10",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_the_alerts_tab_is_for_erp_sync_administrators_only(
    client: Client, admin_user: Any, licensed_user: Any, outsider: Any, erp_admin: Any
) -> None:
    connection = make_connection()
    users = {"admin": erp_admin, "licensed": licensed_user, "outsider": outsider}
    denied = {"anonymous": 302, "outsider": 403, "licensed": 403}
    assert reverse("alerts:settings") == PAGE
    assert_access(client, users, PAGE, {**denied, "admin": 200})
    assert_access(client, users, reverse("alerts:connection", args=[connection.pk]), {**denied, "admin": 200})
    assert_access(client, users, reverse("alerts:test"), {**denied, "admin": 405})
    assert_access(client, {**users, "admin": admin_user}, PAGE, {**denied, "admin": 200})
    client.force_login(erp_admin)
    assert client.get(reverse("alerts:connection", args=[connection.pk + 100])).status_code == 404
    page = client.get(reverse("connections:workers")).content.decode()
    assert f'href="{PAGE}"' in page  # the tab is on every Quote/Sync page


def test_posts_from_non_administrators_change_and_send_nothing(
    client: Client, licensed_user: Any, mail_server: MailServer
) -> None:
    connection = make_connection()
    watch_only(recipients="ops@example.com")
    client.force_login(licensed_user)
    assert client.post(PAGE, settings_data(recipients="attacker@example.com")).status_code == 403
    assert (
        client.post(reverse("alerts:connection", args=[connection.pk]), {"recipients": "x@example.com"}).status_code
        == 403
    )
    assert client.post(reverse("alerts:test")).status_code == 403
    assert AlertSettings.load().recipients == "ops@example.com"
    assert not ConnectionAlertSettings.objects.exists() and not mail_server.received


def test_settings_are_saved_and_audited_and_bad_addresses_are_named(client: Client, erp_admin: Any) -> None:
    client.force_login(erp_admin)
    refused = client.post(PAGE, settings_data(recipients="ops@example.com\nnot-an-address", run_stuck_minutes="0"))
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "These are not e-mail addresses: not-an-address" in text
    assert "Ensure this value is greater than or equal to 1." in text
    assert AlertSettings.load().recipients == ""

    response = client.post(
        PAGE,
        settings_data(recipients="ops@example.com, oncall@example.com", failed_records_on=None, no_worker_minutes="10"),
    )
    assert response.status_code == 302
    saved = AlertSettings.load()
    assert saved.recipient_list() == ["ops@example.com", "oncall@example.com"]
    assert saved.failed_records_on is False and saved.no_worker_minutes == 10
    entry = AuditEntry.objects.get(subject=services.AUDIT_SUBJECT)
    assert entry.user == erp_admin
    assert "recipients: — → ops@example.com, oncall@example.com" in entry.detail
    assert "too many failed records: on → off" in entry.detail
    page = client.get(PAGE).content.decode()
    assert "Saved. The next evaluation, within a minute, uses it." in page
    assert "recipients: — → ops@example.com, oncall@example.com" in page  # the history of changes


def test_no_worker_cannot_be_shorter_than_three_missed_heartbeats(
    client: Client, erp_admin: Any, settings: Any
) -> None:
    settings.ERPSYNC_HEARTBEAT_SECONDS = 60
    client.force_login(erp_admin)
    response = client.post(PAGE, settings_data(no_worker_minutes="2"))
    assert response.status_code == 400
    assert "may just be late. Use at least 3 minutes." in response.content.decode()


def test_the_webhook_address_is_kept_encrypted_never_shown_and_kept_when_left_empty(
    client: Client, erp_admin: Any
) -> None:
    secret_url = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    client.force_login(erp_admin)
    assert client.post(PAGE, settings_data(webhook_url="ftp://hooks.example.com/x")).status_code == 400
    assert client.post(PAGE, settings_data(webhook_url="https://user:pw@hooks.example.com/x")).status_code == 400
    client.post(PAGE, settings_data(webhook_url=secret_url))
    row = AlertSettings.load()
    assert row.webhook_url == secret_url and "XXXXsecretXXXX" not in row.webhook_url_encrypted
    page = client.get(PAGE).content.decode()
    assert "XXXXsecretXXXX" not in page and "A webhook at hooks.slack.com is set" in page
    client.post(PAGE, settings_data(recipients="other@example.com"))  # the field left empty
    assert AlertSettings.load().webhook_url == secret_url
    client.post(PAGE, settings_data(remove_webhook="on"))
    assert AlertSettings.load().webhook_url == ""
    details = " ".join(AuditEntry.objects.values_list("detail", flat=True))
    assert "webhook added" in details and "webhook removed" in details and "XXXXsecretXXXX" not in details


def test_recipients_and_a_threshold_per_connection(client: Client, erp_admin: Any) -> None:
    connection = make_connection()
    client.force_login(erp_admin)
    url = reverse("alerts:connection", args=[connection.pk])
    assert "Leave empty to use the threshold on the Alerts tab." in client.get(url).content.decode()
    assert client.post(url, {"recipients": "erp@example.com\nbroken@"}).status_code == 400
    response = client.post(
        url, {"recipients": "erp@example.com\nfinance@example.com", "failed_records_threshold": "50"}
    )
    assert response.status_code == 302
    own = ConnectionAlertSettings.objects.get(connection=connection)
    assert own.recipient_list() == ["erp@example.com", "finance@example.com"] and own.failed_records_threshold == 50
    assert connection.audit_entries.get().detail.startswith(
        "alerts: recipients: — → erp@example.com, finance@example.com"
    )
    page = client.get(PAGE).content.decode()
    assert "erp@example.com, finance@example.com" in page and ">50<" in page
    client.post(url, {"recipients": "", "failed_records_threshold": ""})
    own.refresh_from_db()
    assert own.recipients == "" and own.failed_records_threshold is None


def test_a_test_alert_goes_to_every_address_and_the_webhook(
    client: Client, erp_admin: Any, mail_server: MailServer, webhook: WebhookReceiver
) -> None:
    watch_only(recipients="ops@example.com", webhook_url=webhook.url)
    make_connection(recipients="erp@example.com")
    client.force_login(erp_admin)
    response = client.post(reverse("alerts:test"), follow=True)
    text = response.content.decode()
    assert "Test e-mail sent to ops@example.com, erp@example.com." in text
    assert "The webhook took the test alert." in text
    [mail] = mail_server.received
    assert sorted(mail.recipients) == ["erp@example.com", "ops@example.com"]
    assert mail.subject == "[erpsync] Test alert"
    assert webhook.texts()[0].startswith("[erpsync] Test alert\nThis is a test alert from erpsync.")
    assert AuditEntry.objects.get(subject=services.AUDIT_SUBJECT).action == "tested"


def test_a_test_alert_says_clearly_what_failed(
    client: Client, erp_admin: Any, no_mail_server: int, webhook: WebhookReceiver
) -> None:
    watch_only(recipients="ops@example.com", webhook_url=webhook.url)
    webhook.status = 404
    client.force_login(erp_admin)
    text = client.post(reverse("alerts:test"), follow=True).content.decode()
    assert (
        f"The test e-mail could not be sent. Nothing answers at the mail server&#x27;s address "
        f"127.0.0.1:{no_mail_server}. Check EMAIL_HOST and EMAIL_PORT."
    ) in text
    assert "The webhook did not take the test alert. The webhook at 127.0.0.1 answered HTTP 404: no_service" in text
    assert "token-that-is-a-secret" not in text

    webhook.status, webhook.location = 301, "https://elsewhere.example.com/"
    client.cookies["django_language"] = "sv"
    text = client.post(reverse("alerts:test"), follow=True).content.decode()
    assert "Testmejlet kunde inte skickas." in text and "Kontrollera EMAIL_HOST och EMAIL_PORT." in text
    assert "svarade med en omdirigering (HTTP 301)" in text


def test_a_test_alert_names_the_recipients_the_mail_server_refused(
    client: Client, erp_admin: Any, mail_server: MailServer
) -> None:
    mail_server.refuse = {"gone@example.com"}
    watch_only(recipients="gone@example.com")
    client.force_login(erp_admin)
    text = client.post(reverse("alerts:test"), follow=True).content.decode()
    assert "The mail server refused the recipients: gone@example.com: 550 5.1.1 No such mailbox here" in text


def test_a_test_alert_with_nowhere_to_go_says_so(client: Client, erp_admin: Any, mail_server: MailServer) -> None:
    watch_only(recipients="")
    client.force_login(erp_admin)
    text = client.post(reverse("alerts:test"), follow=True).content.decode()
    assert "Add recipients or a webhook first" in text and not mail_server.received


def test_the_history_lists_open_and_resolved_incidents(client: Client, erp_admin: Any, mail_server: MailServer) -> None:
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    now = timezone.now()
    SyncRun.objects.create(
        connection=connection,
        kind=RunKind.RESYNC,
        status=RunStatus.FAILED,
        finished_at=now,
        error="SaveActors: NAME is too long",
    )
    services.evaluate()
    client.force_login(erp_admin)
    page = client.get(PAGE).content.decode()
    assert "Open incidents: 1" in page
    assert "Resync from CRM of Demo ERP – Sweden failed" in page and "Reason: SaveActors: NAME is too long" in page
    assert "ops@example.com" in page  # where the alert went
    SyncRun.objects.create(
        connection=connection, kind=RunKind.RESYNC, status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    )
    services.evaluate()
    assert Incident.objects.get().resolved_at is not None
    assert "Resync from CRM of Demo ERP – Sweden failed" not in client.get(PAGE + "?state=open").content.decode()
    resolved = client.get(PAGE + "?state=resolved").content.decode()
    assert "Resync from CRM of Demo ERP – Sweden failed" in resolved and "The condition cleared" in resolved


def test_the_page_speaks_swedish(client: Client, erp_admin: Any, mail_server: MailServer) -> None:
    watch_only(Condition.RUN_FAILED)
    connection = make_connection()
    SyncRun.objects.create(
        connection=connection, kind=RunKind.AUTOMATIC, status=RunStatus.FAILED, finished_at=timezone.now()
    )
    services.evaluate()
    client.force_login(erp_admin)
    client.cookies["django_language"] = "sv"
    page = client.get(PAGE).content.decode()
    for words in (
        "Larm",
        "Vart larmen går",
        "Vad som ska larmas om",
        "Skicka testlarm",
        "Mottagare per koppling",
        "Incidenter",
        "Automatisk synk av Demo ERP – Sweden misslyckades",
        "Öppna incidenter: 1",
    ):
        assert words in page, words
    assert "Send test alert" not in page


def test_the_webhook_survives_key_rotation(settings: Any) -> None:
    watch_only(webhook_url="https://hooks.slack.com/services/T1/B1/rotate-me")
    settings.ERPSYNC_FERNET_KEYS = [Fernet.generate_key().decode(), *settings.ERPSYNC_FERNET_KEYS]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 1 secrets" in out.getvalue()
    settings.ERPSYNC_FERNET_KEYS = settings.ERPSYNC_FERNET_KEYS[:1]  # the old key is retired
    assert AlertSettings.load().webhook_url == "https://hooks.slack.com/services/T1/B1/rotate-me"
