"""A Swedish admin in real Chromium walks the field mapping page and the ERP tab of a linked company: no English
word from the connector or our own (actor types, labels, field types, access) is left on them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from connections import mapping, services
from connections.models import SyncLogEntry, SyncRun
from crm.models import Country

from .conftest import RunningConnector
from .sync_helpers import active_connection, company, new_customer
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_first_hour_browser import swedish_admin  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# English words that must not be left on a Swedish page. ("text" is not here: it is the Swedish word as well.)
DENY = ("Customer", "Supplier", "Name", "Customer number", "list", "read_only", "read-only", "mandatory", "double")


def english_left(text: str) -> list[str]:
    return [word for word in DENY if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)]


def test_a_swedish_admin_sees_swedish_on_the_field_mapping_page_and_the_erp_tab(
    swedish_admin: Any,  # noqa: F811
    demo_connector: RunningConnector,
) -> None:
    connection = active_connection(demo_connector)
    Country.objects.get_or_create(code="NO", defaults={"name": "Norge"})
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, f.show_in_search, f.key in ("BALANCE", "CURRENCY", "BLOCKED"))
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(demo_connector, connection, CURRENCY="NOK", BLOCKED=False, CREDIT_LIMIT="50000.00")
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    run = SyncRun.objects.create(connection=connection, link=link, kind="sync_now")
    for key, old, new in (("COUNTRY", "NO", "SE"), ("NAME", "Granbygg", "Granbygg AB")):
        SyncLogEntry.objects.create(
            run=run, link=link, connection=connection, actor_type="Customer", erp_key=link.erp_key,
            field_key=key, crm_field=key, direction="erp_to_crm", old=old, new=new, outcome="written",
        )  # fmt: skip
    page = swedish_admin

    page.goto(reverse("connections:mapping", args=[connection.pk, "Customer"]))
    expect(page.get_by_role("tab", name="Kund")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("Synkronisera kund i ERP till företag i CRM")).to_be_visible()
    phone = page.locator("[name='tab-PHONE']")
    expect(phone).to_be_disabled()
    expect(phone).to_have_attribute("title", re.compile("^Fältet synkroniseras"))
    # Unmapping the field frees the box and takes its reason away.
    page.locator("[name='crm-PHONE']").select_option("")
    expect(phone).to_be_enabled()
    expect(page.locator("#tab-why-PHONE")).to_be_hidden()
    text = page.locator("main").inner_text()
    assert "Kundnummer" in text and "skrivskyddat" in text and "decimaltal" in text
    assert english_left(text) == [], english_left(text)

    page.goto(reverse("crm:company-tab", args=[record.pk, "erp"]))
    expect(page.get_by_text(f"Kopplad till kund {link.erp_key}.")).to_be_visible()
    expect(page.get_by_text("Norsk krona")).to_be_visible()  # a list value as its Swedish text
    expect(page.get_by_text("Norge → Sverige")).to_be_visible()  # the history's list values as texts
    text = page.locator("main").inner_text()
    assert "Att betala" in text and "Spärrad" in text
    assert english_left(text) == [], english_left(text)
