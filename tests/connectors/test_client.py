"""The connector client against real misbehaving servers on loopback: every failure is named, in time."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import protocol as p
from connectors.client import (
    ConnectorClient,
    ConnectorNotAllowed,
    ConnectorRejected,
    ConnectorTimeout,
    ConnectorUnreachable,
    GatewayError,
    ProtocolError,
    Timeouts,
    UnknownConnection,
    serve_in_process,
    tls_context,
)

from ..conftest import free_port
from .servers import answer, hold, serving, serving_tls, trickle

FAST = Timeouts(connect=2, read=1, total=3)


def envelope(**fields: Any) -> bytes:
    return json.dumps({"ok": True, "state": "ok", **fields}).encode()


def call(url: str, timeouts: Timeouts = FAST, **kwargs: Any) -> Any:
    with ConnectorClient(url, "shared-secret-123456", timeouts=timeouts, **kwargs) as client:
        return client.get_config_data()


def test_a_closed_port_is_unreachable_and_worth_retrying() -> None:
    with pytest.raises(ConnectorUnreachable) as error:
        call(f"http://127.0.0.1:{free_port()}")
    assert error.value.permanent is False
    assert "cannot reach" in str(error.value) and "GetConfigData" in str(error.value)


def test_a_hanging_connector_times_out_within_the_read_timeout() -> None:
    def hang(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        hold(environ, 5)
        start_response("200 OK", [])
        return [b""]

    with serving(hang) as url:
        started = time.monotonic()
        with pytest.raises(ConnectorTimeout) as error:
            call(url)
        assert time.monotonic() - started < 3
    assert error.value.permanent is False


def test_a_slow_trickle_is_cut_off_at_the_total_deadline() -> None:
    with serving(answer("200 OK", trickle(chunks=40, pause=0.2))) as url:
        started = time.monotonic()
        # Every read comes within the 1 s read timeout; the whole answer never within the total.
        with pytest.raises(ConnectorTimeout, match=r"no complete answer within 1\.5 s"):
            call(url, Timeouts(connect=2, read=1, total=1.5))
        assert time.monotonic() - started < 3


def test_a_500_with_an_html_page_is_a_protocol_error_described_by_status_and_content_type_only() -> None:
    page = b"<html><body><h1>Internal Server Error</h1></body></html>"
    with serving(answer("500 Internal Server Error", page, "text/html")) as url, pytest.raises(ProtocolError) as error:
        call(url)
    assert "HTTP 500 (text/html) with a body that is not JSON" in str(error.value)
    assert "Internal Server Error" not in str(error.value)  # what answered says nothing of itself
    assert error.value.permanent is True


@pytest.mark.parametrize("status", ["502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"])
def test_a_proxys_error_page_for_a_connector_behind_it_is_worth_retrying(status: str) -> None:
    page = b"<html><body><center><h1>" + status.encode() + b"</h1></center></body></html>"
    with serving(answer(status, page, "text/html")) as url, pytest.raises(GatewayError) as error:
        call(url)
    assert f"HTTP {status[:3]} (text/html) with a body that is not JSON" in str(error.value)
    assert "<html>" not in str(error.value)
    assert error.value.permanent is False


def test_invalid_json_is_named() -> None:
    with serving(answer("200 OK", b'{"ok": true, "state": ')) as url, pytest.raises(ProtocolError, match="not JSON"):
        call(url)


def test_a_missing_envelope_field_is_named() -> None:
    with serving(answer("200 OK", b'{"state": "ok", "data": {}}')) as url, pytest.raises(ProtocolError) as error:
        call(url)
    assert "ok: Field required" in str(error.value)


def test_a_wrongly_typed_field_in_the_data_is_named_with_its_path() -> None:
    data = {
        "fields": [
            {"key": "api_key", "label": "API key", "type": "password"},
            {"key": "port", "label": "Port", "type": "integer", "max_length": "ten"},
        ]
    }
    with serving(answer("200 OK", envelope(data=data))) as url, pytest.raises(ProtocolError) as error:
        call(url)
    assert "data.fields.1.max_length: Input should be a valid integer" in str(error.value)


def test_an_unknown_field_type_is_refused() -> None:
    data = {"fields": [{"key": "x", "label": "X", "type": "colour"}]}
    with (
        serving(answer("200 OK", envelope(data=data))) as url,
        pytest.raises(ProtocolError, match=r"data\.fields\.0\.type"),
    ):
        call(url)


def test_an_answer_over_the_size_limit_is_refused_without_reading_it_all() -> None:
    huge = b'{"ok": true, "state": "ok", "data": {"fields": [], "x": "' + b"a" * (50 * 1024 * 1024) + b'"}}'
    with serving(answer("200 OK", huge)) as url:
        started = time.monotonic()
        with pytest.raises(ProtocolError, match=r"the answer is \d+ bytes; the limit is 16777216"):
            call(url, Timeouts(connect=2, read=5, total=10))
        assert time.monotonic() - started < 5


def test_an_undeclared_huge_answer_is_cut_off_while_streaming() -> None:
    def chunks() -> Iterable[bytes]:
        yield b'{"ok": true, "state": "ok", "data": {"x": "'
        for _ in range(60):
            yield b"a" * (1024 * 1024)

    with serving(answer("200 OK", chunks())) as url, pytest.raises(ProtocolError, match="more than 1048576 bytes"):
        call(url, Timeouts(connect=2, read=5, total=10), max_response_bytes=1024 * 1024)


def test_a_redirect_is_not_followed() -> None:
    with (
        serving(answer("302 Found", b"", "text/html", [("Location", "http://127.0.0.1:1/elsewhere")])) as url,
        pytest.raises(
            ProtocolError, match=re.escape("HTTP 302 (text/html), a redirect; connectors must not redirect")
        ) as error,
    ):
        call(url)
    assert "elsewhere" not in str(error.value)  # where it points is not repeated


def test_an_ok_envelope_with_an_error_status_is_a_protocol_error() -> None:
    with (
        serving(answer("500 Internal Server Error", envelope(data={"fields": []}))) as url,
        pytest.raises(ProtocolError),
    ):
        call(url)


def test_a_contradictory_envelope_is_a_protocol_error() -> None:
    body = json.dumps({"ok": True, "state": "error", "error_code": "internal_error"}).encode()
    with serving(answer("200 OK", body)) as url, pytest.raises(ProtocolError, match="contradicts state=error"):
        call(url)


def test_an_error_envelope_carries_the_explanations_for_people() -> None:
    body = json.dumps(
        {
            "ok": False,
            "state": "error",
            "error_code": "invalid_config",
            "user_explanation": {"en": "The API key is wrong.", "sv": "API-nyckeln är fel."},
            "technical_explanation": "401 from upstream",
        }
    ).encode()
    with serving(answer("200 OK", body)) as url, pytest.raises(ConnectorRejected) as error:
        call(url)
    assert error.value.error_code == p.ErrorCode.INVALID_CONFIG and error.value.permanent
    assert (
        error.value.user_text("sv") == "API-nyckeln är fel." and error.value.user_text("de") == "The API key is wrong."
    )
    assert "401 from upstream" in str(error.value)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("unavailable", False),
        ("rate_limited", False),
        ("conflict", False),
        ("validation_failed", True),
        ("internal_error", True),
    ],
)
def test_transient_error_codes_are_marked_for_retry(code: str, permanent: bool) -> None:
    body = json.dumps({"ok": False, "state": "error", "error_code": code, "retry_after": 2}).encode()
    with serving(answer("200 OK", body)) as url, pytest.raises(ConnectorRejected) as error:
        call(url)
    assert error.value.permanent is permanent and error.value.retry_after == 2


def test_an_unknown_connection_is_saved_again_and_the_call_retried_once() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    known: set[str] = set()

    def connector(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        calls.append((environ["PATH_INFO"], request))
        start_response("200 OK", [("Content-Type", "application/json")])
        if environ["PATH_INFO"] == "/v1/save-connection":
            known.add(request["connection_id"])
            return [envelope(data={})]
        if request["connection_id"] not in known:
            return [json.dumps({"ok": False, "state": "error", "error_code": "unknown_connection"}).encode()]
        return [envelope(data={"actor_types": ["Customer"]})]

    connection_id = str(uuid.uuid4())
    with serving(connector) as url, ConnectorClient(url, "shared-secret-123456", timeouts=FAST) as client:
        conn = client.connection(connection_id, lambda: {"api_key": "k"})
        assert conn.supported_actor_types() == [p.ActorType.CUSTOMER]
        assert [path for path, _ in calls] == [
            "/v1/get-supported-actor-types",
            "/v1/save-connection",
            "/v1/get-supported-actor-types",
        ]
        assert calls[1][1] == {"connection_id": connection_id, "config": {"api_key": "k"}}
        known.clear()
        calls.clear()
        # A connector that keeps forgetting gets one resend per call, not a loop.
        known.add("never")

        def forgetful(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            calls.append((environ["PATH_INFO"], {}))
            start_response("200 OK", [("Content-Type", "application/json")])
            if environ["PATH_INFO"] == "/v1/save-connection":
                return [envelope(data={})]
            return [json.dumps({"ok": False, "state": "error", "error_code": "unknown_connection"}).encode()]

    with serving(forgetful) as url, ConnectorClient(url, "shared-secret-123456", timeouts=FAST) as client:
        with pytest.raises(UnknownConnection):
            client.connection(connection_id, lambda: {}).supported_actor_types()
        assert len(calls) == 3


def test_every_request_is_signed_and_the_signature_covers_the_body() -> None:
    seen: list[dict[str, Any]] = []

    def connector(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen.append({**environ, "body": environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [envelope(data={"fields": []})]

    with serving(connector) as url:
        call(url)
        call(url)
    first, second = seen
    timestamp, nonce = first["HTTP_X_ERPSYNC_TIMESTAMP"], first["HTTP_X_ERPSYNC_NONCE"]
    expected = p.signature("shared-secret-123456", "POST", "/v1/get-config-data", timestamp, nonce, first["body"])
    assert first["HTTP_X_ERPSYNC_SIGNATURE"] == expected
    assert abs(int(timestamp) - time.time()) < 5
    assert first["HTTP_X_ERPSYNC_NONCE"] != second["HTTP_X_ERPSYNC_NONCE"]
    assert first["HTTP_USER_AGENT"].startswith("erpsync-connector-client/")


def test_keep_alive_reuses_one_connection_for_many_calls() -> None:
    peers: set[str] = set()

    def connector(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        peers.add(f"{environ['REMOTE_ADDR']}:{environ['REMOTE_PORT']}")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [envelope(data={"fields": []})]

    with serving(connector) as url, ConnectorClient(url, "shared-secret-123456", timeouts=FAST) as client:
        for _ in range(10):
            client.get_config_data()
    assert len(peers) == 1


def test_a_connector_served_in_process_still_meets_the_allow_list_and_the_size_limit() -> None:
    """serve_in_process replaces only the network: the refusal is asked first, and answers are still checked."""
    calls: list[str] = []

    def connector(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true, "state": "ok", "data": {"fields": [], "x": "' + b"a" * 4096 + b'"}}']

    url = f"http://127.0.0.1:{free_port()}"
    serve_in_process(url, httpx.WSGITransport(app=connector))
    try:
        refused = ConnectorClient(url, "shared-secret-123456", refusal=lambda _url: "not an allowed host")
        with refused, pytest.raises(ConnectorNotAllowed, match="not an allowed host"):
            refused.get_config_data()
        assert calls == []
        with pytest.raises(ProtocolError, match="more than 1024 bytes"):
            call(url, max_response_bytes=1024)
        assert calls == ["/v1/get-config-data"]
    finally:
        serve_in_process(url, None)
    # Once removed, the address is called over the network again, where nothing listens.
    with pytest.raises(ConnectorUnreachable):
        call(url)


@pytest.mark.parametrize("checked", [True, False], ids=["with the address check", "without"])
def test_a_certificate_no_authority_signed_is_refused(tmp_path: Path, checked: bool) -> None:
    """Every client shares one TLS context (making one costs a read of the whole CA bundle): it still verifies."""
    health = envelope(data={"name": "untrusted", "version": "1", "protocol_version": "1.1"})
    with serving_tls(answer("200 OK", health), tmp_path) as url:
        refusal = (lambda _host, _port, _address: None) if checked else None
        with (
            ConnectorClient(url, "shared-secret-123456", timeouts=FAST, address_refusal=refusal) as client,
            pytest.raises(ConnectorUnreachable, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.health()
        assert client._http._transport._pool._ssl_context is tls_context()  # type: ignore[attr-defined]
