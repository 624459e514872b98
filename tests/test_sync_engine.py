"""The engine against the real Demo ERP process: every change reaches the other side, or says why not."""

from __future__ import annotations

import pytest
from django.core.validators import MaxLengthValidator

from connections import jobs, services
from connections.choices import LinkStatus
from connections.models import ErpConnection, SyncLogEntry
from connections.sync.engine import sync_links
from crm.models import Company, Country

from .conftest import Connector
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer, run_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(demo_erp: Connector) -> ErpConnection:
    return active_connection(demo_erp)


def sync(link: object) -> tuple[object, object]:
    run = run_for(link)
    jobs.claim(run.pk)  # as the task does: the engine commits each batch only while the run is its attempt's
    run.refresh_from_db()
    counts = sync_links(run, [link])  # type: ignore[list-item]
    run.status = "succeeded"  # what the task does after the engine; frees the link for the next run
    run.save(update_fields=["status"])
    link.refresh_from_db()  # type: ignore[attr-defined]
    return run, counts


def test_a_new_link_takes_the_higher_ranked_side_and_records_a_baseline(
    demo_erp: Connector, connection: ErpConnection
) -> None:
    actor = new_customer(demo_erp, connection, PHONE="+46 90 12 34 56", EMAIL="info@granbygg.se", COUNTRY="SE")
    record = company(phone="+46 70 000 00 00")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    _run, counts = sync(link)
    record.refresh_from_db()
    assert (record.phone, record.email, record.country.code) == ("+46 90 12 34 56", "info@granbygg.se", "SE")  # type: ignore[union-attr]
    assert link.baseline == {
        "NAME": "Granbygg AB",
        "PHONE": "+46 90 12 34 56",
        "EMAIL": "info@granbygg.se",
        "COUNTRY": "SE",
    }
    # Three fields were written to the CRM (phone, e-mail, country): the run counts fields, not records.
    assert link.status == LinkStatus.OK and counts.changed == 3 and counts.failed == 0  # type: ignore[attr-defined]
    entry = SyncLogEntry.objects.get(link=link, field_key="PHONE")
    assert (entry.direction, entry.old, entry.new) == ("erp_to_crm", "+46 70 000 00 00", "+46 90 12 34 56")
    assert entry.reason.startswith("conflict: Demo ERP – Sweden ranks higher")


def test_changes_flow_each_way_and_directions_hold(demo_erp: Connector, connection: ErpConnection) -> None:
    actor = new_customer(demo_erp, connection, PHONE="+46 1", EMAIL="a@granbygg.se")
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    # A CRM change goes to the ERP.
    Company.objects.filter(pk=record.pk).update(phone="+46 2")
    sync(link)
    assert erp_values(demo_erp, connection, actor.key or "")["PHONE"] == "+46 2"
    # An ERP change comes to the CRM.
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 3", EMAIL="b@granbygg.se")
    sync(link)
    record.refresh_from_db()
    assert (record.phone, record.email) == ("+46 3", "b@granbygg.se")
    # EMAIL is ERP → CRM only: a CRM change stays in the CRM and the skip is logged.
    Company.objects.filter(pk=record.pk).update(email="crm@granbygg.se")
    sync(link)
    assert erp_values(demo_erp, connection, actor.key or "")["EMAIL"] == "b@granbygg.se"
    skip = SyncLogEntry.objects.filter(link=link, field_key="EMAIL", outcome="skipped").first()
    assert skip is not None and "the direction is ERP → CRM" in skip.reason
    # Nothing changed: nothing is written.
    before = SyncLogEntry.objects.filter(outcome="written").count()
    Company.objects.filter(pk=record.pk).update(email="b@granbygg.se")
    sync(link)
    assert SyncLogEntry.objects.filter(outcome="written").count() == before


