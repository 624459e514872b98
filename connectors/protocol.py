"""Connector protocol v1.1: the wire schemas shared by the client, the SDK, the conformance kit and tests.

docs/connector-protocol.md is the contract in prose; ``openapi_document()`` is the same contract as an
OpenAPI 3.1 document generated from these models. Nothing here imports Django: connector services use it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from secrets import token_hex
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    WithJsonSchema,
    create_model,
    model_serializer,
)

PROTOCOL_VERSION = "1.1"
# Every version a connector may state in its health answer; all of them are served under /v1/.
PROTOCOL_VERSIONS = ("1", "1.1")
PREFIX = "/v1"

# Limits every connector and the client honour (docs/connector-protocol.md, "Limits").
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_KEYS_PER_CALL = 1000
MAX_ACTORS_PER_SAVE = 500
MAX_PAGE_SIZE = 1000
MAX_SEARCH_LIMIT = 500
SIGNATURE_TOLERANCE_SECONDS = 300
# A connector keeps every accepted nonce at least this long: a request stamped at the future edge of the tolerance
# stays valid for twice the tolerance after it arrives, and its replay must be refused all that time (v1.1).
NONCE_RETENTION_SECONDS = 2 * SIGNATURE_TOLERANCE_SECONDS
MAX_SEARCH_TEXT = 200
MAX_RESTRICTIONS = 50
MAX_RESTRICTION_VALUES = MAX_KEYS_PER_CALL
# v1.1, capability change_notifications: the largest notification body the CRM takes, and the connections in one.
MAX_NOTIFICATION_BYTES = 64 * 1024
MAX_NOTIFIED_CONNECTIONS = 100

HEADER_TIMESTAMP = "X-Erpsync-Timestamp"
HEADER_NONCE = "X-Erpsync-Nonce"
HEADER_SIGNATURE = "X-Erpsync-Signature"
# v1.1, capability key_ids: which of the connector's secrets the request was signed with (KEY_ID_PATTERN).
HEADER_KEY_ID = "X-Erpsync-Key-Id"
KEY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class Capability(StrEnum):
    """What a v1.1 connector offers beyond v1, named in its health answer (docs/connector-protocol.md,
    "Versions and capabilities"). The CRM sends a v1.1 field only to a connector that names the capability
    that brings it, so a v1 connector, which refuses unknown fields, keeps working unchanged."""

    KEY_IDS = "key_ids"
    TOMBSTONES = "tombstones"
    IDEMPOTENT_CREATE = "idempotent_create"
    DECIMAL = "decimal"
    CONFIG_LIST_VALUES = "config_list_values"
    LABELS = "labels"
    SUGGESTED_DIRECTIONS = "suggested_directions"
    CHANGE_NOTIFICATIONS = "change_notifications"


class Health(BaseModel):
    """``GET /v1/health``: who answers, and which protocol version and capabilities it speaks. Read leniently:
    a v1 connector may leave out ``capabilities``, and a later version may add fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = ""
    version: str = ""
    protocol: str = "1"
    capabilities: list[str] = Field(default_factory=list)

    def supports(self, capability: Capability) -> bool:
        return capability.value in self.capabilities


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
    # v1.1, capability decimal: an exact number, its value a JSON string such as "1234.50".
    DECIMAL = "decimal"


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
    FieldType.DECIMAL: NUMBER_OPERATORS,
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


def since(capability: Capability) -> dict[str, Any]:
    """Marks a field of an answer that protocol v1.1 added for ``capability``. A connector sends it only when it
    names the capability; left out while it is empty (None or []), which means the same."""
    return {"since": "1.1", "capability": capability.value}


