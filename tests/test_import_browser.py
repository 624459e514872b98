"""Import from ERP in real Chromium with a real worker: search → select → preview → decide → import → result → retry."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from connections.models import ErpConnection, Link, ListMapping
from crm.models import Company, Country

from .conftest import RunningConnector
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_import import customer
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from .test_sync_tab_browser import admin_page, shot  # noqa: F401  (an admin's logged-in page)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def empty_demo(empty_demo_process: RunningConnector) -> RunningConnector:
    """The worker calls the Demo ERP: a process, not the in-process one."""
    return empty_demo_process


def test_an_admin_imports_customers_reviews_the_plan_and_retries_what_failed(
    worker: Any,  # noqa: F811
    admin_page: Any,  # noqa: F811
    empty_demo: RunningConnector,
    import_connection: ErpConnection,
) -> None:
    page = admin_page
    existing = Company.objects.create(name="Granbygg Aktiebolag", vat_no="SE556000111101", phone="+46 8 1")
    Company.objects.create(name="Nordbygg", postal_city="Luleå")
    Company.objects.create(name="Nordbygg", postal_city="Kiruna")
    keys = {
        name: customer(empty_demo, import_connection, NAME=name, **values)
        for name, values in {
            "Granbygg AB": {"VATNO": "SE556000111101", "POSTALCITY": "Umeå", "COUNTRY": "SE"},
            "Fjällbygg AB": {"POSTALCITY": "Piteå", "COUNTRY": "SE"},
            "Nordbygg AB": {"POSTALCITY": "Boden"},
            "Havsbygg AB": {"POSTALCITY": "Visby"},
            "Sjöbygg AS": {"COUNTRY": "NO"},
        }.items()
    }

    page.goto("/settings/quote-sync/sync/")
    page.get_by_role("link", name="Import from ERP").click()
    page.get_by_label("ERP connection").select_option(label=import_connection.name)
    expect(page.get_by_label("Actor type")).to_have_value("Customer")
    page.locator(".erp-advanced").get_by_label("Name", exact=True).fill("bygg")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#import-selection")
    for key in keys.values():
        expect(results.get_by_role("row", name=re.compile(key))).to_be_visible()
    results.get_by_label(f"Import {keys['Havsbygg AB']}").uncheck()
    page.get_by_role("button", name="Preview import of the selected rows").click()

    # The worker makes the plan; the page follows its progress and then shows it.
    # A real worker under a loaded machine may take a while: the page waits for it as long as it takes.
    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("1 row needs a decision")).to_be_visible()
    expect(page.get_by_role("button", name="Import 2 rows")).to_be_disabled()
    table = page.locator(".import-rows")
    expect(table.get_by_role("row", name=re.compile("Granbygg AB"))).to_contain_text("same VAT number")
    expect(table.get_by_role("row", name=re.compile("Sjöbygg AS"))).to_contain_text("no CRM item is mapped")
    expect(table.get_by_role("row", name=re.compile("Havsbygg"))).to_have_count(0)
    granbygg = table.get_by_role("row", name=re.compile("Granbygg AB"))
    granbygg.locator("summary").click()
    expect(granbygg.locator(".field-changes")).to_contain_text("Granbygg Aktiebolag")
    table.get_by_label(f"What Import does with {keys['Nordbygg AB']}").select_option(label="Create a new record")
    expect(page.get_by_role("button", name="Import 3 rows")).to_be_enabled()
    shot(page, "import-preview")

    # Between the preview and the import, Sweden loses its list mapping: two rows will fail, and say why.
    sweden = Country.objects.get(code="SE")
    ListMapping.objects.filter(connection=import_connection, erp_key="SE").update(crm_item_id=None)
    page.get_by_role("button", name="Import 3 rows").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.get_by_role("button", name="Retry 2 failed rows")).to_be_visible()
    page.get_by_role("link", name="Failed", exact=True).click()
    expect(page.locator(".import-rows")).to_contain_text("no CRM item is mapped to ERP item SE")

    ListMapping.objects.filter(connection=import_connection, erp_key="SE").update(crm_item_id=sweden.pk)
    page.get_by_role("button", name="Retry 2 failed rows").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator(".result-counts")).to_contain_text("2 new")
    expect(page.locator(".result-counts")).to_contain_text("1 updated")
    expect(page.get_by_role("button", name=re.compile("Retry"))).to_have_count(0)
    page.get_by_role("link", name="Updated", exact=True).click()
    page.get_by_role("link", name="Granbygg AB").click()
    expect(page).to_have_url(re.compile(f"/companies/{existing.pk}/"))
    shot_page = page
    shot_page.go_back()
    page.get_by_role("link", name="New", exact=True).click()
    shot(page, "import-result")

    assert Link.objects.filter(connection=import_connection).count() == 3
    existing.refresh_from_db()
    assert (existing.name, existing.postal_city, existing.country_id) == ("Granbygg AB", "Umeå", sweden.pk)
    assert set(Company.objects.values_list("name", flat=True)) == {
        "Granbygg AB",
        "Nordbygg",
        "Fjällbygg AB",
        "Nordbygg AB",
    }
