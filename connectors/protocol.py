"""Connector protocol v1: the wire schemas shared by the client, the SDK, the conformance kit and tests.

docs/connector-protocol.md is the contract in prose; ``openapi_document()`` is the same contract as an
OpenAPI 3.1 document generated from these models. Nothing here imports Django: connector services use it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

PROTOCOL_VERSION = "1"
PREFIX = "/v1"

# Limits every connector and the client honour (docs/connector-protocol.md, "Limits").
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_KEYS_PER_CALL = 1000
MAX_ACTORS_PER_SAVE = 500
MAX_PAGE_SIZE = 1000
MAX_SEARCH_LIMIT = 500
SIGNATURE_TOLERANCE_SECONDS = 300

HEADER_TIMESTAMP = "X-Erpsync-Timestamp"
HEADER_NONCE = "X-Erpsync-Nonce"
HEADER_SIGNATURE = "X-Erpsync-Signature"


class ActorType(StrEnum):
    CUSTOMER = "Customer"
    SUPPLIER = "Supplier"
    PARTNER = "Partner"
    PERSON = "Person"
    PROJECT = "Project"


class FieldType(StrEnum):
    CHECKBOX = "checkbox"
    TEXT = "text"
    PASSWORD = "password"  # noqa: S105  (a field type, not a secret)
    INTEGER = "integer"
    DOUBLE = "double"
    LIST = "list"
    DATE = "date"
    DATETIME = "datetime"
    LABEL = "label"


class FieldAccess(StrEnum):
    NORMAL = "normal"
    MANDATORY = "mandatory"
    READ_ONLY = "read_only"


class State(StrEnum):
    OK = "ok"
    OK_WITH_INFO = "ok_with_info"
    WARNING = "warning"
    ERROR = "error"


class ErrorCode(StrEnum):
    """Why a call failed. ``TRANSIENT_ERRORS`` may succeed when retried; the others will not."""

    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_OPERATION = "unsupported_operation"
    UNKNOWN_CONNECTION = "unknown_connection"
    INVALID_CONFIG = "invalid_config"
    UNKNOWN_ACTOR_TYPE = "unknown_actor_type"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_LIST = "unknown_list"
    VALIDATION_FAILED = "validation_failed"
    READ_ONLY = "read_only"
    ACTOR_NOT_FOUND = "actor_not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


TRANSIENT_ERRORS = frozenset({ErrorCode.CONFLICT, ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE})

TEXT_OPERATORS = ("equals", "is_not", "begins", "contains", "ends", "not_begins", "not_contains", "not_ends", "between")
NUMBER_OPERATORS = ("eq", "ne", "gt", "lt", "gte", "lte", "between")
DATE_OPERATORS = ("eq", "before", "after", "before_or_equal", "after_or_equal", "between")
OPERATORS: dict[FieldType, tuple[str, ...]] = {
    FieldType.TEXT: TEXT_OPERATORS,
    FieldType.PASSWORD: (),
    FieldType.INTEGER: NUMBER_OPERATORS,
    FieldType.DOUBLE: NUMBER_OPERATORS,
    FieldType.CHECKBOX: ("eq",),
    FieldType.LIST: ("one_of", "not_one_of"),
    FieldType.DATE: DATE_OPERATORS,
    FieldType.DATETIME: DATE_OPERATORS,
    FieldType.LABEL: (),
}
# Restrictions on these keys select by parent actor; they take "equals" or "one_of".
PARENT_KEY = "$parent_key"
PARENT_ACTOR_TYPE = "$parent_actor_type"

# A field value on the wire: JSON's own types, dates as ISO 8601 strings, list items by key, null for empty.
Value = bool | int | float | str | None
Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
FieldKey = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.$-]+$")]
ConnectionId = Annotated[
    str, StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


class Model(BaseModel):
    """Every wire model: unknown fields are refused so that typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class FieldInfo(Model):
    """What one configuration or actor field is: the CRM renders and validates values from this."""

    key: FieldKey
    label: str
    description: str = ""
    type: FieldType
    list_name: str | None = None
    default: Value = None
    max_length: int = Field(default=0, ge=0)
    access: FieldAccess = FieldAccess.NORMAL