class Model(BaseModel):
    """Every wire model: unknown fields are refused so that typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


# Marks a field that protocol v1.1 added (``Field(default=None, json_schema_extra=SINCE_1_1)``): left None, it is
# not sent, so a v1 connector, which refuses unknown fields, never sees it.
SINCE_1_1: dict[str, Any] = {"since": "1.1"}


def _leave_out_unset_1_1(self: BaseModel, handler: SerializerFunctionWrapHandler) -> Any:
    """A wire model's serializer: the model without the v1.1 fields it leaves None: a connector that uses none of a v1.1 answer
    field sends the v1 shape, which a CRM that speaks only v1 (refusing unknown fields) still reads."""
    data = handler(self)
    if isinstance(data, dict):
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get("since") == "1.1" and data.get(name, 0) in (None, []):
                del data[name]
    return data


class SuggestedDirection(StrEnum):
    """Which way a field is best synced, as the connector suggests it (v1.1, capability suggested_directions)."""

    ERP_TO_CRM = "erp_to_crm"
    CRM_TO_ERP = "crm_to_erp"
    BOTH = "both"


# Texts for people by language code ("sv", "en", "pt-BR"), beside a v1 text (v1.1, capability labels).
Labels = dict[str, str]


def text_in(labels: Labels | None, language: str, fallback: str) -> str:
    """The text of ``labels`` for ``language`` (or its base language: "sv" for "sv-SE"), else ``fallback``."""
    if labels:
        base = language.split("-")[0].lower()
        text = labels.get(language) or labels.get(base)
        if not text:
            text = next((t for code, t in labels.items() if code.split("-")[0].lower() == base and t), "")
        if text:
            return text
    return fallback


class FieldInfo(Model):
    """What one configuration or actor field is: the CRM renders and validates values from this.

    v1.1: ``labels`` and ``descriptions`` by language (capability labels); ``suggested_direction`` for an actor
    field (capability suggested_directions)."""

    key: FieldKey
    label: str
    description: str = ""
    type: FieldType
    list_name: str | None = None
    default: Value = None
    max_length: int = Field(default=0, ge=0)
    access: FieldAccess = FieldAccess.NORMAL
    # v1.1, capability decimal: for decimal fields, the most digits a value has after the point (None: any).
    decimal_places: int | None = Field(default=None, ge=0, le=30, json_schema_extra=since(Capability.DECIMAL))
    labels: Labels | None = Field(default=None, json_schema_extra=SINCE_1_1)
    descriptions: Labels | None = Field(default=None, json_schema_extra=SINCE_1_1)
    suggested_direction: SuggestedDirection | None = Field(default=None, json_schema_extra=SINCE_1_1)

    # v1.1, capability config_list_values: for a configuration list field, the configuration fields whose values
    # its items depend on; the CRM reads the list again, with the values entered so far, when they change.
    depends_on: list[FieldKey] | None = Field(
        default=None, max_length=50, json_schema_extra=since(Capability.CONFIG_LIST_VALUES)
    )

    _leave_out = model_serializer(mode="wrap")(_leave_out_unset_1_1)

    def label_in(self, language: str) -> str:
        """The label in ``language`` when the connector gave one, else ``label``."""
        return text_in(self.labels, language, self.label)

    def description_in(self, language: str) -> str:
        return text_in(self.descriptions, language, self.description)


class ListItem(Model):
    key: Key
    text: str
    labels: Labels | None = Field(default=None, json_schema_extra=SINCE_1_1)

    _leave_out = model_serializer(mode="wrap")(_leave_out_unset_1_1)

    def text_in(self, language: str) -> str:
        return text_in(self.labels, language, self.text)


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
    values: list[Value] = Field(min_length=1, max_length=MAX_RESTRICTION_VALUES)


class ErrorDetail(Model):
    error_code: ErrorCode
    user_explanation: dict[str, str] = Field(default_factory=dict)
    technical_explanation: str = ""


# Requests


class Request(Model):
    def wire_json(self) -> bytes:
        """The request's body: every field, with the v1.1 fields left None taken out."""
        left_out = {
            name
            for name, info in type(self).model_fields.items()
            if info.json_schema_extra == SINCE_1_1 and getattr(self, name) is None
        }
        return self.model_dump_json(exclude=left_out or None).encode()


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
    # v1.1, capability change_notifications: where the connector tells the CRM that this connection's actors changed
    # (a signed ChangeNotification). Sent only to a connector that names the capability, and only when the CRM has
    # an address connectors reach; a SaveConnection without it means: send this connection no notifications.
    notify_url: str | None = Field(default=None, min_length=1, max_length=2000, json_schema_extra=SINCE_1_1)


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
    # Optional since v1.1 (as in SearchActorByParent); the CRM always sends it, so v1 connectors that require it
    # keep working. An empty text lists the actors of the type, up to ``limit``.
    text: str = Field(default="", max_length=MAX_SEARCH_TEXT)
    field_keys: list[FieldKey] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_LIMIT)


