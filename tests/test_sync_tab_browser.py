"""The documented admin flow on the Sync tab, in real Chromium, against a real Demo ERP connector process.

Screenshots land in docs/screenshots/ for the README and the issue's closing note.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from connections.models import ErpConnection
from connectors.models import SyncConnector

from .conftest import ROOT, RunningConnector, free_port
from .factories import UserFactory
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)

# `ERPSYNC_SCREENSHOTS=1 make test` refreshes the README's screenshots; otherwise they go to a temporary folder.
SHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("ERPSYNC_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "erpsync-screenshots"
)
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(browser: Any, live_server: Any) -> Any:  # noqa: F811
    UserFactory.create(username="ada", is_superuser=True, is_staff=True, first_name="Ada", last_name="Admin")
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "ada", "secret-pass-123")
    yield page
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_admin_adds_a_connector_and_a_connection_through_the_documented_flow(
    admin_page: Any, demo_connector: RunningConnector
) -> None:
    page = admin_page
    page.goto("/settings/quote-sync/sync/")
    expect(page.get_by_role("heading", name="Quote/Sync")).to_be_visible()

    # Add Sync Connector: a dead address, then the wrong secret, then right.
    page.locator("#connectors-heading ~ .list-buttons").get_by_role("link", name="Add").click()
    page.get_by_label("Name").fill("Demo ERP")
    page.get_by_label("URL").fill(f"http://127.0.0.1:{free_port()}")
    page.get_by_label("Shared secret").fill(demo_connector.secret)
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("alert").first).to_contain_text("Nothing answers at this address")
    expect(page.get_by_label("Save it anyway; I will start the connector later")).to_be_visible()
    page.get_by_label("URL").fill(demo_connector.url)
    page.get_by_label("Shared secret").fill("a-wrong-secret-of-some-length")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("alert").first).to_contain_text("The connector refused the shared secret.")
    page.get_by_label("Shared secret").fill(demo_connector.secret)
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("Saved Demo ERP; it answers as a Sync Connector.")).to_be_visible()
    expect(page.get_by_text("Answering")).to_be_visible()
    shot(page, "sync-tab-connector-added")

    # Define new ERP connection: OK stays disabled until exactly these values have passed a test.
    page.locator("#connections-heading ~ .list-buttons").get_by_role("link", name="Add").click()
    ok = page.get_by_role("button", name="OK")
    page.get_by_role("textbox", name="Name", exact=True).fill("Demo ERP – Sweden")
    page.get_by_label("Client name").fill("Nordic sales")
    expect(ok).to_be_disabled()
    expect(page.locator("#ok-hint")).to_have_text("Fill in the mandatory fields.")
    page.get_by_label("API key").fill("not-the-key")
    expect(page.locator("#ok-hint")).to_have_text("Test the ERP connection to enable OK.")
    page.get_by_role("button", name="Test ERP connection").click()
    expect(page.locator("#test-result")).to_contain_text("Test failed. Demo ERP refused the API key.")
    page.locator("#test-result").get_by_text("Technical details").click()
    expect(page.locator("#test-result")).to_contain_text("api_key does not match")
    expect(ok).to_be_disabled()
    shot(page, "connection-test-failed")

    page.get_by_label("API key").fill("demo-api-key")
    page.get_by_role("button", name="Test ERP connection").click()
    expect(page.locator("#test-result")).to_contain_text("Test passed.")
    expect(ok).to_be_enabled()
    page.get_by_label("Standard VAT rate (%)").fill("12")
    expect(ok).to_be_disabled()
    expect(page.locator("#ok-hint")).to_have_text("The configuration changed since the last test: test it again.")
    page.get_by_role("button", name="Test ERP connection").click()
    expect(ok).to_be_enabled()
    shot(page, "connection-test-passed")
    ok.click()

    # OK goes back to the list, which shows the new connection.
    expect(page.get_by_text("Saved the ERP connection Demo ERP – Sweden.")).to_be_visible()
    page.get_by_role("link", name="Demo ERP – Sweden", exact=True).click()
    expect(page.get_by_text("Sync ERP Customer to CRM Company")).to_be_visible()
    connection = ErpConnection.objects.get()
    assert connection.config["vat_rate"] == 12.0 and "api_key" not in connection.config
    assert connection.erp_fields.filter(actor_type="Customer", key="NAME", crm_field="NAME", auto_mapped=True).exists()

    # Listed inactive; activation is refused with its reasons.
    page.goto("/settings/quote-sync/sync/")
    checkbox = page.get_by_label("Demo ERP – Sweden is active")
    expect(checkbox).not_to_be_checked()
    checkbox.click()  # the box submits at once; the answer is another page
    # One message, on the connection's page, above the list of what stops it.
    expect(page.get_by_text("Demo ERP – Sweden was not activated")).to_have_count(1)
    expect(page.get_by_text("No actor type is enabled for sync.")).to_have_count(1)
    shot(page, "activation-refused")
    page.goto("/settings/quote-sync/sync/")
    expect(page.get_by_label("Demo ERP – Sweden is active")).not_to_be_checked()

    # The connector cannot be deleted while the connection uses it.
    page.get_by_role("row", name=re.compile("Answering")).get_by_role("link", name="Delete").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "It cannot be deleted while these ERP connections use it: Demo ERP – Sweden."
    )
    assert SyncConnector.objects.filter(name="Demo ERP").exists()


def test_the_flow_speaks_swedish(admin_page: Any, demo_connector: RunningConnector) -> None:
    page = admin_page
    page.goto("/settings/quote-sync/sync/")
    page.get_by_label("Language").select_option("sv")
    expect(page.get_by_role("heading", name="Offert/Synk")).to_be_visible()
    expect(page.get_by_role("heading", name="Sync Connectors")).to_be_visible()
    expect(page.get_by_role("heading", name="ERP-kopplingar")).to_be_visible()
    page.locator("#connectors-heading ~ .list-buttons").get_by_role("link", name="Lägg till").click()
    page.get_by_label("Namn").fill("Demo ERP")
    page.get_by_label("URL").fill(demo_connector.url)
    page.get_by_label("Delad hemlighet").fill(demo_connector.secret)
    page.get_by_role("button", name="OK").click()
    page.locator("#connections-heading ~ .list-buttons").get_by_role("link", name="Lägg till").click()
    page.get_by_role("textbox", name="Namn", exact=True).fill("Demo ERP – Norge")
    page.get_by_label("Klientnamn").fill("Norsk salg")
    page.get_by_label("API-nyckel").fill("demo-api-key")
    page.get_by_label("Företagsnummer").fill("7")
    page.get_by_role("button", name="Testa ERP-kopplingen").click()
    expect(page.locator("#test-result")).to_contain_text(
        "Testet misslyckades. Företag 7 finns inte i Demo ERP; det har företag 1."
    )
    page.get_by_label("Företagsnummer").fill("1")
    page.get_by_role("button", name="Testa ERP-kopplingen").click()
    expect(page.locator("#test-result")).to_contain_text("Testet lyckades.")
    shot(page, "connection-form-swedish")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("ERP-kopplingen Demo ERP – Norge har sparats.")).to_be_visible()
