"""The whole chain in real Chromium against a real Tryton: an admin registers the Tryton connector and defines
a connection (a wrong password first, then right, and the company chosen from the list Tryton then offers), and a
sales user links a company and syncs it on a worker."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from connections import mapping, services
from connections.models import ErpConnection, Link, SyncSettings
from connectors import protocol as p
from crm.models import Company

from ..conftest import RunningConnector
from ..factories import UserFactory
from ..test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from ..test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from ..test_sync_tab_browser import shot
from .conftest import ADMIN_PASSWORD, TrytonServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_connects_tryton_and_a_user_links_and_syncs_a_company(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    tryton_server: TrytonServer,
    tryton_connector: RunningConnector,
    tryton_samples: dict[str, p.Actor],
) -> None:
    UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    UserFactory.create(username="anna", perms=["crm.view_company", "connections.use_erp_sync"])
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "ada", "secret-pass-123")
    page.goto("/settings/quote-sync/sync/")
    page.locator("#connectors-heading ~ .list-buttons").get_by_role("link", name="Add").click()
    page.get_by_label("Name").fill("Tryton")
    page.get_by_label("URL").fill(tryton_connector.url)
    page.get_by_label("Shared secret").fill(tryton_connector.secret)
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("Saved Tryton; it answers as a Sync Connector.")).to_be_visible()

    page.locator("#connections-heading ~ .list-buttons").get_by_role("link", name="Add").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Tryton – Umeå")
    page.get_by_label("Tryton server URL").fill(tryton_server.url)
    page.get_by_label("Database").fill(tryton_server.database)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_label("Password").press("Tab")  # the company list is read with the login entered so far
    expect(page.locator("#config-list-company")).to_contain_text("Tryton refused the user name or password.")
    # As a person waits for the list's spinner: no request of the form is still under way.
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.get_by_role("button", name="Test ERP connection").click()
    # Tryton answers each failed login later than the one before (its guard against guessing), and the company
    # list has already tried this password: the test's answer may take a while.
    expect(page.locator("#test-result")).to_contain_text(
        "Test failed. Tryton refused the user name or password.", timeout=60_000
    )
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_label("Password").press("Tab")
    expect(page.get_by_label("Company").locator("option")).to_have_text(["—", "Tryton Test AB"])
    page.get_by_label("Company").select_option("Tryton Test AB")
    page.get_by_role("button", name="Test ERP connection").click()
    expect(page.locator("#test-result")).to_contain_text("Test passed.", timeout=60_000)
    shot(page, "tryton-connection-test-passed")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("Saved the ERP connection Tryton – Umeå.")).to_be_visible()

    # Field mapping and activation (their pages have their own browser tests): name, phone and city both ways.
    connection = ErpConnection.objects.get(name="Tryton – Umeå")
    wanted = {"NAME": "both", "PHONE": "both", "POSTALCITY": "both", "NUMBER2": "erp_to_crm"}
    mapping.save_field_mapping(
        connection,
        "Customer",
        True,
        [
            mapping.FieldRow(
                f.key,
                f.crm_field if f.key in wanted else "",
                wanted.get(f.key, ""),
                f.key == "NAME",
                f.key in ("EMAIL", "URL"),
            )
            for f in connection.erp_fields.filter(actor_type="Customer")
        ],
        None,
    )
    services.set_active(connection, True, None)
    SyncSettings.objects.update_or_create(pk=1, defaults={"crm_priority": 1})
    context.clear_cookies()

    record = Company.objects.create(name="Granbygg AB", phone="+46 90 55 55")
    log_in(page, "anna", "secret-pass-123")
    page.goto(record.get_absolute_url())
    page.get_by_role("tab", name="ERP").click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    key = tryton_samples["Granbygg AB"].key or ""
    page.get_by_role("row", name=key).get_by_role("button", name="Choose").click()
    page.get_by_role("row", name="Phone").locator('input[value="crm"]').check()  # the CRM's number is right
    page.get_by_role("button", name="Link and sync").click()
    expect(page.get_by_text(f"Linked Granbygg AB to Customer {key}; syncing now.")).to_be_visible()
    # The card follows the run the link started; Sync now is offered again once it has ended. Every call of that
    # run goes to Tryton, which answers slowly on a busy machine: the card waits as long as the run takes.
    expect(page.locator(".erp-section")).to_have_attribute("data-state", "ok", timeout=90_000)
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("[id^=sync-result]")).to_contain_text("Succeeded", timeout=90_000)
    page.reload()
    expect(page.locator(".erp-section")).to_contain_text("info@example.com")  # live from Tryton
    context.close()

    record.refresh_from_db()
    assert record.postal_city == "Umeå" and record.number2 and Link.objects.get(company=record).erp_key == key
    phones = tryton_server.session().call("model.party.party.read", [int(key)], ["contact_mechanisms.value"], {})[0]
    assert "+46 90 55 55" in [m["value"] for m in phones["contact_mechanisms."]]
