"""From a saved connection to an active one, in real Chromium: field mapping, a list, a default, rank, priority."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from connections import services
from connections.models import ErpConnection, FieldDefault, ListMapping, SyncSettings
from connectors import protocol as p
from connectors.models import SyncConnector
from crm.models import Country

from .conftest import DEMO_CONFIG, RunningConnector
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_sync_tab_browser import admin_page, shot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def saved_connection(demo: RunningConnector) -> ErpConnection:
    connector = SyncConnector(name="Demo ERP", url=demo.url)
    connector.set_secret(demo.secret)
    connector.save()
    with services.interactive_client(demo.url, demo.secret) as client:
        fields = client.get_config_data().data.fields
    connection = ErpConnection(name="Demo ERP – Sweden", connector=connector)
    return services.save_connection(connection, fields=fields, values=dict(DEMO_CONFIG), grants=[], user=None)


def test_an_admin_takes_a_connection_from_saved_to_active(admin_page: Any, demo_connector: RunningConnector) -> None:  # noqa: F811
    for code, name in (("SE", "Sweden"), ("NO", "Norway"), ("DK", "Denmark"), ("FI", "Finland")):
        Country.objects.create(code=code, name=name)
    connection = saved_connection(demo_connector)
    page = admin_page
    page.goto(connection.get_absolute_url())
    page.get_by_role("link", name="Field mapping").click()
    expect(page.get_by_role("tab", name="Customer")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("No actor type is enabled for sync.")).to_be_visible()

    page.get_by_label("Sync ERP Customer to CRM Company").check()
    keep = {"NAME": "both", "EMAIL": "both", "COUNTRY": "erp_to_crm"}
    for row in page.locator("#mapping-form tr[data-key]").all():
        key = row.get_attribute("data-key") or ""
        if key in keep:
            row.locator(f"[name='dir-{key}']").select_option(keep[key])
        elif row.locator(f"[name='crm-{key}']").input_value():
            row.locator(f"[name='crm-{key}']").select_option("")
    # A read-only ERP field cannot be written from the CRM: that direction is disabled, with its reason.
    number = page.locator("[name='crm-NUMBER2']")
    number.select_option("NUMBER2")
    expect(page.locator("[name='dir-NUMBER2'] option[value='both']")).to_be_disabled()
    number.select_option("")
    # Shown live on the ERP tab instead of synced.
    page.get_by_label("Show Balance due in ERP tab").check()
    expect(page.get_by_label("Show Name in ERP tab")).to_be_disabled()
    page.get_by_label("Show Name in search").check()
    # Conflicts can be held for review only on a field synced both ways: elsewhere the box is disabled, with why.
    expect(page.get_by_label("Hold conflicts on Country for review")).to_be_disabled()
    expect(page.locator("#hold-why-COUNTRY")).to_be_visible()
    hold_email = page.get_by_label("Hold conflicts on E-mail for review")
    hold_email.check()
    page.locator("[name='dir-EMAIL']").select_option("erp_to_crm")
    expect(hold_email).to_be_disabled()
    expect(hold_email).not_to_be_checked()
    page.locator("[name='dir-EMAIL']").select_option("both")
    expect(hold_email).to_be_enabled()
    page.get_by_label("Hold conflicts on Name for review").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the Customer field mapping; it applies from the next sync.")).to_be_visible()
    expect(page.get_by_label("Hold conflicts on Name for review")).to_be_checked()
    assert set(
        connection.erp_fields.filter(actor_type="Customer", hold_conflicts=True).values_list("key", flat=True)
    ) == {"NAME"}
    shot(page, "field-mapping")

    page.get_by_role("link", name="Map list items").click()
    page.get_by_role("button", name="Match by name").click()
    expect(page.get_by_label("Sweden")).to_have_value(str(Country.objects.get(code="SE").pk))
    page.get_by_label("Norway").select_option(str(Country.objects.get(code="SE").pk))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("each CRM item may stand for one ERP item").first).to_be_visible()
    page.get_by_label("Norway").select_option(str(Country.objects.get(code="NO").pk))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the list mapping of Country.")).to_be_visible()

    page.get_by_role("link", name="Default values").click()
    page.locator("[name='default-PAYMENT_TERMS-PAYMENT_TERMS']").select_option("30")
    page.get_by_label("Ask the user for Customer group").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved the default values for new Customer actors.")).to_be_visible()
    page.get_by_role("link", name="Back to the field mapping").click()

    # The list is read once the field mapping page has come back: .all() does not wait for it.
    expect(page.locator("#rank")).to_contain_text("E-mail")
    start = [item.inner_text() for item in page.locator("#rank li").all()]
    position = next(i for i, text in enumerate(start) if "E-mail" in text)
    while position > 0:  # each move is saved at once and the list redrawn
        page.get_by_role("button", name="Move E-mail up").click()
        position -= 1
        expect(page.locator("#rank li").nth(position)).to_contain_text("E-mail")

    page.goto("/settings/quote-sync/settings/")
    page.get_by_role("button", name="Move Demo ERP – Sweden up").click()
    expect(page.locator("#priority li").first).to_contain_text("Demo ERP – Sweden")
    shot(page, "sync-priority")

    page.goto(connection.get_absolute_url())
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Demo ERP – Sweden is active.")).to_be_visible()

    connection.refresh_from_db()
    assert connection.is_active and connection.priority == 0 and SyncSettings.load().crm_priority == 1
    fields = {f.key: f for f in connection.erp_fields.filter(actor_type="Customer")}
    assert (fields["NAME"].crm_field, fields["NAME"].direction, fields["NAME"].show_in_search) == ("NAME", "both", True)
    assert fields["BALANCE"].show_in_tab and not fields["PHONE"].crm_field
    assert min(fields.values(), key=lambda f: f.rank).key == "EMAIL"
    mapped = dict(ListMapping.objects.filter(field_key="COUNTRY").values_list("erp_key", "crm_item_id"))
    assert mapped["NO"] == Country.objects.get(code="NO").pk and mapped["SE"] == Country.objects.get(code="SE").pk
    assert FieldDefault.objects.get(field_key="PAYMENT_TERMS").value == "30"
    assert FieldDefault.objects.get(field_key="CUSTOMER_GROUP").ask_user
    assert p.ActorType.CUSTOMER.value in connection.actor_types.filter(sync_enabled=True).values_list(
        "actor_type", flat=True
    )
