"""The compare screen in real Chromium, in Swedish: an actor whose VAT number and city are not the record's is
highlighted with a warning the user sees before linking, a disabled choice says why beside it, and the user can
still link."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from connections import mapping
from connections.models import ErpConnection, Link

from .conftest import RunningConnector
from .factories import UserFactory
from .swedish_pages import english_on
from .sync_helpers import active_connection, company, new_customer
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_linking_warnings import MAPPED
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATA_WORDS = ("Customer",)


def test_a_swedish_user_is_warned_of_another_company_and_links_all_the_same(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
) -> None:
    connection: ErpConnection = active_connection(demo_connector)
    rows = [
        mapping.FieldRow(f.key, *MAPPED.get(f.key, ("", "")), f.key == "NAME", False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(
        demo_connector, connection, NAME="Fjällbygg AB", VATNO="SE556000000101", POSTALCITY="Umeå", EMAIL="a@x.example"
    )
    record = company(name="Fjällbygg AB", vat_no="SE556999999901", postal_city="Luleå", email="b@x.example")
    UserFactory.create(username="anna", perms=["crm.view_company", "connections.use_erp_sync"])
    context = browser.new_context(base_url=live_server.url, locale="sv-SE", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/companies/")
    page.get_by_label("Användarnamn").fill("anna")
    page.get_by_label("Lösenord").fill("secret-pass-123")
    page.get_by_role("button", name="Logga in").click()
    page.goto(record.get_absolute_url())
    page.get_by_role("tab", name="ERP", exact=True).click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    card = page.locator(f"#erp-card-{connection.pk}")
    card.get_by_role("row", name=actor.key or "").get_by_role("button", name="Välj").click()

    warning = card.locator(".erp-identity-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Är det här rätt aktör?")
    expect(warning).to_contain_text("Momsregistreringsnummer, Ort skiljer sig")
    expect(card.locator("tr[data-identifying]")).to_have_count(2)
    expect(card.locator("tr[data-identifying] .badge-warn").first).to_have_text("Skiljer sig")
    why = card.locator(f"#why-EMAIL-{connection.pk}")
    expect(why).to_be_visible()
    expect(why).to_have_text("Synkroniseras bara från ERP: fältmappningens riktning är ERP → CRM.")
    expect(card.locator(f"#why-NUMBER2-{connection.pk}")).to_have_text(
        "Skrivskyddat i ERP: ERP:s värde behålls och kopieras till CRM."
    )
    expect(card.locator("input[name=choice-EMAIL][value=crm]")).to_be_disabled()
    assert english_on(page, DATA_WORDS) == []

    card.get_by_role("button", name="Koppla och synkronisera").click()
    expect(card).to_have_attribute("data-state", "ok", timeout=30_000)
    assert Link.objects.get(company=record).erp_key == actor.key
    context.close()
