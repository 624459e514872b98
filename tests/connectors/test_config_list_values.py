"""Protocol v1.1, capability config_list_values, on the wire: GetList for a configuration list carries the values
entered so far, only to a connector that names the capability; the conformance kit checks it under strict and
fails a connector that names it and ignores the values."""

from __future__ import annotations

import json
from typing import Any

from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.conformance import run_conformance
from connectors.sdk import ConnectorApp

from .offices_connector import CONFIG, TOKEN, Offices
from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"
NAMES = [
    "config_list_values: a configuration list field depends on configuration fields",
    "config_list_values: list 'offices' read with the configuration values is a valid list",
    "config_list_values: list 'offices' with no values entered yet is a list or explained",
]


def kit(book: AddressBook, config: dict[str, p.Value] = CONFIG, **options: Any) -> tuple[list[str], dict[str, str]]:
    with serving(ConnectorApp(book, SECRET)) as url:
        report = run_conformance(url, SECRET, config, **options)
    return [check.name for check in report.checks], {check.name: check.detail for check in report.failed}


def test_the_values_entered_so_far_are_sent_only_to_a_connector_that_names_the_capability() -> None:
    book = Offices()
    with serving(ConnectorApp(book, SECRET)) as url:
        with ConnectorClient(url, SECRET) as v1:
            assert v1.get_config_list("offices", {"owner": "Nord", "token": TOKEN}) == []
        with ConnectorClient(url, SECRET, capabilities=book.capabilities) as v11:
            items = v11.get_config_list("offices", {"owner": "Nord", "token": TOKEN})
            picked = v11.get_config_list_items("offices", ["south", "west"], {"owner": "Nord", "token": TOKEN})
    assert [(item.key, item.text) for item in items] == [("north", "Nord Norr"), ("south", "Nord Söder")]
    assert [item.text for item in picked] == ["Nord Söder"]
    assert book.calls == [None, {"owner": "Nord", "token": TOKEN}]


def test_the_config_field_of_get_list_is_a_v1_1_field_left_out_while_empty() -> None:
    assert json.loads(p.GetListRequest(list_name="offices").wire_json()) == {
        "connection_id": None,
        "list_name": "offices",
    }
    schema = p.openapi_document()["components"]["schemas"]
    assert schema["GetListRequest"]["properties"]["config"]["since"] == "1.1"
    assert schema["FieldInfo"]["properties"]["depends_on"]["capability"] == "config_list_values"


def test_a_connector_with_a_list_that_depends_on_values_passes_strict() -> None:
    names, failed = kit(Offices(), strict=True)
    assert not failed
    assert all(name in names for name in NAMES)
    # Without strict, the list is not read without its values (it would be empty), and nothing of 1.1 is checked.
    names, failed = kit(Offices())
    assert not failed
    assert not any(name.startswith("config_list_values") or "'offices'" in name for name in names)


def test_the_kit_catches_a_connector_that_names_the_capability_and_ignores_the_values() -> None:
    _names, failed = kit(Offices(ignores_config=True), strict=True)
    assert failed == {NAMES[1]: "the list is empty"}


def test_the_kit_catches_a_configured_value_that_is_not_among_the_items() -> None:
    _names, failed = kit(Offices(), {**CONFIG, "office": "Norr"}, strict=True)
    assert "the configured value 'Norr' is not one of its items" in failed[NAMES[1]]
