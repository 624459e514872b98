"""Held conflicts against the real Demo ERP process: a conflict on a field that holds conflicts waits for someone
to choose, neither side is overwritten meanwhile, and the chosen value (CRM, ERP or edited) is synced."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import translation

from connections import conflicts, jobs, mapping, services
from connections.models import AuditEntry, ErpConnection, HeldConflict, Link, SyncLogEntry, SyncRun
from connections.sync.engine import sync_links
from crm.models import Company

from .conftest import Connector
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer, run_for

pytestmark = pytest.mark.django_db


def hold(connection: ErpConnection, *keys: str) -> None:
    """Tick "Hold conflicts for review" for ``keys``, as the field mapping page saves it."""
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, f.show_in_search, f.show_in_tab, f.key in keys)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)


@pytest.fixture
def connection(demo_erp: Connector) -> ErpConnection:
    connection = active_connection(demo_erp)  # the ERP ranks higher: without holding, it would win
    ErpConnection.objects.filter(pk=connection.pk).update(last_test_ok=True)
    connection.refresh_from_db()
    hold(connection, "PHONE")
    return connection


def sync(link: Link, run: SyncRun | None = None) -> None:
    """One sync of ``link``, as the task runs it: the run given (Sync now queued by a resolution), or a new one."""
    run = run or run_for(link)
    jobs.claim(run.pk)
    run.refresh_from_db()
    sync_links(run, [link])
    run.status = "succeeded"
    run.save(update_fields=["status"])
    link.refresh_from_db()


def queued(link: Link) -> SyncRun:
    return SyncRun.objects.get(link=link, status="queued")


@pytest.fixture
def held(demo_erp: Connector, connection: ErpConnection) -> tuple[Link, Company, str]:
    """A link whose PHONE both sides changed, differently, since the last sync: held."""
    actor = new_customer(demo_erp, connection, NAME="Hållbygg AB", PHONE="+46 1")
    record = company(name="Hållbygg AB", phone="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(phone="+46 CRM")
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 ERP", NAME="Hållbygg AB (Umeå)")
    sync(link)
    return link, record, actor.key or ""


def test_a_conflict_on_a_holding_field_is_held_and_logged_once(
    demo_erp: Connector, connection: ErpConnection, held: tuple[Link, Company, str]
) -> None:
    link, record, key = held
    record.refresh_from_db()
    # Neither side is written, the baseline stays; the other field (NAME, ERP changed only) syncs as usual.
    assert record.phone == "+46 CRM" and erp_values(demo_erp, connection, key)["PHONE"] == "+46 ERP"
    assert record.name == "Hållbygg AB (Umeå)"
    assert link.baseline["PHONE"] == "+46 1" and link.status == "ok"
    row = HeldConflict.objects.get(link=link)
    assert (row.field_key, row.crm_value, row.erp_value, row.base_value) == ("PHONE", "+46 CRM", "+46 ERP", "+46 1")
    assert row.crm_changed_at is not None and row.erp_changed_at is not None and row.closed_at is None
    entries = SyncLogEntry.objects.filter(link=link, field_key="PHONE", outcome="skipped")
    assert [e.reason for e in entries] == ["held for review"]
    with translation.override("sv"):
        assert entries[0].reason_shown == "hålls för granskning"

    # Later syncs overwrite neither side, log nothing more, and keep the row's values up to date.
    sync(link)
    change_in_erp(demo_erp, connection, key, PHONE="+46 ERP 2")
    sync(link)
    record.refresh_from_db()
    assert record.phone == "+46 CRM" and erp_values(demo_erp, connection, key)["PHONE"] == "+46 ERP 2"
    assert SyncLogEntry.objects.filter(link=link, field_key="PHONE").count() == 1
    row.refresh_from_db()
    assert row.erp_value == "+46 ERP 2" and row.closed_at is None and HeldConflict.objects.count() == 1


def test_without_holding_the_priority_decides(demo_erp: Connector, connection: ErpConnection) -> None:
    hold(connection)  # untick
    actor = new_customer(demo_erp, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(phone="+46 CRM")
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 ERP")
    sync(link)
    record.refresh_from_db()
    assert record.phone == "+46 ERP" and not HeldConflict.objects.exists()


@pytest.mark.parametrize(
    ("choice", "edited", "winner"),
    [("crm", "", "+46 CRM"), ("erp", "", "+46 ERP"), ("edited", " +46 90 55 55 55 ", "+46 90 55 55 55")],
)
def test_a_resolution_is_synced_to_both_sides(
    demo_erp: Connector,
    connection: ErpConnection,
    held: tuple[Link, Company, str],
    admin_user: Any,
    choice: str,
    edited: str,
    winner: str,
) -> None:
    link, record, key = held
    row = HeldConflict.objects.get(link=link)
    text, run = conflicts.resolve(row, choice, edited, admin_user)
    assert text.endswith("Syncing now.") and winner in text and run == queued(link)
    row.refresh_from_db()
    assert (row.choice, row.resolved_value, row.resolved_by, row.closed_at) == (choice, winner, admin_user, None)
    assert AuditEntry.objects.filter(connection=connection, detail__contains="held conflict on Customer.PHONE").exists()
    sync(link, queued(link))
    record.refresh_from_db()
    assert record.phone == winner and erp_values(demo_erp, connection, key)["PHONE"] == winner
    assert link.baseline["PHONE"] == winner
    row.refresh_from_db()
    assert row.closed_at is not None
    written = SyncLogEntry.objects.filter(link=link, field_key="PHONE", outcome="written")
    assert {e.reason for e in written} == {"conflict resolved by review"}
    assert len(written) == (2 if choice == "edited" else 1)
    # Closed: the next conflict on the field is held anew.
    Company.objects.filter(pk=record.pk).update(phone="+46 CRM 3")
    change_in_erp(demo_erp, connection, key, PHONE="+46 ERP 3")
    sync(link)
    assert HeldConflict.objects.filter(link=link, closed_at__isnull=True).count() == 1


def test_a_bad_edited_value_is_refused_and_changes_nothing(
    connection: ErpConnection, held: tuple[Link, Company, str], admin_user: Any
) -> None:
    link, _record, _key = held
    row = HeldConflict.objects.get(link=link)
    too_long = "+46 " + "9" * 200  # the CRM's phone field takes far fewer characters
    with pytest.raises(conflicts.ConflictRefused, match="the edited value cannot be used"):
        conflicts.resolve(row, "edited", too_long, admin_user)
    with pytest.raises(conflicts.ConflictRefused):
        conflicts.resolve(row, "neither", "", admin_user)
    row.refresh_from_db()
    assert row.resolved_at is None and not SyncRun.objects.filter(link=link, status="queued").exists()
    assert not AuditEntry.objects.filter(detail__contains="held conflict").exists()


def test_a_conflict_that_settles_itself_is_closed(
    demo_erp: Connector, connection: ErpConnection, held: tuple[Link, Company, str]
) -> None:
    link, _record, key = held
    change_in_erp(demo_erp, connection, key, PHONE="+46 CRM")
    sync(link)
    assert HeldConflict.objects.get(link=link).closed_at is not None
    assert link.baseline["PHONE"] == "+46 CRM"


def test_only_a_both_ways_field_can_hold_conflicts(connection: ErpConnection) -> None:
    with pytest.raises(mapping.MappingInvalid) as invalid:
        hold(connection, "EMAIL")  # ERP → CRM
    assert "Only a field synced both ways" in invalid.value.errors["EMAIL"]
    assert not connection.erp_fields.get(actor_type="Customer", key="EMAIL").hold_conflicts


def test_the_mapping_page_saves_the_choice(as_user: Any, admin_user: Any, connection: ErpConnection) -> None:
    client = as_user(admin_user)
    url = reverse("connections:mapping", args=[connection.pk, "Customer"])
    page = client.get(url).content.decode()
    assert 'name="hold-PHONE"' in page and "Hold conflicts for review" in page
    data: dict[str, str] = {"sync_enabled": "on"}
    for f in connection.erp_fields.filter(actor_type="Customer"):
        data[f"crm-{f.key}"], data[f"dir-{f.key}"] = f.crm_field, f.direction
    data["hold-NAME"] = "on"
    assert client.post(url, data).status_code == 302
    assert set(
        connection.erp_fields.filter(actor_type="Customer", hold_conflicts=True).values_list("key", flat=True)
    ) == {"NAME"}
    data["hold-EMAIL"] = "on"
    response = client.post(url, data)
    assert response.status_code == 400 and "Only a field synced both ways" in response.content.decode()
    assert not connection.erp_fields.get(actor_type="Customer", key="EMAIL").hold_conflicts


def test_the_queue_and_the_connection_page_show_held_conflicts(
    as_user: Any, admin_user: Any, connection: ErpConnection, held: tuple[Link, Company, str]
) -> None:
    link, record, _key = held
    client = as_user(admin_user)
    detail = client.get(reverse("connections:connection-detail", args=[connection.pk])).content.decode()
    assert reverse("connections:held-conflicts", args=[connection.pk]) in detail
    assert 'Held conflicts <span class="badge badge-warn">1</span>' in detail
    url = reverse("connections:held-conflicts", args=[connection.pk])
    page = client.get(url).content.decode()
    assert "1 held conflict" in page and "+46 CRM" in page and "+46 ERP" in page and str(record) in page
    client.cookies["django_language"] = "sv"
    swedish = client.get(url).content.decode()
    assert (
        "1 hållen konflikt" in swedish and "Behåll CRM-värdet" in swedish and "Behåll det redigerade värdet" in swedish
    )
    client.cookies["django_language"] = "en"
    row = HeldConflict.objects.get(link=link)
    response = client.post(url, {"conflict": row.pk, "choice": "edited", "value": "x" * 300}, follow=True)
    assert "the edited value cannot be used" in response.content.decode()
    row.refresh_from_db()
    assert row.resolved_at is None
    response = client.post(url, {"conflict": row.pk, "choice": "erp", "value": ""}, follow=True)
    assert "Syncing now." in response.content.decode()
    row.refresh_from_db()
    assert row.choice == "erp" and queued(link)


def test_resolving_from_the_erp_tab_needs_the_right_to_sync(
    as_user: Any, licensed_user: Any, outsider: Any, connection: ErpConnection, held: tuple[Link, Company, str]
) -> None:
    link, record, _key = held
    row = HeldConflict.objects.get(link=link)
    url = reverse("erp:resolve-conflict", args=[link.pk])
    assert as_user(outsider).post(url, {"conflict": row.pk, "choice": "crm"}).status_code == 404
    row.refresh_from_db()
    assert row.resolved_at is None
    client = as_user(licensed_user)
    tab = client.get(reverse("crm:company-tab", args=[record.pk, "erp"])).content.decode()
    assert "Held conflicts" in tab and "Keep the CRM value" in tab and f'value="{row.pk}"' in tab
    response = client.post(url, {"conflict": row.pk, "choice": "crm"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Syncing now." in response.content.decode()
    row.refresh_from_db()
    assert row.choice == "crm" and row.resolved_by == licensed_user
    # A conflict of another link is not found through this one.
    other = as_user(licensed_user).post(url, {"conflict": row.pk + 1000, "choice": "crm"}, HTTP_HX_REQUEST="true")
    assert other.status_code == 400 and "no longer held" in other.content.decode()
    # A conflict id that is not a number is answered the same way, not with a server error.
    bad = as_user(licensed_user).post(url, {"conflict": "12abc", "choice": "crm"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "no longer held" in bad.content.decode()


def test_a_resolution_while_the_connection_cannot_sync_is_written_by_the_next_sync(
    demo_erp: Connector, connection: ErpConnection, held: tuple[Link, Company, str], admin_user: Any
) -> None:
    link, _record, key = held
    ErpConnection.objects.filter(pk=connection.pk).update(last_test_ok=False)
    text, run = conflicts.resolve(HeldConflict.objects.get(link=link), "crm", "", admin_user)
    assert run is None and "It is written when the link syncs next" in text and "has not passed its last test" in text
    assert HeldConflict.objects.get(link=link).choice == "crm"
    ErpConnection.objects.filter(pk=connection.pk).update(last_test_ok=True)
    sync(link)
    assert erp_values(demo_erp, connection, key)["PHONE"] == "+46 CRM"
    assert HeldConflict.objects.get(link=link).closed_at is not None


def test_an_edited_number_is_read_as_the_user_writes_it(
    demo_erp: Connector, connection: ErpConnection, admin_user: Any
) -> None:
    rows = [
        mapping.FieldRow(
            f.key,
            "CREDIT_LIMIT" if f.key == "CREDIT_LIMIT" else f.crm_field,
            "both" if f.key == "CREDIT_LIMIT" else f.direction,
            False,
            False,
            f.key == "CREDIT_LIMIT",
        )
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(demo_erp, connection, NAME="Kreditbygg AB", CREDIT_LIMIT="1000.00")
    record = company(name="Kreditbygg AB", credit_limit="1000.00")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(credit_limit="2000.00")
    change_in_erp(demo_erp, connection, actor.key or "", CREDIT_LIMIT="3000.00")
    sync(link)
    row = HeldConflict.objects.get(link=link)
    assert (row.crm_value, row.erp_value, row.base_value) == ("2000.00", "3000.00", "1000.00")
    with translation.override("sv"):
        with pytest.raises(conflicts.ConflictRefused, match="det redigerade värdet kan inte användas"):
            conflicts.resolve(row, "edited", "tolv", admin_user)
        with pytest.raises(conflicts.ConflictRefused):
            conflicts.resolve(row, "edited", "12,345", admin_user)  # three decimals: the CRM keeps two
        text, run = conflicts.resolve(row, "edited", "2500,5", admin_user)
    assert run is not None and "Synkroniserar nu." in text
    row.refresh_from_db()
    assert row.resolved_value == "2500.50"
    sync(link, run)
    record.refresh_from_db()
    assert (
        str(record.credit_limit) == "2500.50"
        and float(erp_values(demo_erp, connection, actor.key or "")["CREDIT_LIMIT"]) == 2500.5
    )
    assert HeldConflict.objects.get(link=link).closed_at is not None


@pytest.mark.parametrize("language", ["en", "sv"])
def test_the_edit_box_starts_from_a_value_it_reads_back(connection: ErpConnection, language: str) -> None:
    """A number shown in the reader's format (thousands grouped, their decimal mark) is read back as the same one."""
    from connections.sync.values import converters_for

    erp_field = connection.erp_fields.get(actor_type="Customer", key="CREDIT_LIMIT")
    erp_field.crm_field, erp_field.direction = "CREDIT_LIMIT", "both"
    converter = converters_for(connection, "Customer", [erp_field])["CREDIT_LIMIT"]
    with translation.override(language):
        shown = conflicts.edit_text(erp_field, "1234567.50")
        assert conflicts.parse_edited(converter, shown) == "1234567.50", shown
