"""The only way the CRM calls a connector.

One :class:`ConnectorClient` per connector holds one pooled ``httpx.Client``: explicit timeouts, no
redirects, a response size limit, signed requests and strict validation of every response. Failures
become :class:`ConnectorError` subclasses with a ``permanent`` flag that tells the caller whether a
retry can help.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from . import protocol as p

T = TypeVar("T")
USER_AGENT = f"erpsync-connector-client/{p.PROTOCOL_VERSION}"


# Errors


class ConnectorError(Exception):
    """A call to a connector failed. ``permanent`` is False when the same call may succeed later."""

    permanent = True

    def __init__(self, message: str, *, operation: str = "") -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}" if operation else message)
        self.message = message


class ConnectorUnreachable(ConnectorError):
    """No connection could be made (refused, DNS, TLS, reset)."""

    permanent = False


class ConnectorTimeout(ConnectorError):
    """The connector did not answer completely within the time allowed."""

    permanent = False


class ProtocolError(ConnectorError):
    """The connector answered something that is not protocol v1; the message names what was wrong."""


class GatewayError(ProtocolError):
    """HTTP 502, 503 or 504 without a protocol answer: a proxy or load balancer in front of the connector
    could not reach it, or the connector is restarting. Worth retrying."""

    permanent = False


# Statuses that proxies answer for a connector that is down or restarting, usually with a page of their own.
GATEWAY_STATUSES = frozenset({502, 503, 504})


class ConnectorNotAllowed(ConnectorError):
    """The CRM may not call this address (the client's ``refusal`` said why); nothing was sent.

    ``refusal`` and ``url`` are kept so that a page can ask for the reason again in its reader's language."""

    def __init__(self, refusal: Callable[[str], str | None], url: str, *, operation: str = "") -> None:
        self.refusal, self.url = refusal, url
        super().__init__(refusal(url) or "", operation=operation)


class ConnectorRejected(ConnectorError):
    """The connector answered with an error envelope: its explanations are meant for people."""

    def __init__(self, envelope: p.Envelope, *, operation: str = "", status: int = 200) -> None:
        self.envelope = envelope
        self.error_code = envelope.error_code or p.ErrorCode.INTERNAL_ERROR
        self.status = status
        self.permanent = self.error_code not in p.TRANSIENT_ERRORS
        self.retry_after = envelope.retry_after
        text = envelope.technical_explanation or self.user_text("en") or self.error_code.value
        super().__init__(f"{self.error_code.value}: {text}", operation=operation)

    def user_text(self, language: str = "en") -> str:
        """The connector's explanation for people, in ``language`` if it gave one, else in any language."""
        explanations = self.envelope.user_explanation
        return explanations.get(language) or explanations.get("en") or next(iter(explanations.values()), "")


class UnknownConnection(ConnectorRejected):
    """The connector does not know the connection id (it lost or never had the configuration)."""


# Client


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0  # between bytes
    total: float = 60.0  # for the whole answer, so that a slow trickle cannot hold a worker forever


@dataclass(frozen=True)
class Result(Generic[T]):
    """A successful call: its data plus the envelope's state and explanations (ok_with_info, warning)."""

    data: T
    envelope: p.Envelope


class ConnectorClient:
    """Talks protocol v1 to the connector at ``base_url``, signing with ``secret``."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        *,
        timeouts: Timeouts = Timeouts(),
        max_response_bytes: int = p.MAX_RESPONSE_BYTES,
        language: str = "en",
        transport: httpx.BaseTransport | None = None,
        refusal: Callable[[str], str | None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Asked before every call, so a change of policy applies to clients already made; None allows any address.
        self._refusal = refusal
        self._secret = secret
        self.timeouts = timeouts
        self.max_response_bytes = max_response_bytes
        self.language = language
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
            ),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=30),
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConnectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The transport

    def call(self, operation: str, request: p.Request, *, language: str | None = None) -> Result[Any]:
        """Send one operation and return its validated data; raise a ConnectorError otherwise."""
        op = p.OPERATIONS[operation]
        if self._refusal is not None and self._refusal(self.base_url):
            raise ConnectorNotAllowed(self._refusal, self.base_url, operation=operation)
        body = request.model_dump_json(exclude_none=False).encode()
        if len(body) > p.MAX_REQUEST_BYTES:
            raise ProtocolError(
                f"the request is {len(body)} bytes; the limit is {p.MAX_REQUEST_BYTES}", operation=operation
            )
        status, raw = self._post(op.path, body, operation, language or self.language)
        envelope = self._parse_envelope(status, raw, operation, p.envelope_for(op.response))
        if not envelope.ok:
            cls = UnknownConnection if envelope.error_code == p.ErrorCode.UNKNOWN_CONNECTION else ConnectorRejected
            raise cls(envelope, operation=operation, status=status)
        if status != 200:
            raise ProtocolError(f"HTTP {status} with an ok envelope; ok answers must be HTTP 200", operation=operation)
        data = envelope.data if envelope.data is not None else _empty_data(op.response, operation)
        _check_datetimes_have_zones(data, operation)
        return Result(data=data, envelope=envelope)

    def _post(self, path: str, body: bytes, operation: str, language: str) -> tuple[int, bytes]:
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json",
            "Accept-Language": language,
            p.HEADER_TIMESTAMP: timestamp,
            p.HEADER_NONCE: nonce,
            p.HEADER_SIGNATURE: p.signature(self._secret, "POST", path, timestamp, nonce, body),
        }
        deadline = time.monotonic() + self.timeouts.total
        try:
            with self._http.stream("POST", path, content=body, headers=headers) as response:
                if response.is_redirect:
                    target = response.headers.get("Location", "?")
                    raise ProtocolError(
                        f"the connector redirected to {target}; connectors must not redirect", operation=operation
                    )
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
                    raise ProtocolError(self._too_large(int(declared)), operation=operation)
                chunks, size = [], 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise ProtocolError(self._too_large(size, at_least=True), operation=operation)
                    if time.monotonic() > deadline:
                        raise ConnectorTimeout(
                            f"no complete answer within {self.timeouts.total:g} s", operation=operation
                        )
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except httpx.TimeoutException as e:
            raise ConnectorTimeout(f"no answer within the timeout ({type(e).__name__})", operation=operation) from e
        except httpx.TransportError as e:
            raise ConnectorUnreachable(
                f"cannot reach {self.base_url}: {e or type(e).__name__}", operation=operation
            ) from e

    def _too_large(self, size: int, at_least: bool = False) -> str:
        amount = f"more than {self.max_response_bytes}" if at_least else str(size)
        return f"the answer is {amount} bytes; the limit is {self.max_response_bytes}"

    def _parse_envelope(self, status: int, raw: bytes, operation: str, envelope_type: type[p.Envelope]) -> Any:
        try:
            envelope = envelope_type.model_validate_json(raw)
        except ValidationError as e:
            first = e.errors()[0]
            error = GatewayError if status in GATEWAY_STATUSES else ProtocolError
            if first["type"] == "json_invalid":
                start = raw[:80].decode("utf-8", "replace").strip()
                raise error(f"HTTP {status} with a body that is not JSON: {start!r}", operation=operation) from e
            if first["type"] == "model_type" and not first["loc"]:
                raise error(f"HTTP {status}: the answer is JSON but not an object", operation=operation) from e
            raise error(f"HTTP {status}: {_describe(e, '')}", operation=operation) from e
        if envelope.ok == (envelope.state == p.State.ERROR):
            raise ProtocolError(f"ok={envelope.ok} contradicts state={envelope.state.value}", operation=operation)
        if not envelope.ok and envelope.error_code is None:
            raise ProtocolError("error_code: missing in an error answer", operation=operation)
        return envelope

    # The operations

    def get_config_data(self) -> Result[p.FieldsData]:
        return self.call("GetConfigData", p.GetConfigDataRequest())

    def test_config_data(self, config: Mapping[str, p.Value]) -> Result[p.Empty]:
        return self.call("TestConfigData", p.TestConfigDataRequest(config=dict(config)))

    def get_config_list(self, list_name: str) -> list[p.ListItem]:
        """Items of a list used by a configuration field, before any connection exists."""
        data: p.ListData = self.call("GetList", p.GetListRequest(list_name=list_name)).data
        return data.items

    def connection(self, connection_id: str, config: Callable[[], Mapping[str, p.Value]]) -> ConnectionClient:
        """Calls for one saved connection; ``config`` gives the saved configuration to resend when needed."""
        return ConnectionClient(self, connection_id, config)


class ConnectionClient:
    """The operations of one connection. On ``unknown_connection`` the saved configuration is sent again
    (SaveConnection) and the call is retried once."""

    def __init__(
        self, client: ConnectorClient, connection_id: str, config: Callable[[], Mapping[str, p.Value]]
    ) -> None:
        self.client = client
        self.connection_id = connection_id
        self._config = config

    def _call(self, operation: str, **fields: Any) -> Result[Any]:
        request = p.OPERATIONS[operation].request.model_validate({"connection_id": self.connection_id, **fields})
        try:
            return self.client.call(operation, request)
        except UnknownConnection:
            if operation == "SaveConnection":
                raise
            self.save()
            return self.client.call(operation, request)

    def save(self) -> Result[p.Empty]:
        request = p.SaveConnectionRequest(connection_id=self.connection_id, config=dict(self._config()))
        return self.client.call("SaveConnection", request)

    def test(self) -> Result[p.Empty]:
        return self._call("TestConnection")

    def delete(self) -> Result[p.Empty]:
        return self.client.call("DeleteConnection", p.DeleteConnectionRequest(connection_id=self.connection_id))

    def supported_actor_types(self) -> list[p.ActorType]:
        return self._call("GetSupportedActorTypes").data.actor_types

    def actor_type_fields(self, actor_type: p.ActorType) -> list[p.FieldInfo]:
        return self._call("GetSupportedActorTypeFields", actor_type=actor_type).data.fields

    def searchable_fields(self, actor_type: p.ActorType) -> list[str]:
        return self._call("GetSearchableFields", actor_type=actor_type).data.field_keys

    def get_actors(self, actor_type: p.ActorType, keys: list[str], field_keys: list[str] | None = None) -> p.ActorsData:
        """Actors by key; more keys than one call takes are sent in several calls."""
        actors: list[p.Actor] = []
        missing: list[str] = []
        for start in range(0, len(keys), p.MAX_KEYS_PER_CALL):
            batch = keys[start : start + p.MAX_KEYS_PER_CALL]
            data = self._call("GetActors", actor_type=actor_type, keys=batch, field_keys=field_keys or []).data
            actors.extend(data.actors)
            missing.extend(data.missing_keys)
        return p.ActorsData(actors=actors, missing_keys=missing)

    def search(
        self, actor_type: p.ActorType, text: str, field_keys: list[str] | None = None, limit: int = 50
    ) -> p.SearchData:
        return self._call(
            "SearchActors", actor_type=actor_type, text=text, field_keys=field_keys or [], limit=limit
        ).data

    def search_advanced(
        self,
        actor_type: p.ActorType,
        restrictions: list[p.Restriction],
        field_keys: list[str] | None = None,
        limit: int = 50,
    ) -> p.SearchData:
        return self._call(
            "SearchActorsAdvanced",
            actor_type=actor_type,
            restrictions=restrictions,
            field_keys=field_keys or [],
            limit=limit,
        ).data

    def search_by_parent(
        self,
        actor_type: p.ActorType,
        parent_actor_type: p.ActorType,
        parent_key: str,
        text: str = "",
        field_keys: list[str] | None = None,
        limit: int = 50,
    ) -> p.SearchData:
        return self._call(
            "SearchActorByParent",
            actor_type=actor_type,
            text=text,
            parent_actor_type=parent_actor_type,
            parent_key=parent_key,
            field_keys=field_keys or [],
            limit=limit,
        ).data

    def create_actor(self, actor: p.Actor) -> p.Actor:
        return self._call("CreateActor", actor=actor).data.actor

    def save_actors(self, actors: list[p.Actor]) -> list[p.SaveResult]:
        """Save actors in batches; each actor's outcome is in its result, one failing actor fails no other."""
        results: list[p.SaveResult] = []
        for start in range(0, len(actors), p.MAX_ACTORS_PER_SAVE):
            results.extend(self._call("SaveActors", actors=actors[start : start + p.MAX_ACTORS_PER_SAVE]).data.results)
        return results

    def get_list(self, list_name: str) -> list[p.ListItem]:
        return self._call("GetList", list_name=list_name).data.items

    def get_list_items(self, list_name: str, keys: list[str]) -> list[p.ListItem]:
        return self._call("GetListItems", list_name=list_name, keys=keys).data.items

    def changes_page(
        self,
        actor_type: p.ActorType,
        cursor: str | None = None,
        updated_on_or_after: datetime | None = None,
        field_keys: list[str] | None = None,
        page_size: int = 500,
    ) -> p.FeedData:
        return self._call(
            "GetActorsByTimestamp",
            actor_type=actor_type,
            cursor=cursor,
            updated_on_or_after=updated_on_or_after,
            field_keys=field_keys or [],
            page_size=page_size,
        ).data

    def changes(
        self,
        actor_type: p.ActorType,
        cursor: str | None = None,
        updated_on_or_after: datetime | None = None,
        field_keys: list[str] | None = None,
        page_size: int = 500,
    ) -> Iterator[p.FeedData]:
        """Every page of the change feed from ``cursor``; each page's ``next_cursor`` resumes after it."""
        while True:
            page = self.changes_page(actor_type, cursor, updated_on_or_after, field_keys, page_size)
            yield page
            if not page.has_more:
                return
            if page.next_cursor == cursor:
                raise ProtocolError(
                    "next_cursor did not advance although has_more is true", operation="GetActorsByTimestamp"
                )
            cursor = page.next_cursor


def _empty_data(data_type: type[p.Data], operation: str) -> p.Data:
    try:
        return data_type()
    except ValidationError as e:
        raise ProtocolError("data: missing in an ok answer", operation=operation) from e


def _describe(error: ValidationError, prefix: str) -> str:
    """The first validation problem as 'path.to.field: what is wrong'."""
    first = error.errors()[0]
    path = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    more = error.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{path or 'answer'}: {first['msg']}{suffix}"


def _check_datetimes_have_zones(data: BaseModel, operation: str) -> None:
    actors = getattr(data, "actors", None) or ([data.actor] if hasattr(data, "actor") else [])
    for index, actor in enumerate(actors):
        if actor.last_modified is not None and actor.last_modified.tzinfo is None:
            raise ProtocolError(
                f"data.actors.{index}.last_modified: a date-time needs a UTC offset", operation=operation
            )