class SearchActorsAdvancedRequest(ActorTypeRequest):
    restrictions: list[Restriction] = Field(max_length=MAX_RESTRICTIONS)
    field_keys: list[FieldKey] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_LIMIT)


class SearchActorByParentRequest(ActorTypeRequest):
    text: str = Field(default="", max_length=MAX_SEARCH_TEXT)
    parent_actor_type: ActorType
    parent_key: Key
    field_keys: list[FieldKey] = Field(default_factory=list)
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_LIMIT)


class CreateActorRequest(ConnectionRequest):
    actor: Actor
    # v1.1, capability idempotent_create: made once per Create in ERP and sent again on every retry of it; a
    # connector that has created an actor for this key (in this connection) answers that actor again.
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200, json_schema_extra=SINCE_1_1)


class SaveActorsRequest(ConnectionRequest):
    actors: list[Actor] = Field(min_length=1, max_length=MAX_ACTORS_PER_SAVE)


class GetListRequest(Request):
    """A list's items. Without a connection id: the lists that configuration fields use (GetConfigData)."""

    connection_id: ConnectionId | None = None
    list_name: str = Field(min_length=1, max_length=100)
    # v1.1, capability config_list_values: for a configuration list (no connection id), the configuration values
    # entered so far, so that its items may depend on them (say, the companies of the server named).
    config: dict[FieldKey, Value] | None = Field(default=None, json_schema_extra=SINCE_1_1)


class GetListItemsRequest(GetListRequest):
    keys: list[Key] = Field(min_length=1, max_length=MAX_KEYS_PER_CALL)


class GetActorsByTimestampRequest(ActorTypeRequest):
    """One page of the change feed: from ``cursor`` if given, else from ``updated_on_or_after`` (else the start)."""

    cursor: str | None = Field(default=None, max_length=1000)
    updated_on_or_after: datetime | None = None
    field_keys: list[FieldKey] = Field(default_factory=list)
    page_size: int = Field(default=500, ge=1, le=MAX_PAGE_SIZE)


class NotifiedChange(Model):
    """v1.1, capability change_notifications: one connection whose actors changed. ``actor_types`` and ``keys`` say
    which, when the connector knows (empty: it does not say); the CRM reads the change feed either way."""

    connection_id: ConnectionId
    actor_types: list[ActorType] = Field(default_factory=list, max_length=len(ActorType))
    keys: list[Key] = Field(default_factory=list, max_length=MAX_KEYS_PER_CALL)


class ChangeNotification(Model):
    """v1.1, capability change_notifications: the body of the call a connector makes to the CRM's notify URL
    (``POST``, signed like every call, with the connection's shared secret) when actors changed in the ERP."""

    changes: list[NotifiedChange] = Field(min_length=1, max_length=MAX_NOTIFIED_CONNECTIONS)


# Response data


class Data(Model):
    pass


class Empty(Data):
    pass


class FieldsData(Data):
    fields: list[FieldInfo]


class ActorTypesData(Data):
    actor_types: list[ActorType]
    # v1.1 (capability labels): each actor type's name by language, e.g. {"Customer": {"sv": "Kund"}}.
    labels: dict[ActorType, Labels] | None = Field(default=None, json_schema_extra=SINCE_1_1)

    _leave_out = model_serializer(mode="wrap")(_leave_out_unset_1_1)


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


