"""The Content-Security-Policy in real Chromium: the main flows run without one violation, and a script slipped into
a page does not run.

Chromium reports every violation as a ``securitypolicyviolation`` event; the page hands each one to the test at
once, so a violation on a page left a moment later is not lost. An inline handler or script, an inline style, an
``eval`` in a library: any of them fails the test with what was blocked and where.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from connections.models import ErpConnection
from crm.models import Company, Country

from .conftest import RunningConnector
from .factories import UserFactory
from .sync_helpers import customers_for_import, new_customer
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  var text = event.violatedDirective + " blocked " + (event.blockedURI || "inline") + " at " +
    event.sourceFile + ":" + event.lineNumber + " on " + location.pathname;
  window.__cspViolations.push(text);
  window.reportViolation(text);
});
"""


@pytest.fixture
def watched(browser: Any, live_server: Any) -> Any:  # noqa: F811
    """An administrator's page whose CSP violations and script errors are collected, on every page it opens."""
    UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 900})
    violations: list[str] = []
    problems: list[str] = []
    context.expose_function("reportViolation", lambda text: violations.append(text))
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    page.violations, page.problems = violations, problems
    yield page
    context.close()


def test_the_main_flows_raise_no_content_security_policy_violation(
    watched: Any,
    live_server: Any,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
) -> None:
    page = watched
    connection = customers_for_import(demo_connector)
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_create=True)
    key = new_customer(demo_connector, connection, NAME="Kaktusbygg AB", PHONE="+46 8 55 55").key or ""
    record = Company.objects.create(name="Kaktusbygg AB")

    answer = page.goto("/companies/")
    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy
    log_in(page, "ada", "secret-pass-123")
    page.wait_for_url("**/companies/")
    page.get_by_label("Search").fill("kaktus")  # htmx replaces the table as the user types
    page.get_by_role("link", name="Kaktusbygg AB").click()

    # The ERP tab: the search on the record's name runs by itself; link, Sync now (a real worker), disconnect.
    page.get_by_role("tab", name="ERP").click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    page.get_by_role("row", name=key).get_by_role("button", name="Choose").click()
    expect(page.get_by_role("heading", name=f"Link to Customer {key}")).to_be_visible()
    page.get_by_role("button", name="Link and sync").click()
    expect(page.get_by_text(f"Linked {record} to Customer {key}; syncing now.")).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("[id^=sync-result]")).to_contain_text("Succeeded", timeout=30_000)
    page.reload()
    expect(page.get_by_text("+46 8 55 55").first).to_be_visible()
    page.once("dialog", lambda dialog: dialog.dismiss())  # the question is asked by erpsync.js, not inline
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("button", name="Disconnect")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_text("Not linked to Demo ERP – Sweden yet.")).to_be_visible()

    # The Sync tab: the active switch sends its form when ticked; deactivating asks first, on a page of its own.
    page.goto("/settings/quote-sync/sync/")
    page.get_by_label("Demo ERP – Sweden is active").click()
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_text("Demo ERP – Sweden is inactive.")).to_be_visible()
    page.get_by_label("Demo ERP – Sweden is active").check()
    expect(page.get_by_text("Demo ERP – Sweden is active.")).to_be_visible()

    # Field mapping, and the list mapping's check of items chosen twice.
    page.goto(f"/settings/quote-sync/connections/{connection.pk}/mapping/Customer/")
    expect(page.get_by_role("link", name="Map list items").first).to_be_visible()
    page.goto(f"/settings/quote-sync/connections/{connection.pk}/mapping/Customer/lists/COUNTRY/")
    page.get_by_label("Norway").select_option(str(Country.objects.get(code="SE").pk))
    expect(page.get_by_role("row", name=re.compile("Norway"))).to_have_class(re.compile("row-error"))

    # Import from ERP: the connection is chosen from a list that sends itself; "Select all" unticks every row.
    page.goto("/settings/quote-sync/import/")
    page.get_by_label("ERP connection").select_option(label=connection.name)
    expect(page.get_by_label("Actor type")).to_have_value("Customer")
    page.locator(".erp-advanced").get_by_label("Name", exact=True).fill("Kaktus")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#import-selection")
    expect(results.get_by_label(f"Import {key}")).to_be_checked()
    results.get_by_label("Select all").uncheck()
    expect(results.get_by_label(f"Import {key}")).not_to_be_checked()

    # The sync log of the run above, and the language switch.
    page.goto(f"/settings/quote-sync/connections/{connection.pk}/log/")
    expect(page.locator("main")).to_contain_text("+46 8 55 55")
    page.get_by_label("Language").select_option("sv")
    expect(page.locator("html")).to_have_attribute("lang", "sv")

    page.wait_for_timeout(300)  # reports of the last page reach the test
    assert page.violations == [] and page.problems == []

    # What the policy is for: a handler slipped into the page (say, by a stored value) does not run, and says so.
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<img src=\"/static/img/logo.svg\" onload=\"window.ran = 1\">')"
    )
    # (Polled with evaluate: wait_for_function's predicate is itself evaluated in the page, which the policy forbids.)
    for _ in range(50):
        if page.evaluate("window.__cspViolations.length"):
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.ran === undefined")
    assert any(text.startswith("script-src") for text in page.violations), page.violations
