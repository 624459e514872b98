"""A connector written only against the SDK passes the kit; the SDK turns bad input and bugs into envelopes."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import httpx
import pytest

from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorRejected
from connectors.conformance import run_conformance
from connectors.sdk import Connector, ConnectorApp, Context, EncodedData

from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"


def test_a_tiny_connector_built_on_the_sdk_passes_the_conformance_kit() -> None:
    with serving(ConnectorApp(AddressBook(), SECRET)) as url:
        report = run_conformance(url, SECRET, {"owner": "Tests"})
    assert report.ok, "\n".join(line for line in report.lines() if not line.startswith("PASS"))


def test_the_kit_catches_a_connector_whose_search_ignores_restrictions() -> None:
    with serving(ConnectorApp(AddressBook(lie_in_search=True), SECRET)) as url:
        report = run_conformance(url, SECRET, {"owner": "Tests"})
    failed = [check.name for check in report.failed]
    assert "Customer: search EMPLOYEES gt" in failed and "Customer: search NAME not_contains" in failed
    assert not report.ok


def signed(path: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    stamp, nonce = str(int(time.time())), secrets.token_hex(8)
    return {
        "Content-Type": "application/json",
        p.HEADER_TIMESTAMP: stamp,
        p.HEADER_NONCE: nonce,
        p.HEADER_SIGNATURE: p.signature(secret, "POST", path, stamp, nonce, body),
    }


class Buggy(Connector):
    name = "Buggy"

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        raise KeyError("the connector author forgot something")

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData:
        return p.ActorTypesData(actor_types=[])  # type: ignore[return-value]

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> EncodedData:
        return EncodedData('{"items": [{"key": 30, "text": "30 days"}]}')  # a number where a key string belongs


@pytest.fixture(scope="module")
def buggy_url() -> Any:
    with serving(ConnectorApp(Buggy(), SECRET)) as url:
        yield url


def test_a_bug_in_an_operation_becomes_an_internal_error_envelope_without_a_traceback(buggy_url: str) -> None:
    body = b"{}"
    response = httpx.post(f"{buggy_url}/v1/get-config-data", content=body, headers=signed("/v1/get-config-data", body))
    assert response.status_code == 500
    answer = response.json()
    assert answer["error_code"] == "internal_error" and "reference" in answer["user_explanation"]["en"]
    assert "Traceback" not in response.text and "forgot" not in response.text


def test_an_operation_returning_the_wrong_model_is_caught_by_the_sdk(buggy_url: str) -> None:
    with ConnectorClient(buggy_url, SECRET) as client, pytest.raises(ConnectorRejected) as error:
        client.get_config_list("currencies")
    assert error.value.error_code == p.ErrorCode.INTERNAL_ERROR


def test_an_answer_the_connector_encoded_itself_is_validated_too(buggy_url: str) -> None:
    with ConnectorClient(buggy_url, SECRET) as client, pytest.raises(ConnectorRejected) as error:
        client.connection(str(uuid.uuid4()), dict).get_list_items("payment_terms", ["30"])
    assert error.value.error_code == p.ErrorCode.INTERNAL_ERROR


def test_an_operation_a_connector_left_out_is_unsupported(buggy_url: str) -> None:
    with ConnectorClient(buggy_url, SECRET) as client, pytest.raises(ConnectorRejected) as error:
        client.test_config_data({})
    assert error.value.error_code == p.ErrorCode.UNSUPPORTED_OPERATION
    assert error.value.user_text() == "This connector does not support TestConfigData."


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        ("GET", "/v1/get-config-data", b"", {}, 405, "invalid_request"),
        ("POST", "/v2/get-config-data", b"{}", None, 404, "not_found"),
        ("POST", "/v1/test-config-data", b"not json", None, 400, "invalid_request"),
        ("POST", "/v1/test-config-data", b'{"config": {"a": {"nested": 1}}}', None, 400, "invalid_request"),
        ("POST", "/v1/test-config-data", b'{"config": {}, "extra": 1}', None, 400, "invalid_request"),
        (
            "POST",
            "/v1/get-actors",
            b'{"connection_id": "not-a-guid", "actor_type": "Customer", "keys": ["1"]}',
            None,
            400,
            "invalid_request",
        ),
        ("POST", "/v1/get-config-data", b"{}", {"Content-Type": "application/json"}, 401, "unauthorized"),
    ],
)
def test_malformed_and_unsigned_requests_get_an_envelope_and_the_right_status(
    buggy_url: str, method: str, path: str, body: bytes, headers: dict[str, str] | None, status: int, code: str
) -> None:
    response = httpx.request(
        method, f"{buggy_url}{path}", content=body, headers=signed(path, body) if headers is None else headers
    )
    assert response.status_code == status
    assert response.json()["error_code"] == code and response.json()["ok"] is False


def test_the_invalid_request_answer_names_the_bad_field(buggy_url: str) -> None:
    body = b'{"connection_id": "not-a-guid", "actor_type": "Customer", "keys": ["1"]}'
    answer = httpx.post(f"{buggy_url}/v1/get-actors", content=body, headers=signed("/v1/get-actors", body)).json()
    assert answer["technical_explanation"].startswith("connection_id: String should match pattern")


def test_an_oversized_request_is_refused_before_it_is_read(buggy_url: str) -> None:
    body = b"x" * (p.MAX_REQUEST_BYTES + 1)
    response = httpx.post(f"{buggy_url}/v1/test-config-data", content=body, headers=signed("/v1/test-config-data", b""))
    assert response.status_code == 413 and response.json()["error_code"] == "payload_too_large"


def test_every_sdk_connector_serves_its_schema_unsigned(buggy_url: str) -> None:
    schema = httpx.get(f"{buggy_url}/v1/schema").json()
    assert schema["info"]["title"] == "Buggy"
    assert set(schema["paths"]) == {op.path for op in p.OPERATIONS.values()}
    actor = schema["components"]["schemas"]["Actor"]
    assert set(actor["required"]) == {"actor_type"} and "values" in actor["properties"]
    assert json.dumps(schema) == json.dumps(p.openapi_document("Buggy", "0"))
