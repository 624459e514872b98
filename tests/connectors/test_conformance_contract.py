"""The kit's checks of the contract's core (protocol v1.1): each one passes against connectors that keep the
rule, and fails, by name, against a small SDK connector that gets that one point wrong."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors import protocol as p
from connectors.conformance import Report, run_conformance
from connectors.sdk import ConnectorApp
from connectors.sdk.app import NonceCache

from ..conftest import DEMO_CONFIG, start_demo
from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"
CONFIG: dict[str, p.Value] = {"owner": "Tests"}

WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

METHOD = "an operation called with GET is answered with 405 and an error envelope"
READ_ONLY = "Customer: SaveActors refuses a change of the read-only NUMBER with read_only"
MANDATORY = "Customer: CreateActor without the mandatory NAME is validation_failed"
TEXT_LIMIT = "a search text of 201 characters is refused with 400 invalid_request"
KEYS_LIMIT = "GetActors with 1001 keys is refused with 400 invalid_request"
VALUES_LIMIT = "a restriction with 1001 values is refused with 400 invalid_request"
UNCHANGED = "v1.1: Customer: SaveActors with the values it has keeps last_modified"
INSTANTS = "v1.1: Customer: SaveActors compares last_modified as instants (Z, +02:00)"
UNKNOWN_TYPE = "v1.1: an actor type the connector does not offer is unknown_actor_type"
UNKNOWN_FIELD = "v1.1: GetActors naming a field the actor type does not have is unknown_field"
NONCE = "v1.1: a request stamped 290 s ahead is accepted once, and its replay refused"
KEY_ID = "key_ids: a request naming a key id the connector does not hold is refused with 401"


class KeyIds(AddressBook):
    capabilities = frozenset({p.Capability.KEY_IDS.value})


def kit(app: WSGI, *, strict: bool = False, key_id: str = "") -> Report:
    with serving(app) as url:
        return run_conformance(url, SECRET, CONFIG, strict=strict, key_id=key_id)


def failed(report: Report) -> list[str]:
    return [check.name for check in report.failed]


def problems(report: Report) -> str:
    return "\n".join(line for line in report.lines() if not line.startswith("PASS"))


def test_a_connector_that_keeps_every_rule_passes_every_new_check_plain_and_strict() -> None:
    plain = kit(ConnectorApp(AddressBook(), SECRET))
    assert plain.ok, problems(plain)
    strict = kit(ConnectorApp(KeyIds(), secrets={"k1": SECRET}), strict=True, key_id="k1")
    assert strict.ok, problems(strict)
    names = {check.name for check in strict.checks}
    for name in (METHOD, READ_ONLY, MANDATORY, TEXT_LIMIT, KEYS_LIMIT, VALUES_LIMIT, UNCHANGED, INSTANTS):
        assert name in names
    for name in (UNKNOWN_TYPE, UNKNOWN_FIELD, NONCE, KEY_ID, "key_ids: a request naming the key id k1 is accepted"):
        assert name in names
    # The v1.1 checks are for --strict only: a v1 connector is not held to them.
    assert not {UNCHANGED, INSTANTS, UNKNOWN_TYPE, UNKNOWN_FIELD, NONCE} & {c.name for c in plain.checks}


@pytest.mark.parametrize(
    ("broken", "strict", "check"),
    [
        (AddressBook(accept_read_only=True), False, READ_ONLY),
        (AddressBook(skip_mandatory=True), False, MANDATORY),
        (AddressBook(touch_unchanged=True), True, UNCHANGED),
        (AddressBook(compare_spelling=True), True, INSTANTS),
        (AddressBook(any_actor_type=True), True, UNKNOWN_TYPE),
        (AddressBook(ignore_unknown_fields=True), True, UNKNOWN_FIELD),
    ],
    ids=["read-only", "mandatory", "unchanged", "instants", "actor type", "field"],
)
def test_the_kit_names_the_point_a_connector_gets_wrong(broken: AddressBook, strict: bool, check: str) -> None:
    report = kit(ConnectorApp(broken, SECRET), strict=strict)
    assert check in failed(report), problems(report)
    assert not report.ok


def answering_get_with(status: str, envelope: dict[str, Any]) -> WSGI:
    """The tiny connector, whose operations answer GET with ``status`` and ``envelope``."""
    app = ConnectorApp(AddressBook(), SECRET)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] in p.OPERATIONS_BY_PATH:
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(envelope).encode()]
        return app(environ, start_response)

    return wrapped


def test_the_kit_requires_405_for_the_wrong_method_and_in_strict_runs_its_error_code() -> None:
    error = {"ok": False, "state": "error", "user_explanation": {"en": "No."}}
    as_not_found = kit(answering_get_with("404 Not Found", {**error, "error_code": "not_found"}))
    assert METHOD in failed(as_not_found)
    other_code = answering_get_with("405 Method Not Allowed", {**error, "error_code": "unsupported_operation"})
    assert METHOD not in failed(kit(other_code))
    assert METHOD in failed(kit(other_code, strict=True))


class Lenient(ConnectorApp):
    """An SDK app that lets through requests beyond the schema's limits."""

    def _parse(self, op: p.Operation, body: bytes) -> p.Request:
        try:
            return op.request.model_validate_json(body)
        except ValidationError:
            return op.request.model_construct(**json.loads(body))