class ListItem(Model):
    key: Key
    text: str


class Actor(Model):
    """A record in the ERP. ``key`` is null only in a CreateActor request."""

    actor_type: ActorType
    key: Key | None = None
    last_modified: datetime | None = None
    parent_actor_type: ActorType | None = None
    parent_key: Key | None = None
    values: dict[FieldKey, Value] = Field(default_factory=dict)


class Restriction(Model):
    field_key: FieldKey
    operator: str
    values: list[Value] = Field(min_length=1, max_length=MAX_KEYS_PER_CALL)


class ErrorDetail(Model):
    error_code: ErrorCode
    user_explanation: dict[str, str] = Field(default_factory=dict)
    technical_explanation: str = ""


# Requests


class Request(Model):
    pass


class ConnectionRequest(Request):
    connection_id: ConnectionId


class ActorTypeRequest(ConnectionRequest):
    actor_type: ActorType


class GetConfigDataRequest(Request):
    pass


class TestConfigDataRequest(Request):
    __test__ = False  # not a pytest class
    config: dict[FieldKey, Value]


class SaveConnectionRequest(ConnectionRequest):
    config: dict[FieldKey, Value]


class TestConnectionRequest(ConnectionRequest):
    __test__ = False


class DeleteConnectionRequest(ConnectionRequest):
    pass


class GetSupportedActorTypesRequest(ConnectionRequest):
    pass


class GetSupportedActorTypeFieldsRequest(ActorTypeRequest):
    pass


class GetSearchableFieldsRequest(ActorTypeRequest):
    pass


class GetActorsRequest(ActorTypeRequest):
    keys: list[Key] = Field(min_length=1, max_length=MAX_KEYS_PER_CALL)
    field_keys: list[FieldKey] = Field(default_factory=list)


class SearchActorsRequest(ActorTypeRequest):
    text: str = Field(max_length=200)
    field_keys: list[FieldKey] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_LIMIT)


class SearchActorsAdvancedRequest(ActorTypeRequest):
    restrictions: list[Restriction] = Field(max_length=50)
    field_keys: list[FieldKey] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_LIMIT)


class SearchActorByParentRequest(ActorTypeRequest):
    text: str = Field(default="", max_length=200)
    parent_actor_type: ActorType
    parent_key: Key
    field_keys: list[FieldKey] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_LIMIT)


class CreateActorRequest(ConnectionRequest):
    actor: Actor


class SaveActorsRequest(ConnectionRequest):
    actors: list[Actor] = Field(min_length=1, max_length=MAX_ACTORS_PER_SAVE)


class GetListRequest(Request):
    """A list's items. Without a connection id: the lists that configuration fields use (GetConfigData)."""

    connection_id: ConnectionId | None = None
    list_name: str = Field(min_length=1, max_length=100)


class GetListItemsRequest(GetListRequest):
    keys: list[Key] = Field(min_length=1, max_length=MAX_KEYS_PER_CALL)


class GetActorsByTimestampRequest(ActorTypeRequest):
    """One page of the change feed: from ``cursor`` if given, else from ``updated_on_or_after`` (else the start)."""

    cursor: str | None = Field(default=None, max_length=1000)
    updated_on_or_after: datetime | None = None
    field_keys: list[FieldKey] = Field(default_factory=list)
    page_size: int = Field(default=500, ge=1, le=MAX_PAGE_SIZE)


# Response data


class Data(Model):
    pass


class Empty(Data):
    pass


class FieldsData(Data):
    fields: list[FieldInfo]


class ActorTypesData(Data):
    actor_types: list[ActorType]


class FieldKeysData(Data):
    field_keys: list[FieldKey]


class ActorsData(Data):
    actors: list[Actor]
    missing_keys: list[Key] = Field(default_factory=list)


class SearchData(Data):
    actors: list[Actor]
    truncated: bool = False


class ActorData(Data):
    actor: Actor


class SaveResult(Model):
    key: Key
    ok: bool
    actor: Actor | None = None
    error: ErrorDetail | None = None


class SaveActorsData(Data):
    results: list[SaveResult]


class ListData(Data):
    items: list[ListItem]


class FeedData(Data):
    actors: list[Actor]
    next_cursor: str
    has_more: bool


