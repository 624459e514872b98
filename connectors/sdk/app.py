"""The HTTP side of a connector: a plain WSGI application around a :class:`Connector`."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import threading
import time
import typing
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import protocol as p
from .base import Connector, ConnectorFailure, Context, EncodedData, method_name
from .notify import Notifier

log = logging.getLogger("connectors.sdk")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


class _Refused(Exception):
    """A request refused before it reached the connector: bad path, size, signature or body."""

    def __init__(self, status: int, code: p.ErrorCode, user: str, technical: str = "") -> None:
        super().__init__(technical or user)
        self.status, self.code, self.user, self.technical = status, code, user, technical


@dataclass(frozen=True)
class _WithData:
    """An ok envelope whose data is already JSON: it is spliced in rather than parsed and dumped again."""

    head: p.Envelope
    data_json: str

    def encode(self) -> bytes:
        head = self.head.model_dump_json(exclude_none=True)
        return (head[:-1] + ',"data":' + self.data_json + "}").encode()


def _marked_capability(extra: Any) -> str | None:
    """For a field protocol v1.1 added to an answer: the capability that brings it ("" when it names none)."""
    if not isinstance(extra, dict) or extra.get("since") != "1.1":
        return None
    return str(extra.get("capability", ""))


@functools.cache
def _v1_1_fields(model: type[BaseModel]) -> tuple[tuple[str, str | None, type[BaseModel] | None], ...]:
    """The fields of ``model`` worth looking at when its answer is written: those v1.1 added (with the capability
    that brings them), and those holding models (or lists of them) that have such fields, with that model."""
    found: list[tuple[str, str | None, type[BaseModel] | None]] = []
    for name, info in model.model_fields.items():
        capability = _marked_capability(info.json_schema_extra)
        nested = next(
            (
                kind
                for kind in _model_types(info.annotation)
                if kind is not model and _v1_1_fields(kind)  # a model of its own kind would recurse for ever
            ),
            None,
        )
        if capability is not None or nested is not None:
            found.append((name, capability, nested))
    return tuple(found)


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [kind for arg in typing.get_args(annotation) for kind in _model_types(arg)]


def unnamed_v1_1_fields(data: BaseModel, capabilities: frozenset[str]) -> dict[Any, Any] | None:
    """What to leave out of an answer: every field protocol v1.1 added that is empty (None, [] or {}) and belongs
    to a capability the connector does not name, so that a connector without capabilities answers exactly the
    version 1 shapes (docs/connector-protocol.md, "Versions and capabilities")."""
    left_out: dict[Any, Any] = {}
    for name, capability, nested in _v1_1_fields(type(data)):
        value = getattr(data, name)
        if capability is not None and capability not in capabilities and value in (None, [], {}):
            left_out[name] = True
        elif nested is not None and value:
            if isinstance(value, BaseModel):
                inner = unnamed_v1_1_fields(value, capabilities)
                if inner:
                    left_out[name] = inner
            elif isinstance(value, list | tuple):
                items = {
                    index: inner
                    for index, item in enumerate(value)
                    if isinstance(item, BaseModel) and (inner := unnamed_v1_1_fields(item, capabilities))
                }
                if items:
                    left_out[name] = items
    return left_out or None


class NonceCache:
    """Nonces of accepted requests, each kept ``retention`` seconds: a signed request is accepted once.

    The retention must cover the whole clock tolerance on both sides (protocol.NONCE_RETENTION_SECONDS, twice the
    tolerance): a request stamped at the future edge stays fresh that long after it arrives."""

    def __init__(self, retention: float) -> None:
        self.retention = retention
        self._expiry: OrderedDict[str, float] = OrderedDict()  # in order of acceptance, so of expiry
        self._lock = threading.Lock()

    def first_use(self, nonce: str, now: float) -> bool:
        with self._lock:
            while self._expiry and next(iter(self._expiry.values())) <= now:
                self._expiry.popitem(last=False)
            if nonce in self._expiry:
                return False
            self._expiry[nonce] = now + self.retention
            return True


class ConnectorApp:
    """WSGI application serving ``connector`` under /v1/, requiring requests signed with its shared secret.

    ``secret`` is the secret without a key id; ``secrets`` maps key ids to secrets (protocol v1.1, capability
    key_ids), so that a second secret can be added while the CRM is moved over to it. A request naming a key id
    (``X-Erpsync-Key-Id``) is checked against that key's secret only; one naming none, against every secret held."""

    def __init__(
        self,
        connector: Connector,
        secret: str | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        named = dict(secrets or {})
        if not secret and not named:
            raise ValueError("a connector needs a shared secret")
        for key_id, value in named.items():
            if not re.match(p.KEY_ID_PATTERN, key_id):
                raise ValueError(f"{key_id!r} is not a key id: use 1 to 64 letters, digits, '.', '_' or '-'")
            if not value:
                raise ValueError(f"key {key_id!r} has an empty secret")
        self.connector = connector
        self._secret = secret or None
        self._secrets = named
        self._clock = clock
        self._nonces = NonceCache(p.NONCE_RETENTION_SECONDS)
        # v1.1, change_notifications: signed with the secret the CRM signs with (the first one named, else the one
        # without a key id), naming its key id.
        self.notifier: Notifier | None = None
        if p.Capability.CHANGE_NOTIFICATIONS.value in connector.capabilities:
            key_id, signing = ("", secret) if secret else next(iter(named.items()))
            self.notifier = Notifier(signing, key_id)
            connector.notifications_started(self.notifier)
        self._schema = json.dumps(p.openapi_document(connector.name, connector.version)).encode()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        try:
            if method == "GET" and path in (f"{p.PREFIX}/schema", f"{p.PREFIX}/openapi.json"):
                return self._respond(start_response, 200, self._schema)
            if method == "GET" and path in (f"{p.PREFIX}/", f"{p.PREFIX}/health"):
                info = p.Health(
                    name=self.connector.name,
                    version=self.connector.version,
                    protocol=p.PROTOCOL_VERSION,
                    capabilities=sorted(self.connector.capabilities),
                )
                return self._respond(start_response, 200, info.model_dump_json().encode())
            op = p.OPERATIONS_BY_PATH.get(path)
            if op is None:
                raise _Refused(404, p.ErrorCode.NOT_FOUND, "No such operation.", f"{path!r} is not a protocol v1 path")
            if method != "POST":
                # invalid_request, a v1 code, so that clients of either version read the answer (v1.1 says so).
                raise _Refused(405, p.ErrorCode.INVALID_REQUEST, "Operations are called with POST.", f"{method} {path}")
            body = self._read_body(environ)
            self._verify(environ, method, path, body)
            request = self._parse(op, body)
            outcome = self._run(op, request, environ)
            if isinstance(outcome, _WithData):
                return self._respond(start_response, 200, outcome.encode())
            envelope = outcome
            status = 500 if envelope.error_code == p.ErrorCode.INTERNAL_ERROR else 200
        except _Refused as refused:
            envelope = p.Envelope(
                ok=False,
                state=p.State.ERROR,
                error_code=refused.code,
                user_explanation={"en": refused.user},
                technical_explanation=refused.technical,
            )
            status = refused.status
        extra = [("Allow", "POST")] if status == 405 else []
        return self._respond(start_response, status, envelope.model_dump_json(exclude_none=True).encode(), extra)

    def _respond(
        self, start_response: StartResponse, status: int, body: bytes, extra: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        start_response(
            f"{status} {REASONS.get(status, 'Error')}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                *(extra or []),
            ],
        )
        return [body]

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        length_header = environ.get("CONTENT_LENGTH") or ""
        if not length_header.isdigit():
            raise _Refused(400, p.ErrorCode.INVALID_REQUEST, "The request needs a Content-Length.", "no Content-Length")
        length = int(length_header)
        if length > p.MAX_REQUEST_BYTES:
            raise _Refused(
                413,
                p.ErrorCode.PAYLOAD_TOO_LARGE,
                "The request is too large.",
                f"{length} bytes; the limit is {p.MAX_REQUEST_BYTES}",
            )
        body: bytes = environ["wsgi.input"].read(length)
        if len(body) != length:
            raise _Refused(
                400, p.ErrorCode.INVALID_REQUEST, "The request body was cut short.", f"{len(body)} of {length} bytes"
            )
        return body

    def _verify(self, environ: dict[str, Any], method: str, path: str, body: bytes) -> None:
        def header(name: str) -> str:
            return str(environ.get("HTTP_" + name.upper().replace("-", "_"), ""))

        timestamp, nonce, given = header(p.HEADER_TIMESTAMP), header(p.HEADER_NONCE), header(p.HEADER_SIGNATURE)
        if not (timestamp and nonce and given):
            raise _Refused(401, p.ErrorCode.UNAUTHORIZED, "The request is not signed.", "signature headers missing")
        if not timestamp.isdigit() or abs(self._clock() - int(timestamp)) > p.SIGNATURE_TOLERANCE_SECONDS:
            raise _Refused(
                401,
                p.ErrorCode.UNAUTHORIZED,
                "The request is too old or its clock is wrong.",
                f"timestamp {timestamp!r} is more than {p.SIGNATURE_TOLERANCE_SECONDS} s from the connector's clock",
            )
        key_id = header(p.HEADER_KEY_ID)
        if key_id:
            if key_id not in self._secrets:
                raise _Refused(
                    401,
                    p.ErrorCode.UNAUTHORIZED,
                    "The request was signed with a key this connector does not hold: check the shared secret.",
                    f"unknown key id {key_id[:64]!r}",
                )
            candidates = [self._secrets[key_id]]
        else:
            candidates = [s for s in (self._secret, *self._secrets.values()) if s]
        # Every candidate is compared, in constant time each, so the time taken does not tell which one matched.
        matched = False
        for secret in candidates:
            expected = p.signature(secret, method, path, timestamp, nonce, body)
            matched = hmac.compare_digest(expected, given) or matched
        if not matched:
            raise _Refused(
                401,
                p.ErrorCode.UNAUTHORIZED,
                "The request's signature is wrong: check the shared secret.",
                "bad signature",
            )
        if not self._nonces.first_use(nonce, self._clock()):
            raise _Refused(401, p.ErrorCode.UNAUTHORIZED, "The request was already received.", "replayed nonce")

    def _parse(self, op: p.Operation, body: bytes) -> p.Request:
        try:
            return op.request.model_validate_json(body)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise _Refused(
                400, p.ErrorCode.INVALID_REQUEST, "The request is not valid.", f"{where}: {first['msg']}"
            ) from e

    def _note_notify_url(self, request: p.Request) -> None:
        """After a SaveConnection or DeleteConnection the connector accepted: where the connection's change
        notifications go now (v1.1). A SaveConnection without a notify URL stops them."""
        if self.notifier is None:
            return
        if isinstance(request, p.SaveConnectionRequest):
            self.notifier.register(request.connection_id, request.notify_url)
        elif isinstance(request, p.DeleteConnectionRequest):
            self.notifier.forget(request.connection_id)

    def _run(self, op: p.Operation, request: p.Request, environ: dict[str, Any]) -> p.Envelope | _WithData:
        language = (environ.get("HTTP_ACCEPT_LANGUAGE") or "en").split(",")[0].split(";")[0].strip()[:2] or "en"
        context = Context(language=language)
        handler = getattr(self.connector, method_name(op.name))
        try:
            data = handler(request, context)
            self._note_notify_url(request)
            if isinstance(data, EncodedData):
                data_json = data.json
            elif isinstance(data, op.response):
                data_json = data.model_dump_json(exclude=unnamed_v1_1_fields(data, self.connector.capabilities))
            else:
                raise TypeError(f"{op.name} returned {type(data).__name__}, not {op.response.__name__}")
            # Validate what is about to be sent, so that a connector's bug is reported here and not in
            # the CRM. One pass over the JSON in pydantic's core, whichever way the data was built.
            op.response.model_validate_json(data_json)
        except ConnectorFailure as failure:
            return p.Envelope(
                ok=False,
                state=p.State.ERROR,
                error_code=failure.code,
                user_explanation=failure.user,
                technical_explanation=failure.technical,
                retry_after=failure.retry_after,
            )
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("%s failed (reference %s)", op.name, reference)
            return p.Envelope(
                ok=False,
                state=p.State.ERROR,
                error_code=p.ErrorCode.INTERNAL_ERROR,
                user_explanation={
                    "en": f"The connector failed unexpectedly. Its log has the details (reference {reference})."
                },
                technical_explanation=f"unhandled error in {op.name}, reference {reference}",
            )
        state, user, technical = max(
            context.notices, key=lambda n: n[0] == p.State.WARNING, default=(p.State.OK, {}, "")
        )
        head = p.Envelope(ok=True, state=state, user_explanation=user, technical_explanation=technical)
        return _WithData(head, data_json)
