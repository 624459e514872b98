"""The Sync tab on the server side: every rule the pages show is enforced here too."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from connections import services
from connections.choices import Direction, Visibility
from connections.models import AuditEntry, ErpConnection, ErpConnectionGroupObjectPermission
from connections.permissions import may_connect, may_create_in_erp, visible_connections
from connectors import protocol as p
from connectors.client import ConnectorClient, UnknownConnection
from connectors.models import SyncConnector

from .conftest import Connector, free_port
from .connectors.servers import answer, hold, serving
from .factories import UserFactory
from .permission_matrix import assert_access

pytestmark = pytest.mark.django_db
API_KEY = "demo-api-key"


@pytest.fixture
def erp_admin(db: Any) -> Any:
    return UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])


@pytest.fixture
def connector(demo_erp: Connector) -> SyncConnector:
    registered = SyncConnector(name="Demo ERP", url=demo_erp.url)
    registered.set_secret(demo_erp.secret)
    registered.save()
    return registered


def form_data(connector: SyncConnector, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Demo ERP – Sweden",
        "connector": connector.pk,
        "description": "",
        "visibility": "everyone",
        "everyone_can_connect": "on",
        "grant-TOTAL_FORMS": "0",
        "grant-INITIAL_FORMS": "0",
        "grant-MIN_NUM_FORMS": "0",
        "grant-MAX_NUM_FORMS": "1000",
        "cfg-client_name": "Nordic sales",
        "cfg-api_key": API_KEY,
        "cfg-company_number": "1",
        "cfg-vat_rate": "25",
        "cfg-default_currency": "SEK",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def passed_test_token(client: Any, data: dict[str, Any], url: str | None = None) -> str:
    response = client.post(url or reverse("connections:connection-test-new"), data)
    found = re.search(r'name="test_token" value="([^"]+)"', response.content.decode())
    assert found, response.content.decode()
    return found[1]


def create_connection(client: Any, connector: SyncConnector, **overrides: Any) -> ErpConnection:
    data = form_data(connector, **overrides)
    data["test_token"] = passed_test_token(client, data)
    response = client.post(reverse("connections:connection-add"), data)
    assert response.status_code == 302, page_errors(response.content.decode())
    return ErpConnection.objects.get(name=data["name"])


def page_errors(page: str) -> list[str]:
    """The error messages a form page shows, for a readable assertion."""
    messages = re.findall(r'(?:role="alert"|class="error")[^>]*>\s*([^<]+)', page)
    return messages + re.findall(r'<pre class="technical">([^<]*)</pre>', page)  # the connector's details


# Who may open what


def test_every_sync_tab_page_is_for_erp_sync_admins(
    client: Any, admin_user: Any, licensed_user: Any, outsider: Any, connector: SyncConnector
) -> None:
    client.force_login(admin_user)
    connection = create_connection(client, connector)
    users = {"admin": admin_user, "licensed": licensed_user, "outsider": outsider}
    pages = ["connections:sync", "connections:connector-add", "connections:connection-add"]
    for name in pages:
        assert_access(client, users, reverse(name), {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200})
    for name in ("connector-edit", "connector-delete"):
        assert_access(
            client,
            users,
            reverse(f"connections:{name}", args=[connector.pk]),
            {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200},
        )
    for name in ("connection-detail", "connection-edit", "connection-delete"):
        assert_access(
            client,
            users,
            reverse(f"connections:{name}", args=[connection.pk]),
            {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200},
        )
    for name in ("connector-check",):
        assert_access(
            client,
            users,
            reverse(f"connections:{name}", args=[connector.pk]),
            {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 405},
        )
    for name in (
        "connection-test",
        "connection-test-saved",
        "connection-actor-types",
        "connection-refresh",
        "connection-active",
    ):
        assert_access(
            client,
            users,
            reverse(f"connections:{name}", args=[connection.pk]),
            {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 405},
        )
    assert_access(
        client,
        users,
        reverse("connections:connection-test-new"),
        {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 405},
    )


def test_posts_from_non_admins_change_nothing(client: Any, licensed_user: Any, connector: SyncConnector) -> None:
    client.force_login(licensed_user)
    assert client.post(reverse("connections:connector-delete", args=[connector.pk])).status_code == 403
    assert SyncConnector.objects.filter(pk=connector.pk).exists()


# Sync Connectors


def test_a_connector_that_answers_is_saved_with_its_status(client: Any, erp_admin: Any, demo_erp: Connector) -> None:
    client.force_login(erp_admin)
    response = client.post(
        reverse("connections:connector-add"),
        {"name": "Demo ERP", "url": demo_erp.url + "/", "secret": demo_erp.secret},
    )
    assert response.status_code == 302
    saved = SyncConnector.objects.get()
    assert saved.url == demo_erp.url and saved.last_check_ok is True and saved.secret == demo_erp.secret
    assert AuditEntry.objects.filter(connector=saved, action="created", user=erp_admin).exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "", "url": "http://127.0.0.1:1", "secret": "x" * 20}, "This field is required."),
        ({"name": "A", "url": "not a url", "secret": "x" * 20}, "Enter a valid URL."),
        ({"name": "A", "url": "ftp://example.com/x", "secret": "x" * 20}, "Use an http:// or https:// address."),
        ({"name": "A", "url": "http://127.0.0.1:1", "secret": "short"}, "at least 16 characters"),
    ],
)
def test_bad_connector_input_is_refused_with_a_message(
    client: Any, erp_admin: Any, fields: dict[str, str], message: str
) -> None:
    client.force_login(erp_admin)
    response = client.post(reverse("connections:connector-add"), fields)
    assert response.status_code == 200 and message in response.content.decode()
    assert not SyncConnector.objects.exists()


def test_connector_names_are_unique_ignoring_case(client: Any, erp_admin: Any, connector: SyncConnector) -> None:
    client.force_login(erp_admin)
    response = client.post(
        reverse("connections:connector-add"), {"name": "demo erp", "url": connector.url, "secret": "x" * 20}
    )
    assert "A Sync Connector with this name already exists." in response.content.decode()


def test_an_unreachable_connector_is_saved_only_after_confirming(client: Any, erp_admin: Any) -> None:
    client.force_login(erp_admin)
    with socket.socket() as held:
        # Bound and never listening: nothing answers there, and no other process can start listening there
        # meanwhile (a port only found free could be taken by a server another test starts).
        held.bind(("127.0.0.1", 0))
        data = {"name": "Later ERP", "url": f"http://127.0.0.1:{held.getsockname()[1]}", "secret": "s" * 20}
        first = client.post(reverse("connections:connector-add"), data).content.decode()
        assert "Nothing answers at this address" in first and 'type="checkbox" name="save_unreachable"' in first
        assert not SyncConnector.objects.exists()
        saved = client.post(reverse("connections:connector-add"), {**data, "save_unreachable": "on"})
    assert saved.status_code == 302
    assert SyncConnector.objects.get().last_check_ok is False


def test_a_wrong_secret_or_a_non_connector_cannot_be_saved(client: Any, erp_admin: Any, demo_erp: Connector) -> None:
    client.force_login(erp_admin)
    wrong = client.post(
        reverse("connections:connector-add"),
        {"name": "X", "url": demo_erp.url, "secret": "w" * 20, "save_unreachable": "on"},
    )
    assert "The connector refused the shared secret." in wrong.content.decode()
    with serving(answer("200 OK", b"<html>a web page</html>", "text/html")) as url:
        page = client.post(
            reverse("connections:connector-add"),
            {"name": "X", "url": url, "secret": "w" * 20, "save_unreachable": "on"},
        ).content.decode()
    assert "Something answers at this address, but not as a Sync Connector does." in page
    assert not SyncConnector.objects.exists()


def test_editing_a_connector_keeps_its_secret_when_left_empty(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    before = connector.secret
    response = client.post(
        reverse("connections:connector-edit", args=[connector.pk]),
        {"name": "Demo ERP (test)", "url": connector.url, "secret": ""},
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.name == "Demo ERP (test)" and connector.secret == before
    history = client.get(reverse("connections:connector-edit", args=[connector.pk])).content.decode()
    assert "Changed: name, URL or shared secret" in history and "lars" in history


def test_a_connector_in_use_cannot_be_deleted_and_deletion_is_soft(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    client.post(reverse("connections:connector-delete", args=[connector.pk]))
    assert SyncConnector.objects.filter(pk=connector.pk).exists()
    page = client.get(reverse("connections:sync")).content.decode()
    assert "is used by these ERP connections: Demo ERP – Sweden. Delete them first." in page
    client.post(reverse("connections:connection-delete", args=[connection.pk]))
    client.post(reverse("connections:connector-delete", args=[connector.pk]))
    assert not SyncConnector.objects.filter(pk=connector.pk).exists()
    assert SyncConnector.all_objects.get(pk=connector.pk).deleted_at is not None
    assert "No Sync Connectors are registered yet." in client.get(reverse("connections:sync")).content.decode()


# Defining a connection: the test gate


def test_a_connection_is_saved_only_with_a_passed_test_of_exactly_its_values(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    data = form_data(connector)
    untested = client.post(reverse("connections:connection-add"), data)
    assert "Test the ERP connection with these values before pressing OK." in untested.content.decode()
    token = passed_test_token(client, data)
    changed = client.post(reverse("connections:connection-add"), {**data, "cfg-vat_rate": "12", "test_token": token})
    assert "Test the ERP connection with these values before pressing OK." in changed.content.decode()
    forged = client.post(reverse("connections:connection-add"), {**data, "test_token": token[:-3] + "abc"})
    assert "Test the ERP connection with these values before pressing OK." in forged.content.decode()
    assert not ErpConnection.objects.exists()
    assert client.post(reverse("connections:connection-add"), {**data, "test_token": token}).status_code == 302
    connection = ErpConnection.objects.get()
    assert connection.config["vat_rate"] == 25.0 and connection.last_test_ok is True


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "This field is required."), ("demo erp – SWEDEN", "An ERP connection with this name already exists.")],
)
def test_connection_names_are_required_and_unique(
    client: Any, erp_admin: Any, connector: SyncConnector, name: str, message: str
) -> None:
    client.force_login(erp_admin)
    create_connection(client, connector)
    data = form_data(connector, name=name)
    data["test_token"] = passed_test_token(client, data)
    page = client.post(reverse("connections:connection-add"), data).content.decode()
    assert message in page and ErpConnection.objects.count() == 1


def test_a_failing_test_shows_the_connectors_explanation_and_gives_no_token(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    page = client.post(reverse("connections:connection-test-new"), form_data(connector, **{"cfg-api_key": "nope"}))
    text = page.content.decode()
    assert "Test failed." in text and "Demo ERP refused the API key." in text and "Technical details" in text
    assert "test_token" not in text
    incomplete = client.post(
        reverse("connections:connection-test-new"), form_data(connector, **{"cfg-client_name": ""})
    )
    assert "Fill in the marked fields first." in incomplete.content.decode()


def test_saving_reads_actor_types_and_fields_and_auto_maps_by_name(
    client: Any, erp_admin: Any, connector: SyncConnector, demo_erp: Connector
) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    assert set(connection.actor_types.values_list("actor_type", flat=True)) == {
        "Customer",
        "Supplier",
        "Person",
        "Project",
    }
    name = connection.erp_fields.get(actor_type="Customer", key="NAME")
    # Demo ERP suggests a direction for each field (protocol v1.1): an auto-mapped field starts with it.
    assert (name.crm_field, name.auto_mapped, name.direction, name.access) == ("NAME", True, "both", "mandatory")
    assert connection.erp_fields.get(actor_type="Customer", key="NUMBER2").direction == "erp_to_crm"
    assert connection.erp_fields.get(actor_type="Person", key="FIRSTNAME").crm_field == "FIRSTNAME"
    assert connection.erp_fields.get(actor_type="Customer", key="BALANCE").crm_field == ""
    assert connection.erp_fields.get(actor_type="Customer", key="COUNTRY").searchable
    # The connector now knows the connection by its GUID, with the saved configuration.
    with ConnectorClient(demo_erp.url, demo_erp.secret) as erp:
        assert erp.call("TestConnection", p.TestConnectionRequest(connection_id=str(connection.guid))).envelope.ok


def test_name_and_visibility_change_any_time_but_configuration_only_while_inactive(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    edit = reverse("connections:connection-edit", args=[connection.pk])
    renamed = client.post(edit, form_data(connector, name="Demo ERP – Sverige", **{"cfg-api_key": ""}))
    assert renamed.status_code == 302, renamed.content.decode()[:2000]
    changed = client.post(
        edit, form_data(connector, name="Demo ERP – Sverige", **{"cfg-api_key": "", "cfg-vat_rate": "12"})
    )
    assert "Test the ERP connection with these values before pressing OK." in changed.content.decode()
    ErpConnection.objects.filter(pk=connection.pk).update(is_active=True)
    locked = client.post(edit, form_data(connector, name="Renamed while active", **{"cfg-vat_rate": "6"}))
    assert locked.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Renamed while active" and connection.config["vat_rate"] == 25.0
    assert "Deactivate it to change its configuration." in client.get(edit).content.decode()


def test_a_saved_connection_can_be_renamed_while_its_connector_is_down(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    SyncConnector.objects.filter(pk=connector.pk).update(url=f"http://127.0.0.1:{free_port()}")
    edit = reverse("connections:connection-edit", args=[connection.pk])
    assert "cannot be reached for its configuration fields" in client.get(edit).content.decode()
    renamed = client.post(edit, form_data(connector, name="Demo ERP – renamed", **{"cfg-api_key": ""}))
    assert renamed.status_code == 302, renamed.content.decode()[:2000]
    changed = client.post(
        edit, form_data(connector, name="Demo ERP – renamed", **{"cfg-api_key": "", "cfg-vat_rate": "6"})
    )
    assert "Test the ERP connection with these values before pressing OK." in changed.content.decode()
    connection.refresh_from_db()
    assert connection.name == "Demo ERP – renamed" and connection.config["vat_rate"] == 25.0


# Secrets


def test_secrets_never_reach_a_page_the_database_in_clear_or_a_log(
    client: Any, erp_admin: Any, connector: SyncConnector, caplog: Any, capfd: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    bodies = [
        client.get(url).content.decode()
        for url in (
            reverse("connections:sync"),
            connection.get_absolute_url(),
            reverse("connections:connection-edit", args=[connection.pk]),
            reverse("connections:connector-edit", args=[connector.pk]),
        )
    ]
    stored = json.dumps([connection.config, connection.secrets]) + connector.secret_encrypted
    logs = caplog.text + "".join(capfd.readouterr())
    for secret in (API_KEY, connector.secret):
        assert all(secret not in body for body in bodies)
        assert secret not in stored and secret not in logs
    assert connection.config_values()["api_key"] == API_KEY


def test_secrets_survive_key_rotation(client: Any, erp_admin: Any, connector: SyncConnector, settings: Any) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    shared_secret = connector.secret
    old = list(settings.ERPSYNC_FERNET_KEYS)
    settings.ERPSYNC_FERNET_KEYS = [Fernet.generate_key().decode(), *old]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 2 secrets" in out.getvalue()
    settings.ERPSYNC_FERNET_KEYS = settings.ERPSYNC_FERNET_KEYS[:1]  # the old key is retired
    connection.refresh_from_db()
    assert connection.config_values()["api_key"] == API_KEY
    assert SyncConnector.objects.get(pk=connector.pk).secret == shared_secret


# Connectors that misbehave


def hang(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    hold(environ, 10)
    start_response("200 OK", [])
    return [b""]


def test_a_hanging_connector_gets_a_message_within_the_timeout(client: Any, erp_admin: Any, settings: Any) -> None:
    settings.ERPSYNC_CONNECTOR_TIMEOUT = 1
    client.force_login(erp_admin)
    with serving(hang, threads=8) as url:
        hanging = SyncConnector(name="Slow ERP", url=url)
        hanging.set_secret("s" * 20)
        hanging.save()
        started = time.monotonic()
        page = client.get(reverse("connections:connection-add") + f"?connector={hanging.pk}").content.decode()
        assert "cannot be reached for its configuration fields" in page and "did not answer in time" in page
        check = client.post(reverse("connections:connector-check", args=[hanging.pk]), follow=True).content.decode()
        assert "The connector did not answer in time." in check
        assert time.monotonic() - started < 4  # two pages, each waiting its 1 s and no longer


def test_invalid_metadata_from_a_connector_leaves_nothing_saved(
    client: Any, erp_admin: Any, connector: SyncConnector, demo_erp: Connector
) -> None:
    """A connector that answers GetSupportedActorTypeFields with a field of an unknown type."""
    client.force_login(erp_admin)
    data = form_data(connector)
    data["test_token"] = passed_test_token(client, data)
    real = ConnectorClient(demo_erp.url, demo_erp.secret)

    def broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "application/json")])
        if environ["PATH_INFO"] == "/v1/get-supported-actor-type-fields":
            return [
                json.dumps(
                    {
                        "ok": True,
                        "state": "ok",
                        "data": {"fields": [{"key": "NAME", "label": "Name", "type": "colour"}]},
                    }
                ).encode()
            ]
        op = p.OPERATIONS_BY_PATH[environ["PATH_INFO"]]
        return [
            real._http.post(
                op.path,
                content=body,
                headers={
                    k: environ[f"HTTP_{k.upper().replace('-', '_')}"]
                    for k in (p.HEADER_TIMESTAMP, p.HEADER_NONCE, p.HEADER_SIGNATURE)
                },
            ).content
        ]

    with serving(broken) as url:
        SyncConnector.objects.filter(pk=connector.pk).update(url=url)
        connector.refresh_from_db()
        data["test_token"] = passed_test_token(client, {**data, "test_token": ""})
        page = client.post(reverse("connections:connection-add"), data).content.decode()
    assert "Reading the Customer fields: Something answers at this address, but not as a Sync Connector does." in page
    assert not ErpConnection.objects.exists()


# Visibility


def test_a_connection_for_one_group_is_invisible_and_unusable_outside_it(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    sales, finance = Group.objects.create(name="Sales"), Group.objects.create(name="Finance")
    anna = UserFactory.create(username="anna", perms=["connections.use_erp_sync"])
    erik = UserFactory.create(username="erik", perms=["connections.use_erp_sync"])
    sara = UserFactory.create(username="sara")  # no licence
    anna.groups.add(sales)
    erik.groups.add(finance)
    sara.groups.add(sales)
    client.force_login(erp_admin)
    connection = create_connection(
        client,
        connector,
        visibility="specified",
        **{"grant-TOTAL_FORMS": "1", "grant-0-principal": f"g:{sales.pk}", "grant-0-can_connect": "on"},
    )
    assert list(visible_connections(anna)) == [connection]
    assert may_connect(anna, connection) and not may_create_in_erp(anna, connection)
    assert list(visible_connections(erik)) == [] and not may_connect(erik, connection)
    assert list(visible_connections(sara)) == []  # the group grants visibility, the licence is still needed
    assert "Sales" in client.get(connection.get_absolute_url()).content.decode()


def test_everyone_visibility_uses_the_everyone_rights(erp_admin: Any, connector: SyncConnector) -> None:
    user = UserFactory.create(username="per", perms=["connections.use_erp_sync"])
    connection = ErpConnection.objects.create(
        name="Open",
        connector=connector,
        visibility=Visibility.EVERYONE,
        everyone_can_connect=True,
        everyone_can_create=False,
    )
    assert list(visible_connections(user)) == [connection]
    assert may_connect(user, connection) and not may_create_in_erp(user, connection)


def test_deleting_a_connection_keeps_its_grants_until_the_purge_tells_the_connector(
    client: Any, erp_admin: Any, connector: SyncConnector, demo_erp: Connector
) -> None:
    sales = Group.objects.create(name="Sales")
    client.force_login(erp_admin)
    connection = create_connection(
        client,
        connector,
        visibility="specified",
        **{"grant-TOTAL_FORMS": "1", "grant-0-principal": f"g:{sales.pk}", "grant-0-can_create": "on"},
    )
    assert ErpConnectionGroupObjectPermission.objects.count() == 2  # view + create
    guid = str(connection.guid)
    client.post(reverse("connections:connection-delete", args=[connection.pk]))
    assert not ErpConnection.objects.exists() and ErpConnectionGroupObjectPermission.objects.count() == 2
    assert AuditEntry.objects.filter(action="deleted", subject="Demo ERP – Sweden").exists()
    services.purge_connection(ErpConnection.all_objects.get(pk=connection.pk), erp_admin)
    assert not ErpConnection.all_objects.exists() and ErpConnectionGroupObjectPermission.objects.count() == 0
    with ConnectorClient(demo_erp.url, demo_erp.secret) as erp, pytest.raises(UnknownConnection):
        erp.call("TestConnection", p.TestConnectionRequest(connection_id=guid))
    assert AuditEntry.objects.filter(action="purged", subject="Demo ERP – Sweden", user=erp_admin).exists()


# Activation and audit


def test_activation_lists_every_reason_and_succeeds_once_they_are_gone(
    client: Any, erp_admin: Any, connector: SyncConnector
) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    url = reverse("connections:connection-active", args=[connection.pk])
    page = client.post(url, {"active": "1"}, follow=True).content.decode()
    assert "was not activated" in page and page.count("No actor type is enabled for sync.") == 1
    connection.actor_types.filter(actor_type="Customer").update(sync_enabled=True)
    # The auto-mapped fields start with the directions Demo ERP suggests: no mapping decision is left open.
    assert services.activation_problems(connection) == []
    # What the field-mapping page does: directions for the auto-mapped fields, the mandatory one both ways.
    connection.erp_fields.filter(actor_type="Customer").exclude(crm_field="").update(direction=Direction.ERP_TO_CRM)
    connection.erp_fields.filter(actor_type="Customer", access="mandatory").update(direction=Direction.BOTH)
    # A mapped field the connector no longer returns must be unmapped first.
    connection.erp_fields.create(
        actor_type="Customer", key="OLD", label="Old", type="text", access="normal", crm_field="FAX"
    )
    client.post(reverse("connections:connection-refresh", args=[connection.pk]))
    assert services.activation_problems(connection) == [
        "Customer field OLD is mapped but missing in the ERP: unmap it."
    ]
    connection.erp_fields.filter(key="OLD").update(crm_field="")
    assert client.post(url, {"active": "1"}).status_code == 302
    connection.refresh_from_db()
    assert connection.is_active
    actions = list(AuditEntry.objects.filter(connection=connection).values_list("action", flat=True))
    assert {"created", "refreshed", "activated"} <= set(actions)
    assert "Activated" in client.get(connection.get_absolute_url()).content.decode()


def test_a_failed_test_of_a_saved_connection_blocks_activation(
    client: Any, erp_admin: Any, connector: SyncConnector, demo_erp: Connector
) -> None:
    client.force_login(erp_admin)
    connection = create_connection(client, connector)
    with ConnectorClient(demo_erp.url, demo_erp.secret) as erp:
        erp.connection(str(connection.guid), dict).delete()  # the connector lost it; the CRM resends on test
    page = client.post(reverse("connections:connection-test-saved", args=[connection.pk]), follow=True).content.decode()
    assert "The test passed." in page  # the connector had lost the connection; the CRM sent it again
    SyncConnector.objects.filter(pk=connector.pk).update(url=f"http://127.0.0.1:{free_port()}")
    page = client.post(reverse("connections:connection-test-saved", args=[connection.pk]), follow=True).content.decode()
    assert "Nothing answers at this address" in page
    connection.refresh_from_db()
    assert connection.last_test_ok is False
    assert any(problem.startswith("The last test failed") for problem in services.activation_problems(connection))