class Envelope(Model):
    """Every response: the outcome, explanations for people and for logs, and the operation's data."""

    ok: bool
    state: State
    user_explanation: dict[str, str] = Field(default_factory=dict)
    technical_explanation: str = ""
    error_code: ErrorCode | None = None
    retry_after: float | None = Field(default=None, ge=0)
    data: dict[str, Any] | None = None


_typed_envelopes: dict[type[Data], type[Envelope]] = {}


def envelope_for(data_type: type[Data]) -> type[Envelope]:
    """The envelope with ``data`` typed as ``data_type``: one validation pass straight from JSON."""
    typed = _typed_envelopes.get(data_type)
    if typed is None:
        field: Any = (data_type | None, None)
        typed = create_model(f"{data_type.__name__}Envelope", __base__=Envelope, data=field)
        _typed_envelopes[data_type] = typed
    return typed


class Operation(Model):
    name: str
    path: str
    request: type[Request]
    response: type[Data]


def _op(name: str, request: type[Request], response: type[Data]) -> Operation:
    slug = "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
    return Operation(name=name, path=f"{PREFIX}/{slug}", request=request, response=response)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        _op("GetConfigData", GetConfigDataRequest, FieldsData),
        _op("TestConfigData", TestConfigDataRequest, Empty),
        _op("SaveConnection", SaveConnectionRequest, Empty),
        _op("TestConnection", TestConnectionRequest, Empty),
        _op("DeleteConnection", DeleteConnectionRequest, Empty),
        _op("GetSupportedActorTypes", GetSupportedActorTypesRequest, ActorTypesData),
        _op("GetSupportedActorTypeFields", GetSupportedActorTypeFieldsRequest, FieldsData),
        _op("GetSearchableFields", GetSearchableFieldsRequest, FieldKeysData),
        _op("GetActors", GetActorsRequest, ActorsData),
        _op("SearchActors", SearchActorsRequest, SearchData),
        _op("SearchActorsAdvanced", SearchActorsAdvancedRequest, SearchData),
        _op("SearchActorByParent", SearchActorByParentRequest, SearchData),
        _op("CreateActor", CreateActorRequest, ActorData),
        _op("SaveActors", SaveActorsRequest, SaveActorsData),
        _op("GetList", GetListRequest, ListData),
        _op("GetListItems", GetListItemsRequest, ListData),
        _op("GetActorsByTimestamp", GetActorsByTimestampRequest, FeedData),
    )
}
OPERATIONS_BY_PATH = {op.path: op for op in OPERATIONS.values()}


# Values


def check_value(field: FieldInfo, value: Value) -> str | None:
    """Why ``value`` is not a valid wire value for ``field``, or None when it is."""
    if value is None:
        return None
    kind = field.type
    if kind == FieldType.CHECKBOX:
        ok = isinstance(value, bool)
    elif kind == FieldType.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == FieldType.DOUBLE:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind in (FieldType.TEXT, FieldType.PASSWORD, FieldType.LIST, FieldType.LABEL):
        ok = isinstance(value, str)
        if ok and field.max_length and len(str(value)) > field.max_length:
            return f"{field.key}: longer than {field.max_length} characters"
    elif kind == FieldType.DATE:
        ok = isinstance(value, str) and _parses(date.fromisoformat, value) and len(value) == 10
    else:
        ok = isinstance(value, str) and _parses(datetime.fromisoformat, value) and "T" in value
    if not ok:
        return f"{field.key}: {value!r} is not a {kind.value} value"
    return None


