"""A held conflict resolved from the ERP tab in real Chromium, in English and in Swedish, against the Demo ERP
process and a real worker: the card shows both values, refuses a bad edited value, and the chosen value is synced
to both sides by the Sync now the resolution queues."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from django.utils import translation
from django.utils.translation import gettext as _
from playwright.sync_api import expect

from connections import jobs, mapping, services
from connections.models import ErpConnection, HeldConflict, Link
from connections.sync.engine import sync_links
from crm.models import Company

from .conftest import RunningConnector
from .swedish_pages import english_on
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer, run_for
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_erp_tab_browser import open_tab
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATA_WORDS = ("Customer", "Name", "Phone", "Demo ERP", "Sweden")


@pytest.fixture
def connection(demo_connector: RunningConnector) -> ErpConnection:
    connection = active_connection(demo_connector)
    ErpConnection.objects.filter(pk=connection.pk).update(last_test_ok=True)
    connection.refresh_from_db()
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, f.key == "NAME", False, f.key == "PHONE")
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    return connection


def sync(link: Link) -> None:
    run = run_for(link)
    jobs.claim(run.pk)
    run.refresh_from_db()
    sync_links(run, [link])
    run.status = "succeeded"
    run.save(update_fields=["status"])


@pytest.mark.parametrize("language", ["en", "sv"])
def test_a_held_conflict_is_resolved_from_the_erp_tab(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
    language: str,
) -> None:
    name = f"Konfliktbygg {language} AB"
    actor = new_customer(demo_connector, connection, NAME=name, PHONE="+46 1")
    key = actor.key or ""
    record = company(name=name, phone="+46 1")
    link = services.link_record(connection, "Customer", key, record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(phone="+46 90 11 11")
    change_in_erp(demo_connector, connection, key, PHONE="+46 90 22 22")
    sync(link)
    assert HeldConflict.objects.filter(link=link, closed_at__isnull=True).count() == 1

    page = open_tab(browser, live_server, record, language)
    card = page.locator(f"#erp-card-{connection.pk}")
    held = card.locator(".erp-held")
    with translation.override(language):
        phone = connection.erp_fields.get(actor_type="Customer", key="PHONE").display_label  # the connector's label
        expect(held.get_by_role("heading", name=_("Held conflicts"))).to_be_visible()
        expect(held.locator(".held-crm")).to_have_text("+46 90 11 11")
        expect(held.locator(".held-erp")).to_have_text("+46 90 22 22")
        expect(card.locator(".erp-held-badge")).to_have_text(_("%(n)s held conflict") % {"n": 1})
        if language == "sv":
            assert english_on(page, DATA_WORDS) == []
        shot(page, f"erp-tab-held-conflict-{language}")
        if language == "en":
            held.get_by_role("button", name=_("Keep the value in %(name)s") % {"name": connection.name}).click()
            winner = "+46 90 22 22"
        else:
            # A value the CRM's phone field cannot take is refused, with why, and nothing changes.
            box = held.get_by_role("textbox", name=_("Edited value of %(label)s") % {"label": phone})
            box.fill("+46 " + "9" * 200)
            held.get_by_role("button", name=_("Keep the edited value")).click()
            refused = _("%(field)s: the edited value cannot be used: %(why)s") % {"field": phone, "why": ""}
            expect(card.locator(".erp-notice")).to_contain_text(refused.strip())
            assert english_on(page, DATA_WORDS) == []
            assert HeldConflict.objects.get(link=link).resolved_at is None
            box = held.get_by_role("textbox", name=_("Edited value of %(label)s") % {"label": phone})
            box.fill("+46 90 33 33")
            held.get_by_role("button", name=_("Keep the edited value")).click()
            winner = "+46 90 33 33"
        # The worker syncs the chosen value; the card ends in step, with nothing held.
        expect(card).to_have_attribute("data-state", "ok", timeout=60_000)
        expect(card.locator(".erp-held")).to_have_count(0, timeout=60_000)
        expect(card.locator(".erp-held-badge")).to_have_count(0)
        expect(page.locator("#erp-history")).to_contain_text(winner)
        if language == "sv":
            assert english_on(page, DATA_WORDS) == []
    record.refresh_from_db()
    assert record.phone == winner and erp_values(demo_connector, connection, key)["PHONE"] == winner
    assert HeldConflict.objects.get(link=link).closed_at is not None
    page.context.close()


def test_a_held_conflict_on_an_address_of_several_lines_keeps_its_lines_to_the_byte(
    browser: Any,  # noqa: F811
    live_server: Any,
    worker: Any,  # noqa: F811
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    """In Swedish: both sides changed a postal address of several lines (decomposed Å Ä Ö, Ø). The card shows
    each value with its lines and offers a box of several lines; kept as shown, the CRM's value is written to both
    sides to the byte; edited, the new lines arrive as typed."""
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, f.key == "NAME", False, False)
        for f in connection.erp_fields.filter(actor_type="Customer")
        if f.key != "POSTALAD1"
    ]
    rows.append(mapping.FieldRow("POSTALAD1", "POSTALAD1", "both", False, False, True))
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    first = unicodedata.normalize("NFD", "c/o Åkerström\nBox 12")
    in_crm = unicodedata.normalize("NFD", "c/o Åkerström\nLgh 1831\nØstra gatan 4")
    in_erp = unicodedata.normalize("NFD", "Box 99\nSE-903 25 Umeå")
    name = "Flerradsbygg AB"
    actor = new_customer(demo_connector, connection, NAME=name, POSTALAD1=first)
    key = actor.key or ""
    record = company(name=name, postal_address1=first)
    link = services.link_record(connection, "Customer", key, record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(postal_address1=in_crm)
    change_in_erp(demo_connector, connection, key, POSTALAD1=in_erp)
    sync(link)
    assert HeldConflict.objects.filter(link=link, closed_at__isnull=True).count() == 1

    page = open_tab(browser, live_server, record, "sv")
    card = page.locator(f"#erp-card-{connection.pk}")
    held = card.locator(".erp-held")
    with translation.override("sv"):
        label = connection.erp_fields.get(actor_type="Customer", key="POSTALAD1").display_label
        box = held.get_by_role("textbox", name=_("Edited value of %(label)s") % {"label": label})
        expect(box).to_have_value(in_crm)  # every line, in a box of several lines
        assert held.locator(".held-crm").evaluate("e => e.innerText").splitlines() == in_crm.splitlines()
        assert held.locator(".held-erp").evaluate("e => e.innerText").splitlines() == in_erp.splitlines()
        assert english_on(page, DATA_WORDS) == []
        shot(page, "erp-tab-held-conflict-lines-sv")
        # Kept as the box shows it: the browser sends CRLF, and the CRM's value is kept to the byte.
        held.get_by_role("button", name=_("Keep the edited value")).click()
        expect(card).to_have_attribute("data-state", "ok", timeout=60_000)
        expect(card.locator(".erp-held")).to_have_count(0, timeout=60_000)
        # The card's synced values show the address with its lines too, not run together on one.
        synced = card.locator("dd", has_text="Lgh 1831")
        expect(synced).to_have_count(1)
        assert synced.evaluate("e => e.innerText").splitlines() == in_crm.splitlines()
    record.refresh_from_db()
    assert record.postal_address1 == in_crm
    assert erp_values(demo_connector, connection, key)["POSTALAD1"] == in_crm
    assert HeldConflict.objects.get(link=link).resolved_value == in_crm

    # Both sides change again; this time the user edits the box: the lines arrive as typed.
    Company.objects.filter(pk=record.pk).update(postal_address1="Box 1\nA")
    change_in_erp(demo_connector, connection, key, POSTALAD1="Box 2\nB")
    sync(link)
    page.reload()
    with translation.override("sv"):
        box = held.get_by_role("textbox", name=_("Edited value of %(label)s") % {"label": label})
        typed = unicodedata.normalize("NFD", "Box 3\nÄlvgatan 7\nSE-903 25 Umeå")
        box.fill(typed)
        held.get_by_role("button", name=_("Keep the edited value")).click()
        expect(card.locator(".erp-held")).to_have_count(0, timeout=60_000)
        expect(card).to_have_attribute("data-state", "ok", timeout=60_000)
    record.refresh_from_db()
    assert record.postal_address1 == typed
    assert erp_values(demo_connector, connection, key)["POSTALAD1"] == typed
    page.context.close()
