"""A Swedish admin in real Chromium: the Active box asks before it deactivates, and a refused activation is one
message whose reason links to the list mapping that puts it right."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from connections.models import ErpConnection
from crm.models import Company, Country

from .conftest import RunningConnector
from .factories import UserFactory
from .sync_helpers import active_connection
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def swedish_admin(browser: Any, live_server: Any) -> Any:  # noqa: F811
    UserFactory.create(username="ada", is_superuser=True, is_staff=True, first_name="Ada", last_name="Admin")
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "ada", "secret-pass-123")
    context.add_cookies([{"name": "django_language", "value": "sv", "url": live_server.url}])
    yield page
    context.close()


def test_the_active_box_asks_before_deactivating_and_a_refusal_leads_to_the_list_mapping(
    swedish_admin: Any, demo_connector: RunningConnector
) -> None:
    connection = active_connection(demo_connector)  # COUNTRY maps only SE, to the CRM's Sweden
    page = swedish_admin
    page.goto("/settings/quote-sync/sync/")
    box = page.get_by_label("Demo ERP – Sweden är aktiv")
    expect(box).to_be_checked()

    # Unticking asks first; Cancel changes nothing.
    box.click()  # the box submits at once; the answer is another page
    expect(page.get_by_role("heading", name="Inaktivera Demo ERP – Sweden?")).to_be_visible()
    page.get_by_role("link", name="Avbryt").click()
    expect(page.get_by_label("Demo ERP – Sweden är aktiv")).to_be_checked()
    assert ErpConnection.objects.get(pk=connection.pk).is_active
    page.get_by_label("Demo ERP – Sweden är aktiv").click()
    page.get_by_role("button", name="Inaktivera").click()
    expect(page.get_by_text("Demo ERP – Sweden är inaktiv.")).to_be_visible()
    expect(page.get_by_label("Demo ERP – Sweden är aktiv")).not_to_be_checked()
    assert not ErpConnection.objects.get(pk=connection.pk).is_active

    # A Norwegian company now, and Norway has no ERP item: activation is refused, once, with a way out.
    norway = Country.objects.create(code="NO", name="Norge")
    Company.objects.create(name="Fjordbygg AS", country=norway)
    page.get_by_label("Demo ERP – Sweden är aktiv").click()
    expect(page.get_by_text("aktiverades inte")).to_have_count(1)
    expect(page.get_by_text("inget ERP-värde är kopplat till Norge")).to_have_count(1)
    page.get_by_role("link", name="Öppna listmappningen").first.click()
    page.get_by_label("Norge", exact=True).select_option(str(norway.pk))  # the ERP's item, in Swedish
    page.get_by_role("button", name="Spara").click()
    expect(page.get_by_text("Listmappningen för Land har sparats.")).to_be_visible()

    page.goto(connection.get_absolute_url())
    page.get_by_role("button", name="Aktivera").click()
    expect(page.get_by_text("Demo ERP – Sweden är aktiv.")).to_be_visible()
    assert ErpConnection.objects.get(pk=connection.pk).is_active
