"""The ERP tab's card in real Chromium, in Swedish, against the Demo ERP process and a real worker: after every
action (link, the run ending, Sync now after a failure, Disconnect) the badge, the banner and the values agree,
and nothing on the card is in English but data and names."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from playwright.sync_api import expect

from connections import mapping
from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncRun
from crm.models import Company

from .conftest import RunningConnector
from .factories import UserFactory
from .swedish_pages import english_on
from .sync_helpers import active_connection, company, new_customer
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_erp_tab_browser import open_tab
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project", "connections.use_erp_sync"]
# Data and names this test puts on the page, which stay as they are in Swedish: the ERP's field labels and actor
# types come from the connector (labels in the user's language are the connector's to give).
DATA_WORDS = ("Customer", "Name", "Phone", "Balance due")


@pytest.fixture
def connection(demo_connector: RunningConnector) -> ErpConnection:
    connection = active_connection(demo_connector)
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, f.key == "NAME", f.key == "BALANCE")
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    return connection


def expect_card(
    card: Any, state: str, badge: str | None, error: str | None = None, values: tuple[str, ...] = ()
) -> None:
    """The card is in ``state`` and says so once: its badge, the error banner (only when failed) and the values."""
    expect(card).to_have_attribute("data-state", state, timeout=60_000)  # a real worker, on a busy machine too
    if badge is None:
        expect(card.locator(".erp-badge")).to_have_count(0)
    else:
        expect(card.locator(".erp-badge")).to_have_text(badge)
    expect(card.locator(".badge-error")).to_have_count(1 if state == "failed" else 0)
    if error is None:
        expect(card.locator(".erp-error")).to_have_count(0)
    else:
        expect(card.locator(".erp-error")).to_contain_text(error)
    for value in values:
        expect(card.locator("dd", has_text=value).first).to_be_visible()


def test_a_swedish_user_links_fails_syncs_again_and_disconnects_and_the_card_always_agrees(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    actor = new_customer(demo_connector, connection, NAME="Kortedala Bygg AB", PHONE="+46 31 10 10")
    record = company(name="Kortedala Bygg AB", phone="+46 31 20 20")
    UserFactory.create(username="anna", perms=CRM)
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "anna", "secret-pass-123")
    context.add_cookies([{"name": "django_language", "value": "sv", "url": live_server.url}])
    page.goto(record.get_absolute_url())
    page.get_by_role("tab", name="ERP").click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    card = page.locator(f"#erp-card-{connection.pk}")
    with translation.override("sv"):
        expect_card(card, "unlinked", None)
        card.get_by_role("row", name=actor.key or "").get_by_role("button", name=_("Choose")).click()
        card.get_by_role("button", name=_("Link and sync")).click()
        # Linked: the card says what was done, and the run ends by itself: in step, with the values it agreed on.
        linked = _("Linked %(record)s to %(type)s %(key)s; syncing now.") % {
            "record": record,
            "type": "kund",  # the actor type in a Swedish sentence
            "key": actor.key,
        }
        expect(card.locator(".erp-notice")).to_have_text(linked)
        expect_card(card, "ok", _("In step"), values=("Kortedala Bygg AB", "+46 31 10 10"))
        expect(card.get_by_text(_("Not synced yet"))).to_have_count(0)
        expect(card.locator(".erp-outcome")).to_contain_text(_("Succeeded"))
        assert english_on(page, DATA_WORDS) == []

        # Someone empties the company's name elsewhere: Sync now fails, and the card says so, once.
        Company.objects.filter(pk=record.pk).update(name="")
        card.get_by_role("button", name=_("Sync now")).click()
        expect_card(card, "failed", _("Failed"), error="Namn måste anges.")  # the ERP's words, in Swedish
        expect(card.locator(".erp-outcome")).to_have_count(0)
        shot(page, "erp-tab-card-failed-swedish")
        assert english_on(page, DATA_WORDS) == []

        # Put right and synced again: no red badge, no old error banner, the new values shown.
        Company.objects.filter(pk=record.pk).update(name="Kortedala Bygg och Måleri AB")
        card.get_by_role("button", name=_("Sync now")).click()
        expect_card(card, "ok", _("In step"), values=("Kortedala Bygg och Måleri AB",))
        expect(card).not_to_contain_text(_("Failed"))
        expect(page.locator("#erp-history")).to_contain_text("Kortedala Bygg och Måleri AB")
        shot(page, "erp-tab-card-synced-again-swedish")
        page.reload()  # and the page as loaded agrees with the card as swapped
        expect_card(card, "ok", _("In step"), values=("Kortedala Bygg och Måleri AB",))

        page.once("dialog", lambda dialog: dialog.accept())
        card.get_by_role("button", name=_("Disconnect")).click()
        expect_card(card, "unlinked", None)
        expect(card.locator(".erp-notice")).to_have_text(
            _("Disconnected %(record)s from %(connection)s.")
            % {"record": "Kortedala Bygg och Måleri AB", "connection": connection}
        )
        assert english_on(page, DATA_WORDS) == []
    assert not Link.objects.filter(company=record).exists()
    context.close()


def test_the_card_tells_the_outcome_even_when_a_poll_of_the_run_fails(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    """A server busy for a moment answers one poll of the run with an error: the card asks again and still ends
    in the run's outcome, without a reload."""
    actor = new_customer(demo_connector, connection, NAME="Haga Snickeri AB", PHONE="+46 31 30 30")
    record = company(name="Haga Snickeri AB", phone="+46 31 40 40")
    Link.objects.create(connection=connection, actor_type="Customer", erp_key=actor.key or "", company=record)
    UserFactory.create(username="anna", perms=CRM)
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "anna", "secret-pass-123")
    failed: list[str] = []

    def first_poll_fails(route: Any) -> None:
        if not failed:
            failed.append(route.request.url)
            route.fulfill(status=503, body="busy")
        else:
            route.continue_()

    page.route("**/erp/runs/**", first_poll_fails)
    page.goto(record.get_absolute_url())
    page.get_by_role("tab", name="ERP").click()
    page.wait_for_url("**/tabs/erp/")  # loaded: htmx sends the card's buttons, not the plain forms
    card = page.locator(f"#erp-card-{connection.pk}")
    card.get_by_role("button", name="Sync now").click()
    expect_card(card, "ok", "In step", values=("+46 31 30 30",))
    assert failed, "no poll of the run was answered with an error"
    context.close()