class TombstoneKind(StrEnum):
    DELETED = "deleted"
    MERGED = "merged"  # into the actor ``merged_into`` names, which lives on
    ARCHIVED = "archived"  # put aside in the ERP, and can be restored: it then comes back in the feed as an actor


class Tombstone(Model):
    """v1.1, capability tombstones: an actor the ERP no longer has as it was, in the change feed."""

    actor_type: ActorType
    key: Key
    last_modified: datetime
    kind: TombstoneKind
    merged_into: Key | None = None


class FeedData(Data):
    actors: list[Actor]
    next_cursor: str
    has_more: bool
    # v1.1, capability tombstones: in the same (last_modified, key) order as the actors, and counted with them
    # in page_size; the cursor moves past both.
    tombstones: list[Tombstone] = Field(default_factory=list, json_schema_extra=since(Capability.TOMBSTONES))

    _leave_out = model_serializer(mode="wrap")(_leave_out_unset_1_1)


class IgnoreReason(StrEnum):
    """v1.1, capability change_notifications: why the CRM took no notice of a connection named in a notification."""

    UNKNOWN_CONNECTION = "unknown_connection"  # this connector has no such connection in the CRM (deleted?)
    INACTIVE = "inactive"  # the connection is not active, or has not passed its last test
    AUTOMATIC_SYNC_OFF = "automatic_sync_off"  # the CRM syncs only when someone asks
    NOT_SYNCED = "not_synced"  # none of the actor types named is synced


class IgnoredChange(Model):
    connection_id: ConnectionId
    reason: IgnoreReason


class NotificationData(Data):
    """The CRM's answer to a ChangeNotification: the connections whose changes it will sync within seconds, and
    those it took no notice of, with why. Either way the notification is not to be sent again."""

    accepted: list[ConnectionId] = Field(default_factory=list)
    ignored: list[IgnoredChange] = Field(default_factory=list)


# The explanations of an envelope may be null (v1.1 says so): null reads as none given, so a connector's
# ``"user_explanation": null`` on a plain ok answer is not a broken answer.
Explanations = Annotated[
    dict[str, str],
    BeforeValidator(lambda value: {} if value is None else value),
    WithJsonSchema({"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "null"}]}),
]
TechnicalExplanation = Annotated[
    str,
    BeforeValidator(lambda value: "" if value is None else value),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]}),
]


class Envelope(Model):
    """Every response: the outcome, explanations for people and for logs, and the operation's data."""

    ok: bool
    state: State
    user_explanation: Explanations = Field(default_factory=dict)
    technical_explanation: TechnicalExplanation = ""
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
    elif kind == FieldType.DECIMAL:
        if not isinstance(value, str) or not DECIMAL_PATTERN.match(value):
            return f'{field.key}: {value!r} is not a decimal value (a string such as "1234.50")'
        places = len(value.partition(".")[2])
        if field.decimal_places is not None and places > field.decimal_places:
            return f"{field.key}: {value} has more than {field.decimal_places} decimal places"
        return None
    elif kind == FieldType.DATE:
        ok = isinstance(value, str) and _parses(date.fromisoformat, value) and len(value) == 10
    else:
        ok = isinstance(value, str) and _parses(datetime.fromisoformat, value) and "T" in value
    if not ok:
        return f"{field.key}: {value!r} is not a {kind.value} value"
    return None


# A decimal value on the wire: an optional minus, digits without leading zeros, and an optional point with digits.
DECIMAL_PATTERN = re.compile(r"^-?(0|[1-9][0-9]{0,37})(\.[0-9]{1,30})?$")


def decimal_value(value: Decimal, places: int | None = None) -> str:
    """A Decimal as a wire value: plain notation (never an exponent), with ``places`` digits after the point when
    given; raises ValueError when that would round it."""
    if places is not None:
        exact = value.quantize(Decimal(1).scaleb(-places))
        if exact != value:
            raise ValueError(f"{value} has more than {places} decimal places")
        value = exact
    text = format(value, "f")
    return text[1:] if value == 0 and text.startswith("-") else text


