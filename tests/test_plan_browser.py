"""A plan before bulk work in real Chromium, in English and in Swedish, with a real worker: Plan first beside Sync
all, the plan reviewed (totals, a filter, per-field old → new), a value changed in between, Approve and run, and
the result: the planned field written, the changed one listed and not written."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from connections.choices import RunKind
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, SyncRun
from crm.models import Company

from .conftest import RunningConnector
from .swedish_pages import no_english
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from .test_sync_tab_browser import admin_page, shot  # noqa: F401  (an admin's logged-in page)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en": {
        "plan_first": "Plan first",
        "ready": "Ready for review",
        "to_crm": "1 field to the CRM",
        "to_erp": "1 field to the ERP",
        "direction": "Direction",
        "to_crm_option": "To the CRM",
        "filter": "Filter",
        "show_all": "Show all",
        "approve": "Approve and run",
        "done": "Approved: carried out",
        "written": "1 field written",
        "changed": "Changed since the plan",
    },
    "sv": {
        "plan_first": "Planera först",
        "ready": "Klar att granska",
        "to_crm": "1 fält till CRM",
        "to_erp": "1 fält till ERP",
        "direction": "Riktning",
        "to_crm_option": "Till CRM",
        "filter": "Filtrera",
        "show_all": "Visa alla",
        "approve": "Godkänn och kör",
        "done": "Godkänd: genomförd",
        "written": "1 fält skrivet",
        "changed": "Ändrad sedan planen",
    },
}


def in_step(connector: RunningConnector, language: str) -> tuple[ErpConnection, dict[str, Link]]:
    """Two linked customers in step after a Sync all (run in this process); then each changes on one side."""
    connection = active_connection(connector)
    links = {}
    for side in ("erp", "crm"):
        name = f"Webbplan {language} {side} AB"
        actor = new_customer(connector, connection, NAME=name, PHONE="+46 8 50 00")
        links[side] = Link.objects.create(
            connection=connection,
            actor_type="Customer",
            erp_key=actor.key or "",
            company=company(name=name, phone="+46 8 50 00"),
        )
    synced = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": synced.pk})
    change_in_erp(connector, connection, links["erp"].erp_key, PHONE="+46 8 50 11")
    Company.objects.filter(pk=links["crm"].company_id or 0).update(phone="+46 8 50 22")
    return connection, links


@pytest.mark.parametrize("language", ["en", "sv"])
def test_an_admin_plans_a_sync_all_reviews_it_and_approves_it(
    worker: Any,  # noqa: F811
    admin_page: Any,  # noqa: F811
    demo_connector: RunningConnector,
    live_server: Any,
    language: str,
) -> None:
    words = WORDS[language]
    connection, links = in_step(demo_connector, language)
    page = admin_page
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto(connection.get_absolute_url())
    plan_first = page.locator("button[data-plan='sync_all']")
    expect(plan_first).to_have_text(words["plan_first"])
    no_english(page, language)
    plan_first.click()

    # The worker makes the plan; the page follows its progress, then shows it (a loaded machine may take a while).
    expect(page.locator("[data-phase]")).to_have_text(words["ready"], timeout=60_000)
    totals = page.locator("#plan-totals")
    expect(totals).to_contain_text(words["to_crm"])
    expect(totals).to_contain_text(words["to_erp"])
    rows = page.locator(".plan-rows")
    erp_row = rows.get_by_role("row", name=re.compile(f"Webbplan {language} erp AB"))
    expect(erp_row).to_contain_text("+46 8 50 00 → +46 8 50 11")
    expect(rows.get_by_role("row", name=re.compile(f"Webbplan {language} crm AB"))).to_contain_text(
        "+46 8 50 00 → +46 8 50 22"
    )
    shot(page, f"plan-review-{language}")
    no_english(page, language)
    # Review: only what goes to the CRM, then everything again.
    page.get_by_label(words["direction"]).select_option(label=words["to_crm_option"])
    page.get_by_role("button", name=words["filter"], exact=True).click()
    expect(rows.get_by_role("row", name=re.compile(f"Webbplan {language} crm AB"))).to_have_count(0)
    expect(erp_row).to_be_visible()
    page.get_by_role("link", name=words["show_all"]).click()
    expect(rows.get_by_role("row", name=re.compile(f"Webbplan {language} crm AB"))).to_be_visible()
    assert erp_values(demo_connector, connection, links["crm"].erp_key)["PHONE"] == "+46 8 50 00"  # nothing written

    # Someone changes the CRM phone again before the plan is approved: that field is not written.
    Company.objects.filter(pk=links["crm"].company_id or 0).update(phone="+46 8 50 33")
    page.get_by_role("button", name=words["approve"]).click()
    expect(page.locator("[data-phase]")).to_have_text(words["done"], timeout=60_000)
    expect(page.locator("#plan-result")).to_contain_text(words["written"])
    changed = page.locator("#plan-changed")
    expect(changed).to_contain_text(words["changed"])
    expect(changed.get_by_role("row", name=re.compile(f"Webbplan {language} crm AB"))).to_contain_text(
        "+46 8 50 00 → +46 8 50 33"
    )
    shot(page, f"plan-carried-out-{language}")
    assert Company.objects.get(pk=links["erp"].company_id or 0).phone == "+46 8 50 11"
    assert erp_values(demo_connector, connection, links["crm"].erp_key)["PHONE"] == "+46 8 50 00"
    no_english(page, language)