def open_syncing_card(
    browser: Any,  # noqa: F811
    live_server: Any,
    connection: ErpConnection,
    name: str,
) -> tuple[Any, Any, Any]:
    """A linked company whose card follows a running sync (no worker takes it, so it runs until the test ends
    it), open on its ERP tab with every script error collected: the page, the card and the run."""
    record = company(name=name)
    link = Link.objects.create(connection=connection, actor_type="Customer", erp_key="C-race", company=record)
    run = SyncRun.objects.create(connection=connection, link=link, kind=RunKind.SYNC_NOW, status=RunStatus.RUNNING)
    page = open_tab(browser, live_server, record, "en")
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    card = page.locator(f"#erp-card-{connection.pk}")
    expect(card).to_have_attribute("data-state", "syncing")
    return page, card, run


def test_disconnect_while_a_poll_of_the_card_is_on_its_way_leaves_the_card_unlinked(
    browser: Any,  # noqa: F811
    live_server: Any,
    connection: ErpConnection,
) -> None:
    """The card polls its running sync; the user disconnects while a poll's answer is still on its way. The late
    answer is not put anywhere (the card it was for is gone), no script fails, and the card stays unlinked."""
    held: list[Any] = []
    page, card, run = open_syncing_card(browser, live_server, connection, "Råda Gjuteri AB")
    page.route("**/erp/runs/**", lambda route: held.append(route))
    page.wait_for_timeout(2_500)  # the card's next poll is sent, and held
    assert held, "the card sent no poll"
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Disconnect").click()
    expect_card(card, "unlinked", None)
    SyncRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    for route in held:
        with contextlib.suppress(Exception):  # a poll cancelled by the page cannot be answered any more
            route.continue_()
    page.wait_for_timeout(1_000)
    expect_card(card, "unlinked", None)
    assert page.errors == []
    page.context.close()


def test_a_poll_answered_while_disconnect_is_on_its_way_does_not_hide_the_disconnect(
    browser: Any,  # noqa: F811
    live_server: Any,
    connection: ErpConnection,
) -> None:
    """The user disconnects while the card polls, and the run ends before Disconnect is answered: the card ends
    unlinked (what the user did, and what is true), not showing the ended run of a link that no longer exists."""
    held: list[Any] = []
    page, card, run = open_syncing_card(browser, live_server, connection, "Älvdalens Trä AB")
    page.route("**/disconnect/", lambda route: held.append(route))
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Disconnect").click()
    page.wait_for_timeout(500)
    assert held, "Disconnect was not sent"
    SyncRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    page.wait_for_timeout(2_500)  # polls the card would send while Disconnect is on its way
    held[0].continue_()
    expect_card(card, "unlinked", None)
    assert not Link.objects.filter(pk=run.link_id).exists()
    page.wait_for_timeout(500)
    assert page.errors == []
    page.context.close()
