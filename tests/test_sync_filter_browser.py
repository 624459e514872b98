"""Sync filters and the automatic sync of one connection in real Chromium, in English and in Swedish: an admin opens
the filter of Customer from the connection page, a bad value is refused with the reason beside it, the saved filter is
shown in words; then the connection's automatic sync is shown off, on with its interval, and paused. Labels are
looked up through the catalogues, so the same steps run in both languages; the Swedish pages say nothing in English
but data and brand names."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from playwright.sync_api import expect

from connections.models import ErpActorType, ErpConnection, ErpField, SyncSettings
from crm.models import Category, Company

from .conftest import Connector
from .swedish_pages import no_english
from .sync_helpers import active_connection
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_connection_dialog_browser import admin_in
from .test_sync_tab_browser import SHOTS, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("language", ["en", "sv"])
def test_an_admin_sets_a_sync_filter_and_the_connections_automatic_sync(
    browser: Any,  # noqa: F811
    live_server: Any,
    demo_erp: Connector,
    language: str,
) -> None:
    connection = active_connection(demo_erp)
    Category.objects.create(name="Kund")
    page = admin_in(browser, live_server, language)
    page.goto(connection.get_absolute_url())
    with translation.override(language):
        customer = ErpActorType.objects.get(connection=connection, actor_type="Customer")
        name = ErpField.objects.get(connection=connection, actor_type="Customer", key="NAME").display_label
        category = str(Company._meta.get_field("category").verbose_name).capitalize()
        page.get_by_role("link", name=_("Sync filter for %(type)s") % {"type": customer.display_word}).click()
        heading = _("Sync filter: %(type)s") % {"type": customer.display_name}
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        if language == "sv":  # the Swedish catalogue and the connector's Swedish labels are in use
            expect(page.get_by_role("heading", name="Synkfilter: Kund")).to_be_visible()
        expect(page.locator("#filter-now")).to_have_text(_("No conditions: every record syncs."))
        no_english(page, language)

        page.get_by_label(category, exact=True).select_option(label="Kund")
        page.locator("#v-filter-NAME").fill("Gran")
        page.get_by_label(_("Operator for %(field)s") % {"field": name}).select_option(label=_("begins with"))
        page.locator("#v-filter-CREDIT_LIMIT").fill("mycket")
        page.get_by_role("button", name=_("Save")).click()
        expect(
            page.get_by_text(_("The sync filter was not saved: correct the conditions marked below."))
        ).to_be_visible()
        expect(page.get_by_role("alert").filter(has_text=_("Enter a number."))).to_be_visible()
        assert ErpActorType.objects.get(connection=connection, actor_type="Customer").erp_filter == []
        no_english(page, language)

        page.locator("#v-filter-CREDIT_LIMIT").fill("")
        page.get_by_role("button", name=_("Save")).click()
        saved = _(
            "Saved the sync filter of %(type)s. The next syncs apply it; records outside it are left as they are."
        )
        expect(page.get_by_text(saved % {"type": customer.display_name})).to_be_visible()
        crm_condition = _("%(field)s is one of %(items)s") % {"field": category, "items": "Kund"}
        erp_condition = f"{name} {_('begins with')} Gran"
        expect(page.locator("#filter-now")).to_have_text(f"{_('Syncs only when:')} {crm_condition}; {erp_condition}")
        no_english(page, language)
        shot(page, f"sync-filter-{language}")
        page.get_by_role("link", name=_("Back to the connection")).click()
        expect(page.get_by_text(_("Filtered"), exact=True)).to_be_visible()

        # The connection's automatic sync: off for every connection, then on with the connection's own interval.
        state = page.locator("#automatic-state")
        expect(state).to_contain_text(_("Automatic sync is off in Sync settings: it runs for no connection."))
        no_english(page, language)
        SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True, "interval_minutes": 15})
        page.reload()
        every = ngettext(
            "Every minute; next run at %(due)s.", "Every %(minutes)s minutes; next run at %(due)s.", 15
        ).split("%(due)s")[0]
        expect(state).to_contain_text(every % {"minutes": 15})
        expect(
            page.get_by_text(_("Blank: every %(minutes)s minutes, as in Sync settings.") % {"minutes": 15})
        ).to_be_visible()
        no_english(page, language)
        page.get_by_label(_("Interval (minutes)")).fill("5")
        page.locator("#automatic-sync").get_by_role("button", name=_("Save")).click()
        expect(state).to_contain_text(
            ngettext("Every minute; next run at %(due)s.", "Every %(minutes)s minutes; next run at %(due)s.", 5).split(
                "%(due)s"
            )[0]
            % {"minutes": 5}
        )
        saved_row = ErpConnection.objects.get(pk=connection.pk)
        assert saved_row.automatic_sync and saved_row.automatic_interval_minutes == 5
        page.get_by_label(_("Automatic sync of this connection")).uncheck()
        page.locator("#automatic-sync").get_by_role("button", name=_("Save")).click()
        expect(state).to_contain_text(_("Paused"))
        if language == "sv":
            expect(state).to_contain_text("Pausad")
        expect(state).to_contain_text(_("When it is resumed, it catches up with the changes made meanwhile."))
        assert not ErpConnection.objects.get(pk=connection.pk).automatic_sync
        no_english(page, language)
        page.locator("#automatic-sync").screenshot(path=str(SHOTS / f"connection-automatic-sync-{language}.png"))
    page.context.close()
