"""The API tokens page in real Chromium, in English and in Swedish: a user creates a token with a scope, sees it
once, calls the API with it, and revokes it; the Swedish page says nothing in English but data. Labels are looked up
through the catalogues, so the same steps run in both languages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from playwright.sync_api import expect

from api.models import ApiToken

from .factories import UserFactory
from .swedish_pages import no_english
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("language", ["en", "sv"])
def test_a_user_creates_uses_and_revokes_an_api_token(
    browser: Any,  # noqa: F811
    live_server: Any,
    language: str,
) -> None:
    UserFactory.create(username="anna", perms=["crm.view_company", "connections.use_erp_sync"])
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "anna", "secret-pass-123")
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto("/companies/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    with translation.override(language):
        page.get_by_role("link", name=_("API tokens")).click()
        expect(page.get_by_role("heading", name=_("API tokens"), exact=True)).to_be_visible()
        expect(page.get_by_text(_("You have no API tokens."))).to_be_visible()
        if language == "sv":  # the Swedish catalogue is in use, with the help pages' words
            expect(page.get_by_role("heading", name="API-token", exact=True)).to_be_visible()
        no_english(page, language, also_allowed=("API",))

        page.get_by_role("button", name=_("Create token")).click()  # no name: refused, nothing made
        expect(page.get_by_text(_("This field is required."))).to_be_visible()
        assert not ApiToken.objects.exists()
        name = "Nattlig export" if language == "sv" else "Nightly export"
        page.get_by_label(_("Name"), exact=True).fill(name)
        page.get_by_label(_("Read and write")).check()
        page.get_by_label(_("Expires")).fill((timezone.localdate() + timedelta(days=30)).isoformat())
        page.get_by_role("button", name=_("Create token")).click()
        expect(page.get_by_text(_("Created the API token %(name)s.") % {"name": name})).to_be_visible()
        raw = page.locator("#new-token").inner_text().strip()
        assert raw.startswith("esk_")
        no_english(page, language, also_allowed=("API", "Bearer"))
        shot(page, f"api-tokens-created-{language}")
        row = page.locator("table.tokens tbody tr", has_text=name)
        expect(row).to_contain_text(_("Read and write"))
        expect(row).to_contain_text(raw[:12])

        answer = httpx.get(f"{live_server.url}/api/v1/connections/", headers={"Authorization": f"Bearer {raw}"})
        assert answer.status_code == 200 and answer.json() == []
        page.reload()
        expect(page.locator("#new-token")).to_have_count(0)  # shown once
        expect(row).not_to_contain_text(_("Never"))  # last used: now
        no_english(page, language, also_allowed=("API",))

        row.get_by_role("button", name=_("Revoke")).click()
        expect(page.get_by_text(_("Revoked the API token %(name)s.") % {"name": name})).to_be_visible()
        expect(page.locator("table.tokens tbody tr", has_text=name)).to_contain_text(_("Revoked"))
        expect(row.get_by_role("button", name=_("Revoke"))).to_have_count(0)
        no_english(page, language, also_allowed=("API",))
        refused = httpx.get(
            f"{live_server.url}/api/v1/connections/",
            headers={"Authorization": f"Bearer {raw}", "Accept-Language": language},
        )
        assert refused.status_code == 401
        assert refused.json()["message"] == _(
            "Send a valid API token: Authorization: Bearer <token>. It may have been revoked or have expired."
        )
    context.close()