def _parses(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


# Signing


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """HMAC-SHA256 over the method, path, timestamp, nonce and the body's SHA-256, as ``v1=<hex>``."""
    message = "\n".join((method.upper(), path, timestamp, nonce, body_digest(body))).encode()
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# Cursors


def encode_cursor(position: dict[str, Any]) -> str:
    """Connectors may put anything in a cursor; this helper makes an opaque, URL-safe one."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    padded = cursor + "=" * (-len(cursor) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(value, dict):
        raise ValueError("not a cursor")
    return value


# Search semantics


def operand_count_problem(operator: str, values: list[Value]) -> str | None:
    if operator == "between":
        return None if len(values) == 2 else "between takes exactly two values"
    if operator in ("one_of", "not_one_of"):
        return None
    return None if len(values) == 1 else f"{operator} takes exactly one value"


def _comparable(field_type: FieldType, value: Value) -> Any:
    if value is None:
        return None
    if field_type == FieldType.TEXT:
        return str(value).casefold()
    if field_type == FieldType.DATE:
        return date.fromisoformat(str(value))
    if field_type == FieldType.DATETIME:
        return datetime.fromisoformat(str(value))
    return value


def restriction_matches(field_type: FieldType, operator: str, values: list[Value], actual: Value) -> bool:
    """Whether a field holding ``actual`` satisfies the restriction: the meaning of every operator.

    Text comparisons ignore case. An empty field matches only the negative operators (is_not, not_*,
    ne, not_one_of), except that ``equals``/``eq`` with null matches an empty field.
    """
    if operator in ("one_of", "not_one_of"):
        found = actual in values
        return found if operator == "one_of" else not found
    a = _comparable(field_type, actual)
    operands = [_comparable(field_type, v) for v in values]
    first = operands[0]
    if operator in ("equals", "eq"):
        return a == first
    if operator in ("is_not", "ne"):
        return a != first
    if a is None:
        return operator.startswith("not_")
    if operator == "between":
        low, high = operands
        return low is not None and high is not None and low <= a <= high
    if operator in ("begins", "not_begins", "contains", "not_contains", "ends", "not_ends"):
        text, needle = str(a), str(first or "")
        base = operator.removeprefix("not_")
        hit = (
            text.startswith(needle) if base == "begins" else text.endswith(needle) if base == "ends" else needle in text
        )
        return not hit if operator.startswith("not_") else hit
    if first is None:
        return False
    comparisons = {
        "gt": a > first, "lt": a < first, "gte": a >= first, "lte": a <= first,
        "after": a > first, "before": a < first, "after_or_equal": a >= first, "before_or_equal": a <= first,
    }  # fmt: skip
    if operator not in comparisons:
        raise ValueError(f"unknown operator {operator!r}")
    return bool(comparisons[operator])


# The machine-readable contract


def openapi_document(title: str = "erpsync connector", version: str = PROTOCOL_VERSION) -> dict[str, Any]:
    """OpenAPI 3.1 for protocol v1, generated from the models above (every SDK connector serves it)."""
    from pydantic.json_schema import models_json_schema

    models: list[type[BaseModel]] = [Envelope]
    for op in OPERATIONS.values():
        models.extend((op.request, op.response))
    _, top = models_json_schema(
        [(model, "validation") for model in dict.fromkeys(models)], ref_template="#/components/schemas/{model}"
    )
    schemas = top.get("$defs", {})
    security: list[dict[str, list[str]]] = [{"signature": [], "timestamp": [], "nonce": []}]
    paths: dict[str, Any] = {}
    for op in OPERATIONS.values():
        answer = {
            "allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {"properties": {"data": {"$ref": f"#/components/schemas/{op.response.__name__}"}}},
            ]
        }
        envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
        paths[op.path] = {
            "post": {
                "operationId": op.name,
                "summary": (op.request.__doc__ or op.name).strip().splitlines()[0],
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{op.request.__name__}"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "The outcome. ok=false answers carry error_code and explanations.",
                        "content": {"application/json": {"schema": answer}},
                    },
                    "400": {"description": "Malformed request (invalid_request)", "content": envelope},
                    "401": {
                        "description": "Missing, stale, replayed or wrong signature (unauthorized)",
                        "content": envelope,
                    },
                    "413": {
                        "description": f"Body over {MAX_REQUEST_BYTES} bytes (payload_too_large)",
                        "content": envelope,
                    },
                    "500": {"description": "The connector failed (internal_error)", "content": envelope},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": "erpsync connector protocol v1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "signature": {"type": "apiKey", "in": "header", "name": HEADER_SIGNATURE},
                "timestamp": {"type": "apiKey", "in": "header", "name": HEADER_TIMESTAMP},
                "nonce": {"type": "apiKey", "in": "header", "name": HEADER_NONCE},
            },
        },
    }