def parse_decimal(value: Value) -> Decimal:
    """A wire decimal (or a JSON number, which v1 fields carry) as a Decimal; ValueError when it is neither."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return number


def _parses(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def instant(value: datetime | str) -> datetime:
    """A wire date-time as an instant: ``…Z`` and ``…+00:00`` (or any offset naming the same moment) are equal."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment


def same_instant(a: datetime | str | None, b: datetime | str | None) -> bool:
    """Whether two ``last_modified`` values name the same moment, whatever their offsets or spelling (v1.1:
    SaveActors compares them as instants, so ``2026-03-31T12:05:00Z`` equals ``2026-03-31T14:05:00+02:00``)."""
    if a is None or b is None:
        return a is None and b is None
    return instant(a) == instant(b)


# Signing


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """HMAC-SHA256 over the method, path, timestamp, nonce and the body's SHA-256, as ``v1=<hex>``.

    The key is the secret's UTF-8 bytes; ``path`` is the request path without any query string. A key id (v1.1)
    travels in its own header and is not part of the message, so the signature is the same with or without it."""
    message = "\n".join((method.upper(), path, timestamp, nonce, body_digest(body))).encode()
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, path: str, body: bytes, *, key_id: str = "", method: str = "POST", now: float | None = None
) -> dict[str, str]:
    """The headers of a signed call: timestamp, a fresh nonce, the signature and, when given, the key id. The CRM
    signs its calls to a connector with these, and a connector its change notifications to the CRM (v1.1)."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = token_hex(16)
    headers = {
        "Content-Type": "application/json",
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature(secret, method, path, timestamp, nonce, body),
    }
    if key_id:
        headers[HEADER_KEY_ID] = key_id
    return headers


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


# The operators that take null as an operand (it stands for an empty field); the others refuse it (v1.1).
NULL_OPERAND_OPERATORS = frozenset({"equals", "is_not", "eq", "ne", "one_of", "not_one_of"})


def operand_count_problem(operator: str, values: list[Value]) -> str | None:
    """Why a restriction's operands do not fit its operator (their number, or a null it cannot take), or None."""
    if operator not in NULL_OPERAND_OPERATORS and any(v is None for v in values):
        return f"{operator} takes no null operand"
    if operator == "between":
        return None if len(values) == 2 else "between takes exactly two values"
    if operator in ("one_of", "not_one_of"):
        return None
    return None if len(values) == 1 else f"{operator} takes exactly one value"


def is_empty(value: Value) -> bool:
    """Null, or the empty string: both mean an empty field (v1.1 says so for text and every other type)."""
    return value is None or value == ""


def same_value(a: Value, b: Value) -> bool:
    """Whether two wire values of a field are the same: "" equals null, and numbers compare by value."""
    if is_empty(a) or is_empty(b):
        return is_empty(a) and is_empty(b)
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _comparable(field_type: FieldType, value: Value) -> Any:
    if is_empty(value):
        return None
    if field_type == FieldType.TEXT:
        return str(value).casefold()
    if field_type == FieldType.DATE:
        return date.fromisoformat(str(value))
    if field_type == FieldType.DATETIME:
        return datetime.fromisoformat(str(value))
    if field_type == FieldType.DECIMAL:
        return parse_decimal(value)
    return value


def restriction_matches(field_type: FieldType, operator: str, values: list[Value], actual: Value) -> bool:
    """Whether a field holding ``actual`` satisfies the restriction: the meaning of every operator.

    Text comparisons ignore case. An empty field (null or "") matches only the negative operators (is_not, not_*,
    ne, not_one_of), except that ``equals``/``eq`` with null matches an empty field.
    docs/connector-protocol.md, "Search", has the same as a table; tests/connectors/test_protocol.py checks both agree.
    """
    if operator in ("one_of", "not_one_of"):
        found = any(same_value(actual, v) for v in values)
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
        "gt": a > first,
        "lt": a < first,
        "gte": a >= first,
        "lte": a <= first,
        "after": a > first,
        "before": a < first,
        "after_or_equal": a >= first,
        "before_or_equal": a <= first,
    }
    if operator not in comparisons:
        raise ValueError(f"unknown operator {operator!r}")
    return bool(comparisons[operator])


