"""Request signing against real connector servers: what an eavesdropper or a forger gets is 401, nothing else.

The SDK checks a timestamp (within SIGNATURE_TOLERANCE_SECONDS), a nonce (accepted once) and an HMAC of the
method, path, timestamp, nonce and body under the shared secret.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.sdk import ConnectorApp

from ..conftest import RunningConnector
from ..connectors.servers import serving
from ..connectors.tiny_connector import AddressBook
from .conftest import CONNECTOR_SECRET

CONFIG_DATA, TEST_CONFIG = "/v1/get-config-data", "/v1/test-config-data"
BODY = b'{"config": {"owner": "Tests"}}'


@pytest.fixture(scope="module")
def connector_url() -> Iterator[str]:
    with serving(ConnectorApp(AddressBook(), CONNECTOR_SECRET)) as url:
        yield url


def signed(path: str, body: bytes, *, secret: str = CONNECTOR_SECRET, age: int = 0) -> dict[str, str]:
    """Headers of a request signed ``age`` seconds ago (negative: in the future), with a fresh nonce."""
    stamp, nonce = str(int(time.time()) - age), secrets.token_hex(16)
    return {
        "Content-Type": "application/json",
        p.HEADER_TIMESTAMP: stamp,
        p.HEADER_NONCE: nonce,
        p.HEADER_SIGNATURE: p.signature(secret, "POST", path, stamp, nonce, body),
    }


def send(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=10)


def refused(response: httpx.Response, why: str) -> bool:
    answer = response.json()
    return (
        response.status_code == 401
        and answer["ok"] is False
        and answer["error_code"] == "unauthorized"
        and answer["user_explanation"]["en"] == why
    )


REPLAYED = "The request was already received."
TOO_OLD = "The request is too old or its clock is wrong."
WRONG = "The request's signature is wrong: check the shared secret."


def test_a_valid_request_is_answered(connector_url: str) -> None:
    response = send(connector_url, TEST_CONFIG, BODY, signed(TEST_CONFIG, BODY))
    assert response.status_code == 200 and response.json()["ok"] is True


def test_a_captured_request_sent_again_is_refused(connector_url: str) -> None:
    headers = signed(TEST_CONFIG, BODY)
    assert send(connector_url, TEST_CONFIG, BODY, headers).status_code == 200
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), REPLAYED)
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), REPLAYED)


def test_a_request_outside_the_time_window_is_refused(connector_url: str) -> None:
    late = p.SIGNATURE_TOLERANCE_SECONDS + 5
    assert refused(send(connector_url, TEST_CONFIG, BODY, signed(TEST_CONFIG, BODY, age=late)), TOO_OLD)
    assert refused(send(connector_url, TEST_CONFIG, BODY, signed(TEST_CONFIG, BODY, age=-late)), TOO_OLD)
    headers = signed(TEST_CONFIG, BODY)
    headers[p.HEADER_TIMESTAMP] = "1e9"  # not a number of seconds
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), TOO_OLD)
    inside = p.SIGNATURE_TOLERANCE_SECONDS - 30
    assert send(connector_url, TEST_CONFIG, BODY, signed(TEST_CONFIG, BODY, age=inside)).status_code == 200


def test_a_changed_body_with_the_old_signature_is_refused(connector_url: str) -> None:
    headers = signed(TEST_CONFIG, BODY)
    changed = b'{"config": {"owner": "Mallory"}}'
    assert refused(send(connector_url, TEST_CONFIG, changed, headers), WRONG)
    assert refused(send(connector_url, TEST_CONFIG, BODY + b" ", headers), WRONG)


def test_a_signature_for_one_path_is_refused_on_another(connector_url: str) -> None:
    headers = signed(CONFIG_DATA, BODY)
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), WRONG)


def test_a_wrong_secret_and_tampered_headers_are_refused(connector_url: str) -> None:
    assert refused(
        send(connector_url, TEST_CONFIG, BODY, signed(TEST_CONFIG, BODY, secret="another-secret-16+")), WRONG
    )
    headers = signed(TEST_CONFIG, BODY)
    headers[p.HEADER_NONCE] = secrets.token_hex(16)  # a fresh nonce does not make an old signature new
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), WRONG)
    headers = signed(TEST_CONFIG, BODY)
    headers[p.HEADER_TIMESTAMP] = str(int(headers[p.HEADER_TIMESTAMP]) + 1)
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), WRONG)
    headers = signed(TEST_CONFIG, BODY)
    headers[p.HEADER_SIGNATURE] = headers[p.HEADER_SIGNATURE].upper()
    assert refused(send(connector_url, TEST_CONFIG, BODY, headers), WRONG)


def test_a_forged_request_cannot_use_up_the_nonce_of_a_genuine_one(connector_url: str) -> None:
    """The signature is checked before the nonce is remembered: a forger cannot block a request they saw coming."""
    genuine = signed(TEST_CONFIG, BODY)
    forged = {**genuine, p.HEADER_SIGNATURE: "v1=" + "0" * 64}
    assert refused(send(connector_url, TEST_CONFIG, BODY, forged), WRONG)
    assert send(connector_url, TEST_CONFIG, BODY, genuine).status_code == 200


def test_the_client_signs_every_call_afresh(connector_url: str) -> None:
    with ConnectorClient(connector_url, CONNECTOR_SECRET) as client:
        for _ in range(3):
            assert client.test_config_data({"owner": "Tests"}).envelope.ok


def test_a_replay_is_refused_by_a_connector_process_too(secret_demo: RunningConnector) -> None:
    """The same rules in a separately started connector (Demo ERP), not only in a server inside the tests."""
    body = b"{}"
    headers = signed(CONFIG_DATA, body)
    assert send(secret_demo.url, CONFIG_DATA, body, headers).status_code == 200
    assert refused(send(secret_demo.url, CONFIG_DATA, body, headers), REPLAYED)
    assert refused(send(secret_demo.url, CONFIG_DATA, body, signed(CONFIG_DATA, body, secret="x" * 20)), WRONG)
    assert refused(send(secret_demo.url, CONFIG_DATA, body, signed(CONFIG_DATA, body, age=3600)), TOO_OLD)
