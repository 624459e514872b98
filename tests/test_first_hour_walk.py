"""A new admin's first hour in real Chromium, step by step as the help pages tell it, in Swedish and in English:
from an empty install (one admin, one licensed end user, one company) to a first successful *Synkronisera nu*.

Settings and maintenance → Quote/Sync → Sync → add the Sync Connector → Add an ERP connection (the dialog *Ange ny
ERP-koppling*, its configuration values, *Testa ERP-kopplingen*, OK) → field mapping (every undecided direction set)
→ list mapping → activate → the end user opens the company's ERP tab, searches, links (*Koppla och synkronisera*)
→ *Synkronisera nu* → succeeded, values shown. Every page on the way answers without an error, and a Swedish page
has no English on it but data and brand names.

With ERPSYNC_SCREENSHOTS=1 the walk saves the README's tour: docs/screenshots/<language>/NN-step.png."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from playwright.sync_api import expect

from connections.models import ErpConnection, Link, SyncRun
from crm.models import Company, Country

from .conftest import DEMO_CONFIG, ROOT, RunningConnector, wait_for
from .factories import UserFactory
from .swedish_pages import english_on
from .sync_helpers import new_customer
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "secret-pass-123"
TOUR = os.environ.get("ERPSYNC_SCREENSHOTS") == "1"

# The walk's words: the UI's own (msgid → the reader's language), and the help pages' words, which the Swedish
# pages must use as the help pages do.
HELP_PAGES_SV = {
    "Settings and maintenance": "Inställningar och underhåll",
    "Quote/Sync": "Offert/Synk",
    "Sync": "Synk",
    "Add": "Lägg till",
    "Define new ERP connection": "Ange ny ERP-koppling",
    "Test ERP connection": "Testa ERP-kopplingen",
    "Sync now": "Synkronisera nu",
}


def words(language: str) -> dict[str, str]:
    with translation.override(language):
        w = {
            "username": _("Username"),
            "password": _("Password"),
            "log_in": _("Log in"),
            "settings": _("Settings and maintenance"),
            "quote_sync": _("Quote/Sync"),
            "sync": _("Sync"),
            "add": _("Add"),
            "name": _("Name"),
            "secret": _("Shared secret"),
            "connector_saved": _("Saved %(name)s; it answers as a Sync Connector.") % {"name": "Demo ERP"},
            "dialog": _("Define new ERP connection"),
            "client_name": "Klientnamn" if language == "sv" else "Client name",  # the connector's labels
            "api_key": "API-nyckel" if language == "sv" else "API key",
            "test": _("Test ERP connection"),
            "test_passed": _("Test passed."),
            "connection": "Demo ERP – Sverige",
            "connection_saved": _("Saved the ERP connection %(name)s.") % {"name": "Demo ERP – Sverige"},
            "field_mapping": _("Field mapping"),
            "undecided": _("Set every undecided direction to"),
            "set": _("Set"),
            "save": _("Save"),
            "map_list": _("Map list items"),
            "list_saved": _("Saved the list mapping of %(field)s.")
            % {"field": "Land" if language == "sv" else "Country"},
            "back": _("Back to the connection"),
            "activate": _("Activate"),
            "active": _("%(name)s is active.") % {"name": "Demo ERP – Sverige"},
            "erp_tab": "ERP",
            "search": _("Search the ERP"),
            "choose": _("Choose"),
            "link_and_sync": _("Link and sync"),
            "in_step": _("In step"),
            "sync_now": _("Sync now"),
            "succeeded": _("Succeeded"),
        }
    if language == "sv":
        for msgid, swedish in HELP_PAGES_SV.items():
            with translation.override("sv"):
                assert _(msgid) == swedish, (msgid, _(msgid), swedish)
    return w


# Data on the pages: the connector's labels and values, the company and the actor, the connector's own messages.
DATA_WORDS = ("Nordic sales", "Kortedala Bygg AB")


class Walk:
    """One person's browser on the walk: every page it sees is checked, and on a tour photographed."""

    def __init__(self, browser: Any, live_server: Any, language: str, who: str) -> None:  # noqa: F811
        self.language = language
        self.words = words(language)
        self.context = browser.new_context(
            base_url=live_server.url,
            locale="sv-SE" if language == "sv" else "en-GB",
            viewport={"width": 1280, "height": 900},
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.failures: list[str] = []
        self.page.on("response", lambda r: self.failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page.on("pageerror", lambda error: self.failures.append(f"script error: {error}"))
        self.who = who

    def log_in(self, username: str) -> None:
        self.page.goto("/")
        self.check()
        self.page.get_by_label(self.words["username"]).fill(username)
        self.page.get_by_label(self.words["password"]).fill(PASSWORD)
        self.page.get_by_role("button", name=self.words["log_in"]).click()

    def check(self, shot: str = "") -> None:
        """The page as it is now: no failed request, no error message, and on a Swedish page no English."""
        page = self.page
        page.wait_for_load_state()
        assert self.failures == [], self.failures
        errors = page.evaluate(
            """() => [...document.querySelectorAll(".message-error, .errorlist, .error, .badge-error")]
                .filter((e) => e.checkVisibility() && e.textContent.trim()).map((e) => e.textContent.trim())"""
        )
        assert errors == [], page.url
        assert page.locator("html").get_attribute("lang") == self.language
        if self.language == "sv":
            assert english_on(page, DATA_WORDS) == [], page.url
        if TOUR and shot:
            folder = ROOT / "docs" / "screenshots" / self.language
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{shot}.png"))  # what a person sees: the window


@pytest.mark.parametrize("language", ["sv", "en"])
def test_a_new_admin_walks_the_help_pages_to_a_first_sync_now(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
    language: str,
) -> None:
    UserFactory.create(username="ada", is_superuser=True, is_staff=True, first_name="Ada", last_name="Admin")
    UserFactory.create(
        username="anna",
        first_name="Anna",
        last_name="Andersson",
        perms=["crm.view_company", "crm.change_company", "connections.use_erp_sync"],
    )
    sweden = Country.objects.create(code="SE", name="Sverige" if language == "sv" else "Sweden")
    record = Company.objects.create(name="Kortedala Bygg AB", phone="+46 31 20 20", country=sweden)

    admin = Walk(browser, live_server, language, "ada")
    w = admin.words
    page = admin.page
    admin.log_in("ada")
    admin.check()

    # Inställningar och underhåll → Offert/Synk → Synk.
    page.get_by_role("link", name=w["settings"]).first.click()
    admin.check("01-settings")
    page.get_by_role("link", name=w["quote_sync"]).click()
    expect(page.get_by_role("heading", name=w["quote_sync"])).to_be_visible()
    expect(page.get_by_role("tab", name=w["sync"], exact=True)).to_have_attribute("aria-selected", "true")
    admin.check("02-sync-tab-empty")

    # Add the Sync Connector: its URL and the shared secret it was started with.
    page.locator("#connectors-heading ~ .list-buttons").get_by_role("link", name=w["add"]).click()
    admin.check()
    page.get_by_label(w["name"]).fill("Demo ERP")
    page.get_by_label("URL").fill(demo_connector.url)
    page.get_by_label(w["secret"]).fill(demo_connector.secret)
    admin.check("03-sync-connector")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text(w["connector_saved"])).to_be_visible()
    admin.check()

    # Lägg till ERP-koppling: the dialog, the configuration values, the test, OK.
    page.locator("#connections-heading ~ .list-buttons").get_by_role("link", name=w["add"]).click()
    dialog = page.get_by_role("dialog", name=w["dialog"])
    expect(dialog).to_be_visible()
    admin.check()
    dialog.get_by_role("textbox", name=w["name"], exact=True).fill(w["connection"])
    dialog.get_by_label(w["client_name"]).fill("Nordic sales")
    dialog.get_by_label(w["api_key"]).fill(DEMO_CONFIG["api_key"])
    dialog.get_by_role("button", name=w["test"]).click()
    expect(dialog.locator("#test-result")).to_contain_text(w["test_passed"])
    admin.check("04-new-erp-connection")
    dialog.get_by_role("button", name="OK").click()
    expect(page.get_by_text(w["connection_saved"])).to_be_visible()
    admin.check("05-connection-listed")
    connection = ErpConnection.objects.get()

    # Field mapping: customers sync to companies, and every undecided direction gets one.
    page.get_by_role("link", name=w["connection"], exact=True).click()
    admin.check()
    page.get_by_role("link", name=w["field_mapping"], exact=True).click()
    admin.check()
    undecided = page.locator("#undecided-form")
    if undecided.count():
        undecided.get_by_label(w["undecided"]).select_option(index=0)
        undecided.get_by_role("button", name=w["set"], exact=True).click()
        admin.check()
    page.locator("#sync_enabled").check()
    page.locator("#mapping-form").get_by_role("button", name=w["save"]).click()
    expect(page.locator(".message-success")).to_be_visible()
    admin.check("06-field-mapping")

    # The list mapping of the country: Sweden is matched by its ISO code already; saved as it is.
    page.locator("tr[data-key=COUNTRY]").get_by_role("link", name=w["map_list"]).click()
    admin.check("07-list-mapping")
    page.get_by_role("button", name=w["save"]).click()
    expect(page.get_by_text(w["list_saved"])).to_be_visible()
    admin.check()

    # Activate.
    page.get_by_role("link", name=w["back"]).click()
    admin.check()
    page.get_by_role("button", name=w["activate"], exact=True).click()
    expect(page.get_by_text(w["active"])).to_be_visible()
    admin.check("08-activated")
    assert ErpConnection.objects.get(pk=connection.pk).is_active
    admin.context.close()

    # The company is in the ERP too, as the ERP's users keep it.
    actor = new_customer(demo_connector, connection, NAME="Kortedala Bygg AB", PHONE="+46 31 10 10", COUNTRY="SE")

    # The end user: the company's ERP tab, a search, Koppla och synkronisera, Synkronisera nu.
    user = Walk(browser, live_server, language, "anna")
    w, page = user.words, user.page
    user.log_in("anna")
    user.check()
    page.goto(record.get_absolute_url())
    user.check()
    page.get_by_role("tab", name=w["erp_tab"], exact=True).click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    card = page.locator(f"#erp-card-{connection.pk}")
    expect(card).to_have_attribute("data-state", "unlinked")
    # The tab searches for the company's name at once; then the user searches for a part of it.
    row = card.get_by_role("row", name=actor.key or "")
    expect(row).to_be_visible()
    card.get_by_role("searchbox").fill("Kortedala")
    with page.expect_response(lambda response: "q=Kortedala&" in response.url or response.url.endswith("q=Kortedala")):
        card.get_by_role("button", name=w["search"], exact=True).click()
    expect(row).to_be_visible()
    user.check("09-erp-tab-search")
    row.get_by_role("button", name=w["choose"]).click()
    expect(card.get_by_role("button", name=w["link_and_sync"])).to_be_visible()  # which side is right, per field
    user.check("10-link")
    card.get_by_role("button", name=w["link_and_sync"]).click()
    expect(card).to_have_attribute("data-state", "ok", timeout=30_000)
    expect(card.locator(".erp-badge")).to_have_text(w["in_step"])
    user.check()

    runs = SyncRun.objects.filter(link__company=record)
    assert runs.count() == 1
    card.get_by_role("button", name=w["sync_now"]).click()
    wait_for(lambda: runs.count() == 2 and runs.filter(status="succeeded").count() == 2, 30, "Sync now to succeed")
    # The run has succeeded; the tab, as the user sees it after a reload, is in step with the values synced.
    page.reload()
    card = page.locator(f"#erp-card-{connection.pk}")
    expect(card).to_have_attribute("data-state", "ok", timeout=30_000)
    expect(card.locator("dd", has_text="Kortedala Bygg AB").first).to_be_visible()
    expect(card.locator("dd", has_text="+46 31").first).to_be_visible()
    user.check("11-synced")
    link = Link.objects.get(company=record)
    assert link.erp_key == actor.key and link.status == "ok" and not link.last_error
    user.context.close()
