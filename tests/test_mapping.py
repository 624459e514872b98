"""Field mapping rules, enforced on the server whatever the page sends."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from connections import mapping, services
from connections.choices import Direction
from connections.models import AuditEntry, ErpConnection, FieldDefault, ListMapping, SyncSettings
from connectors.models import SyncConnector
from crm.models import Country

from .conftest import DEMO_CONFIG, Connector
from .factories import UserFactory
from .permission_matrix import assert_access

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(v1_demo: Connector) -> ErpConnection:
    """A fresh connection to a connector that suggests no directions: its auto-mapped fields wait for the admin."""
    connector = SyncConnector(name="Demo ERP", url=v1_demo.url)
    connector.set_secret(v1_demo.secret)
    connector.save()
    with services.interactive_client(v1_demo.url, v1_demo.secret) as client:
        fields = client.get_config_data().data.fields
    return services.save_connection(
        ErpConnection(name="Demo ERP – Sweden", connector=connector),
        fields=fields,
        values=dict(DEMO_CONFIG),
        grants=[],
        user=None,
    )


@pytest.fixture
def admin(db: Any) -> Any:
    return UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])


def rows(
    connection: ErpConnection, changes: dict[str, tuple[str, str]] | None = None, actor_type: str = "Customer"
) -> list[mapping.FieldRow]:
    """The tab as it is, with some rows changed: key=(crm_field, direction)."""
    result = []
    for field in connection.erp_fields.filter(actor_type=actor_type):
        crm, direction = (changes or {}).get(field.key, (field.crm_field, field.direction))
        result.append(mapping.FieldRow(field.key, crm, direction, field.show_in_search, field.show_in_tab))
    return result


def post_tab(
    client: Any, connection: ErpConnection, extra: dict[str, str] | None = None, actor_type: str = "Customer"
) -> Any:
    data: dict[str, str] = {"sync_enabled": "on"}
    for field in connection.erp_fields.filter(actor_type=actor_type):
        data[f"crm-{field.key}"] = field.crm_field
        data[f"dir-{field.key}"] = field.direction
    data.update(extra or {})
    return client.post(reverse("connections:mapping", args=[connection.pk, actor_type]), data)


def test_mapping_pages_are_for_erp_sync_admins(
    client: Any, connection: ErpConnection, admin: Any, licensed_user: Any, outsider: Any
) -> None:
    users = {"admin": admin, "licensed": licensed_user, "outsider": outsider}
    connection.erp_fields.filter(actor_type="Customer", key="COUNTRY").update(crm_field="COUNTRY")
    for url in (
        reverse("connections:mapping", args=[connection.pk, "Customer"]),
        reverse("connections:mapping-defaults", args=[connection.pk, "Customer"]),
        reverse("connections:mapping-list", args=[connection.pk, "Customer", "COUNTRY"]),
        reverse("connections:sync-settings"),
    ):
        assert_access(client, users, url, {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200})
    assert_access(
        client,
        users,
        reverse("connections:mapping-rank", args=[connection.pk, "Customer"]),
        {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 405},
    )
    client.force_login(admin)
    assert client.get(reverse("connections:mapping", args=[connection.pk, "Partner"])).status_code == 404


@pytest.mark.parametrize(
    ("key", "crm", "direction", "message"),
    [
        ("NUMBER2", "NUMBER2", "crm_to_erp", "The ERP field is read-only."),
        ("NUMBER2", "NUMBER2", "both", "The ERP field is read-only."),
        (
            "CREDIT_LIMIT",
            "DEPARTMENT",
            "crm_to_erp",
            "A CRM text value cannot be written to an ERP exact decimal number field.",
        ),
        ("CREDIT_LIMIT", "COUNTRY", "erp_to_crm", "COUNTRY does not fit an ERP exact decimal number field."),
        ("PHONE", "", "both", "Choose a CRM field before a direction."),
        ("PHONE", "NAME", "erp_to_crm", "NAME is already mapped to Name."),
    ],
)
def test_directions_that_cannot_work_are_refused(
    connection: ErpConnection, key: str, crm: str, direction: str, message: str
) -> None:
    before = list(connection.erp_fields.filter(actor_type="Customer").values_list("key", "crm_field", "direction"))
    with pytest.raises(mapping.MappingInvalid) as invalid:
        mapping.save_field_mapping(connection, "Customer", True, rows(connection, {key: (crm, direction)}), None)
    assert invalid.value.errors[key] == message
    after = list(connection.erp_fields.filter(actor_type="Customer").values_list("key", "crm_field", "direction"))
    assert after == before  # nothing saved


def test_a_number_may_flow_into_a_crm_text_but_not_back(connection: ErpConnection) -> None:
    problems = mapping.direction_problems("Customer", "double", "normal", "NUMBER1")
    assert Direction.ERP_TO_CRM.value not in problems and Direction.CRM_TO_ERP.value in problems
    mapping.save_field_mapping(
        connection,
        "Customer",
        True,
        rows(connection, {"CREDIT_LIMIT": ("NUMBER1", "erp_to_crm"), "NUMBER1": ("", "")}),
        None,
    )
    assert connection.erp_fields.get(actor_type="Customer", key="CREDIT_LIMIT").direction == "erp_to_crm"


def test_a_synced_field_cannot_also_be_shown_live_on_the_erp_tab(
    client: Any, connection: ErpConnection, admin: Any
) -> None:
    client.force_login(admin)
    response = post_tab(client, connection, {"dir-NAME": "both", "tab-NAME": "on"})
    assert response.status_code == 400
    assert (
        "A synced field is stored in the CRM; it cannot also be shown live on the ERP tab." in response.content.decode()
    )
    assert post_tab(client, connection, {"crm-NAME": "", "tab-NAME": "on", "tab-BALANCE": "on"}).status_code == 302
    assert connection.erp_fields.get(actor_type="Customer", key="BALANCE").show_in_tab


def test_a_field_missing_in_the_erp_can_only_be_unmapped(connection: ErpConnection) -> None:
    connection.erp_fields.filter(actor_type="Customer", key="FAX_OLD").delete()
    field = connection.erp_fields.create(
        actor_type="Customer",
        key="FAX_OLD",
        label="Fax",
        type="text",
        access="normal",
        missing_in_erp=True,
        crm_field="FAX",
    )
    with pytest.raises(mapping.MappingInvalid) as invalid:
        mapping.save_field_mapping(connection, "Customer", True, rows(connection), None)
    assert "missing in the ERP" in invalid.value.errors["FAX_OLD"]
    mapping.save_field_mapping(connection, "Customer", True, rows(connection, {"FAX_OLD": ("", "")}), None)
    field.refresh_from_db()
    assert field.crm_field == ""


def test_auto_mapped_rows_stay_marked_until_a_direction_is_set(connection: ErpConnection) -> None:
    name = connection.erp_fields.get(actor_type="Customer", key="NAME")
    assert name.auto_mapped and not name.direction
    mapping.save_field_mapping(connection, "Customer", True, rows(connection, {"NAME": ("NAME", "both")}), None)
    name.refresh_from_db()
    assert not name.auto_mapped and name.direction == "both"


def test_list_items_map_one_to_one(client: Any, connection: ErpConnection, admin: Any) -> None:
    se, no = Country.objects.create(code="SE", name="Sweden"), Country.objects.create(code="NO", name="Norge")
    connection.erp_fields.filter(actor_type="Customer", key="COUNTRY").update(
        crm_field="COUNTRY", direction="erp_to_crm"
    )
    client.force_login(admin)
    url = reverse("connections:mapping-list", args=[connection.pk, "Customer", "COUNTRY"])
    matched = client.post(url, {"match": "1"}).content.decode()
    assert (
        f'<option value="{se.pk}" selected>' in matched and f'<option value="{no.pk}" selected>' in matched
    )  # by name, by code
    # The countries came after the connection was saved, so its list items were stored then without a CRM item.
    assert not ListMapping.objects.exclude(crm_item_id=None).exists()  # matching only suggests
    duplicate = client.post(url, {"item-SE": se.pk, "item-NO": se.pk})
    assert duplicate.status_code == 400 and "each CRM item may stand for one ERP item" in duplicate.content.decode()
    assert not ListMapping.objects.exclude(crm_item_id=None).exists()
    assert client.post(url, {"item-SE": se.pk, "item-NO": no.pk}).status_code == 302
    saved = dict(ListMapping.objects.filter(actor_type="Customer").values_list("erp_key", "crm_item_id"))
    assert saved["SE"] == se.pk and saved["NO"] == no.pk and saved["DK"] is None
    assert AuditEntry.objects.filter(
        connection=connection, detail__contains="list mapping of Customer.COUNTRY"
    ).exists()


def test_mandatory_defaults_are_enforced(connection: ErpConnection) -> None:
    # NAME is mandatory in the ERP and not synced from the CRM, so it needs a default or a question.
    with pytest.raises(mapping.MappingInvalid) as invalid:
        mapping.save_defaults(connection, "Customer", {"NAME": (None, False, False)}, None)
    assert invalid.value.errors["NAME"] == "The ERP requires this field; it stays mandatory."
    with pytest.raises(mapping.MappingInvalid) as invalid:
        mapping.save_defaults(connection, "Customer", {"NAME": (None, False, True)}, None)
    assert invalid.value.errors["NAME"] == "A mandatory field needs a default value or must be asked for."
    mapping.save_defaults(
        connection, "Customer", {"NAME": (None, True, True), "PAYMENT_TERMS": ("30", False, False)}, None
    )
    assert FieldDefault.objects.get(field_key="NAME").ask_user
    # A field synced from the CRM is not a default's business.
    mapping.save_field_mapping(connection, "Customer", True, rows(connection, {"NAME": ("NAME", "both")}), None)
    with pytest.raises(mapping.MappingInvalid):
        mapping.save_defaults(connection, "Customer", {"NAME": ("x", False, True)}, None)


def test_rank_order_is_saved_and_shown(client: Any, connection: ErpConnection, admin: Any) -> None:
    client.force_login(admin)
    url = reverse("connections:mapping-rank", args=[connection.pk, "Project"])
    before = list(connection.erp_fields.filter(actor_type="Project").values_list("key", flat=True))
    response = client.post(url, {"key": before[2], "move": "up"}, HTTP_HX_REQUEST="true")
    after = list(connection.erp_fields.filter(actor_type="Project").values_list("key", flat=True))
    assert after[1] == before[2] and after[2] == before[1]
    body = response.content.decode()
    assert body.index(f"<code>{before[2]}</code>") < body.index(f"<code>{before[1]}</code>")
    client.post(url, {"key": after[0], "move": "up"})  # the first stays first
    assert list(connection.erp_fields.filter(actor_type="Project").values_list("key", flat=True)) == after


def test_the_sync_priority_puts_the_crm_among_the_connections(
    client: Any, connection: ErpConnection, admin: Any
) -> None:
    second = ErpConnection.objects.create(
        name="Fortnox", connector=connection.connector, priority=mapping.next_priority()
    )
    assert [kind for kind, _obj in mapping.priority_entries()] == ["crm", "connection", "connection"]
    client.force_login(admin)
    client.post(reverse("connections:sync-settings"), {"entry": "crm", "move": "down"})
    client.post(reverse("connections:sync-settings"), {"entry": f"connection:{second.pk}", "move": "up"})
    order = [obj.name if obj else "CRM" for _kind, obj in mapping.priority_entries()]
    assert order == ["Demo ERP – Sweden", "Fortnox", "CRM"]
    assert SyncSettings.load().crm_priority == 2
    page = client.get(reverse("connections:sync-settings")).content.decode().split('<ol class="ranked-list">')[1]
    assert page.index("Demo ERP – Sweden") < page.index("Fortnox") < page.index("The CRM")
    assert AuditEntry.objects.filter(detail="sync priority: Demo ERP – Sweden, Fortnox, CRM").exists()


def test_activation_is_refused_for_each_mapping_reason(connection: ErpConnection) -> None:
    connection.actor_types.filter(actor_type="Customer").update(sync_enabled=True)
    problems = services.activation_problems(connection)
    undecided = next(problem for problem in problems if "are mapped but have no direction." in problem)
    assert undecided.startswith("Customer fields Name, ") and ", E-mail, " in undecided  # said once for them all
    assert "Mandatory Customer field Name is neither synced from the CRM nor given a default." in problems
    ListMapping.objects.all().delete()  # the items stored when the connection was saved
    ListMapping.objects.create(
        connection=connection,
        actor_type="Customer",
        field_key="COUNTRY",
        erp_key="SE",
        erp_text="Sweden",
        crm_item_id=1,
    )
    ListMapping.objects.create(
        connection=connection,
        actor_type="Customer",
        field_key="COUNTRY",
        erp_key="NO",
        erp_text="Norway",
        crm_item_id=None,
    )
    assert not any("several ERP items" in problem for problem in services.activation_problems(connection))


def test_mapping_changes_are_allowed_while_active_and_audited(
    client: Any, connection: ErpConnection, admin: Any
) -> None:
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=True)
    client.force_login(admin)
    assert post_tab(client, connection, {"dir-NAME": "both"}).status_code == 302
    assert connection.erp_fields.get(actor_type="Customer", key="NAME").direction == "both"
    entry = AuditEntry.objects.filter(connection=connection, action="changed").first()
    assert entry is not None and "Customer.NAME → NAME Both ways" in entry.detail and entry.user == admin


def test_the_mapping_pages_speak_swedish(client: Any, connection: ErpConnection, admin: Any) -> None:
    client.force_login(admin)
    client.post(reverse("set_language"), {"language": "sv", "next": "/"})
    page = client.get(reverse("connections:mapping", args=[connection.pk, "Customer"])).content.decode()
    for words in (
        "Fältmappning: Demo ERP – Sweden",
        "Synkronisera kund i ERP till företag i CRM",
        "Riktning",
        "Visa på ERP-fliken",
        "— synkroniseras inte —",
        "Båda hållen",
        "ERP-fältet är skrivskyddat.",
    ):
        assert words in page, words
    priority = client.get(reverse("connections:sync-settings")).content.decode()
    assert "Synkprioritet" in priority and "Flytta upp Demo ERP – Sweden" in priority
