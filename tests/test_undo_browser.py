"""Undo a run in real Chromium, in English and in Swedish: from the run's page, through the confirmation, to the
undo's own page, which follows the real worker's run to its end; the undone run then says by which run."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from playwright.sync_api import expect

from connections import jobs, services
from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, SyncRun
from crm.models import Company

from .conftest import RunningConnector
from .factories import UserFactory
from .swedish_pages import english_on
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sync_now(link: Any) -> SyncRun:
    run = SyncRun.objects.create(connection=link.connection, link=link, kind=RunKind.SYNC_NOW, total=1)
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


@pytest.mark.parametrize("language", ["en", "sv"])
def test_an_admin_undoes_a_run_from_its_page_and_sees_it_put_back(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
    language: str,
) -> None:
    connection: ErpConnection = active_connection(demo_connector)
    actor = new_customer(demo_connector, connection, NAME="Ånge Snickeri AB", PHONE="+46 690 100", EMAIL="a@ange.se")
    key = actor.key or ""
    record = company(name="Ånge Snickeri AB", phone="+46 690 100", email="a@ange.se")
    link = services.link_record(connection, "Customer", key, record, None)
    sync_now(link)
    Company.objects.filter(pk=record.pk).update(phone="+46 690 999")
    change_in_erp(demo_connector, connection, key, EMAIL="order@ange.se")
    run = sync_now(link)

    UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "ada", "secret-pass-123")
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    with translation.override(language):
        page.goto(connection.get_absolute_url())
        page.get_by_role("link", name=f"{RunKind.SYNC_NOW.label} #{run.pk}").click()
        expect(page.get_by_role("heading", name=f"{_('Job #%(n)s') % {'n': run.pk}}:")).to_be_visible()
        page.get_by_role("link", name=_("Undo this run")).click()

        plan = page.locator("#undo-plan")
        crm = ngettext(
            "In the CRM: %(fields)s field on %(records)s record is put back.",
            "In the CRM: %(fields)s fields on %(records)s records are put back.",
            1,
        ) % {"fields": 1, "records": 1}
        expect(plan).to_contain_text(crm)
        erp = ngettext(
            "In %(erp)s: %(fields)s field on %(records)s record is put back.",
            "In %(erp)s: %(fields)s fields on %(records)s records are put back.",
            1,
        ) % {"erp": connection.name, "fields": 1, "records": 1}
        expect(plan).to_contain_text(erp)
        if language == "sv":
            assert english_on(page) == []
        shot(page, f"undo-confirm-{language}")
        page.get_by_role("button", name=_("Undo"), exact=True).click()

        # The undo's own page, which follows the worker's run to its end.
        expect(page.get_by_text(_("Undo of run #%(run)s is queued.") % {"run": run.pk})).to_be_visible()
        status = page.locator("#run-status")
        expect(status).to_contain_text(str(RunStatus.SUCCEEDED.label), timeout=60_000)  # a real worker
        expect(page.locator("#run-changed")).to_have_text("2")
        expect(page.locator("#run-log")).to_contain_text("+46 690 100")
        expect(page.locator("#run-log")).to_contain_text("a@ange.se")
        undo_run = SyncRun.objects.get(undoes=run)
        shot(page, f"undo-run-{language}")
        if language == "sv":
            assert english_on(page) == []

        # The undone run says by which run, and offers no second undo.
        page.get_by_role("link", name=_("Job #%(n)s") % {"n": run.pk}).click()
        expect(page.get_by_text(_("Undone by run #%(n)s") % {"n": undo_run.pk})).to_be_visible()
        expect(page.get_by_role("link", name=_("Undo this run"))).to_have_count(0)
        if language == "sv":
            assert english_on(page) == []
    record.refresh_from_db()
    assert record.email == "a@ange.se"
    assert erp_values(demo_connector, connection, key)["PHONE"] == "+46 690 100"
    context.close()
