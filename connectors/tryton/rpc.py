"""A small JSON-RPC client for a Tryton server: one logged-in session per server, database and user.

Tryton answers model calls at ``/<database>/rpc/``. A session is opened once with ``common.db.login`` and
reused for every call (``Authorization: Session …``); Basic auth would re-check the password on every
call. A 401 means the session expired: it is opened again once. Tryton's own values travel as tagged
objects (``{"__class__": "datetime", …}``), converted here to and from Python's.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx


class TrytonError(Exception):
    """Anything that went wrong talking to Tryton; ``transient`` ones may work when tried again."""

    transient = False


class Unreachable(TrytonError):
    transient = True


class LoginRefused(TrytonError):
    """Wrong user name or password."""


class UnknownDatabase(TrytonError):
    pass


class UserError(TrytonError):
    """A rule of the ERP refused the change; the message is written for people."""


class Concurrency(TrytonError):
    """The record changed since it was read."""

    transient = True


class Fault(TrytonError):
    """Any other error the server answered."""


def encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(value: dict[str, Any]) -> Any:
    """json object_hook: Tryton's tagged values to Python (datetimes are UTC, made aware)."""
    kind = value.get("__class__")
    if kind == "datetime":
        return datetime(
            value["year"],
            value["month"],
            value["day"],
            value.get("hour", 0),
            value.get("minute", 0),
            value.get("second", 0),
            value.get("microsecond", 0),
            tzinfo=UTC,
        )
    if kind == "date":
        return date(value["year"], value["month"], value["day"])
    if kind == "Decimal":
        return Decimal(value["decimal"])
    if kind == "timedelta":
        return timedelta(seconds=value["seconds"])
    if kind == "bytes":
        return base64.b64decode(value["base64"])
    return value


class Session:
    """A logged-in session with one Tryton database; safe to share between threads."""

    def __init__(
        self, url: str, database: str, user: str, password: str, language: str = "en", timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.user = user
        self.password = password
        self.language = language
        # Tryton may label a plain body as gzip on larger answers; httpx's default Accept-Encoding copes.
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), follow_redirects=False)
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.authorization: str | None = None

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, method: str, params: list[Any], headers: dict[str, str] | None = None) -> httpx.Response:
        body = {"id": next(self.ids), "method": method, "params": encode(params)}
        try:
            return self.http.post(f"{self.url}{path}", json=body, headers=headers or {})
        except httpx.TimeoutException as error:
            raise Unreachable(f"Tryton at {self.url} did not answer in time ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            raise Unreachable(f"cannot reach Tryton at {self.url}: {error}") from error

    def login(self) -> None:
        answer = self._post(
            f"/{self.database}/rpc/", "common.db.login", [self.user, {"password": self.password}, self.language]
        )
        if answer.status_code == 401 or answer.status_code == 403:
            raise LoginRefused(f"Tryton refused the login of {self.user!r} (HTTP {answer.status_code})")
        if answer.status_code == 404:
            raise UnknownDatabase(f"Tryton has no database {self.database!r}")
        result = self._result(answer, "common.db.login")
        if not isinstance(result, list) or len(result) < 2:
            raise LoginRefused(f"Tryton refused the login of {self.user!r}: {result!r}")
        token = base64.b64encode(f"{self.user}:{result[0]}:{result[1]}".encode()).decode()
        self.authorization = f"Session {token}"

    def call(self, method: str, *params: Any) -> Any:
        """Call ``method``; the session is opened on first use and once more if it has expired."""
        for attempt in (1, 2):
            with self.lock:
                if self.authorization is None:
                    self.login()
                authorization = self.authorization
            assert authorization is not None
            answer = self._post(f"/{self.database}/rpc/", method, list(params), {"Authorization": authorization})
            if answer.status_code == 401 and attempt == 1:
                with self.lock:
                    if self.authorization == authorization:
                        self.authorization = None
                continue
            return self._result(answer, method)
        raise LoginRefused(f"Tryton refused the session of {self.user!r}")

    @staticmethod
    def _result(answer: httpx.Response, method: str) -> Any:
        if answer.status_code == 401:
            raise LoginRefused("Tryton refused the session")
        if answer.status_code == 404:
            raise UnknownDatabase("Tryton has no such database")
        if answer.status_code >= 400:
            raise Fault(f"{method}: HTTP {answer.status_code} {answer.text[:300]}")
        try:
            body = json.loads(answer.content, object_hook=decode)
        except ValueError as bad:
            raise Fault(f"{method}: the answer is not JSON: {answer.text[:200]!r}") from bad
        problem = body.get("error") if isinstance(body, dict) else None
        if problem:
            kind = problem[0] if isinstance(problem, list) and problem else str(problem)
            detail = problem[1] if isinstance(problem, list) and len(problem) > 1 else ""
            message = detail[0] if isinstance(detail, list) and detail else str(detail)
            if kind in (
                "UserError",
                "UserWarning",
                "AccessError",
                "RequiredValidationError",
                "DomainValidationError",
                "SizeValidationError",
                "SelectionValidationError",
                "ForeignKeyError",
                "SQLConstraintError",
            ):
                description = detail[1] if isinstance(detail, list) and len(detail) > 1 and detail[1] else ""
                raise UserError(f"{message} {description}".strip())
            if kind == "ConcurrencyException":
                raise Concurrency(message or "the record was changed by someone else")
            raise Fault(f"{method}: {kind}: {message}")
        return body.get("result") if isinstance(body, dict) else body


_sessions: dict[tuple[str, str, str, str, str], Session] = {}
_sessions_lock = threading.Lock()


def session_for(url: str, database: str, user: str, password: str, language: str = "en") -> Session:
    """The shared session for these credentials (a changed password gets a new session)."""
    identity = (url.rstrip("/"), database, user, hashlib.sha256(password.encode()).hexdigest(), language)
    with _sessions_lock:
        session = _sessions.get(identity)
        if session is None:
            session = _sessions[identity] = Session(url, database, user, password, language)
        return session