def test_the_kit_catches_a_connector_that_takes_requests_beyond_the_limits() -> None:
    report = kit(Lenient(AddressBook(), SECRET))
    assert {TEXT_LIMIT, KEYS_LIMIT, VALUES_LIMIT} <= set(failed(report)), problems(report)


class Jumping:
    """A connector whose clock moves on by more than the tolerance when a nonce comes a second time: as if the
    kit had waited that long before the replay, without the test waiting."""

    def __init__(self, retention: float) -> None:
        self.jump = threading.local()
        self.seen: set[str] = set()
        self.app = ConnectorApp(AddressBook(), SECRET, clock=self.clock)
        self.app._nonces = NonceCache(retention)

    def clock(self) -> float:
        import time

        return time.time() + getattr(self.jump, "seconds", 0)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        nonce = environ.get("HTTP_X_ERPSYNC_NONCE", "")
        self.jump.seconds = p.SIGNATURE_TOLERANCE_SECONDS + 1 if nonce and nonce in self.seen else 0
        self.seen.add(nonce)
        return self.app(environ, start_response)


def test_the_kit_catches_a_connector_that_forgets_nonces_while_their_timestamps_are_still_fresh() -> None:
    # Kept only as long as the tolerance: the replay of a request stamped ahead is taken 301 s later.
    short = kit(Jumping(retention=p.SIGNATURE_TOLERANCE_SECONDS), strict=True)
    assert NONCE in failed(short), problems(short)
    # Kept twice the tolerance, as the SDK does: refused.
    assert NONCE not in failed(kit(Jumping(retention=p.NONCE_RETENTION_SECONDS), strict=True))


def test_the_kit_catches_a_connector_that_names_key_ids_but_ignores_them() -> None:
    app = ConnectorApp(KeyIds(), SECRET)

    def ignoring(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.pop("HTTP_X_ERPSYNC_KEY_ID", None)
        return app(environ, start_response)

    report = kit(ignoring, strict=True)
    assert failed(report) == [KEY_ID], problems(report)


def test_a_v1_connector_still_passes_the_plain_kit() -> None:
    app = ConnectorApp(AddressBook(), SECRET)

    def v1(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/v1/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"name": "Old", "version": "1", "protocol": "1"}']
        return app(environ, start_response)

    report = kit(v1)
    assert report.ok, problems(report)


def test_the_demo_connector_passes_the_strict_kit(tmp_path: Path) -> None:
    # A Demo ERP of its own: nothing another test does to a shared one (its data, its load) takes part in the run.
    demo = start_demo(tmp_path, seed_actors=50)
    try:
        report = run_conformance(demo.url, demo.secret, DEMO_CONFIG, strict=True)
    finally:
        demo.process.stop()
    assert report.ok, problems(report) + "\nThe Demo ERP's log ends:\n" + demo.process.output()[-3000:]
    names = {check.name for check in report.checks}
    assert {METHOD, TEXT_LIMIT, NONCE, KEY_ID} <= names
    assert "v1.1: Customer: SaveActors compares last_modified as instants (Z, +02:00)" in names
    assert "Customer: CreateActor without the mandatory NAME is validation_failed" in names
