"""A Swedish admin's first hour: a fresh Demo ERP connection gets its country list matched by ISO code, so the
default path activates and the first sync of a Swedish company succeeds; an activation that would fail on a list
is refused with one message; deactivation is confirmed; the job table counts the fields a sync changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from connections import jobs, mapping, services
from connections.choices import LinkStatus
from connections.models import ErpConnection, ListMapping, SyncRun
from crm.models import Business, Company, Country

from .conftest import Connector
from .sync_helpers import active_connection, erp_values, new_customer, saved_connection

pytestmark = pytest.mark.django_db

SV = {"HTTP_ACCEPT_LANGUAGE": "sv"}


def countries() -> dict[str, Country]:
    """The CRM's countries with their Swedish names, so only the ISO codes can match them to the Demo ERP's."""
    names = {"SE": "Sverige", "NO": "Norge", "DK": "Danmark", "FI": "Finland", "LV": "Lettland"}
    return {code: Country.objects.create(code=code, name=name) for code, name in names.items()}


def fresh_connection(demo: Connector) -> ErpConnection:
    """A Demo ERP connection saved as the connection form saves it, Customers synced with NAME and COUNTRY."""
    return saved_connection(demo, "Demo ERP – Sverige", {"NAME": ("NAME", "both"), "COUNTRY": ("COUNTRY", "both")})


def country_mapping(connection: ErpConnection, actor_type: str = "Customer") -> dict[str, int | None]:
    rows = ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key="COUNTRY")
    return dict(rows.values_list("erp_key", "crm_item_id"))


def test_list_items_match_by_code_before_name() -> None:
    crm = [Country(pk=1, code="SE", name="Sverige"), Country(pk=2, code="NO", name="Norge")]
    # "Sverige" as the text of another ERP item does not take Sweden from the item whose key is its code.
    assert mapping.suggest_list_matches([("XX", "Sverige"), ("SE", "Sweden"), ("NO", "Norway")], crm) == {
        "SE": 1,
        "NO": 2,
    }
    # Lists without codes match by name, ignoring case.
    assert mapping.suggest_list_matches([("RET", "retail")], [Business(pk=7, name="Retail")]) == {"RET": 7}


def test_the_default_path_matches_the_countries_activates_and_a_swedish_company_syncs(
    client: Any, admin_user: Any, demo_erp: Connector
) -> None:
    crm = countries()
    connection = fresh_connection(demo_erp)
    # Matched when the connection was saved: by ISO code on both sides, though the names differ.
    matched = country_mapping(connection)
    assert {key: matched[key] for key in ("SE", "NO", "DK", "FI")} == {
        code: crm[code].pk for code in ("SE", "NO", "DK", "FI")
    }
    assert matched["IS"] is None  # the CRM has no Iceland
    assert country_mapping(connection, "Supplier")["SE"] == crm["SE"].pk

    company = Company.objects.create(name="Granbygg AB", country=crm["SE"])
    client.force_login(admin_user)
    assert not services.activation_problems(connection)
    page = client.post(
        reverse("connections:connection-active", args=[connection.pk]),
        {"active": "1", "next": reverse("connections:sync")},
        follow=True,
        **SV,
    ).content.decode()
    assert "Demo ERP – Sverige är aktiv." in page
    connection.refresh_from_db()
    assert connection.is_active

    actor = new_customer(demo_erp, connection, NAME="Granbygg AB")
    link = services.link_record(connection, "Customer", actor.key or "", company, None)
    run, _queued = services.start_sync_now(link, None)
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    link.refresh_from_db()
    assert (run.status, link.status, link.last_error) == ("succeeded", LinkStatus.OK, "")
    assert erp_values(demo_erp, connection, actor.key or "")["COUNTRY"] == "SE"


def test_refresh_from_connector_matches_items_the_crm_got_since_and_keeps_chosen_ones(
    client: Any, admin_user: Any, demo_erp: Connector
) -> None:
    crm = countries()
    connection = fresh_connection(demo_erp)
    # The admin chose another CRM item for Finland; Iceland came to the CRM after the connection was saved.
    ListMapping.objects.filter(connection=connection, actor_type="Customer", erp_key="FI").update(
        crm_item_id=crm["LV"].pk
    )
    iceland = Country.objects.create(code="IS", name="Island")
    client.force_login(admin_user)
    page = client.post(reverse("connections:connection-refresh", args=[connection.pk]), follow=True, **SV)
    assert "Aktörstyper och fält har lästs in från Sync Connectorn igen." in page.content.decode()
    matched = country_mapping(connection)
    assert matched["IS"] == iceland.pk and matched["FI"] == crm["LV"].pk and matched["SE"] == crm["SE"].pk


def test_activation_is_refused_with_one_message_while_a_crm_country_in_use_has_no_erp_item(
    client: Any, admin_user: Any, demo_erp: Connector
) -> None:
    crm = countries()
    connection = fresh_connection(demo_erp)
    latvian = Company.objects.create(name="Rīgas Būve SIA", country=crm["LV"])  # the Demo ERP has no Latvia
    Company.objects.create(name="Granbygg AB", country=crm["SE"])
    client.force_login(admin_user)
    url = reverse("connections:connection-active", args=[connection.pk])
    # Pressed on the Sync tab's Active column: the refusal lands on the connection's page, which says why.
    response = client.post(url, {"active": "1", "next": reverse("connections:sync")}, follow=True, **SV)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == connection.get_absolute_url()
    assert page.count("aktiverades inte") == 1
    problem = (
        "Fältet Land för kund: inget ERP-värde är kopplat till Lettland, som används på företag i CRM; "
        "deras synkronisering skulle misslyckas. Koppla dem i listmappningen."
    )
    assert page.count(problem) == 1
    list_url = reverse("connections:mapping-list", args=[connection.pk, "Customer", "COUNTRY"])
    assert f'<a href="{list_url}">Öppna listmappningen</a>' in page
    assert "Sverige" not in problem  # Sweden is matched
    connection.refresh_from_db()
    assert not connection.is_active

    latvian.country = crm["SE"]
    latvian.save()
    assert client.post(url, {"active": "1"}, **SV).status_code == 302
    connection.refresh_from_db()
    assert connection.is_active


def test_deactivating_a_live_connection_is_confirmed_first(client: Any, admin_user: Any, demo_erp: Connector) -> None:
    connection = active_connection(demo_erp)
    client.force_login(admin_user)
    url = reverse("connections:connection-active", args=[connection.pk])
    sync_tab = reverse("connections:sync")
    tab = client.get(sync_tab, **SV).content.decode()
    assert f'action="{url}"' in tab
    # The Active column's box sends active=0 at once: the server answers with a question, and nothing changes.
    question = client.post(url, {"active": "0", "next": sync_tab}, **SV)
    page = question.content.decode()
    assert question.status_code == 200 and "Inaktivera Demo ERP – Sweden?" in page
    assert "Inget synkroniseras genom den förrän den aktiveras igen" in page
    assert '<input type="hidden" name="confirm" value="1">' in page and f'href="{sync_tab}">Avbryt</a>' in page
    connection.refresh_from_db()
    assert connection.is_active
    confirmed = client.post(url, {"active": "0", "confirm": "1", "next": sync_tab}, follow=True, **SV)
    assert confirmed.redirect_chain[-1][0] == sync_tab
    assert "Demo ERP – Sweden är inaktiv." in confirmed.content.decode()
    connection.refresh_from_db()
    assert not connection.is_active
    # Activating again asks nothing.
    assert client.post(url, {"active": "1", "next": sync_tab}, **SV).status_code == 302
    connection.refresh_from_db()
    assert connection.is_active


def test_the_job_table_counts_the_fields_changed(client: Any, admin_user: Any, demo_erp: Connector) -> None:
    connection = active_connection(demo_erp)  # NAME, PHONE both ways; EMAIL, COUNTRY from the ERP; NO unmapped
    actor = new_customer(demo_erp, connection, PHONE="+46 90 12", EMAIL="info@granbygg.se", COUNTRY="NO")
    record = Company.objects.create(name="Granbygg AB", phone="+46 70 00")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    run, _queued = services.start_sync_now(link, None)
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run = SyncRun.objects.get(pk=run.pk)
    record.refresh_from_db()
    # Phone and e-mail were written though the country failed: two fields changed, one record failed.
    assert (record.phone, record.email) == ("+46 90 12", "info@granbygg.se")
    assert (run.changed, run.failed) == (2, 1)
    client.force_login(admin_user)
    page = client.get(connection.get_absolute_url(), **SV).content.decode()
    table = page.split("<table", 1)[1].split("</table>", 1)[0]
    assert "Ändrade fält" in table
    assert "<td>1/1</td><td>2</td><td>1</td>" in table


def test_mapping_a_list_field_on_the_field_mapping_page_matches_its_items_by_name(
    client: Any, admin_user: Any, demo_erp: Connector
) -> None:
    connection = fresh_connection(demo_erp)
    retail = Business.objects.create(name="Retail")
    client.force_login(admin_user)
    data: dict[str, str] = {"sync_enabled": "on"}
    for field in connection.erp_fields.filter(actor_type="Customer"):
        data[f"crm-{field.key}"] = field.crm_field
        data[f"dir-{field.key}"] = field.direction
    data["crm-CUSTOMER_GROUP"] = "BUSINESS"  # the ERP's customer groups are the CRM's businesses here
    url = reverse("connections:mapping", args=[connection.pk, "Customer"])
    page = client.post(url, data, follow=True, **SV).content.decode()
    assert "Fältmappningen för kund har sparats" in page
    groups = ListMapping.objects.filter(connection=connection, actor_type="Customer", field_key="CUSTOMER_GROUP")
    assert dict(groups.values_list("erp_key", "crm_item_id")) == {
        "RET": retail.pk,
        "WHO": None,
        "PUB": None,
        "KEY": None,
        "INT": None,
    }
