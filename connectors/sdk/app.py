"""The HTTP side of a connector: a plain WSGI application around a :class:`Connector`."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .. import protocol as p
from .base import Connector, ConnectorFailure, method_name

log = logging.getLogger("connectors.sdk")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 500: "Internal Server Error"}  # fmt: skip


@dataclass
class Context:
    """What an operation knows about the call besides its request."""

    language: str = "en"
    notices: list[tuple[p.State, dict[str, str], str]] = field(default_factory=list)

    def notice(self, state: p.State, user: str | dict[str, str], technical: str = "") -> None:
        """Answer ok_with_info or warning instead of plain ok, with an explanation for people."""
        if state not in (p.State.OK_WITH_INFO, p.State.WARNING):
            raise ValueError("a notice is ok_with_info or warning; raise ConnectorFailure for errors")
        self.notices.append((state, {"en": user} if isinstance(user, str) else dict(user), technical))


class _Refused(Exception):
    """A request refused before it reached the connector: bad path, size, signature or body."""

    def __init__(self, status: int, code: p.ErrorCode, user: str, technical: str = "") -> None:
        super().__init__(technical or user)
        self.status, self.code, self.user, self.technical = status, code, user, technical


@dataclass(frozen=True)
class EncodedData:
    """An operation's data already encoded as JSON by the connector, e.g. straight from its own store.

    The SDK validates it against the operation's data model before sending it, as it does any answer.
    """

    json: str


@dataclass(frozen=True)
class _WithData:
    """An ok envelope whose data is already JSON: it is spliced in rather than parsed and dumped again."""

    head: p.Envelope
    data_json: str

    def encode(self) -> bytes:
        head = self.head.model_dump_json(exclude_none=True)
        return (head[:-1] + ',"data":' + self.data_json + "}").encode()


class NonceCache:
    """Nonces seen within the replay window: a signed request is accepted once."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, nonce: str, now: float) -> bool:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {n: t for n, t in self._seen.items() if t > now - 2 * self.window}
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True


class ConnectorApp:
    """WSGI application serving ``connector`` under /v1/, requiring requests signed with ``secret``."""

    def __init__(self, connector: Connector, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a connector needs a shared secret")
        self.connector = connector
        self._secret = secret
        self._clock = clock
        self._nonces = NonceCache(p.SIGNATURE_TOLERANCE_SECONDS)
        self._schema = json.dumps(p.openapi_document(connector.name, connector.version)).encode()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        try:
            if method == "GET" and path in (f"{p.PREFIX}/schema", f"{p.PREFIX}/openapi.json"):
                return self._respond(start_response, 200, self._schema)
            if method == "GET" and path in (f"{p.PREFIX}/", f"{p.PREFIX}/health"):
                info = {"name": self.connector.name, "version": self.connector.version, "protocol": p.PROTOCOL_VERSION}
                return self._respond(start_response, 200, json.dumps(info).encode())
            op = p.OPERATIONS_BY_PATH.get(path)
            if op is None:
                raise _Refused(404, p.ErrorCode.NOT_FOUND, "No such operation.", f"{path!r} is not a protocol v1 path")
            if method != "POST":
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
        return self._respond(start_response, status, envelope.model_dump_json(exclude_none=True).encode())

    def _respond(self, start_response: StartResponse, status: int, body: bytes) -> list[bytes]:
        start_response(
            f"{status} {REASONS.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")],
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
        expected = p.signature(self._secret, method, path, timestamp, nonce, body)
        if not hmac.compare_digest(expected, given):
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

    def _run(self, op: p.Operation, request: p.Request, environ: dict[str, Any]) -> p.Envelope | _WithData:
        language = (environ.get("HTTP_ACCEPT_LANGUAGE") or "en").split(",")[0].split(";")[0].strip()[:2] or "en"
        context = Context(language=language)
        handler = getattr(self.connector, method_name(op.name))
        try:
            data = handler(request, context)
            if isinstance(data, EncodedData):
                data_json = data.json
            elif isinstance(data, op.response):
                data_json = data.model_dump_json()
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
