"""Protocol versions: a connector states its version and capabilities in its health answer; the CRM reads them
when the Sync Connector is saved or checked, and sends a v1.1 field only to a connector that names it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from connections import services
from connectors import protocol as p
from connectors.conformance import run_conformance
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp

from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"


class Labelled(AddressBook):
    capabilities = frozenset({p.Capability.LABELS.value})


def with_health(app: ConnectorApp, status: int, body: bytes) -> Callable[..., Iterable[bytes]]:
    """``app`` with another health answer: a v1 connector's, or none at all."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/v1/health":
            start_response(f"{status} X", [("Content-Type", "application/json")])
            return [body]
        return app(environ, start_response)

    return wrapped


def test_an_sdk_connector_states_protocol_1_1_and_its_capabilities() -> None:
    with serving(ConnectorApp(Labelled(), SECRET)) as url:
        health = httpx.get(f"{url}/v1/health").json()
    assert health == {"name": "Address Book", "version": "0.1", "protocol": "1.1", "capabilities": ["labels"]}


@pytest.mark.django_db
def test_saving_a_connector_keeps_what_its_health_answer_says_and_its_client_sends_accordingly(
    admin_user: Any,
) -> None:
    with serving(ConnectorApp(Labelled(), SECRET)) as url:
        connector = SyncConnector(name="Labelled", url=url)
        assert services.save_checked_connector(connector, SECRET, admin_user) is None
        connector.refresh_from_db()
        assert (connector.protocol_version, connector.capabilities) == ("1.1", ["labels"])
        assert connector.supports(p.Capability.LABELS) and not connector.supports(p.Capability.TOMBSTONES)
        assert connector.client().supports(p.Capability.LABELS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, json.dumps({"name": "Old", "version": "3", "protocol": "1"}).encode()),
        (404, b'{"ok": false}'),
        (200, b"<html>not json</html>"),
    ],
    ids=["v1 health", "no health", "not json"],
)
def test_a_v1_connector_is_kept_as_protocol_1_with_no_capabilities(admin_user: Any, status: int, body: bytes) -> None:
    with serving(with_health(ConnectorApp(Labelled(), SECRET), status, body)) as url:
        connector = SyncConnector(name="Old", url=url)
        services.save_checked_connector(connector, SECRET, admin_user)
        connector.refresh_from_db()
    assert (connector.protocol_version, connector.capabilities) == ("1", [])
    assert connector.last_check_ok


@pytest.mark.django_db
def test_a_check_that_fails_keeps_what_the_connector_last_said_of_itself(admin_user: Any) -> None:
    with serving(ConnectorApp(Labelled(), SECRET)) as url:
        connector = SyncConnector(name="Labelled", url=url)
        services.save_checked_connector(connector, SECRET, admin_user)
    assert services.recheck_connector(connector) is not None  # stopped
    connector.refresh_from_db()
    assert (connector.last_check_ok, connector.capabilities) == (False, ["labels"])


class Since11(p.Request):
    text: str = ""
    hint: str | None = p.Field(default=None, json_schema_extra=p.SINCE_1_1)


def test_a_v1_1_request_field_left_empty_is_not_sent() -> None:
    assert json.loads(Since11(text="x").wire_json()) == {"text": "x"}
    assert json.loads(Since11(text="x", hint="y").wire_json()) == {"text": "x", "hint": "y"}


def test_the_strict_kit_requires_protocol_1_1_and_the_plain_kit_does_not() -> None:
    v1 = json.dumps({"name": "Old", "version": "3", "protocol": "1"}).encode()
    with serving(with_health(ConnectorApp(AddressBook(), SECRET), 200, v1)) as url:
        assert run_conformance(url, SECRET, {"owner": "Tests"}).ok
        strict = run_conformance(url, SECRET, {"owner": "Tests"}, strict=True)
    assert [check.name for check in strict.failed] == [
        "v1.1: the health answer states protocol 1.1 and its capabilities"
    ]
    with serving(ConnectorApp(AddressBook(), SECRET)) as url:
        assert run_conformance(url, SECRET, {"owner": "Tests"}, strict=True).ok
