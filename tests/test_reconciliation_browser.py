"""Reconciliation in real Chromium, in English and in Swedish, with a real worker and a real Demo ERP process: an
admin reconciles a connection from its page, follows it to the states it found, and syncs the drifted record."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from playwright.sync_api import expect

from connections.choices import RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import Link, SyncRun
from crm.models import Company

from .conftest import RunningConnector, wait_for
from .swedish_pages import no_english
from .sync_helpers import active_connection, change_in_erp, company, new_customer
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_connection_dialog_browser import admin_in
from .test_sync_jobs import finished, worker  # noqa: F401  (a real worker on Redis)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("language", ["en", "sv"])
def test_an_admin_reconciles_a_connection_and_syncs_what_drifted(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
    language: str,
) -> None:
    connection = active_connection(demo_connector)
    links = []
    for name in ("Stilla", "Rörlig"):
        actor = new_customer(demo_connector, connection, NAME=f"{name} Åkeri AB", PHONE="+46 8 10 10")
        record = company(name=f"{name} Åkeri AB", phone="+46 8 10 10")
        links.append(
            Link.objects.create(connection=connection, actor_type="Customer", erp_key=actor.key or "", company=record)
        )
    first = SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)
    run_sync.apply(kwargs={"run_id": first.pk})  # in step, with baselines, before the admin arrives
    change_in_erp(demo_connector, connection, links[1].erp_key, PHONE="+46 8 20 20")

    page = admin_in(browser, live_server, language)
    page.goto(connection.get_absolute_url())
    section = page.locator("#reconciliation")
    with translation.override(language):
        expect(section).to_contain_text(_("Not reconciled yet."))
        section.get_by_role("button", name=_("Reconcile now")).click()
        # The section follows the run by itself until it ends: one record in step, one drifted.
        expect(section.locator('[data-state="drifted"]')).to_have_text("1", timeout=60_000)
        expect(section.locator('[data-state="in_step"]')).to_have_text("1")
        expect(section).to_contain_text(_("Drifted"))
        no_english(page, language)
        assert Company.objects.get(pk=links[1].company_id or 0).phone == "+46 8 10 10"  # nothing written

        # Once the run has ended (its parts counted before it), the drifted record can be synced.
        drifted = ngettext("Sync the drifted record", "Sync the %(n)s drifted records", 1) % {"n": 1}
        expect(section.get_by_role("button", name=_("Reconcile now"))).to_be_enabled(timeout=60_000)
        section.get_by_role("button", name=drifted).click()
        # What the page follows, read in the database first, so that a failure says which step did not happen.
        queued = wait_for(
            lambda: SyncRun.objects.filter(connection=connection, kind=RunKind.SYNC_DRIFTED).first(),
            20,
            "the sync of the drifted record to be queued",
        )
        ended = wait_for(lambda: finished(queued.pk), 60, f"run {queued.pk} (sync of the drifted record) to end")
        assert ended.status == RunStatus.SUCCEEDED, (ended.status, ended.error)
        expect(section.locator('[data-state="in_step"]')).to_have_text("2", timeout=60_000)
        expect(section.locator('[data-state="drifted"]')).to_have_text("0")
        expect(section.get_by_role("button", name=drifted)).to_have_count(0)
        no_english(page, language)
    assert Company.objects.get(pk=links[1].company_id or 0).phone == "+46 8 20 20"
    kinds = SyncRun.objects.filter(connection=connection, status=RunStatus.SUCCEEDED).values_list("kind", flat=True)
    assert {RunKind.RECONCILE, RunKind.SYNC_DRIFTED} <= set(kinds)
