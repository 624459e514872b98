"""The only way the CRM calls a connector.

One :class:`ConnectorClient` per connector holds one pooled ``httpx.Client``: explicit timeouts, no
redirects, a response size limit, signed requests and strict validation of every response. Failures
become :class:`ConnectorError` subclasses with a ``permanent`` flag that tells the caller whether a
retry can help. Every call is reported to the observers registered with :func:`observe_calls` (metrics),
so that this module stays free of any monitoring library.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpcore
import httpx
from pydantic import BaseModel, ValidationError

from . import protocol as p

T = TypeVar("T")
USER_AGENT = f"erpsync-connector-client/{p.PROTOCOL_VERSION}"
log = logging.getLogger(__name__)


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


AddressRefusal = Callable[[str, int, str], str | None]


class AddressRefused(Exception):
    """The host resolved only to addresses ``address_refusal`` refuses: no connection was made."""

    def __init__(self, host: str, port: int, address: str) -> None:
        self.host, self.port, self.address = host, port, address
        super().__init__(f"{host}:{port} is at {address}, which is refused")


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


# Observers: told of every call, whatever its outcome


CallObserver = Callable[[str, float, ConnectorError | None], None]
_observers: list[CallObserver] = []


def observe_calls(observer: CallObserver) -> None:
    """Have ``observer(operation, seconds, error)`` called after every call; ``error`` is None on success.

    Registering the same observer twice has no effect. Observers run in the calling thread and must be quick.
    """
    if observer not in _observers:
        _observers.append(observer)


def _report(operation: str, seconds: float, error: ConnectorError | None) -> None:
    for observer in _observers:
        try:
            observer(operation, seconds, error)
        except Exception:
            # Monitoring must never fail a sync: the call's own outcome is what the caller gets.
            log.exception("A connector call observer failed")


# In-process connectors: a connector's WSGI app called without a network in between


_in_process: dict[str, httpx.BaseTransport] = {}


def serve_in_process(base_url: str, transport: httpx.BaseTransport | None) -> None:
    """Have clients made from now on for ``base_url`` call ``transport`` (e.g. an ``httpx.WSGITransport``
    around a connector's app) instead of the network; ``None`` removes it again.

    Only the test suite registers one, for tests where the process boundary is not what is tested; nothing
    in the apps does, so real calls always go over the network. Everything else a client does still applies:
    the allow-list is asked before each call, requests are signed, and answers are size-checked and validated;
    only the check of the address connected to has nothing to check, as no connection is made.
    """
    key = base_url.rstrip("/")
    if transport is None:
        _in_process.pop(key, None)
    else:
        _in_process[key] = transport


# Connecting only to allowed addresses


class CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself, asks ``address_refusal`` about each address, and connects to that very address.

    The address checked is the address connected to: a name that resolves to a public address for a check and
    to an internal one for the connection (DNS rebinding) is never connected to the internal one. TLS still
    verifies the certificate against the host name, which httpcore passes separately."""

    def __init__(self, address_refusal: AddressRefusal) -> None:
        self._address_refusal = address_refusal

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpcore.ConnectError(f"{host}: {e.strerror or e}") from e
        refused, failure = "", None
        for *_rest, sockaddr in found:
            address = str(sockaddr[0])
            if self._address_refusal(host, port, address):
                refused = refused or address
                continue
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                failure = e
        if failure is not None:
            raise failure
        raise AddressRefused(host, port, refused)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings of every client in the process: certificates verified against certifi's bundle, as httpx
    does by default. Made once, because making one reads the whole bundle (about 15 ms of CPU), and a client is
    made for each page that calls a connector; one context may serve any number of connections and threads."""
    return httpx.create_ssl_context(trust_env=False)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's own transport, whose connections go through :class:`CheckedBackend`."""

    def __init__(self, address_refusal: AddressRefusal, limits: httpx.Limits) -> None:
        super().__init__(verify=tls_context(), limits=limits, trust_env=False)
        # httpx takes no network backend, so its pool is made again with the same settings and the checking one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(address_refusal),
        )


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
        address_refusal: AddressRefusal | None = None,
        capabilities: frozenset[str] = frozenset(),
        key_id: str = "",
        notify_url: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Where the connector sends change notifications (v1.1, change_notifications): sent with SaveConnection to a
        # connector that names the capability; "" when the CRM has no address connectors reach.
        self.notify_url = notify_url
        # The key id of ``secret`` (protocol v1.1, key_ids), sent with every call when there is one; "" for none.
        self.key_id = key_id
        # What the connector's health answer named when it was last checked (protocol.Capability values).
        self.capabilities = capabilities
        # Asked before every call, so a change of policy applies to clients already made; None allows any address.
        self._refusal = refusal
        # Asked for every address a connection is made to (host, port, address); None allows any address.
        self._address_refusal = address_refusal
        self._secret = secret
        self.timeouts = timeouts
        self.max_response_bytes = max_response_bytes
        self.language = language
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=30)
        if transport is None:
            transport = _in_process.get(self.base_url)
        if transport is None and address_refusal is not None:
            transport = CheckedTransport(address_refusal, limits)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
            ),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=limits,
            transport=transport,
            verify=tls_context(),
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def supports(self, capability: p.Capability) -> bool:
        """The connector named ``capability`` in its health answer: its v1.1 fields may be sent."""
        return capability.value in self.capabilities

    def health(self) -> p.Health:
        """``GET /v1/health``: the connector's name, version, protocol version and capabilities. A connector
        without a health answer (404) or with one that is not JSON is taken as protocol v1 with no capabilities."""
        path = f"{p.PREFIX}/health"
        if self._refusal is not None and self._refusal(self.base_url):
            raise ConnectorNotAllowed(self._refusal, self.base_url, operation="health")
        try:
            response = self._http.get(path, timeout=httpx.Timeout(self.timeouts.read, connect=self.timeouts.connect))
        except AddressRefused as e:
            refusal, host, port, address = self._address_refusal, e.host, e.port, e.address
            assert refusal is not None  # only a client with an address refusal raises it
            raise ConnectorNotAllowed(
                lambda _url: refusal(host, port, address), self.base_url, operation="health"
            ) from e
        except httpx.TimeoutException as e:
            raise ConnectorTimeout(f"no answer within the timeout ({type(e).__name__})", operation="health") from e
        except httpx.TransportError as e:
            raise ConnectorUnreachable(
                f"cannot reach {self.base_url}: {e or type(e).__name__}", operation="health"
            ) from e
        if response.status_code != 200 or len(response.content) > 64 * 1024:
            return p.Health()
        try:
            return p.Health.model_validate_json(response.content)
        except ValidationError:
            return p.Health()

    def __enter__(self) -> ConnectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The transport

    def call(self, operation: str, request: p.Request, *, language: str | None = None) -> Result[Any]:
        """Send one operation and return its validated data; raise a ConnectorError otherwise."""
        started = time.monotonic()
        try:
            result = self._perform(operation, request, language)
        except ConnectorError as error:
            _report(operation, time.monotonic() - started, error)
            raise
        _report(operation, time.monotonic() - started, None)
        return result

    def _perform(self, operation: str, request: p.Request, language: str | None) -> Result[Any]:
        op = p.OPERATIONS[operation]
        if self._refusal is not None and self._refusal(self.base_url):
            raise ConnectorNotAllowed(self._refusal, self.base_url, operation=operation)
        body = request.wire_json()
        if len(body) > p.MAX_REQUEST_BYTES:
            raise ProtocolError(
                f"the request is {len(body)} bytes; the limit is {p.MAX_REQUEST_BYTES}", operation=operation
            )
        status, content_type, raw = self._post(op.path, body, operation, language or self.language)
        envelope = self._parse_envelope(status, content_type, raw, operation, p.envelope_for(op.response))
        if not envelope.ok:
            cls = UnknownConnection if envelope.error_code == p.ErrorCode.UNKNOWN_CONNECTION else ConnectorRejected
            raise cls(envelope, operation=operation, status=status)
        if status != 200:
            raise ProtocolError(f"HTTP {status} with an ok envelope; ok answers must be HTTP 200", operation=operation)
        data = envelope.data if envelope.data is not None else _empty_data(op.response, operation)
        _check_datetimes_have_zones(data, operation)
        return Result(data=data, envelope=envelope)

    def _post(self, path: str, body: bytes, operation: str, language: str) -> tuple[int, str, bytes]:
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json",
            "Accept-Language": language,
            p.HEADER_TIMESTAMP: timestamp,
            p.HEADER_NONCE: nonce,
            p.HEADER_SIGNATURE: p.signature(self._secret, "POST", path, timestamp, nonce, body),
        }
        if self.key_id:
            headers[p.HEADER_KEY_ID] = self.key_id
        deadline = time.monotonic() + self.timeouts.total
        try:
            with self._http.stream("POST", path, content=body, headers=headers) as response:
                if response.is_redirect:
                    # Where it points is not shown: an answer that is not a connector's says nothing of itself.
                    raise ProtocolError(
                        f"HTTP {response.status_code} ({_content_type(response)}), a redirect; connectors must not "
                        "redirect",
                        operation=operation,
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
                return response.status_code, _content_type(response), b"".join(chunks)
        except AddressRefused as e:
            refusal, host, port, address = self._address_refusal, e.host, e.port, e.address
            assert refusal is not None  # only a client with an address refusal raises it
            # Asked again when shown, so that a page gives the reason in its reader's language.
            raise ConnectorNotAllowed(
                lambda _url: refusal(host, port, address), self.base_url, operation=operation
            ) from e
        except httpx.TimeoutException as e:
            raise ConnectorTimeout(f"no answer within the timeout ({type(e).__name__})", operation=operation) from e
        except httpx.TransportError as e:
            raise ConnectorUnreachable(
                f"cannot reach {self.base_url}: {e or type(e).__name__}", operation=operation
            ) from e

    def _too_large(self, size: int, at_least: bool = False) -> str:
        amount = f"more than {self.max_response_bytes}" if at_least else str(size)
        return f"the answer is {amount} bytes; the limit is {self.max_response_bytes}"

    def _parse_envelope(
        self, status: int, content_type: str, raw: bytes, operation: str, envelope_type: type[p.Envelope]
    ) -> Any:
        """The answer's envelope. An answer that is not one is described by its status and content type only,
        never by its body: whatever answers at a connector's address must not be readable through error messages."""
        try:
            envelope = envelope_type.model_validate_json(raw)
        except ValidationError as e:
            first = e.errors()[0]
            error = GatewayError if status in GATEWAY_STATUSES else ProtocolError
            what = f"HTTP {status} ({content_type})"
            if first["type"] == "json_invalid":
                raise error(f"{what} with a body that is not JSON", operation=operation) from e
            if first["type"] == "model_type" and not first["loc"]:
                raise error(f"{what}: the answer is JSON but not an object", operation=operation) from e
            if not _looks_like_envelope(raw):
                raise error(f"{what}: a JSON object that is not a connector's envelope", operation=operation) from e
            # A connector's envelope that breaks the protocol: the field is named, never its value.
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

    def get_config_list(self, list_name: str, config: Mapping[str, p.Value] | None = None) -> list[p.ListItem]:
        """Items of a list used by a configuration field, before any connection exists. ``config``, the values
        entered so far, is sent only to a connector that names ``config_list_values``."""
        values = dict(config) if config is not None and self.supports(p.Capability.CONFIG_LIST_VALUES) else None
        data: p.ListData = self.call("GetList", p.GetListRequest(list_name=list_name, config=values)).data
        return data.items

    def get_config_list_items(
        self, list_name: str, keys: list[str], config: Mapping[str, p.Value] | None = None
    ) -> list[p.ListItem]:
        """Some items of a configuration list, by key; ``config`` as in :meth:`get_config_list`."""
        values = dict(config) if config is not None and self.supports(p.Capability.CONFIG_LIST_VALUES) else None
        request = p.GetListItemsRequest(list_name=list_name, keys=keys, config=values)
        data: p.ListData = self.call("GetListItems", request).data
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
        """SaveConnection with the configuration, and the notify URL for a connector that takes notifications."""
        request = p.SaveConnectionRequest(
            connection_id=self.connection_id, config=dict(self._config()), notify_url=self.notify_url or None
        )
        return self.client.call("SaveConnection", request)

    @property
    def notify_url(self) -> str:
        """The notify URL SaveConnection sends: the client's, when the connector names change_notifications."""
        return self.client.notify_url if self.client.supports(p.Capability.CHANGE_NOTIFICATIONS) else ""

    def test(self) -> Result[p.Empty]:
        return self._call("TestConnection")

    def delete(self) -> Result[p.Empty]:
        return self.client.call("DeleteConnection", p.DeleteConnectionRequest(connection_id=self.connection_id))

    def supported_actor_types(self) -> list[p.ActorType]:
        return self._call("GetSupportedActorTypes").data.actor_types

    def actor_types_data(self) -> p.ActorTypesData:
        """GetSupportedActorTypes' whole answer: with protocol v1.1's labels, when the connector gives them."""
        data: p.ActorTypesData = self._call("GetSupportedActorTypes").data
        return data

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

    def create_actor(self, actor: p.Actor, idempotency_key: str | None = None) -> p.Actor:
        """CreateActor. ``idempotency_key`` is sent only to a connector that names ``idempotent_create``: the same
        key on a retry then gets the actor the first attempt created instead of a second one."""
        if idempotency_key is None or not self.client.supports(p.Capability.IDEMPOTENT_CREATE):
            return self._call("CreateActor", actor=actor).data.actor
        return self._call("CreateActor", actor=actor, idempotency_key=idempotency_key).data.actor

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


# A media type as RFC 6838 spells it; anything else in the header is not repeated.
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$")


def _content_type(response: httpx.Response) -> str:
    """The answer's media type (``text/html``), without parameters; "no content type" when it gives none usable."""
    media_type = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    return media_type if _MEDIA_TYPE.match(media_type) else "no content type"


def _looks_like_envelope(raw: bytes) -> bool:
    """Whether ``raw`` is a JSON object with a member every envelope has (whose problems are then worth naming)."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return False
    return isinstance(answer, dict) and ("ok" in answer or "state" in answer)


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
    for index, tombstone in enumerate(getattr(data, "tombstones", None) or ()):
        if tombstone.last_modified.tzinfo is None:
            raise ProtocolError(
                f"data.tombstones.{index}.last_modified: a date-time needs a UTC offset", operation=operation
            )
    actors = getattr(data, "actors", None) or ([data.actor] if hasattr(data, "actor") else [])
    for index, actor in enumerate(actors):
        if actor.last_modified is not None and actor.last_modified.tzinfo is None:
            raise ProtocolError(
                f"data.actors.{index}.last_modified: a date-time needs a UTC offset", operation=operation
            )