# The machine-readable contract


PUBLISHED_TITLE = "erpsync connector protocol"
# The published OpenAPI document, made with ``python -m connectors.protocol --schema`` (make schema).
PUBLISHED_SCHEMA = f"docs/connector-protocol-v{PROTOCOL_VERSION}.openapi.json"


def openapi_document(title: str = PUBLISHED_TITLE, version: str = PROTOCOL_VERSION) -> dict[str, Any]:
    """OpenAPI 3.1 for the protocol, generated from the models above. Every SDK connector serves it with its own
    name and version in ``info``; the published file has the protocol's (info.version 1.1). Either way
    ``info.x-erpsync-protocol`` is the protocol version."""
    from pydantic.json_schema import models_json_schema

    models: list[type[BaseModel]] = [Envelope]
    for op in OPERATIONS.values():
        models.extend((op.request, op.response))
    models.extend((ChangeNotification, NotificationData))
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
                "parameters": [
                    {
                        "name": HEADER_KEY_ID,
                        "in": "header",
                        "required": False,
                        "description": "v1.1, capability key_ids: the key id of the secret the request is signed with",
                        "schema": {"type": "string", "pattern": KEY_ID_PATTERN},
                    }
                ],
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
                    "404": {"description": "Unknown path (not_found)", "content": envelope},
                    "405": {"description": "A method other than POST (invalid_request)", "content": envelope},
                    "413": {
                        "description": f"Body over {MAX_REQUEST_BYTES} bytes (payload_too_large)",
                        "content": envelope,
                    },
                    "500": {"description": "The connector failed (internal_error)", "content": envelope},
                },
            }
        }
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    webhooks = {
        "ChangeNotification": {
            "post": {
                "operationId": "ChangeNotification",
                "summary": "v1.1, capability change_notifications: the connector tells the CRM, at the notify_url of "
                "SaveConnection, that actors changed; signed as every call is, with the shared secret",
                "security": security,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChangeNotification"}}},
                },
                "responses": {
                    "200": {
                        "description": "Taken: the connections named are synced within seconds, or ignored (why)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "allOf": [
                                        {"$ref": "#/components/schemas/Envelope"},
                                        {"properties": {"data": {"$ref": "#/components/schemas/NotificationData"}}},
                                    ]
                                }
                            }
                        },
                    },
                    "400": {"description": "Malformed notification (invalid_request)", "content": envelope},
                    "401": {"description": "Missing, stale, replayed or wrong signature", "content": envelope},
                    "404": {"description": "No Sync Connector at this URL (not_found)", "content": envelope},
                    "413": {
                        "description": f"Body over {MAX_NOTIFICATION_BYTES} bytes (payload_too_large)",
                        "content": envelope,
                    },
                    "429": {"description": "Too many notifications; send again after retry_after", "content": envelope},
                },
            }
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": f"erpsync connector protocol v{PROTOCOL_VERSION}, served under {PREFIX}/; "
            "docs/connector-protocol.md is the contract in prose",
            "x-erpsync-protocol": PROTOCOL_VERSION,
        },
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "signature": {"type": "apiKey", "in": "header", "name": HEADER_SIGNATURE},
                "timestamp": {"type": "apiKey", "in": "header", "name": HEADER_TIMESTAMP},
                "nonce": {"type": "apiKey", "in": "header", "name": HEADER_NONCE},
            },
        },
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m connectors.protocol --schema``: print the published OpenAPI document."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m connectors.protocol", description=__doc__.splitlines()[0])
    parser.add_argument("--schema", action="store_true", help=f"print the OpenAPI document ({PUBLISHED_SCHEMA})")
    args = parser.parse_args(argv)
    if not args.schema:
        parser.error("say what to print: --schema")
    print(published_schema(), end="")


def published_schema() -> str:
    """The text of the published OpenAPI document, exactly as kept in docs/."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    main()
