"""The ERP tab in real Chromium, against the Demo ERP process and a real worker, in English and Swedish.

For each of Company, Contact (after its company) and Project an end user runs the automatic search and an
advanced search, picks the actor, chooses which side is right for a differing field, links, waits for the
sync, sees the live values, presses Sync now and disconnects. Create in ERP is shown with a mandatory
prompted default. Labels are looked up through the catalogues, so the same steps run in both languages.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from playwright.sync_api import expect

from connections import display, mapping
from connections.models import ErpConnection, Link
from connectors import protocol as p
from crm.models import Contact, Project

from .conftest import RunningConnector
from .factories import UserFactory
from .sync_helpers import active_connection, company, enable, erp, erp_values, new_customer
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project", "connections.use_erp_sync"]


@pytest.fixture
def connection(demo_connector: RunningConnector) -> ErpConnection:
    connection = active_connection(demo_connector)  # the ERP ranks above the CRM
    mapping.save_field_mapping(
        connection,
        "Customer",
        True,
        [
            mapping.FieldRow(
                f.key, f.crm_field, f.direction, f.key in ("NAME", "PHONE"), f.key in ("BALANCE", "CURRENCY")
            )
            for f in connection.erp_fields.filter(actor_type="Customer")
        ],
        None,
    )
    enable(connection, "Person", search=("FIRSTNAME", "LASTNAME", "EMAIL"), tab=("INVOICE_RECIPIENT",))
    enable(connection, "Project", search=("NAME", "STATUS"), tab=("STATUS", "HOURS_LOGGED"))
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_create=True)
    return connection


def erp_values_of(demo: RunningConnector, connection: ErpConnection, actor_type: p.ActorType, key: str | None) -> Any:
    return erp(demo, connection).get_actors(actor_type, [key or ""]).actors[0].values


def open_tab(browser: Any, live_server: Any, record: Any, language: str) -> Any:  # noqa: F811
    UserFactory.create(username="anna", perms=CRM)
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "anna", "secret-pass-123")
    if language != "en":
        page.get_by_label("Language").select_option(language)
        expect(page.locator("html")).to_have_attribute("lang", language)
    page.goto(record.get_absolute_url())
    page.get_by_role("tab", name="ERP").click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    return page


def link_sync_and_disconnect(
    page: Any,
    record: Any,
    key: str,
    actor_type: str,
    criterion: tuple[str, str],
    differing: str,
    live_label: str,
    screenshot: str = "",
) -> None:
    """The whole connect flow on an open ERP tab; the CRM side is chosen for the ``differing`` field."""
    expect(page.get_by_text(_("Not linked to %(name)s yet.") % {"name": "Demo ERP – Sweden"})).to_be_visible()
    expect(page.get_by_role("row", name=key)).to_be_visible()  # the search on the record's name ran by itself
    page.get_by_role("button", name=_("Advanced search")).click()
    label, value = criterion
    page.locator(".erp-advanced").get_by_label(label, exact=True).fill(value)
    page.locator(".erp-advanced").get_by_role("button", name=_("Search"), exact=True).click()
    row = page.get_by_role("row", name=key)
    row.get_by_role("button", name=_("Choose")).click()
    expect(
        page.get_by_role(
            "heading", name=_("Link to %(type)s %(key)s") % {"type": display.actor_type_word(actor_type), "key": key}
        )
    ).to_be_visible()
    page.get_by_role("row", name=re.compile(f"^{re.escape(differing)}")).locator('input[value="crm"]').check()
    if screenshot:
        shot(page, screenshot)
    page.get_by_role("button", name=_("Link and sync")).click()
    linked = _("Linked %(record)s to %(type)s %(key)s; syncing now.") % {
        "record": record,
        "type": display.actor_type_word(actor_type),
        "key": key,
    }
    expect(page.get_by_text(linked)).to_be_visible()
    page.get_by_role("button", name=_("Sync now")).click()
    expect(page.locator("[id^=sync-result]")).to_contain_text(_("Succeeded"), timeout=30_000)
    page.reload()
    expect(page.locator(".erp-section dt", has_text=live_label).first).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=_("Disconnect")).click()
    expect(page.get_by_text(_("Not linked to %(name)s yet.") % {"name": "Demo ERP – Sweden"})).to_be_visible()


def test_a_company_is_found_chosen_linked_synced_and_disconnected(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    actor = new_customer(demo_connector, connection, NAME="Sjöstrand Logistik AB", PHONE="+46 31 55 00", CURRENCY="NOK")
    new_customer(demo_connector, connection, NAME="Sjöstrand Bygg AB", PHONE="+46 8 1")
    record = company(name="Sjöstrand Logistik AB", phone="+46 31 99 99")
    page = open_tab(browser, live_server, record, "en")
    with translation.override("en"):
        link_sync_and_disconnect(
            page,
            record,
            actor.key or "",
            "Customer",
            ("Name", "Sjöstrand Logistik"),
            "Phone",
            "Balance due",
            screenshot="erp-tab-values-that-differ",
        )
    # The user chose the CRM's phone number: it went to the ERP. Disconnecting removed only the link.
    assert erp_values(demo_connector, connection, actor.key or "")["PHONE"] == "+46 31 99 99"
    assert not Link.objects.filter(company=record).exists()
    page.context.close()


def test_a_contact_is_linked_under_its_company_in_swedish(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    customer = new_customer(demo_connector, connection, NAME="Fjällbygg AB")
    record = company(name="Fjällbygg AB")
    Link.objects.create(connection=connection, actor_type="Customer", erp_key=customer.key or "", company=record)
    person = erp(demo_connector, connection).create_actor(
        p.Actor(
            actor_type=p.ActorType.PERSON,
            parent_actor_type=p.ActorType.CUSTOMER,
            parent_key=customer.key,
            values={"FIRSTNAME": "Sigrid", "LASTNAME": "Berg", "EMAIL": "sigrid@fjallbygg.example"},
        )
    )
    contact = Contact.objects.create(company=record, first_name="Sigrid", last_name="Berg", email="sigrid@crm.example")
    page = open_tab(browser, live_server, contact, "sv")
    with translation.override("sv"):
        link_sync_and_disconnect(
            page,
            contact,
            person.key or "",
            "Person",
            ("Efternamn", "Berg"),  # the connector's Swedish labels
            "E-post",
            "Tar emot fakturor",
            screenshot="erp-tab-contact-swedish",
        )
    values = erp_values_of(demo_connector, connection, p.ActorType.PERSON, person.key)
    assert values["EMAIL"] == "sigrid@crm.example"
    page.context.close()


def test_a_project_is_linked_then_another_is_created_in_the_erp(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    mapping.save_defaults(connection, "Project", {"STATUS": ("PLAN", True, True)}, None)
    owner = company(name="Hamnverket AB")
    actor = erp(demo_connector, connection).create_actor(
        p.Actor(actor_type=p.ActorType.PROJECT, values={"NAME": "Kajen etapp 2", "STATUS": "ACTIVE", "TEXT": "Bryggor"})
    )
    project = Project.objects.create(company=owner, name="Kajen etapp 2", text="Nya bryggor")
    page = open_tab(browser, live_server, project, "en")
    with translation.override("en"):
        link_sync_and_disconnect(
            page, project, actor.key or "", "Project", ("Name", "Kajen"), "Description", "Hours logged"
        )
        # A project the ERP does not have yet: Create in ERP asks for the mandatory status.
        fresh = Project.objects.create(company=owner, name="Kajen etapp 3")
        page.goto(fresh.get_absolute_url())
        page.get_by_role("tab", name="ERP").click()
        page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
        page.get_by_role("button", name="Create in ERP").click()
        expect(page.locator(".erp-create")).to_contain_text("Kajen etapp 3")  # sent from the CRM record
        status = page.get_by_label("Status")
        expect(status).to_have_value("PLAN")  # the default, which the user is asked to confirm
        status.select_option("")
        page.locator(".erp-create").get_by_role("button", name="Create in ERP").click()
        expect(page.get_by_role("alert")).to_contain_text("This field is required.")
        page.get_by_label("Status").select_option(label="In progress")
        shot(page, "erp-tab-create-in-erp")
        page.locator(".erp-create").get_by_role("button", name="Create in ERP").click()
        expect(
            page.get_by_text(re.compile(r"Created Project J\d+ in Demo ERP – Sweden and linked Kajen etapp 3"))
        ).to_be_visible()
        expect(page.get_by_text(re.compile(r"Linked to Project J\d+\."))).to_be_visible()
        # Once synced, someone disconnects the project in another window: Sync now here says it failed, not nothing.
        expect(page.locator(".erp-section")).to_have_attribute("data-state", "ok", timeout=30_000)
        link = Link.objects.get(project=fresh)
        Link.objects.filter(pk=link.pk).delete()
        page.get_by_role("button", name="Sync now").click()
        expect(page.locator("#request-problem")).to_contain_text("the server answered 404")
    assert erp_values_of(demo_connector, connection, p.ActorType.PROJECT, actor.key)["TEXT"] == "Nya bryggor"
    values = erp_values_of(demo_connector, connection, p.ActorType.PROJECT, link.erp_key)
    assert values["NAME"] == "Kajen etapp 3" and values["STATUS"] == "ACTIVE"
    page.context.close()
