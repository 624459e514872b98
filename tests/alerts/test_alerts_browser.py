"""An ERP administrator sets up alerts in real Chromium, in Swedish: recipients and a webhook, a test alert that
reaches a real mail server and a real webhook on loopback, and the incident history."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts import services
from alerts.choices import Condition
from alerts.models import AlertSettings
from connections.choices import RunKind, RunStatus
from connections.models import SyncRun

from ..test_browser import browser, page  # noqa: F401  (the Chromium fixtures)
from .conftest import MailServer, WebhookReceiver, make_connection, watch_only

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# English words that would betray an untranslated label on the Swedish page (data and brand names aside).
ENGLISH = re.compile(
    r"\b(Alerts?|Recipients?|Save|Send test|Incidents?|Threshold|Where|When|Open|Resolved|Failed|Every)\b"
)


def swedish_text(on: Any) -> str:
    text: str = on.locator("main").inner_text()
    return text


def test_an_admin_sets_up_alerts_and_sends_a_test_alert_in_swedish(
    page: Any,  # noqa: F811
    erp_admin: Any,
    mail_server: MailServer,
    webhook: WebhookReceiver,
) -> None:
    erp_admin.set_password("lösenord-för-test")
    erp_admin.save()
    connection = make_connection()
    page.goto("/login/")
    page.locator("[name=username]").fill(erp_admin.username)
    page.locator("[name=password]").fill("lösenord-för-test")
    page.locator("form button[type=submit]").click()
    page.goto("/settings/quote-sync/alerts/")
    page.get_by_label("Language").select_option("sv")
    expect(page.get_by_role("heading", name="Vart larmen går")).to_be_visible()
    assert not ENGLISH.search(swedish_text(page)), ENGLISH.findall(swedish_text(page))

    # A name with Å and Ö before the @ is not an address most mail servers take: refused by name, nothing saved.
    page.locator("[name=recipients]").fill("drift@example.se, Åsa.Öberg@example.se")
    page.locator("[name=webhook_url]").fill(webhook.url)
    page.get_by_role("button", name="Spara").click()
    expect(page.get_by_text("Detta är inte e-postadresser: Åsa.Öberg@example.se")).to_be_visible()
    assert AlertSettings.load().recipient_list() == []

    # Nordic letters in the domain are fine: the mail goes to its ASCII (punycode) form.
    page.locator("[name=recipients]").fill("drift@example.se\nasa.oberg@företaget.se")
    page.get_by_role("button", name="Spara").click()
    expect(page.get_by_text("Inget sparades")).to_have_count(0)
    saved = AlertSettings.load()
    assert saved.recipient_list() == ["drift@example.se", "asa.oberg@företaget.se"]

    page.get_by_role("button", name="Skicka testlarm").click()
    expect(
        page.get_by_text("Testmejl skickat till drift@example.se, asa.oberg@företaget.se.", exact=True)
    ).to_be_visible()
    expect(page.get_by_text("Webhooken tog emot testlarmet.", exact=True)).to_be_visible()
    assert mail_server.to("drift@example.se") and mail_server.to("asa.oberg@xn--fretaget-n4a.se")
    assert len(webhook.posts) == 1
    assert not ENGLISH.search(swedish_text(page)), ENGLISH.findall(swedish_text(page))

    # An automatic run fails: one incident, one alert by each channel, shown in the history in Swedish.
    watch_only(Condition.RUN_FAILED, recipients=saved.recipients, webhook_url=webhook.url)
    SyncRun.objects.create(
        connection=connection, kind=RunKind.AUTOMATIC, status=RunStatus.FAILED, finished_at=timezone.now()
    )
    services.evaluate()
    services.evaluate()  # evaluated again: nothing more is sent
    page.goto("/settings/quote-sync/alerts/?state=open#incidents")
    expect(page.get_by_text("Öppna incidenter: 1")).to_be_visible()
    assert len(webhook.posts) == 2 and "Demo ERP – Sweden" in webhook.posts[1]["text"]
    assert len(mail_server.to("drift@example.se")) == 2
    assert not ENGLISH.search(swedish_text(page)), ENGLISH.findall(swedish_text(page))
