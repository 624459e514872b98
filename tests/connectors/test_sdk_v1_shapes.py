"""An SDK connector sends the fields protocol v1.1 added to answers only for the capabilities it names: one without
capabilities answers exactly the version 1 shapes, which a strict version 1 CRM reads."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import httpx

from connectors import protocol as p
from connectors.sdk import ConnectorApp, Context

from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"
V1_FIELD_INFO = {"key", "label", "description", "type", "list_name", "default", "max_length", "access"}
V1_FEED = {"actors", "next_cursor", "has_more"}


def call(url: str, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The raw ``data`` of an operation's answer, as the connector wrote it."""
    path = p.OPERATIONS[operation].path
    body = json.dumps(payload).encode()
    stamp, nonce = str(int(time.time())), secrets.token_hex(16)
    headers = {
        "Content-Type": "application/json",
        p.HEADER_TIMESTAMP: stamp,
        p.HEADER_NONCE: nonce,
        p.HEADER_SIGNATURE: p.signature(SECRET, "POST", path, stamp, nonce, body),
    }
    answer = httpx.post(url + path, content=body, headers=headers).json()
    assert answer["ok"], answer
    data: dict[str, Any] = answer["data"]
    return data


class Named(AddressBook):
    """The same address book naming decimal and tombstones: their fields are sent, empty or not."""

    capabilities = frozenset({p.Capability.DECIMAL.value, p.Capability.TOMBSTONES.value})


class Careless(AddressBook):
    """No capabilities, but it fills a 1.1 field all the same: what it fills is sent (the kit then says so)."""

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        fields = super().get_supported_actor_type_fields(request, context).fields
        return p.FieldsData(fields=[fields[0].model_copy(update={"decimal_places": 2}), *fields[1:]])


def answers(book: AddressBook) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The actor fields, the first page of the change feed and the configuration fields, as sent."""
    connection = {"connection_id": str(uuid.uuid4())}
    with serving(ConnectorApp(book, SECRET)) as url:
        call(url, "SaveConnection", {**connection, "config": {"owner": "Tests"}})
        fields = call(url, "GetSupportedActorTypeFields", {**connection, "actor_type": "Customer"})["fields"]
        feed = call(url, "GetActorsByTimestamp", {**connection, "actor_type": "Customer"})
        config = call(url, "GetConfigData", {})["fields"]
    return fields, feed, config


def test_an_sdk_connector_without_capabilities_answers_exactly_the_version_1_shapes() -> None:
    fields, feed, config = answers(AddressBook())
    assert [set(field) for field in fields + config] == [V1_FIELD_INFO] * (len(fields) + len(config))
    assert set(feed) == V1_FEED
    assert {frozenset(actor) for actor in feed["actors"]} == {
        frozenset({"actor_type", "key", "last_modified", "parent_actor_type", "parent_key", "values"})
    }


def test_an_empty_1_1_field_is_left_out_even_for_a_capability_the_connector_names() -> None:
    fields, feed, _config = answers(Named())
    # Left out and empty mean the same: no decimal_places (any), no depends_on, no tombstones on this page.
    assert {frozenset(field) for field in fields} == {frozenset(V1_FIELD_INFO)}
    assert "tombstones" not in feed


def test_a_1_1_field_a_connector_fills_is_sent_even_without_its_capability() -> None:
    fields, _feed, _config = answers(Careless())
    assert fields[0]["decimal_places"] == 2
    assert "decimal_places" not in fields[1]
