"""Protocol v1.1, capability decimal: exact numbers as strings ("1234.50"), from the Demo ERP's money fields to a
CRM decimal field and back, compared without float error and shown in the reader's number format."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from connections import mapping, services
from connections.choices import LinkStatus
from connections.display import format_exact
from connections.mapping import direction_problems
from connections.models import ErpConnection, SyncLogEntry
from connectors import protocol as p
from crm.models import Company

from .conftest import Connector
from .sync_helpers import active_connection, company, erp_values, new_customer
from .test_sync_engine import sync

MONEY = p.FieldInfo(key="CREDIT_LIMIT", label="Credit limit", type=p.FieldType.DECIMAL, decimal_places=2)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1234.50", None),
        ("-0.5", None),
        ("1234.505", "has more than 2 decimal places"),
        (1234.5, "is not a decimal value"),
        ("1e3", "is not a decimal value"),
        ("01.5", "is not a decimal value"),
        ("1 234,50", "is not a decimal value"),
    ],
)
def test_a_decimal_value_is_a_plain_string_within_its_places(value: p.Value, problem: str | None) -> None:
    found = p.check_value(MONEY, value)
    assert (found is None) if problem is None else (problem in str(found))


def test_decimal_restrictions_compare_exactly() -> None:
    assert p.restriction_matches(p.FieldType.DECIMAL, "eq", ["1234.5"], "1234.50")
    assert p.restriction_matches(p.FieldType.DECIMAL, "gt", ["0.1"], "0.10000000000000001")  # equal as floats
    assert not p.restriction_matches(p.FieldType.DECIMAL, "lt", ["0.3"], "0.30")


def test_numbers_map_to_a_crm_decimal_field() -> None:
    assert mapping.auto_map("Customer", "CREDIT_LIMIT", "decimal") == "CREDIT_LIMIT"
    assert direction_problems("Customer", "decimal", "normal", "CREDIT_LIMIT") == {}
    assert direction_problems("Customer", "double", "normal", "CREDIT_LIMIT") == {}  # to a double: the nearest one
    assert set(direction_problems("Customer", "integer", "normal", "CREDIT_LIMIT")) == {"crm_to_erp", "both"}
    assert set(direction_problems("Customer", "decimal", "normal", "NUMBER1")) == {"crm_to_erp", "both"}


@pytest.fixture
def connection(demo_erp: Connector, db: Any) -> ErpConnection:
    connection = active_connection(demo_erp)
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, False, False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    rows = [
        row if row.key != "CREDIT_LIMIT" else mapping.FieldRow("CREDIT_LIMIT", "CREDIT_LIMIT", "both", False, False)
        for row in rows
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    return connection


@pytest.mark.django_db
def test_a_decimal_syncs_exactly_both_ways_and_equal_amounts_are_no_change(
    demo_erp: Connector, connection: ErpConnection
) -> None:
    field = connection.erp_fields.get(actor_type="Customer", key="CREDIT_LIMIT")
    assert (field.type, field.decimal_places, field.crm_field) == ("decimal", 2, "CREDIT_LIMIT")
    actor = new_customer(demo_erp, connection, CREDIT_LIMIT="10000.5")
    assert erp_values(demo_erp, connection, actor.key or "")["CREDIT_LIMIT"] == "10000.50"
    record = company()
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    sync(link)
    record.refresh_from_db()
    assert record.credit_limit == Decimal("10000.50") and link.baseline["CREDIT_LIMIT"] == "10000.50"
    # More digits than a double holds: the CRM's amount reaches the ERP to the cent.
    Company.objects.filter(pk=record.pk).update(credit_limit=Decimal("9876543210987.65"))
    sync(link)
    assert erp_values(demo_erp, connection, actor.key or "")["CREDIT_LIMIT"] == "9876543210987.65"
    assert link.baseline["CREDIT_LIMIT"] == "9876543210987.65"
    # Synced again: the ERP's "9876543210987.65" and the CRM's Decimal are the same amount, so nothing is written.
    logged = SyncLogEntry.objects.count()
    _run, counts = sync(link)
    assert counts.changed == 0 and SyncLogEntry.objects.count() == logged  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_an_amount_with_more_places_than_the_crm_keeps_fails_that_field_only(
    demo_erp: Connector, connection: ErpConnection
) -> None:
    field = connection.erp_fields.get(actor_type="Customer", key="CREDIT_LIMIT")
    record = company()
    actor = new_customer(demo_erp, connection, CREDIT_LIMIT="10.00", PHONE="+46 1")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    field.decimal_places = 3  # as if the ERP kept three places
    field.save()
    from connections.sync.values import FieldConverter

    converter = FieldConverter(Company, field, {})
    assert converter.from_erp("12.5") == "12.50"
    with pytest.raises(Exception, match=r"12\.345 does not fit the CRM field \(at most 2 decimal places\)"):
        converter.from_erp("12.345")
    sync(link)
    record.refresh_from_db()
    assert link.status == LinkStatus.OK and record.phone == "+46 1"


def test_decimals_are_shown_in_the_readers_number_format() -> None:
    with translation.override("sv"):
        assert format_exact("1234567.5", 2) == "1\xa0234\xa0567,50"
    with translation.override("en"):
        assert format_exact("1234567.5", 2) == "1,234,567.50"
        assert format_exact("not a number", 2) == "not a number"
