"""ERP metadata and values as people read them: our own words in their language, numbers, dates and times in
their format and time zone, list values as item texts; the same in a form as on the page beside it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from connections import display, mapping, services, shown
from connections.forms import ConfigForm
from connections.models import ListMapping, SyncLogEntry, SyncRun
from connectors import protocol as p

from .conftest import Connector
from .sync_helpers import active_connection
from .test_erp_tab import setup  # noqa: F401  (the fixture: a linked customer)

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("language", "value", "kind", "text"),
    [
        ("sv", 50000.0, "double", f"50{NBSP}000,00"),
        ("en", 50000.0, "double", "50,000.00"),
        ("sv", "50000.0", "double", f"50{NBSP}000,00"),  # a canonical value kept as text
        ("sv", 0.0, "double", "0,00"),
        ("sv", 25.0, "double", "25,00"),
        ("sv", 1.2345, "double", "1,2345"),
        ("sv", -1234567.5, "double", f"-1{NBSP}234{NBSP}567,50"),
        ("sv", 12000, "integer", f"12{NBSP}000"),
        ("sv", None, "double", "—"),
        ("sv", "", "text", "—"),
        ("sv", True, "checkbox", "Ja"),
        ("en", False, "checkbox", "No"),
        ("sv", "2023-04-07", "date", "2023-04-07"),
        ("en", "2023-04-07", "date", "04/07/2023"),
        # UTC on the wire, Stockholm (summer time) on the page.
        ("sv", "2023-04-07T07:08:00.000000+00:00", "datetime", "2023-04-07 09:08"),
        ("sv", "2023-01-07T07:08:00+00:00", "datetime", "2023-01-07 08:08"),
        ("en", "2023-04-07T07:08:00+00:00", "datetime", "04/07/2023 9:08 a.m."),
        ("sv", "not a date", "datetime", "not a date"),
        ("sv", "Kund AB", "text", "Kund AB"),
    ],
)
def test_values_are_formatted_for_the_reader(language: str, value: Any, kind: str, text: str) -> None:
    with translation.override(language), timezone.override("Europe/Stockholm"):
        assert display.format_value(value, kind) == text


def test_a_list_value_is_shown_as_its_text_and_an_unknown_key_as_itself() -> None:
    assert display.format_value("NO", "list", {"NO": "Norge", "SE": "Sverige"}) == "Norge"
    assert display.format_value("XX", "list", {"NO": "Norge"}) == "XX"


@pytest.mark.parametrize(
    ("language", "typed", "number"),
    [
        ("sv", f"50{NBSP}000,5", 50000.5),
        ("sv", "50 000,5", 50000.5),
        ("sv", "50000.5", 50000.5),
        ("en", "50,000.5", 50000.5),
        ("sv", "tjugo", None),
        ("sv", "nan", None),
    ],
)
def test_numbers_are_read_as_the_reader_types_them(language: str, typed: str, number: float | None) -> None:
    with translation.override(language):
        assert display.parse_number(typed) == number


def test_our_own_words_are_in_swedish() -> None:
    with translation.override("sv"):
        assert [display.actor_type_name(t.value) for t in p.ActorType] == [
            "Kund",
            "Leverantör",
            "Partner",
            "Person",
            "Projekt",
        ]
        assert display.actor_type_word("Customer") == "kund"  # a noun in lower case inside a sentence
        assert display.actor_type_word("Customer", {"sv": "ERP-kund"}) == "ERP-kund"  # not an abbreviation's case
        assert [display.field_type_name(t) for t in ("text", "list", "checkbox", "double", "datetime")] == [
            "text",
            "lista",
            "kryssruta",
            "decimaltal",
            "datum och tid",
        ]
        assert [display.access_name(a) for a in ("read_only", "mandatory")] == ["skrivskyddat", "obligatoriskt"]
    with translation.override("en"):
        assert display.actor_type_word("Customer") == "Customer"
        assert display.field_type_name("double") == "decimal number"


def test_a_decimal_field_shows_in_the_form_as_on_the_page_and_takes_what_the_reader_types() -> None:
    info = p.FieldInfo(key="vat_rate", label="VAT", type=p.FieldType.DOUBLE)
    whole = p.FieldInfo(key="limit", label="Limit", type=p.FieldType.INTEGER)
    with translation.override("sv"):
        form = ConfigForm(fields=[info, whole], list_items={}, initial={"vat_rate": 25.0, "limit": 12000})
        html = str(form["vat_rate"]) + str(form["limit"])
        assert 'value="25,00"' in html and f'value="12{NBSP}000"' in html and 'inputmode="decimal"' in html
        assert display.format_value(25.0, "double") == "25,00"  # the page beside it
        bound = ConfigForm({"cfg-vat_rate": "25,5", "cfg-limit": "12 000"}, fields=[info, whole], list_items={})
        assert bound.is_valid(), bound.errors
        assert bound.wire_values() == {"vat_rate": 25.5, "limit": 12000}
        wrong = ConfigForm({"cfg-vat_rate": "tjugo", "cfg-limit": "1,5"}, fields=[info, whole], list_items={})
        assert not wrong.is_valid()
        assert wrong.errors["vat_rate"] == ["Ange ett tal."] and wrong.errors["limit"] == ["Ange ett heltal."]


@pytest.mark.django_db
def test_the_sync_history_shows_item_texts_labels_and_formatted_values(demo_erp: Connector) -> None:
    connection = active_connection(demo_erp)
    run = SyncRun.objects.create(connection=connection, kind="sync_now")
    ListMapping.objects.filter(connection=connection).delete()
    ListMapping.objects.create(
        connection=connection, actor_type="Customer", field_key="COUNTRY", erp_key="NO", erp_text="Norway",
        erp_labels={"sv": "Norge"},
    )  # fmt: skip
    ListMapping.objects.create(
        connection=connection, actor_type="Customer", field_key="COUNTRY", erp_key="SE", erp_text="Sweden"
    )
    common = {"run": run, "connection": connection, "actor_type": "Customer", "erp_key": "C1", "outcome": "written"}
    entries = [
        SyncLogEntry.objects.create(**common, field_key="COUNTRY", old="NO", new="SE"),
        SyncLogEntry.objects.create(**common, field_key="CREDIT_LIMIT", old="50000.0", new="0.0"),
        SyncLogEntry.objects.create(**common, field_key="LAST_INVOICE", old=None, new="2023-04-07T07:08:00+00:00"),
        SyncLogEntry.objects.create(**common, field_key="GONE", old=1.5, new=None),
    ]
    with translation.override("sv"), timezone.override("Europe/Stockholm"):
        described = shown.describe_log(entries)
        assert [(e.field_label, e.old_text, e.new_text) for e in described] == [
            ("Land", "Norge", "Sweden"),  # the connector's Swedish label; an item with no Swedish text in English
            ("Kreditgräns", f"50{NBSP}000,00", "0,00"),
            ("Senast fakturerad", "—", "2023-04-07 09:08"),
            ("GONE", "1,50", "—"),
        ]


@pytest.mark.django_db
def test_the_erp_tab_formats_live_and_synced_values_in_swedish(
    client: Any,
    setup: dict[str, Any],  # noqa: F811
    demo_erp: Connector,
) -> None:
    connection, link = setup["connection"], setup["link"]
    rows = [
        mapping.FieldRow(
            f.key,
            "FAX" if f.key == "CREDIT_LIMIT" else f.crm_field,
            "erp_to_crm" if f.key == "CREDIT_LIMIT" else f.direction,
            f.show_in_search,
            f.key in ("BALANCE", "CURRENCY"),
        )
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    link.baseline = {**link.baseline, "CREDIT_LIMIT": "50000.0", "COUNTRY": "NO"}
    link.save()
    client.force_login(setup["user"])
    client.post(reverse("set_language"), {"language": "sv", "next": "/"})
    page = client.get(reverse("crm:company-tab", args=[setup["record"].pk, "erp"])).content.decode()
    assert f"Kopplad till kund {link.erp_key}." in page
    assert f"<dd>50{NBSP}000,00</dd>" in page  # as last synced
    assert "<dd>0,00</dd>" in page  # the balance, live
    assert "<dd>Norsk krona</dd>" in page  # a list value as its text, in Swedish
    assert "50000.0" not in page and "0.0<" not in page


@pytest.mark.django_db
def test_activation_problems_name_the_actor_type_in_swedish(v1_demo: Connector) -> None:
    connection = active_connection(v1_demo)
    field = connection.erp_fields.get(actor_type="Customer", key="PHONE")
    field.crm_field, field.direction = "PHONE", ""
    field.save()
    with translation.override("sv"):
        problems = services.activation_problems(connection)
    assert any(
        problem.startswith("Fältet Phone för kund är mappat till PHONE men saknar riktning") for problem in problems
    )
