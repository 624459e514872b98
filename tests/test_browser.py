"""A person in real Chromium logs in, finds a company, edits it, and switches to Swedish."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from crm.models import Company

from .conftest import require_service
from .factories import CompanyFactory, ContactFactory, UserFactory

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_service(CHROMIUM.exists(), "Chromium (Debian package chromium)")
    # Playwright's sync API runs an event loop in this thread; the live server's database work is
    # still synchronous, so Django's async-safety guard is relaxed for these tests only.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/companies/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_sales_user_logs_in_searches_and_edits_a_company(page: Any) -> None:
    UserFactory.create(username="anna", perms=[f"crm.{a}_company" for a in ("view", "change")])
    company = CompanyFactory.create(name="Fjällbygg AB", postal_city="Luleå")
    ContactFactory.create(company=company, first_name="Sigrid", last_name="Berg")
    CompanyFactory.create(name="Havsdata Oy")

    log_in(page, "anna", "wrong-password")
    expect(page.get_by_role("alert")).to_be_visible()
    log_in(page, "anna", "secret-pass-123")
    page.wait_for_url("**/companies/")
    expect(page.get_by_role("heading", name="Companies")).to_be_visible()

    page.get_by_label("Search").fill("fjäll")  # htmx replaces the table as the user types
    expect(page.locator("#record-table")).not_to_contain_text("Havsdata")
    page.get_by_role("link", name="Fjällbygg AB").click()
    expect(page.get_by_role("tab", name="Details")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text("Sigrid Berg")).to_be_visible()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    page.get_by_label("Name").fill("Fjällbygg Nord AB")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved Fjällbygg Nord AB.")).to_be_visible()
    assert Company.objects.get(pk=company.pk).name == "Fjällbygg Nord AB"


def test_the_interface_switches_to_swedish(page: Any) -> None:
    UserFactory.create(username="erik", perms=["crm.view_company", "crm.view_contact"])
    log_in(page, "erik", "secret-pass-123")
    page.wait_for_url("**/companies/")
    page.get_by_label("Language").select_option("sv")
    expect(page.get_by_role("heading", name="Företag")).to_be_visible()
    expect(page.get_by_role("link", name="Kontakter")).to_be_visible()
    expect(page.get_by_role("button", name="Logga ut")).to_be_visible()


def test_a_user_without_rights_is_told_so(page: Any) -> None:
    UserFactory.create(username="olle")
    log_in(page, "olle", "secret-pass-123")
    page.goto("/companies/")
    expect(page.get_by_role("heading", name="You may not open this page")).to_be_visible()
    page.get_by_role("link", name="Back to the start page").click()
    expect(page.get_by_role("heading", name="Your account has no access yet")).to_be_visible()
