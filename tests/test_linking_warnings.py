"""Linking invites mistakes: on the screen where the user chooses per field which side is right, a choice that
cannot be made says why (a one-way field, a field the ERP keeps read-only), and an actor whose VAT number or city
is not the record's is highlighted with a warning before the link is made; the user can still link."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _

from connections import mapping
from connections.models import ErpConnection, Link

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, company, new_customer

pytestmark = pytest.mark.django_db

# NUMBER2 is read-only in the Demo ERP (it numbers its customers); EMAIL syncs ERP → CRM only.
MAPPED = {
    "NAME": ("NAME", "both"),
    "NUMBER2": ("NUMBER2", "erp_to_crm"),
    "VATNO": ("VATNO", "both"),
    "POSTALCITY": ("POSTALCITY", "both"),
    "PHONE": ("PHONE", "both"),
    "EMAIL": ("EMAIL", "erp_to_crm"),
}


@pytest.fixture
def connection(demo_erp: Connector) -> ErpConnection:
    connection = active_connection(demo_erp)
    rows = [
        mapping.FieldRow(f.key, *MAPPED.get(f.key, ("", "")), f.key == "NAME", False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    return connection


def rows_by_key(html: str, connection: ErpConnection) -> dict[str, str]:
    """The compare table's rows, by ERP field key (each row's radios are named choice-<key>)."""
    table = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    assert table
    rows = re.findall(r"<tr.*?</tr>", table[1], re.S)
    return {re.search(r'name="choice-(\w+)"', r)[1]: r for r in rows}  # type: ignore[index]


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_compare_screen_says_why_a_choice_is_disabled_and_warns_of_another_company(
    client: Any, connection: ErpConnection, demo_erp: Connector, language: str
) -> None:
    actor = new_customer(
        demo_erp,
        connection,
        NAME="Fjällbygg AB",
        VATNO="SE556000000101",
        POSTALCITY="Umeå",
        PHONE="+46 90 10 10",
        EMAIL="info@fjallbygg.example",
    )
    record = company(
        name="Fjällbygg AB",
        vat_no="SE556999999901",
        postal_city="Luleå",
        phone="+46 920 10 10",
        email="kontakt@fjallbygg.example",
        number2="K-77",
    )
    client.force_login(UserFactory.create(username="anna", perms=["crm.view_company", "connections.use_erp_sync"]))
    client.cookies["django_language"] = language
    url = reverse("erp:connect", args=[connection.pk, record.pk])
    html = client.post(url, {"kind": "company", "actor_type": "Customer", "key": actor.key}).content.decode()
    rows = rows_by_key(html, connection)
    fields = {f.key: f for f in connection.erp_fields.filter(actor_type="Customer")}
    with translation.override(language):
        labels = {key: field.display_label for key, field in fields.items()}
        # The warning names the identifying fields that differ, once, above the table; the user may still link.
        assert html.count(_("Is this the right actor?")) == 1
        assert f"{labels['VATNO']}, {labels['POSTALCITY']}" in html
        assert ("du kan ändå koppla" if language == "sv" else "you can still link") in html
        for key in ("VATNO", "POSTALCITY"):
            assert "data-identifying" in rows[key] and _("Not the same") in rows[key]
        for key in ("NAME", "PHONE", "EMAIL", "NUMBER2"):
            assert "data-identifying" not in rows.get(key, "")
        # A disabled choice says why, visibly beside it and to a screen reader.
        read_only = escape(_("Read-only in the ERP: the ERP's value is kept and copied to the CRM."))
        one_way = escape(_("Syncs from the ERP only: the field mapping's direction is ERP → CRM."))
        assert read_only in rows["NUMBER2"] and rows["NUMBER2"].count("disabled") == 2
        assert one_way in rows["EMAIL"] and rows["EMAIL"].count("disabled") == 2
        assert f'aria-describedby="why-EMAIL-{connection.pk}"' in rows["EMAIL"]
        assert "disabled" not in rows["PHONE"] and "why-fixed" not in rows["PHONE"]

    # Linked all the same.
    done = client.post(
        url, {"kind": "company", "actor_type": "Customer", "key": actor.key, "confirm": "1", "choice-VATNO": "crm"}
    )
    assert done.status_code in (200, 302)
    assert Link.objects.get(company=record).erp_key == actor.key


def test_no_warning_when_the_identifying_fields_agree_or_one_side_is_blank(
    client: Any, connection: ErpConnection, demo_erp: Connector
) -> None:
    actor = new_customer(demo_erp, connection, NAME="Granbygg AB", VATNO="SE556111111101", POSTALCITY="")
    record = company(vat_no="SE556111111101", postal_city="Umeå", phone="+46 1")
    client.force_login(UserFactory.create(username="anna", perms=["crm.view_company", "connections.use_erp_sync"]))
    url = reverse("erp:connect", args=[connection.pk, record.pk])
    html = client.post(url, {"kind": "company", "actor_type": "Customer", "key": actor.key}).content.decode()
    assert "Is this the right actor?" not in html and "data-identifying" not in html
    assert 'name="choice-POSTALCITY"' in html  # the city differs, but a blank is not another company's city
