"""Protocol v1.1's labels and suggested directions: a connector's labels per language reach each reader in their
own language (a v1 connector's ``label`` as before), and a fresh connection leaves only real mapping decisions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from connections import mapping, services
from connections.models import AuditEntry, ErpConnection
from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.models import SyncConnector

from .conftest import DEMO_CONFIG, Connector

pytestmark = pytest.mark.django_db
SV = {"HTTP_ACCEPT_LANGUAGE": "sv"}


def fresh(demo: Connector, admin: Any) -> ErpConnection:
    """A connection saved as the connection form saves it, nothing mapped by hand."""
    connector = SyncConnector(name="Demo ERP", url=demo.url)
    services.save_checked_connector(connector, demo.secret, admin)
    with services.interactive_client(demo.url, demo.secret) as client:
        fields = client.get_config_data().data.fields
    return services.save_connection(
        ErpConnection(name="Demo ERP – Sweden", connector=connector),
        fields=fields,
        values=dict(DEMO_CONFIG),
        grants=[],
        user=admin,
    )


def in_swedish(client: Any, admin: Any) -> None:
    client.force_login(admin)
    client.post(reverse("set_language"), {"language": "sv", "next": "/"})


def test_demo_erp_names_its_capabilities_and_answers_labels_in_every_language(demo_erp: Connector) -> None:
    with ConnectorClient(demo_erp.url, demo_erp.secret) as client:
        assert {"labels", "suggested_directions"} <= set(client.health().capabilities)
        conn = client.connection("0" * 8 + "-0000-4000-8000-" + "0" * 12, lambda: DEMO_CONFIG)
        conn.save()
        types = conn.actor_types_data()
        assert types.labels is not None and types.labels[p.ActorType.CUSTOMER] == {"en": "Customer", "sv": "Kund"}
        number = conn.actor_type_fields(p.ActorType.CUSTOMER)[0]
        assert (number.label, number.labels, number.suggested_direction) == (
            "Customer number",
            {"en": "Customer number", "sv": "Kundnummer"},
            p.SuggestedDirection.ERP_TO_CRM,
        )
        assert conn.get_list("countries")[0].labels == {"en": "Sweden", "sv": "Sverige"}
        assert client.get_config_data().data.fields[1].labels == {"en": "Client name", "sv": "Klientnamn"}


def test_a_v1_connector_answers_in_the_v1_shape(v1_demo: Connector) -> None:
    """The SDK leaves out a v1.1 field a connector leaves empty: a CRM that speaks only v1 still reads it."""
    with ConnectorClient(v1_demo.url, v1_demo.secret) as client:
        assert client.health().capabilities == []
        conn = client.connection("0" * 8 + "-0000-4000-8000-" + "0" * 12, lambda: DEMO_CONFIG)
        conn.save()
        raw = conn.actor_type_fields(p.ActorType.CUSTOMER)[0]
    assert raw.labels is None and raw.suggested_direction is None
    wire = json.loads(p.FieldsData(fields=[raw]).model_dump_json())
    assert set(wire["fields"][0]) == {
        "key",
        "label",
        "description",
        "type",
        "list_name",
        "default",
        "max_length",
        "access",
    }
    assert json.loads(p.ActorTypesData(actor_types=[p.ActorType.CUSTOMER]).model_dump_json()) == {
        "actor_types": ["Customer"]
    }


def test_labels_reach_the_mapping_page_in_each_readers_language(
    client: Any, demo_erp: Connector, admin_user: Any
) -> None:
    connection = fresh(demo_erp, admin_user)
    url = reverse("connections:mapping", args=[connection.pk, "Customer"])
    client.force_login(admin_user)
    english = client.get(url).content.decode()
    assert "Customer number" in english and ">Customer</a>" in english and "read-only" in english
    in_swedish(client, admin_user)
    swedish = client.get(url).content.decode()
    for words in ("Kundnummer", "Namn", "Momsregistreringsnummer", ">Kund</a>", ">Leverantör</a>", "skrivskyddat"):
        assert words in swedish, words
    for words in ("Customer number", "VAT number", ">Customer</a>", "read-only", ">double<"):
        assert words not in swedish, words
    detail = client.get(connection.get_absolute_url()).content.decode()
    assert "Klientnamn" in detail and "Fält för kund" in detail and "decimaltal" in detail


def test_a_v1_connector_without_labels_shows_its_label_and_our_words(
    client: Any, v1_demo: Connector, admin_user: Any
) -> None:
    connection = fresh(v1_demo, admin_user)
    assert connection.connector.capabilities == []
    in_swedish(client, admin_user)
    page = client.get(reverse("connections:mapping", args=[connection.pk, "Customer"])).content.decode()
    assert "Customer number" in page  # the connector's label, as it gave it
    assert ">Kund</a>" in page and "Synkronisera kund i ERP till företag i CRM" in page  # our own words


def test_a_fresh_demo_erp_connection_leaves_no_mapping_decision_open(demo_erp: Connector, admin_user: Any) -> None:
    connection = fresh(demo_erp, admin_user)
    connection.actor_types.update(sync_enabled=True)
    assert mapping.undecided_fields(connection, "Customer") == []
    assert services.activation_problems(connection) == []
    number = connection.erp_fields.get(actor_type="Customer", key="NUMBER2")
    assert (number.direction, number.suggested_direction) == ("erp_to_crm", "erp_to_crm")
    assert connection.erp_fields.get(actor_type="Customer", key="PHONE").direction == "both"


def test_without_suggestions_read_only_fields_default_to_erp_to_crm_and_the_rest_wait(
    v1_demo: Connector, admin_user: Any
) -> None:
    connection = fresh(v1_demo, admin_user)
    assert connection.erp_fields.get(actor_type="Customer", key="NUMBER2").direction == "erp_to_crm"
    undecided = {f.key for f in mapping.undecided_fields(connection, "Customer")}
    assert {"NAME", "PHONE", "EMAIL", "COUNTRY"} <= undecided and "NUMBER2" not in undecided
    connection.actor_types.update(sync_enabled=True)
    blockers = [problem for problem in services.activation_problems(connection) if "no direction" in problem]
    # One blocker per actor type with undecided fields, naming every one of them.
    types = [t for t in ("Customer", "Supplier", "Person", "Project") if mapping.undecided_fields(connection, t)]
    assert len(blockers) == len(types)
    for actor_type in types:
        labels = [f.display_label for f in mapping.undecided_fields(connection, actor_type)]
        assert any(all(label in blocker for label in labels) for blocker in blockers), actor_type


@pytest.mark.parametrize(
    ("erp_type", "access", "crm", "suggested", "direction"),
    [
        ("text", "normal", "PHONE", "crm_to_erp", "crm_to_erp"),
        ("text", "read_only", "NUMBER2", "crm_to_erp", "erp_to_crm"),  # a read-only field never syncs to the ERP
        ("text", "read_only", "NUMBER2", "both", "erp_to_crm"),
        ("double", "normal", "NUMBER1", "both", "erp_to_crm"),  # a number may go into a CRM text, not back
        ("text", "normal", "PHONE", "", ""),
        ("text", "normal", "PHONE", "sideways", ""),
    ],
)
def test_a_suggestion_is_taken_only_where_it_can_work(
    erp_type: str, access: str, crm: str, suggested: str, direction: str
) -> None:
    assert mapping.default_direction("Customer", erp_type, access, crm, {"suggested_direction": suggested}) == direction


def test_every_undecided_direction_is_set_at_once_audited_and_what_cannot_work_is_said(
    client: Any, v1_demo: Connector, admin_user: Any
) -> None:
    connection = fresh(v1_demo, admin_user)
    connection.erp_fields.filter(actor_type="Customer", key="CREDIT_LIMIT").update(crm_field="NUMBER1")
    connection.erp_fields.filter(actor_type="Customer", key="NUMBER1").update(crm_field="")
    undecided = {f.key for f in mapping.undecided_fields(connection, "Customer")}
    in_swedish(client, admin_user)
    url = reverse("connections:mapping", args=[connection.pk, "Customer"])
    page = client.get(url).content.decode()
    assert f"{len(undecided)} mappade fält saknar ännu riktning." in page and "Ge alla fält utan riktning" in page
    setter = reverse("connections:mapping-undecided", args=[connection.pk, "Customer"])
    refused = client.post(setter, {"direction": "sideways"}, follow=True).content.decode()
    assert "Inget ändrades: välj en riktning." in refused
    assert {f.key for f in mapping.undecided_fields(connection, "Customer")} == undecided
    done = client.post(setter, {"direction": "both"}, follow=True).content.decode()
    assert f"Riktningen för {len(undecided) - 1} fält har angetts" in done
    assert "Kreditgräns får ingen riktning" in done or "Credit limit får ingen riktning" in done
    assert [f.key for f in mapping.undecided_fields(connection, "Customer")] == ["CREDIT_LIMIT"]
    assert connection.erp_fields.get(actor_type="Customer", key="PHONE").direction == "both"
    entry = AuditEntry.objects.filter(connection=connection, detail__contains="utan riktning fick").first()
    assert entry is not None and "PHONE" in entry.detail and entry.user == admin_user
    assert "Alla mappade fält har redan en riktning." not in done


def test_a_disabled_show_on_erp_tab_box_says_why_in_swedish(client: Any, demo_erp: Connector, admin_user: Any) -> None:
    connection = fresh(demo_erp, admin_user)
    in_swedish(client, admin_user)
    page = client.get(reverse("connections:mapping", args=[connection.pk, "Customer"])).content.decode()
    row = page.split('data-key="PHONE"')[1].split("</tr>")[0]
    assert 'name="tab-PHONE"' in row and " disabled " in row
    assert 'title="Fältet synkroniseras, så ERP-fliken visar det synkroniserade värdet' in row
    assert "Synkroniseras: visas bland de synkroniserade värdena" in row
    unmapped = page.split('data-key="BALANCE"')[1].split("</tr>")[0]
    assert " disabled " not in unmapped.split('name="tab-BALANCE"')[1].split(">")[0]
