"""The ERP tab in real Chromium: the search runs by itself, a click links, Sync now reports without a reload."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from connections import mapping
from connections.models import Link

from .conftest import RunningConnector
from .factories import UserFactory
from .sync_helpers import active_connection, company, new_customer
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_sales_user_links_a_company_and_syncs_it(browser: Any, live_server: Any, worker: Any,  # noqa: F811
                                                   demo_connector: RunningConnector) -> None:  # fmt: skip
    connection = active_connection(demo_connector)
    rows = [mapping.FieldRow(f.key, f.crm_field, f.direction, f.key == "NAME", f.key == "BALANCE")
            for f in connection.erp_fields.filter(actor_type="Customer")]  # fmt: skip
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(demo_connector, connection, NAME="Sjöstrand Logistik AB", PHONE="+46 31 55 00")
    record = company(name="Sjöstrand Logistik AB", phone="")
    UserFactory.create(username="anna", perms=["crm.view_company", "connections.use_erp_sync"])
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "anna", "secret-pass-123")
    page.goto(record.get_absolute_url())
    page.get_by_role("tab", name="ERP").click()
    expect(page.get_by_text("Not linked to Demo ERP – Sweden yet.")).to_be_visible()
    row = page.get_by_role("row", name=actor.key)  # the search on the company's name ran by itself
    row.get_by_role("button", name="Link").click()
    expect(page.get_by_text(f"Linked Sjöstrand Logistik AB to Customer {actor.key}; syncing now.")).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("[id^=sync-result]")).to_contain_text("Succeeded.", timeout=30_000)
    page.reload()
    expect(page.get_by_text("Balance due")).to_be_visible()
    record.refresh_from_db()
    assert record.phone == "+46 31 55 00" and Link.objects.get(company=record).erp_key == actor.key
    context.close()