@pytest.mark.parametrize("erp_first", [True, False])
def test_a_conflict_is_won_by_the_side_higher_in_priority(demo_erp: Connector, erp_first: bool) -> None:
    connection = active_connection(demo_erp, erp_first=erp_first)
    actor = new_customer(demo_erp, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(phone="+46 CRM")
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 ERP")
    sync(link)
    record.refresh_from_db()
    winner = "+46 ERP" if erp_first else "+46 CRM"
    assert record.phone == winner and erp_values(demo_erp, connection, actor.key or "")["PHONE"] == winner
    assert link.baseline["PHONE"] == winner


def test_an_unmapped_list_item_fails_that_field_only(demo_erp: Connector, connection: ErpConnection) -> None:
    actor = new_customer(demo_erp, connection, PHONE="+46 5", COUNTRY="NO")  # NO has no CRM country mapped
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    _run, counts = sync(link)
    record.refresh_from_db()
    assert record.phone == "+46 5" and record.country is None
    assert link.status == LinkStatus.FAILED and "no CRM item is mapped to ERP item NO" in link.last_error
    assert counts.failed == 1  # type: ignore[attr-defined]
    assert "COUNTRY" not in link.baseline  # tried again next time
    Country.objects.create(code="NO", name="Norway")
    connection.list_mappings.filter(erp_key="NO").update(crm_item_id=Country.objects.get(code="NO").pk)
    sync(link)
    record.refresh_from_db()
    assert record.country is not None and record.country.code == "NO" and link.status == LinkStatus.OK


def test_a_value_that_does_not_fit_is_a_field_error(
    demo_erp: Connector, connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = "Granbygg " + "X" * 80  # fits the ERP's 100 characters
    actor = new_customer(demo_erp, connection, NAME=long_name)
    name = Company._meta.get_field("name")
    monkeypatch.setattr(name, "max_length", 50)  # a CRM with a shorter name field, as its forms would check it
    monkeypatch.setattr(name, "validators", [MaxLengthValidator(50)])
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    record.refresh_from_db()
    assert (
        record.name == "Granbygg AB"
        and "Name: Ensure this value has at most 50 characters (it has 89)." in link.last_error
    )


def test_an_actor_gone_from_the_erp_marks_the_link_and_writes_nothing(
    demo_erp: Connector, connection: ErpConnection
) -> None:
    record = company(phone="+46 7")
    link = services.link_record(connection, "Customer", "C999999", record, None)
    _run, counts = sync(link)
    record.refresh_from_db()
    assert link.status == LinkStatus.ERP_MISSING and record.phone == "+46 7" and counts.failed == 1  # type: ignore[attr-defined]
    assert SyncLogEntry.objects.get(link=link).outcome == "error"


def test_a_value_the_erp_cannot_take_keeps_the_old_baseline(demo_erp: Connector, connection: ErpConnection) -> None:
    actor = new_customer(demo_erp, connection)
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    Company.objects.filter(pk=record.pk).update(name="Granbygg " + "X" * 120)  # fits the CRM's 200, not the ERP's 100
    sync(link)
    assert link.status == LinkStatus.FAILED and "do not fit the ERP field (at most 100)" in link.last_error
    assert link.baseline["NAME"] == "Granbygg AB"
    assert erp_values(demo_erp, connection, actor.key or "")["NAME"] == "Granbygg AB"


def test_links_are_one_to_one_per_connection(demo_erp: Connector, connection: ErpConnection) -> None:
    actor = new_customer(demo_erp, connection)
    first, second = company(), company(name="Other AB")
    services.link_record(connection, "Customer", actor.key or "", first, None)
    with pytest.raises(services.LinkRefused, match="already linked to Granbygg AB"):
        services.link_record(connection, "Customer", actor.key or "", second, None)
    with pytest.raises(services.LinkRefused, match="already linked in Demo ERP – Sweden"):
        services.link_record(connection, "Supplier", "S100001", first, None)
    with pytest.raises(services.LinkRefused, match="cannot be linked to this kind of CRM record"):
        services.link_record(connection, "Person", "P100001", first, None)


def test_a_crm_edit_made_during_the_sync_is_not_overwritten(
    demo_erp: Connector, connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connections.sync import engine

    actor = new_customer(demo_erp, connection, PHONE="+46 1")
    record = company(phone="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    change_in_erp(demo_erp, connection, actor.key or "", PHONE="+46 ERP")
    original = engine._write_erp

    def user_edits_meanwhile(*args: object, **kwargs: object) -> None:
        Company.objects.filter(pk=record.pk).update(phone="+46 typed by a user")
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_write_erp", user_edits_meanwhile)
    sync(link)
    record.refresh_from_db()
    assert record.phone == "+46 typed by a user"
    assert "changed in the CRM during the sync" in link.last_error and link.baseline["PHONE"] == "+46 1"
    monkeypatch.setattr(engine, "_write_erp", original)
    sync(link)  # next time both sides changed: the ERP ranks higher
    record.refresh_from_db()
    assert record.phone == "+46 ERP" and link.status == LinkStatus.OK
