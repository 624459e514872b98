"""Delete and Restore in real Chromium, in English and in Swedish: the confirmation says what the connection holds,
the Sync tab lists it under Deleted connections, and Restore brings it back inactive with its links. Labels are
looked up through the catalogues, so the same steps run in both languages; the Swedish pages say nothing in English
but data and brand names."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from playwright.sync_api import expect

from connections.models import ErpConnection, Link
from connectors.demo import catalogue
from crm.models import Company

from .factories import ErpConnectionFactory
from .swedish_pages import no_english
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_connection_dialog_browser import admin_in
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NAME = "Demo ERP – Sweden"


@pytest.mark.parametrize("language", ["en", "sv"])
def test_an_admin_deletes_a_connection_and_restores_it(
    browser: Any,  # noqa: F811
    live_server: Any,
    language: str,
) -> None:
    # Configured as a connector of protocol v1.1 describes its settings: with labels in both languages.
    labelled = [field.model_dump(mode="json") for field in catalogue.CONFIG_FIELDS_LABELLED]
    connection = ErpConnectionFactory.create(name=NAME, fields=["Customer"], config_fields=labelled)
    for n in range(2):
        record = Company.objects.create(name=f"Granbygg {n} AB")
        Link.objects.create(connection=connection, actor_type="Customer", erp_key=f"C{n}", company=record)
    page = admin_in(browser, live_server, language)
    with translation.override(language):
        row = page.get_by_role("row").filter(has_text=NAME)
        row.get_by_role("link", name=_("Delete")).click()
        expect(page.get_by_role("heading", name=_("Delete %(name)s?") % {"name": NAME})).to_be_visible()
        if language == "sv":  # the Swedish catalogue is in use
            expect(page.get_by_role("heading", name=f"Ta bort {NAME}?")).to_be_visible()
        holds = ngettext(
            "It links %(links)s CRM record to the ERP and has %(log)s sync log entries.",
            "It links %(links)s CRM records to the ERP and has %(log)s sync log entries.",
            2,
        )
        expect(page.locator("#delete-holds")).to_have_text(holds % {"links": 2, "log": 0})
        kept = ngettext(
            "You can restore it from Deleted connections on the Sync tab for %(days)s day; then it is deleted for "
            "good, with its links and sync log, and the connector is told to forget it.",
            "You can restore it from Deleted connections on the Sync tab for %(days)s days; then it is deleted for "
            "good, with its links and sync log, and the connector is told to forget it.",
            30,
        )
        expect(page.get_by_text(kept % {"days": 30})).to_be_visible()
        no_english(page, language)
        shot(page, f"connection-delete-confirm-{language}")
        page.get_by_role("button", name=_("Delete")).click()

        deleted_message = _("Deleted the ERP connection %(name)s. It can be restored from Deleted connections below.")
        expect(page.get_by_text(deleted_message % {"name": NAME})).to_be_visible()
        assert ErpConnection.all_objects.get(pk=connection.pk).deleted_at is not None
        assert not ErpConnection.objects.filter(pk=connection.pk).exists()
        deleted = page.locator("section", has=page.get_by_role("heading", name=_("Deleted connections")))
        expect(deleted.get_by_role("cell", name=NAME, exact=True)).to_be_visible()
        listed = page.locator("section", has=page.get_by_role("heading", name=_("ERP connections"), exact=True))
        expect(listed).to_contain_text(_("No ERP connections are defined yet."))
        no_english(page, language)
        shot(page, f"connection-deleted-list-{language}")

        deleted.get_by_role("button", name=_("Restore %(name)s") % {"name": NAME}).click()
        restored_message = _(
            "Restored the ERP connection %(name)s. It is inactive; activate it when it should sync again."
        )
        expect(page.get_by_text(restored_message % {"name": NAME})).to_be_visible()
        assert page.url.endswith(connection.get_absolute_url())
        no_english(page, language)
        restored = ErpConnection.objects.get(pk=connection.pk)
        assert not restored.is_active and restored.deleted_at is None and restored.links.count() == 2
        page.goto("/settings/quote-sync/sync/")
        expect(page.get_by_role("heading", name=_("ERP connections"), exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name=_("Deleted connections"))).to_have_count(0)
    page.context.close()
