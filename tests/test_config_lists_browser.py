"""A Swedish admin in real Chromium defines an ERP connection whose office list depends on the owner and token
typed (protocol v1.1, config_list_values): typing them makes the list appear with the owner's offices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from connections import services
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp

from .connectors.offices_connector import TOKEN, Offices
from .connectors.servers import serving
from .factories import UserFactory
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SECRET = "offices-connector-secret-42"


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


@pytest.fixture
def offices_connector(db: Any) -> Iterator[tuple[Offices, SyncConnector]]:
    book = Offices()
    with serving(ConnectorApp(book, SECRET), threads=8) as url:
        connector = SyncConnector(name="Kontorsboken", url=url)
        assert services.save_checked_connector(connector, SECRET, None) is None
        yield book, connector


@pytest.fixture
def new_connection_page(swedish_admin: Any, offices_connector: tuple[Offices, SyncConnector]) -> tuple[Any, Offices]:
    """*Ange ny ERP-koppling* with the address book's connector chosen, and the address book."""
    book, connector = offices_connector
    swedish_admin.goto(reverse("connections:connection-add") + f"?connector={connector.pk}")
    return swedish_admin, book


def test_typing_the_values_a_list_depends_on_makes_the_list_appear(new_connection_page: tuple[Any, Offices]) -> None:
    page, book = new_connection_page
    office = page.get_by_label("Office")
    expect(page.get_by_text("Fyll i Owner och Token för att kunna välja i listan.")).to_be_visible()
    expect(office.locator("option")).to_have_text(["—"])

    page.get_by_label("Owner").fill("Nord")
    page.get_by_label("Token").fill("fel-token")
    page.get_by_label("Token").press("Tab")  # the value is entered: the list is read with it
    expect(page.get_by_text("Token är fel: inga kontor kan visas.")).to_be_visible()

    page.get_by_label("Token").fill(TOKEN)
    page.get_by_label("Token").press("Tab")
    expect(office.locator("option")).to_have_text(["—", "Nord Norr", "Nord Söder"])
    expect(page.get_by_text("Token är fel")).to_have_count(0)
    assert book.calls[-1] == {"owner": "Nord", "token": TOKEN, "office": None}

    office.select_option(label="Nord Söder")
    page.get_by_label("Namn").fill("Kontorsboken – Nord")
    page.get_by_role("button", name="Testa ERP-kopplingen").click()
    expect(page.locator("#test-result [data-passed='true']")).to_have_count(1)
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("ERP-kopplingen Kontorsboken – Nord har sparats.")).to_be_visible()


# A value changed the moment the list has arrived (before htmx's default 20 ms of settling) must still read the list
# again: on a busy machine a Tab can land there, and the list then showed what was typed before it.
CHANGE_TOKEN_AS_THE_LIST_ARRIVES = """
document.body.addEventListener("htmx:afterSwap", function once(event) {
  if (event.detail.target.id !== "config-list-office") return;
  document.body.removeEventListener("htmx:afterSwap", once);
  setTimeout(function () {
    const token = document.querySelector("[name='cfg-token']");
    token.value = "fel-token";
    token.dispatchEvent(new Event("change", {bubbles: true}));
  }, 0);
});
"""


def test_a_value_changed_as_the_list_arrives_reads_the_list_again(new_connection_page: tuple[Any, Offices]) -> None:
    page, book = new_connection_page
    page.evaluate(CHANGE_TOKEN_AS_THE_LIST_ARRIVES)
    page.get_by_label("Owner").fill("Nord")
    page.get_by_label("Owner").press("Tab")  # read with the owner only; the token changes as that list arrives
    expect(page.get_by_text("Token är fel: inga kontor kan visas.")).to_be_visible()
    assert book.calls[-1] == {"owner": "Nord", "token": "fel-token", "office": None}
