"""Protocol v1.1's answers to what v1 left open: the published schema, the envelope, empty values, instants,
operators, the order of checks and idempotent DeleteConnection; the prose and the code say the same."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from connections import services
from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorRejected
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp
from connectors.sdk.app import NonceCache

from ..conftest import DEMO_CONFIG, ROOT, Connector
from .servers import answer, serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"
DOC = (ROOT / "docs" / "connector-protocol.md").read_text()
C = p.ActorType.CUSTOMER


def test_the_published_schema_is_what_the_code_makes() -> None:
    published = ROOT / p.PUBLISHED_SCHEMA
    assert published.read_text() == p.published_schema(), "run `make schema` and commit the file"
    document = json.loads(published.read_text())
    assert document["info"]["version"] == "1.1" and document["info"]["x-erpsync-protocol"] == "1.1"
    assert set(document["paths"]) == {op.path for op in p.OPERATIONS.values()}
    assert p.PUBLISHED_SCHEMA.removeprefix("docs/") in DOC


def test_the_schema_module_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    p.main(["--schema"])
    assert capsys.readouterr().out == (ROOT / p.PUBLISHED_SCHEMA).read_text()


def test_an_sdk_connector_serves_the_same_contract_under_its_own_name() -> None:
    with serving(ConnectorApp(AddressBook(), SECRET)) as url:
        served = httpx.get(f"{url}/v1/schema").json()
    assert (served["info"]["title"], served["info"]["version"]) == ("Address Book", "0.1")
    assert served["info"]["x-erpsync-protocol"] == "1.1"
    assert served["paths"] == p.openapi_document()["paths"]


def test_null_explanations_on_an_ok_answer_are_read_as_none_given() -> None:
    body = {"ok": True, "state": "ok", "user_explanation": None, "technical_explanation": None}
    body["data"] = {"fields": []}
    with serving(answer("200 OK", json.dumps(body).encode())) as url, ConnectorClient(url, SECRET) as client:
        result = client.get_config_data()
    assert result.envelope.user_explanation == {} and result.envelope.technical_explanation == ""


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("2026-03-31T12:05:00Z", "2026-03-31T12:05:00+00:00", True),
        ("2026-03-31T14:05:00+02:00", "2026-03-31T12:05:00.000000+00:00", True),
        ("2026-03-31T12:05:00Z", "2026-03-31T12:05:01Z", False),
        (None, None, True),
        (None, "2026-03-31T12:05:00Z", False),
    ],
)
def test_last_modified_compares_as_instants(a: str | None, b: str | None, same: bool) -> None:
    assert p.same_instant(a, b) is same


def test_the_empty_string_is_the_same_as_null() -> None:
    assert p.same_value("", None) and p.same_value(1, 1.0) and not p.same_value(True, 1)
    T = p.FieldType.TEXT
    assert p.restriction_matches(T, "equals", [None], "")
    assert p.restriction_matches(T, "not_contains", ["x"], "") and not p.restriction_matches(T, "contains", ["x"], "")
    assert p.restriction_matches(p.FieldType.LIST, "one_of", [None], "")


def test_operators_other_than_the_equalities_take_no_null_operand() -> None:
    assert p.operand_count_problem("begins", [None]) == "begins takes no null operand"
    assert p.operand_count_problem("between", [1, None]) == "between takes no null operand"
    assert p.operand_count_problem("ne", [None]) is None and p.operand_count_problem("one_of", ["SE", None]) is None


def operator_table() -> dict[str, set[str]]:
    """The operators and their field types as the prose table in docs/connector-protocol.md gives them."""
    section = DOC.split("### What each operator means (1.1)", 1)[1]
    table = section[section.index("| operator | types |") :].split("\n\n", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for operator in re.findall(r"`([a-z_]+)`", cells[0]):
            rows[operator] = {kind.strip() for kind in cells[1].split(",")}
    return rows


def test_the_prose_operator_table_names_every_operator_with_the_types_the_code_gives_it() -> None:
    from_code: dict[str, set[str]] = {}
    for kind, operators in p.OPERATORS.items():
        for operator in operators:
            from_code.setdefault(operator, set()).add(kind.value)
    assert operator_table() == from_code


@pytest.mark.parametrize(
    ("kind", "operator", "values", "actual", "expected"),
    [  # the table's rows, one claim each
        ("text", "equals", [None], "x", False),
        ("text", "is_not", [None], "x", True),
        ("text", "is_not", [None], None, False),
        ("integer", "ne", [None], 3, True),
        ("integer", "ne", [4], None, True),
        ("text", "equals", ["STRASSE"], "Straße", True),
        ("text", "between", ["b", "d"], "Café", True),
        ("text", "between", ["b", "d"], "d", True),
        ("text", "between", ["b", "d"], "dalby", False),
        ("text", "not_ends", ["x"], None, True),
        ("double", "gte", [1], 1.0, True),
        ("datetime", "eq", ["2026-01-01T02:00:00+02:00"], "2026-01-01T00:00:00Z", True),
        ("checkbox", "eq", [False], None, False),
        ("list", "one_of", ["se"], "SE", False),
        ("list", "not_one_of", ["SE", None], None, False),
    ],
)
def test_restriction_matches_says_what_the_table_says(
    kind: str, operator: str, values: list[p.Value], actual: p.Value, expected: bool
) -> None:
    assert p.restriction_matches(p.FieldType(kind), operator, values, actual) is expected


def signed(path: str, body: bytes) -> dict[str, str]:
    stamp, nonce = str(int(time.time())), secrets.token_hex(8)
    return {
        p.HEADER_TIMESTAMP: stamp,
        p.HEADER_NONCE: nonce,
        p.HEADER_SIGNATURE: p.signature(SECRET, "POST", path, stamp, nonce, body),
        "Content-Type": "application/json",
    }


def test_the_sdk_answers_in_the_documented_order() -> None:
    path = p.OPERATIONS["GetConfigData"].path
    with serving(ConnectorApp(AddressBook(), SECRET)) as url:
        unknown = httpx.post(f"{url}/v1/nothing", content=b"{}")  # unsigned, but 404 comes first
        wrong_method = httpx.get(url + path)
        too_big = httpx.post(url + path, content=b" " * (p.MAX_REQUEST_BYTES + 1))  # unsigned, but 413 first
        unsigned = httpx.post(url + path, content=b"not json")
        bad_body = httpx.post(url + path, content=b"not json", headers=signed(path, b"not json"))
        bad_type = b'{"connection_id": "%s", "actor_type": "Lead"}' % str(uuid.uuid4()).encode()
        fields_path = p.OPERATIONS["GetSupportedActorTypeFields"].path
        outside_enum = httpx.post(url + fields_path, content=bad_type, headers=signed(fields_path, bad_type))
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error_code"]) == (405, "invalid_request")
    assert wrong_method.headers["Allow"] == "POST"
    assert (too_big.status_code, too_big.json()["error_code"]) == (413, "payload_too_large")
    assert (unsigned.status_code, unsigned.json()["error_code"]) == (401, "unauthorized")
    assert (bad_body.status_code, bad_body.json()["error_code"]) == (400, "invalid_request")
    assert (outside_enum.status_code, outside_enum.json()["error_code"]) == (400, "invalid_request")


def test_nonces_are_kept_twice_the_clock_tolerance() -> None:
    cache = NonceCache(p.NONCE_RETENTION_SECONDS)
    assert p.NONCE_RETENTION_SECONDS == 2 * p.SIGNATURE_TOLERANCE_SECONDS
    assert cache.first_use("a", 1000.0)
    assert not cache.first_use("a", 1000.0 + p.SIGNATURE_TOLERANCE_SECONDS + 1)
    assert not cache.first_use("a", 1000.0 + p.NONCE_RETENTION_SECONDS - 1)
    assert cache.first_use("b", 1000.0 + p.NONCE_RETENTION_SECONDS)  # and "a" is forgotten by now
    assert cache.first_use("a", 1000.0 + p.NONCE_RETENTION_SECONDS + 1)


def connect(demo: Connector) -> Any:
    conn = ConnectorClient(demo.url, demo.secret).connection(str(uuid.uuid4()), lambda: DEMO_CONFIG)
    conn.save()
    return conn


def test_demo_erp_keeps_the_decisions_of_version_1_1(demo_erp: Connector) -> None:
    conn = connect(demo_erp)
    client = conn.client
    # DeleteConnection is idempotent.
    gone = str(uuid.uuid4())
    assert client.call("DeleteConnection", p.DeleteConnectionRequest(connection_id=gone)).envelope.ok
    # SearchActors without a text lists the actor type's actors.
    request = p.SearchActorsRequest.model_validate({"connection_id": conn.connection_id, "actor_type": "Customer"})
    assert client.call("SearchActors", request, language="en").data.actors
    # "" is null: saving it over an empty field changes nothing.
    actor = conn.create_actor(p.Actor(actor_type=C, values={"NAME": "Tom AB"}))
    assert actor.values.get("PHONE") is None
    saved = conn.save_actors([p.Actor(actor_type=C, key=actor.key, values={"PHONE": ""})])[0]
    assert saved.ok and saved.actor is not None and saved.actor.last_modified == actor.last_modified
    # A null operand where the operator takes none is invalid_request, answered by the operation (HTTP 200).
    with pytest.raises(ConnectorRejected) as refused:
        conn.search_advanced(C, [p.Restriction(field_key="NAME", operator="begins", values=[None])])
    assert (refused.value.error_code, refused.value.status) == (p.ErrorCode.INVALID_REQUEST, 200)
    # A read-only field may come as null in CreateActor.
    with_null = conn.create_actor(p.Actor(actor_type=C, values={"NAME": "Nullsson AB", "BALANCE": None}))
    assert with_null.key


@pytest.mark.django_db
def test_the_crm_takes_a_v1_connectors_unknown_connection_on_purge_as_done(admin_user: Any, tmp_path: Path) -> None:
    from connections.models import ErpConnection

    with serving(ConnectorApp(AddressBook(), SECRET)) as url:
        connector = SyncConnector(name="Old", url=url)
        services.save_checked_connector(connector, SECRET, admin_user)
        connection = ErpConnection.objects.create(name="Never saved there", connector=connector)
        services.delete_connection(connection, admin_user)
        assert services.purge_connection(connection, admin_user) == ""
    assert not ErpConnection.all_objects.filter(pk=connection.pk).exists()
