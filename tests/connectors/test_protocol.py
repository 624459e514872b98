"""What the protocol's words mean: operators, values, signatures, cursors."""

from __future__ import annotations

import pytest

from connectors import protocol as p

T, N, D, DT, L, C = (
    p.FieldType.TEXT,
    p.FieldType.INTEGER,
    p.FieldType.DATE,
    p.FieldType.DATETIME,
    p.FieldType.LIST,
    p.FieldType.CHECKBOX,
)


@pytest.mark.parametrize(
    ("kind", "operator", "values", "actual", "expected"),
    [
        (T, "equals", ["ÖRNBYGG AB"], "Örnbygg AB", True),  # case-insensitive beyond ASCII
        (T, "begins", ["fjä"], "Fjällteknik AB", True),
        (T, "not_begins", ["fjä"], "Fjällteknik AB", False),
        (T, "contains", ["TEK"], "Fjällteknik AB", True),
        (T, "ends", ["ab"], "Fjällteknik AB", True),
        (T, "not_ends", ["as"], "Fjällteknik AB", True),
        (T, "is_not", ["x"], None, True),  # an empty field is "not x"
        (T, "contains", ["x"], None, False),  # and contains nothing
        (T, "not_contains", ["x"], None, True),
        (T, "equals", [None], None, True),
        (T, "between", ["b", "d"], "Café", True),
        (N, "gt", [10], 11, True),
        (N, "lte", [10], 11, False),
        (N, "ne", [10], None, True),
        (N, "between", [1, 3], 3, True),
        (D, "before", ["2025-01-01"], "2024-12-31", True),
        (D, "after_or_equal", ["2025-01-01"], "2025-01-01", True),
        (DT, "after", ["2025-01-01T10:00:00+01:00"], "2025-01-01T09:30:00+00:00", True),  # instants, not text
        (L, "one_of", ["SE", "NO"], "NO", True),
        (L, "not_one_of", ["SE", "NO"], None, True),
        (L, "one_of", ["SE", None], None, True),
        (C, "eq", [True], False, False),
    ],
)
def test_each_operator_means_what_the_contract_says(
    kind: p.FieldType, operator: str, values: list[p.Value], actual: p.Value, expected: bool
) -> None:
    assert p.restriction_matches(kind, operator, values, actual) is expected


def test_every_field_type_has_its_operators() -> None:
    assert p.OPERATORS[T] == (
        "equals",
        "is_not",
        "begins",
        "contains",
        "ends",
        "not_begins",
        "not_contains",
        "not_ends",
        "between",
    )
    assert p.OPERATORS[p.FieldType.DOUBLE] == ("eq", "ne", "gt", "lt", "gte", "lte", "between")
    assert p.OPERATORS[p.FieldType.PASSWORD] == () and p.OPERATORS[p.FieldType.LABEL] == ()


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        (N, True, "is not a integer value"),
        (N, 1.5, "is not a integer"),
        (p.FieldType.DOUBLE, 2, None),
        (D, "2025-02-30", "is not a date"),
        (D, "2025-02-28T10:00:00", "is not a date"),
        (DT, "2025-02-28", "is not a datetime"),
        (C, "true", "is not a checkbox"),
        (T, 5, "is not a text"),
    ],
)
def test_values_are_typed_json(kind: p.FieldType, value: p.Value, problem: str | None) -> None:
    found = p.check_value(p.FieldInfo(key="F", label="F", type=kind), value)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_text_longer_than_max_length_is_named() -> None:
    field = p.FieldInfo(key="NAME", label="Name", type=T, max_length=5)
    assert p.check_value(field, "Fjällbygg") == "NAME: longer than 5 characters"


def test_the_signature_covers_method_path_time_nonce_and_body() -> None:
    base = p.signature("s3cret", "POST", "/v1/get-actors", "1700000000", "n1", b"{}")
    assert base.startswith("v1=") and len(base) == 67
    for changed in (
        p.signature("other", "POST", "/v1/get-actors", "1700000000", "n1", b"{}"),
        p.signature("s3cret", "POST", "/v1/save-actors", "1700000000", "n1", b"{}"),
        p.signature("s3cret", "POST", "/v1/get-actors", "1700000001", "n1", b"{}"),
        p.signature("s3cret", "POST", "/v1/get-actors", "1700000000", "n2", b"{}"),
        p.signature("s3cret", "POST", "/v1/get-actors", "1700000000", "n1", b"{ }"),
    ):
        assert changed != base


def test_cursors_round_trip_and_refuse_garbage() -> None:
    cursor = p.encode_cursor({"m": 1700000000123456, "k": "C100001"})
    assert "=" not in cursor and p.decode_cursor(cursor) == {"m": 1700000000123456, "k": "C100001"}
    with pytest.raises(ValueError):
        p.decode_cursor("bm90IGpzb24")


def test_every_operation_has_a_v1_path() -> None:
    assert len(p.OPERATIONS) == 17
    assert p.OPERATIONS["GetActorsByTimestamp"].path == "/v1/get-actors-by-timestamp"
    assert p.OPERATIONS["SearchActorByParent"].path == "/v1/search-actor-by-parent"


def test_the_protocol_client_sdk_and_connectors_run_without_django() -> None:
    import subprocess
    import sys

    from ..conftest import ROOT

    code = (
        "import sys; import connectors.protocol, connectors.client, connectors.sdk, connectors.demo.__main__, "
        "connectors.conformance.__main__; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'crm', 'connections', 'erpsync_admin'}); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
