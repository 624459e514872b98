"""The connection form with a configuration list that depends on other values (protocol v1.1, capability
config_list_values): the list is read with the values entered so far, again when they change, with a clear note
in its place until they work; a password typed reaches the connector and no page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from connections import services
from connections.models import ErpConnection
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp

from .connectors.offices_connector import TOKEN, Offices
from .connectors.servers import serving
from .factories import UserFactory
from .test_sync_tab import page_errors, passed_test_token

pytestmark = pytest.mark.django_db
SECRET = "offices-connector-secret-42"


@pytest.fixture
def erp_admin(db: Any) -> Any:
    return UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])


@pytest.fixture
def offices(erp_admin: Any) -> Iterator[tuple[Offices, SyncConnector]]:
    book = Offices()
    with serving(ConnectorApp(book, SECRET)) as url:
        connector = SyncConnector(name="Offices", url=url)
        assert services.save_checked_connector(connector, SECRET, erp_admin) is None  # reads its capabilities
        yield book, connector


def form_data(connector: SyncConnector, **config: str) -> dict[str, Any]:
    return {
        "name": "Offices – Nord",
        "connector": connector.pk,
        "description": "",
        "visibility": "everyone",
        "everyone_can_connect": "on",
        "grant-TOTAL_FORMS": "0",
        "grant-INITIAL_FORMS": "0",
        "grant-MIN_NUM_FORMS": "0",
        "grant-MAX_NUM_FORMS": "1000",
        **{f"cfg-{key}": value for key, value in config.items()},
    }


def options(page: str) -> list[str]:
    """The texts of the office list's options, but its empty one."""
    select = re.search(r'<select name="cfg-office".*?</select>', page, re.S)
    assert select, page
    return [
        html.unescape(text) for value, text in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)', select[0]) if value
    ]


def note(page: str) -> str:
    found = re.search(r'class="[^"]*config-list-note[^"]*"[^>]*>([^<]*)<', page)
    return html.unescape(found[1]) if found else ""


def reread(client: Any, connector: SyncConnector, url: str | None = None, **config: str) -> str:
    """What the page gets when a value the office list depends on changed: that list, read again."""
    data = {**form_data(connector, **config), "config_list_field": "office"}
    response = client.post(url or reverse("connections:connection-config-list-new"), data)
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_is_read_with_the_values_entered_so_far_and_again_when_they_change(
    client: Any, erp_admin: Any, offices: tuple[Offices, SyncConnector]
) -> None:
    book, connector = offices
    client.force_login(erp_admin)

    # Nothing entered yet: the list is not read, and says what it waits for.
    page = client.get(reverse("connections:connection-add") + f"?connector={connector.pk}").content.decode()
    assert options(page) == []
    assert note(page) == "Fill in Owner and Token to choose from this list."
    assert 'data-depends-on="owner token"' in page
    assert book.calls == []

    # The owner and the token typed: the page asks for the list again, and gets the owner's offices.
    part = reread(client, connector, owner="Nord", token=TOKEN)
    assert options(part) == ["Nord Norr", "Nord Söder"]
    assert note(part) == ""
    assert book.calls == [{"owner": "Nord", "token": TOKEN, "office": None}]
    assert TOKEN not in part  # the token went to the connector, not back to the page

    # Another owner, other offices; a wrong token, the connector's own words in the list's place, in Swedish too.
    assert options(reread(client, connector, owner="Syd", token=TOKEN)) == ["Syd Norr", "Syd Söder"]
    wrong = reread(client, connector, owner="Syd", token="guess")
    assert (options(wrong), note(wrong)) == ([], "The token is wrong: no offices can be shown.")
    swedish = client.post(
        reverse("connections:connection-config-list-new"),
        {**form_data(connector, owner="Syd", token="guess"), "config_list_field": "office"},
        HTTP_ACCEPT_LANGUAGE="sv",
    ).content.decode()
    assert note(swedish) == "Token är fel: inga kontor kan visas."

    # Chosen, tested and saved; the configuration keeps the office's key.
    data = {**form_data(connector, owner="Nord", token=TOKEN, office="south")}
    data["test_token"] = passed_test_token(client, data)
    response = client.post(reverse("connections:connection-add"), data)
    assert response.status_code == 302, page_errors(response.content.decode())
    connection = ErpConnection.objects.get(name="Offices – Nord")
    assert connection.config_values() == {"owner": "Nord", "token": TOKEN, "office": "south"}


def test_a_saved_connection_reads_its_list_with_the_saved_values_and_its_stored_password(
    client: Any, erp_admin: Any, offices: tuple[Offices, SyncConnector]
) -> None:
    book, connector = offices
    client.force_login(erp_admin)
    data = form_data(connector, owner="Nord", token=TOKEN, office="north")
    data["test_token"] = passed_test_token(client, data)
    client.post(reverse("connections:connection-add"), data)
    connection = ErpConnection.objects.get(name="Offices – Nord")
    book.calls.clear()

    page = client.get(reverse("connections:connection-edit", args=[connection.pk])).content.decode()
    assert options(page) == ["Nord Norr", "Nord Söder"]
    assert re.search(r'<option value="north"[^>]*selected', page)
    assert TOKEN not in page

    # The token field left empty keeps the stored token, for the list as for the test.
    url = reverse("connections:connection-config-list", args=[connection.pk])
    assert options(reread(client, connector, url, owner="Syd", token="")) == ["Syd Norr", "Syd Söder"]
    assert book.calls[-1] == {"owner": "Syd", "token": TOKEN, "office": None}


def test_a_list_field_of_a_connector_that_does_not_name_the_capability_is_read_as_in_version_1(
    client: Any, erp_admin: Any, offices: tuple[Offices, SyncConnector]
) -> None:
    book, connector = offices
    connector.capabilities = []  # as saved before it named the capability, or a version 1 connector
    connector.save()
    client.force_login(erp_admin)
    page = client.get(reverse("connections:connection-add") + f"?connector={connector.pk}").content.decode()
    assert book.calls == [None]
    assert "data-depends-on" not in page
    assert reread_status(client, connector) == 404


def reread_status(client: Any, connector: SyncConnector) -> int:
    data = {**form_data(connector, owner="Nord", token=TOKEN), "config_list_field": "office"}
    return int(client.post(reverse("connections:connection-config-list-new"), data).status_code)


def test_only_an_erp_sync_admin_may_read_a_list_and_only_a_dependent_one(
    client: Any, erp_admin: Any, offices: tuple[Offices, SyncConnector]
) -> None:
    _book, connector = offices
    client.force_login(UserFactory.create(username="nils"))
    assert reread_status(client, connector) in (302, 403)
    client.force_login(erp_admin)
    data = {**form_data(connector, owner="Nord", token=TOKEN), "config_list_field": "owner"}
    assert client.post(reverse("connections:connection-config-list-new"), data).status_code == 404
    assert client.get(reverse("connections:connection-config-list-new")).status_code == 405
