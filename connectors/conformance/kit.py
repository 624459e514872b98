"""Checks a running connector against protocol v1, over real HTTP, using only the published contract.

With ``strict``, the connector must speak protocol v1.1: its health answer must say so, and each capability it
names is checked (the v1.1 sections at the end of ``Kit``). For change_notifications the kit runs a small receiver
the connector must reach (``notify_host``)."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx

from connectors import protocol as p
from connectors.client import ConnectionClient, ConnectorClient, ConnectorError, ConnectorRejected

from .receiver import Received, Receiver


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failed

    def lines(self) -> Iterator[str]:
        for check in self.checks:
            yield f"{'PASS' if check.passed else 'FAIL'}  {check.name}" + (f": {check.detail}" if check.detail else "")
        yield f"{len(self.checks) - len(self.failed)} passed, {len(self.failed)} failed"


# v1.1, change_notifications: seconds the kit waits for a connector's notification of a change it made.
NOTIFY_WAIT = 10.0


class CheckFailed(Exception):
    pass


def expect(condition: bool, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


class Kit:
    def __init__(
        self,
        base_url: str,
        secret: str,
        config: dict[str, p.Value],
        writable: bool,
        strict: bool = False,
        *,
        key_id: str = "",
        replay_wait: float = 0,
        notify_host: str = "127.0.0.1",
        notify_wait: float = NOTIFY_WAIT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # v1.1, change_notifications: the address the connector reaches the kit's notify receiver at, and how long
        # the kit waits for a notification.
        self.notify_host = notify_host
        self.notify_wait = notify_wait
        self.secret = secret
        self.config = config
        self.writable = writable
        self.strict = strict
        self.key_id = key_id  # the key id of ``secret`` on the connector, if it has one (v1.1, key_ids)
        self.replay_wait = replay_wait  # seconds before the replay of an edge-stamped request (nonce retention)
        self.health = p.Health()
        self.report = Report()
        self.client = ConnectorClient(self.base_url, secret, key_id=key_id)
        self.raw = httpx.Client(base_url=self.base_url, timeout=30, follow_redirects=False, trust_env=False)
        self.connection_id = str(uuid.uuid4())
        self.conn: ConnectionClient = self.client.connection(self.connection_id, lambda: self.config)
        self.marker = f"Cf{secrets.token_hex(3)}"  # short: it must fit fields with a small max_length
        self.fields: dict[p.ActorType, dict[str, p.FieldInfo]] = {}
        self.created: dict[p.ActorType, p.Actor] = {}

    @contextmanager
    def check(self, name: str) -> Iterator[None]:
        try:
            yield
        except CheckFailed as e:
            self.report.checks.append(Check(name, False, str(e)))
        except ConnectorError as e:
            self.report.checks.append(Check(name, False, f"{type(e).__name__}: {e}"))
        except Exception as e:  # a bug in the kit or a wildly wrong answer: report, go on
            self.report.checks.append(Check(name, False, f"{type(e).__name__}: {e}"))
        else:
            self.report.checks.append(Check(name, True))

    # Raw HTTP for what the client would never send

    def signed_headers(
        self,
        path: str,
        body: bytes,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        key_id: str | None = None,
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json",
            p.HEADER_TIMESTAMP: stamp,
            p.HEADER_NONCE: nonce,
            p.HEADER_SIGNATURE: p.signature(secret or self.secret, "POST", path, stamp, nonce, body),
        }
        named = self.key_id if key_id is None else key_id
        if named:
            headers[p.HEADER_KEY_ID] = named
        return headers

    def refused(self, response: httpx.Response, status: int, code: p.ErrorCode) -> None:
        expect(response.status_code == status, f"expected HTTP {status}, got {response.status_code}")
        try:
            envelope = p.Envelope.model_validate(response.json())
        except (ValueError, json.JSONDecodeError) as e:
            raise CheckFailed(f"HTTP {response.status_code} without an error envelope: {response.text[:100]!r}") from e
        expect(
            not envelope.ok and envelope.error_code == code,
            f"expected error_code {code.value}, got {envelope.error_code}",
        )
        expect(bool(envelope.user_explanation), "an error answer needs a user explanation")

    def rejected(self, call: Callable[[], Any], code: p.ErrorCode) -> ConnectorRejected:
        try:
            call()
        except ConnectorRejected as e:
            expect(e.error_code == code, f"expected {code.value}, got {e.error_code.value}")
            expect(bool(e.envelope.user_explanation), "an error answer needs a user explanation")
            return e
        raise CheckFailed(f"expected an error answer {code.value}, got ok")

    # The checks, in the order a CRM meets them

    def run(self) -> Report:
        self.transport_checks()
        if self.strict:
            self.version_checks()
        self.configuration_checks()
        with self.check("SaveConnection and TestConnection accept the configuration"):
            self.conn.save()
            self.conn.test()
        with self.check("an unknown connection id is answered with unknown_connection"):
            other = ConnectorClient(self.base_url, self.secret, key_id=self.key_id).connection(
                str(uuid.uuid4()), lambda: {}
            )
            self.rejected(
                lambda: other.client.call("TestConnection", p.TestConnectionRequest(connection_id=other.connection_id)),
                p.ErrorCode.UNKNOWN_CONNECTION,
            )
        actor_types: list[p.ActorType] = []
        with self.check("GetSupportedActorTypes names at least one actor type"):
            actor_types = self.conn.supported_actor_types()
            expect(bool(actor_types), "no actor types")
        for actor_type in actor_types:
            self.metadata_checks(actor_type)
        ordered = sorted(actor_types, key=lambda t: t in (p.ActorType.PERSON, p.ActorType.PROJECT))
        for actor_type in ordered:
            if actor_type in self.fields:
                self.actor_checks(actor_type)
        self.contract_checks(actor_types)
        if self.strict:
            self.capability_checks(actor_types)
        with self.check("DeleteConnection forgets the connection"):
            self.conn.delete()
            self.rejected(
                lambda: self.client.call("TestConnection", p.TestConnectionRequest(connection_id=self.connection_id)),
                p.ErrorCode.UNKNOWN_CONNECTION,
            )
        self.client.close()
        self.raw.close()
        return self.report

    def transport_checks(self) -> None:
        path = p.OPERATIONS["GetConfigData"].path
        body = b"{}"
        with self.check("the schema is served at /v1/schema with every operation"):
            schema = self.raw.get(f"{p.PREFIX}/schema").json()
            missing = [op.path for op in p.OPERATIONS.values() if op.path not in schema.get("paths", {})]
            expect(str(schema.get("openapi", "")).startswith("3."), "not an OpenAPI document")
            expect(not missing, f"operations missing from the schema: {missing}")
        with self.check("an unsigned request is refused with 401 unauthorized"):
            self.refused(
                self.raw.post(path, content=body, headers={"Content-Type": "application/json"}),
                401,
                p.ErrorCode.UNAUTHORIZED,
            )
        with self.check("a request signed with the wrong secret is refused"):
            headers = self.signed_headers(path, body, secret=self.secret + "-wrong")
            self.refused(self.raw.post(path, content=body, headers=headers), 401, p.ErrorCode.UNAUTHORIZED)
        with self.check("a request with a stale timestamp is refused"):
            headers = self.signed_headers(path, body, timestamp=int(time.time()) - 2 * p.SIGNATURE_TOLERANCE_SECONDS)
            self.refused(self.raw.post(path, content=body, headers=headers), 401, p.ErrorCode.UNAUTHORIZED)
        with self.check("a replayed request is refused"):
            headers = self.signed_headers(path, body)
            first = self.raw.post(path, content=body, headers=headers)
            expect(first.status_code == 200, f"the first request failed with HTTP {first.status_code}")
            self.refused(self.raw.post(path, content=body, headers=headers), 401, p.ErrorCode.UNAUTHORIZED)
        with self.check("a body that tampers with a signed request is refused"):
            headers = self.signed_headers(path, body)
            self.refused(self.raw.post(path, content=b'{"x":1}', headers=headers), 401, p.ErrorCode.UNAUTHORIZED)
        with self.check("malformed JSON is answered with 400 invalid_request"):
            bad = b'{"config": '
            test_path = p.OPERATIONS["TestConfigData"].path
            self.refused(
                self.raw.post(test_path, content=bad, headers=self.signed_headers(test_path, bad)),
                400,
                p.ErrorCode.INVALID_REQUEST,
            )
        with self.check("a request of the wrong shape is answered with 400 invalid_request"):
            bad = b'{"config": 5}'
            test_path = p.OPERATIONS["TestConfigData"].path
            self.refused(
                self.raw.post(test_path, content=bad, headers=self.signed_headers(test_path, bad)),
                400,
                p.ErrorCode.INVALID_REQUEST,
            )
        with self.check("an oversized body is answered with 413 payload_too_large"):
            big = b'{"config": {"x": "' + b"a" * p.MAX_REQUEST_BYTES + b'"}}'
            test_path = p.OPERATIONS["TestConfigData"].path
            self.refused(
                self.raw.post(test_path, content=big, headers=self.signed_headers(test_path, big)),
                413,
                p.ErrorCode.PAYLOAD_TOO_LARGE,
            )
        with self.check("an unknown path is answered with 404 and an envelope"):
            self.refused(
                self.raw.post(
                    f"{p.PREFIX}/no-such-operation",
                    content=body,
                    headers=self.signed_headers(f"{p.PREFIX}/no-such-operation", body),
                ),
                404,
                p.ErrorCode.NOT_FOUND,
            )

    def configuration_checks(self) -> None:
        fields: list[p.FieldInfo] = []
        with self.check("GetConfigData describes the configuration fields"):
            fields = self.client.get_config_data().data.fields
            self.valid_field_list(fields)
        with self.check("TestConfigData accepts the given configuration"):
            self.client.test_config_data(self.config)
        mandatory = [f.key for f in fields if f.access == p.FieldAccess.MANDATORY]
        if mandatory:
            with self.check("TestConfigData refuses a configuration without its mandatory fields"):
                self.rejected(lambda: self.client.test_config_data({}), p.ErrorCode.INVALID_CONFIG)
        for config_field in fields:
            # A list that depends on other values (v1.1, config_list_values) is read with them: config_list_checks.
            if config_field.type == p.FieldType.LIST and not config_field.depends_on:
                with self.check(f"configuration list {config_field.list_name!r} can be read before saving"):
                    items = self.client.get_config_list(config_field.list_name or "")
                    expect(bool(items), "the list is empty")

    def valid_field_list(self, fields: list[p.FieldInfo]) -> None:
        keys = [f.key for f in fields]
        expect(len(keys) == len(set(keys)), f"duplicate field keys: {sorted({k for k in keys if keys.count(k) > 1})}")
        for f in fields:
            expect(f.type != p.FieldType.LIST or bool(f.list_name), f"{f.key}: a list field needs list_name")
            problem = p.check_value(f, f.default)
            expect(problem is None, f"default of {problem}")

    def metadata_checks(self, actor_type: p.ActorType) -> None:
        with self.check(f"{actor_type.value}: fields and searchable fields are described"):
            fields = self.conn.actor_type_fields(actor_type)
            self.valid_field_list(fields)
            by_key = {f.key: f for f in fields}
            searchable = self.conn.searchable_fields(actor_type)
            unknown = [k for k in searchable if k not in by_key]
            expect(not unknown, f"searchable fields that are not fields: {unknown}")
            unsearchable = [k for k in searchable if not p.OPERATORS[by_key[k].type]]
            expect(not unsearchable, f"fields of a type that cannot be searched: {unsearchable}")
            self.fields[actor_type] = by_key
            self.searchable = getattr(self, "searchable", {})
            self.searchable[actor_type] = searchable
        for list_name in sorted({f.list_name for f in self.fields.get(actor_type, {}).values() if f.list_name}):
            with self.check(f"{actor_type.value}: list {list_name!r} has items, and GetListItems picks some"):
                items = self.conn.get_list(list_name)
                keys = [item.key for item in items]
                expect(bool(keys) and len(keys) == len(set(keys)), "empty or with duplicate keys")
                picked = self.conn.get_list_items(list_name, keys[:2])
                expect([item.key for item in picked] == keys[:2], "GetListItems did not answer the asked keys")

    def text(self, f: p.FieldInfo, word: str) -> str:
        """A recognisable text value that fits the field."""
        return f"{self.marker} {word}"[: f.max_length or None]

    def sample_value(self, f: p.FieldInfo) -> p.Value:
        if f.type == p.FieldType.TEXT:
            return self.text(f, f.key.lower())
        if f.type == p.FieldType.INTEGER:
            return 7
        if f.type == p.FieldType.DOUBLE:
            return 1.5
        if f.type == p.FieldType.CHECKBOX:
            return True
        if f.type == p.FieldType.DATE:
            return date.today().isoformat()
        if f.type == p.FieldType.DATETIME:
            return datetime.now(UTC).replace(microsecond=0).isoformat()
        if f.type == p.FieldType.LIST:
            return self.conn.get_list(f.list_name or "")[0].key
        if f.type == p.FieldType.DECIMAL:
            return "7.5" if f.decimal_places is None or f.decimal_places > 0 else "7"
        return None

    def actor_checks(self, actor_type: p.ActorType) -> None:
        fields = self.fields[actor_type]
        name = f"{actor_type.value}:"
        actor: p.Actor | None = None
        if self.writable:
            with self.check(f"{name} CreateActor creates one and gives it a key"):
                values = {k: self.sample_value(f) for k, f in fields.items() if f.access == p.FieldAccess.MANDATORY}
                parent_type = (
                    p.ActorType.CUSTOMER
                    if p.ActorType.CUSTOMER in self.created and actor_type in (p.ActorType.PERSON, p.ActorType.PROJECT)
                    else None
                )
                request = p.Actor(
                    actor_type=actor_type,
                    values=values,
                    parent_actor_type=parent_type,
                    parent_key=self.created[parent_type].key if parent_type else None,
                )
                actor = self.conn.create_actor(request)
                expect(bool(actor.key), "no key in the answer")
                expect(actor.last_modified is not None, "no last_modified in the answer")
                for key, value in values.items():
                    expect(actor.values.get(key) == value, f"{key}: sent {value!r}, got back {actor.values.get(key)!r}")
                self.created[actor_type] = actor
            if actor is not None:
                self.created_actor_checks(actor_type, actor)
        self.search_checks(actor_type)
        if actor is not None:
            self.save_checks(actor_type, actor)

    def created_actor_checks(self, actor_type: p.ActorType, actor: p.Actor) -> None:
        name = f"{actor_type.value}:"
        assert actor.key
        with self.check(f"{name} GetActors answers known keys and lists missing ones"):
            missing = f"no-such-{secrets.token_hex(4)}"
            data = self.conn.get_actors(actor_type, [actor.key, missing])
            expect([a.key for a in data.actors] == [actor.key], f"answered {[a.key for a in data.actors]}")
            expect(data.missing_keys == [missing], f"missing_keys {data.missing_keys}")
        with self.check(f"{name} GetActors returns only the asked fields"):
            first = next(iter(self.fields[actor_type]))
            data = self.conn.get_actors(actor_type, [actor.key], [first])
            expect(set(data.actors[0].values) == {first}, f"asked for {first}, got {sorted(data.actors[0].values)}")
        text_fields = [
            k for k, f in self.fields[actor_type].items() if f.type == p.FieldType.TEXT and actor.values.get(k)
        ]
        marked = next((k for k in text_fields if self.marker in str(actor.values.get(k))), None)
        if marked:
            with self.check(f"{name} SearchActors finds it by text"):
                found = self.conn.search(actor_type, self.marker)
                expect(actor.key in [a.key for a in found.actors], "the new actor was not found")
        if actor.parent_key and actor.parent_actor_type:
            with self.check(f"{name} SearchActorByParent finds it under its parent"):
                found = self.conn.search_by_parent(actor_type, actor.parent_actor_type, actor.parent_key)
                expect(actor.key in [a.key for a in found.actors], "not found under its parent")

    def search_checks(self, actor_type: p.ActorType) -> None:
        fields = self.fields[actor_type]
        searchable = self.searchable.get(actor_type, [])
        sample: list[p.Actor] = []
        with self.check(f"{actor_type.value}: the change feed pages with a cursor, in order, without repeats"):
            pages = self.conn.changes(actor_type, page_size=7, field_keys=searchable)
            seen: list[p.Actor] = []
            for number, page in enumerate(pages):
                expect(len(page.actors) <= 7, f"page of {len(page.actors)} actors for page_size 7")
                seen.extend(page.actors)
                if number >= 4:
                    break
            keys = [(a.key, a.last_modified) for a in seen]
            expect(len(keys) == len(set(keys)), "the same change appeared twice while paging")
            stamps = [a.last_modified for a in seen if a.last_modified]
            expect(stamps == sorted(stamps), "changes are not in last_modified order")
            sample = seen
        for key in searchable:
            f = fields[key]
            operand_source = next((a.values.get(key) for a in sample if a.values.get(key) is not None), None)
            if operand_source is None:
                operand_source = self.sample_value(f)
            for operator in p.OPERATORS[f.type]:
                with self.check(f"{actor_type.value}: search {key} {operator}"):
                    values = self.operands(f, operator, operand_source)
                    restriction = p.Restriction(field_key=key, operator=operator, values=values)
                    found = self.conn.search_advanced(actor_type, [restriction], [key], limit=25)
                    wrong = [
                        a.key
                        for a in found.actors
                        if not p.restriction_matches(f.type, operator, values, a.values.get(key))
                    ]
                    expect(not wrong, f"answered actors that do not match: {wrong[:5]}")
                    if operator in (
                        "equals",
                        "eq",
                        "one_of",
                        "between",
                        "gte",
                        "lte",
                        "after_or_equal",
                        "before_or_equal",
                    ):
                        expect(bool(found.actors), f"nothing found although {operand_source!r} exists")
        if searchable:
            f = fields[searchable[0]]
            wrong_operator = next(
                (op for t, ops in p.OPERATORS.items() for op in ops if op not in p.OPERATORS[f.type]), "x"
            )
            with self.check(f"{actor_type.value}: an operator of another type is refused with invalid_request"):
                restriction = p.Restriction(field_key=f.key, operator=wrong_operator, values=[self.sample_value(f)])
                self.rejected(lambda: self.conn.search_advanced(actor_type, [restriction]), p.ErrorCode.INVALID_REQUEST)

    @staticmethod
    def operands(f: p.FieldInfo, operator: str, value: p.Value) -> list[p.Value]:
        if operator == "between":
            if f.type in (p.FieldType.INTEGER, p.FieldType.DOUBLE) and isinstance(value, int | float):
                return [value - 1, value + 1]
            if f.type == p.FieldType.DATE:
                day = date.fromisoformat(str(value))
                return [(day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()]
            if f.type == p.FieldType.DATETIME:
                moment = datetime.fromisoformat(str(value))
                return [(moment - timedelta(hours=1)).isoformat(), (moment + timedelta(hours=1)).isoformat()]
            return [value, value]
        if f.type == p.FieldType.TEXT and operator in (
            "begins",
            "not_begins",
            "contains",
            "not_contains",
            "ends",
            "not_ends",
        ):
            text = str(value)
            part = text[:3] if "begins" in operator else text[-3:] if "ends" in operator else text[1:4]
            return [part.upper()]  # matching ignores case
        return [value]

    def save_checks(self, actor_type: p.ActorType, actor: p.Actor) -> None:
        fields = self.fields[actor_type]
        name = f"{actor_type.value}:"
        writable = next(
            (
                k
                for k, f in fields.items()
                if f.type == p.FieldType.TEXT
                and f.access != p.FieldAccess.READ_ONLY
                and f.access != p.FieldAccess.MANDATORY
            ),
            None,
        )
        read_only = next((k for k, f in fields.items() if f.access == p.FieldAccess.READ_ONLY), None)
        assert actor.key
        updated: p.Actor | None = None
        if writable:
            with self.check(f"{name} SaveActors changes a field and moves last_modified"):
                new_value = self.text(fields[writable], "saved")
                result = self.conn.save_actors(
                    [p.Actor(actor_type=actor_type, key=actor.key, values={writable: new_value})]
                )[0]
                expect(result.ok and result.actor is not None, f"not saved: {result.error}")
                assert result.actor is not None
                updated = result.actor
                expect(updated.values.get(writable) == new_value, "the new value was not kept")
                expect(
                    bool(updated.last_modified and actor.last_modified and updated.last_modified > actor.last_modified),
                    "last_modified did not move forward",
                )
            with self.check(f"{name} the change feed shows the saved change"):
                since = (actor.last_modified or datetime.now(UTC)) - timedelta(seconds=1)
                changed = [
                    a.key
                    for page in self.conn.changes(actor_type, updated_on_or_after=since, page_size=50)
                    for a in page.actors
                ]
                expect(actor.key in changed, "the saved actor is not in the feed")
        if updated is not None:
            with self.check(f"{name} SaveActors with a stale last_modified is a conflict"):
                stale = p.Actor(
                    actor_type=actor_type,
                    key=actor.key,
                    last_modified=actor.last_modified,
                    values={writable or "": self.text(fields[writable or ""], "stale")},
                )
                result = self.conn.save_actors([stale])[0]
                expect(
                    not result.ok and result.error is not None and result.error.error_code == p.ErrorCode.CONFLICT,
                    f"expected a conflict, got {result}",
                )
        if read_only and writable:
            with self.check(f"{name} one bad actor in SaveActors fails alone"):
                bad = p.Actor(actor_type=actor_type, key=actor.key, values={read_only: "changed by conformance"})
                good = p.Actor(
                    actor_type=actor_type, key=actor.key, values={writable: self.text(fields[writable], "again")}
                )
                results = self.conn.save_actors([bad, good])
                expect(len(results) == 2, f"{len(results)} results for 2 actors")
                expect(not results[0].ok and results[0].error is not None, "changing a read-only field was accepted")
                expect(results[1].ok, f"the good actor failed too: {results[1].error}")

    # Protocol v1.1 (--strict)

    def version_checks(self) -> None:
        with self.check("v1.1: the health answer states protocol 1.1 and its capabilities"):
            response = self.raw.get(f"{p.PREFIX}/health")
            expect(response.status_code == 200, f"HTTP {response.status_code}")
            self.health = p.Health.model_validate_json(response.content)
            expect(self.health.protocol == "1.1", f"protocol {self.health.protocol!r}")
            unknown = set(self.health.capabilities) - {c.value for c in p.Capability}
            expect(not unknown, f"unknown capabilities: {sorted(unknown)}")
        self.client.capabilities = self.conn.client.capabilities = frozenset(self.health.capabilities)

    def capability_checks(self, actor_types: list[p.ActorType]) -> None:
        """The checks of each capability the connector names; each capability's section adds its own."""
        self.contract_v1_1_checks(actor_types)
        self.key_id_checks()
        self.idempotent_create_checks(actor_types)
        self.decimal_checks(actor_types)
        self.tombstone_checks(actor_types)
        self.labels_checks(actor_types)
        self.suggested_directions_checks(actor_types)
        self.config_list_checks()
        self.change_notification_checks(actor_types)

    # The contract's rules that are not one operation's: v1 rules in every run, what v1.1 states in --strict runs

    def post_raw(self, operation: str, payload: dict[str, Any]) -> httpx.Response:
        path = p.OPERATIONS[operation].path
        body = json.dumps(payload).encode()
        return self.raw.post(path, content=body, headers=self.signed_headers(path, body))

    def contract_checks(self, actor_types: list[p.ActorType]) -> None:
        """v1 rules: the wrong method, the size limits of the schema, read-only and mandatory fields."""
        path = p.OPERATIONS["GetConfigData"].path
        with self.check("an operation called with GET is answered with 405 and an error envelope"):
            response = self.raw.get(path)
            expect(response.status_code == 405, f"expected HTTP 405, got {response.status_code}")
            try:
                envelope = p.Envelope.model_validate(response.json())
            except ValueError as e:
                raise CheckFailed(f"HTTP 405 without an error envelope: {response.text[:100]!r}") from e
            expect(not envelope.ok, "the 405 answer says ok")
            if self.strict:
                expect(
                    envelope.error_code == p.ErrorCode.INVALID_REQUEST,
                    f"v1.1: expected error_code invalid_request, got {envelope.error_code}",
                )
        if not actor_types:
            return
        actor_type = actor_types[0].value
        with self.check(f"a search text of {p.MAX_SEARCH_TEXT + 1} characters is refused with 400 invalid_request"):
            fits = {"connection_id": self.connection_id, "actor_type": actor_type, "text": "q" * p.MAX_SEARCH_TEXT}
            response = self.post_raw("SearchActors", {**fits, "limit": 5})
            expect(response.status_code == 200, f"a text of {p.MAX_SEARCH_TEXT} was answered {response.status_code}")
            too_long = {**fits, "text": "q" * (p.MAX_SEARCH_TEXT + 1), "limit": 5}
            self.refused(self.post_raw("SearchActors", too_long), 400, p.ErrorCode.INVALID_REQUEST)
        with self.check(f"GetActors with {p.MAX_KEYS_PER_CALL + 1} keys is refused with 400 invalid_request"):
            keys = [f"k{n}" for n in range(p.MAX_KEYS_PER_CALL + 1)]
            request: dict[str, Any] = {"connection_id": self.connection_id, "actor_type": actor_type, "keys": keys}
            self.refused(self.post_raw("GetActors", request), 400, p.ErrorCode.INVALID_REQUEST)
        with self.check("GetActors with no keys is refused with 400 invalid_request"):
            request = {"connection_id": self.connection_id, "actor_type": actor_type, "keys": []}
            self.refused(self.post_raw("GetActors", request), 400, p.ErrorCode.INVALID_REQUEST)
        searchable = getattr(self, "searchable", {}).get(actor_types[0], [])
        if searchable:
            limit = p.MAX_RESTRICTION_VALUES
            with self.check(f"a restriction with {limit + 1} values is refused with 400 invalid_request"):
                restriction = {"field_key": searchable[0], "operator": "one_of", "values": ["v"] * (limit + 1)}
                request = {
                    "connection_id": self.connection_id,
                    "actor_type": actor_type,
                    "restrictions": [restriction],
                }
                self.refused(self.post_raw("SearchActorsAdvanced", request), 400, p.ErrorCode.INVALID_REQUEST)
        if not self.writable:
            return
        for actor_type_ in actor_types:
            self.mandatory_checks(actor_type_)
            if actor_type_ in self.created:
                self.read_only_checks(actor_type_, self.created[actor_type_])

    def mandatory_checks(self, actor_type: p.ActorType) -> None:
        fields = self.fields.get(actor_type, {})
        mandatory = [f for f in fields.values() if f.access == p.FieldAccess.MANDATORY]
        if not mandatory:
            return
        left = mandatory[0]
        with self.check(f"{actor_type.value}: CreateActor without the mandatory {left.key} is validation_failed"):
            values: dict[str, p.Value] = {f.key: self.sample_value(f) for f in mandatory[1:]}
            values[left.key] = None
            self.rejected(
                lambda: self.conn.create_actor(p.Actor(actor_type=actor_type, values=values)),
                p.ErrorCode.VALIDATION_FAILED,
            )

    def different_value(self, f: p.FieldInfo, current: p.Value) -> p.Value:
        """A valid value of ``f`` that is not ``current``."""
        if f.type == p.FieldType.CHECKBOX:
            return not current
        if f.type in (p.FieldType.INTEGER, p.FieldType.DOUBLE) and isinstance(current, int | float):
            return current + 1
        if f.type == p.FieldType.DATE and isinstance(current, str):
            return (date.fromisoformat(current) + timedelta(days=1)).isoformat()
        if f.type == p.FieldType.DATETIME and isinstance(current, str):
            return (datetime.fromisoformat(current) + timedelta(hours=1)).isoformat()
        if f.type == p.FieldType.LIST:
            keys = [item.key for item in self.conn.get_list(f.list_name or "")]
            return next((k for k in keys if k != current), None)
        sample = self.sample_value(f)
        return sample if not p.same_value(sample, current) else self.text(f, "other")

    def read_only_checks(self, actor_type: p.ActorType, actor: p.Actor) -> None:
        read_only = [f for f in self.fields[actor_type].values() if f.access == p.FieldAccess.READ_ONLY]
        if not read_only or not actor.key:
            return
        f = read_only[0]
        with self.check(f"{actor_type.value}: SaveActors refuses a change of the read-only {f.key} with read_only"):
            current = self.conn.get_actors(actor_type, [actor.key], [f.key]).actors[0]
            value = self.different_value(f, current.values.get(f.key))
            result = self.conn.save_actors([p.Actor(actor_type=actor_type, key=actor.key, values={f.key: value})])[0]
            expect(not result.ok, f"{f.key} was changed from {current.values.get(f.key)!r} to {value!r}")
            assert result.error is not None
            expect(
                result.error.error_code == p.ErrorCode.READ_ONLY,
                f"expected read_only, got {result.error.error_code.value}",
            )
            after = self.conn.get_actors(actor_type, [actor.key], [f.key]).actors[0]
            expect(p.same_value(after.values.get(f.key), current.values.get(f.key)), f"{f.key} changed all the same")

    def contract_v1_1_checks(self, actor_types: list[p.ActorType]) -> None:
        """What v1.1 states that v1 left open: nonce retention, unknown names, and how SaveActors compares."""
        self.nonce_retention_check()
        unsupported = [t for t in p.ActorType if t not in actor_types]
        if unsupported:
            with self.check("v1.1: an actor type the connector does not offer is unknown_actor_type"):
                self.rejected(lambda: self.conn.actor_type_fields(unsupported[0]), p.ErrorCode.UNKNOWN_ACTOR_TYPE)
        if actor_types:
            with self.check("v1.1: GetActors naming a field the actor type does not have is unknown_field"):
                self.rejected(
                    lambda: self.conn.get_actors(actor_types[0], ["any"], [f"NO_SUCH_{self.marker.upper()}"]),
                    p.ErrorCode.UNKNOWN_FIELD,
                )
        if self.writable:
            for actor_type in actor_types:
                if actor_type in self.created:
                    self.save_instant_checks(actor_type, self.created[actor_type])

    def nonce_retention_check(self) -> None:
        edge = p.SIGNATURE_TOLERANCE_SECONDS - 10
        name = f"v1.1: a request stamped {edge} s ahead is accepted once, and its replay refused"
        if self.replay_wait:
            name += f" after {self.replay_wait:g} s"
        with self.check(name):
            path, body = p.OPERATIONS["GetConfigData"].path, b"{}"
            headers = self.signed_headers(path, body, timestamp=int(time.time()) + edge)
            first = self.raw.post(path, content=body, headers=headers)
            expect(first.status_code == 200, f"the request was refused with HTTP {first.status_code}")
            if self.replay_wait:
                time.sleep(self.replay_wait)
            self.refused(self.raw.post(path, content=body, headers=headers), 401, p.ErrorCode.UNAUTHORIZED)

    def save_instant_checks(self, actor_type: p.ActorType, actor: p.Actor) -> None:
        fields = self.fields[actor_type]
        writable = next(
            (k for k, f in fields.items() if f.type == p.FieldType.TEXT and f.access == p.FieldAccess.NORMAL), None
        )
        if writable is None or not actor.key:
            return
        key = actor.key
        with self.check(f"v1.1: {actor_type.value}: SaveActors with the values it has keeps last_modified"):
            current = self.conn.get_actors(actor_type, [key]).actors[0]
            same = {writable: current.values.get(writable)}
            result = self.conn.save_actors([p.Actor(actor_type=actor_type, key=key, values=same)])[0]
            expect(result.ok and result.actor is not None, f"not saved: {result.error}")
            assert result.actor is not None
            expect(
                p.same_instant(result.actor.last_modified, current.last_modified),
                f"last_modified moved from {current.last_modified} to {result.actor.last_modified}",
            )
        with self.check(f"v1.1: {actor_type.value}: SaveActors compares last_modified as instants (Z, +02:00)"):
            for spelling, zone in (("Z", UTC), ("+02:00", timezone(timedelta(hours=2)))):
                current = self.conn.get_actors(actor_type, [key]).actors[0]
                assert current.last_modified is not None
                moment = current.last_modified.astimezone(zone)  # the same instant; UTC is sent as …Z
                value = self.text(fields[writable], f"at {spelling}")
                result = self.conn.save_actors(
                    [p.Actor(actor_type=actor_type, key=key, last_modified=moment, values={writable: value})]
                )[0]
                expect(
                    result.ok,
                    f"last_modified {moment.isoformat()} (the instant it has, spelt {spelling}) was refused: "
                    f"{result.error.error_code.value if result.error else ''}",
                )

    # Protocol v1.1: key_ids

    def key_id_checks(self) -> None:
        if not self.health.supports(p.Capability.KEY_IDS):
            return
        path, body = p.OPERATIONS["GetConfigData"].path, b"{}"
        with self.check("key_ids: a request naming a key id the connector does not hold is refused with 401"):
            headers = self.signed_headers(path, body, key_id=f"unknown-{secrets.token_hex(4)}")
            self.refused(self.raw.post(path, content=body, headers=headers), 401, p.ErrorCode.UNAUTHORIZED)
        if self.key_id:
            with self.check(f"key_ids: a request naming the key id {self.key_id} is accepted"):
                response = self.raw.post(path, content=body, headers=self.signed_headers(path, body))
                expect(response.status_code == 200, f"HTTP {response.status_code}")

    # Capability tombstones

    def tombstone_checks(self, actor_types: list[p.ActorType]) -> None:
        """The shape and order of the tombstones the change feed shows. The kit cannot cause one (the protocol
        has no operation that deletes, merges or archives), so it checks those it meets in the first pages of
        each actor type's feed; an ERP with none yet passes without proof."""
        if not self.health.supports(p.Capability.TOMBSTONES):
            return
        for actor_type in actor_types:
            if actor_type not in self.fields:
                continue
            with self.check(f"tombstones: {actor_type.value}: tombstones in the feed are well formed and in order"):
                seen: list[tuple[datetime, str]] = []
                for number, page in enumerate(self.conn.changes(actor_type, page_size=100)):
                    entries = [(a.last_modified, a.key or "") for a in page.actors if a.last_modified]
                    for tombstone in page.tombstones:
                        where = f"{tombstone.key} ({tombstone.kind.value})"
                        expect(tombstone.actor_type == actor_type, f"{where}: actor type {tombstone.actor_type.value}")
                        if tombstone.kind == p.TombstoneKind.MERGED:
                            expect(bool(tombstone.merged_into), f"{where}: merged without merged_into")
                            expect(tombstone.merged_into != tombstone.key, f"{where}: merged into itself")
                        else:
                            expect(tombstone.merged_into is None, f"{where}: merged_into on a {tombstone.kind.value}")
                        entries.append((tombstone.last_modified, tombstone.key))
                    expect(len(page.actors) + len(page.tombstones) <= 100, "more entries than page_size")
                    entries.sort()
                    seen.extend(entries)
                    if number >= 4:
                        break
                expect(seen == sorted(seen), "actors and tombstones are not in (last_modified, key) order together")
                expect(len(seen) == len(set(seen)), "the same (key, last_modified) appeared twice")

    # Capability decimal

    def decimal_checks(self, actor_types: list[p.ActorType]) -> None:
        """Decimal fields only from a connector that names ``decimal``; their values strings such as "1234.50",
        with at most ``decimal_places`` digits after the point, in GetActors and the change feed; a value saved
        (writable runs) comes back exactly."""
        described = {
            t: [f for f in self.fields.get(t, {}).values() if f.type == p.FieldType.DECIMAL] for t in actor_types
        }
        if not self.health.supports(p.Capability.DECIMAL):
            if any(described.values()):
                with self.check("decimal: decimal fields come only from a connector that names the capability"):
                    named = [f"{t.value}.{f.key}" for t, fields in described.items() for f in fields]
                    raise CheckFailed(f"decimal fields {named} but no decimal capability in the health answer")
            return
        for actor_type, fields in described.items():
            if not fields:
                continue
            keys = [f.key for f in fields]
            with self.check(f"decimal: {actor_type.value}: values of decimal fields are strings in the decimal format"):
                page = self.conn.changes_page(actor_type, field_keys=keys, page_size=50)
                actors = list(page.actors)
                created = self.created.get(actor_type)
                if created is not None and created.key:
                    actors += self.conn.get_actors(actor_type, [created.key], keys).actors
                for actor in actors:
                    for f in fields:
                        problem = p.check_value(f, actor.values.get(f.key))
                        expect(problem is None, f"{actor.key}: {problem}")
            writable = next((f for f in fields if f.access != p.FieldAccess.READ_ONLY), None)
            created = self.created.get(actor_type)
            if self.writable and writable is not None and created is not None and created.key:
                with self.check(f"decimal: {actor_type.value}: a decimal value saved comes back exactly"):
                    places = 2 if writable.decimal_places is None else min(writable.decimal_places, 2)
                    sent = p.decimal_value(Decimal("1234567.89").quantize(Decimal(1).scaleb(-places)))
                    actor = p.Actor(actor_type=actor_type, key=created.key, values={writable.key: sent})
                    result = self.conn.save_actors([actor])[0]
                    expect(result.ok, f"not saved: {result.error}")
                    back = (
                        self.conn.get_actors(actor_type, [created.key], [writable.key]).actors[0].values[writable.key]
                    )
                    expect(p.check_value(writable, back) is None, f"read back {back!r}")
                    expect(p.parse_decimal(back) == Decimal(sent), f"sent {sent}, read back {back}")

    # Capability idempotent_create

    def idempotent_create_checks(self, actor_types: list[p.ActorType]) -> None:
        """CreateActor twice with one idempotency key makes one actor and answers its key both times; another key
        makes another actor. Needs a writable run (the kit creates actors); made under the first actor type that
        was created earlier in the run, with the same mandatory values."""
        if not self.health.supports(p.Capability.IDEMPOTENT_CREATE) or not self.writable:
            return
        actor_type = next((t for t in actor_types if t in self.created), None)
        if actor_type is None:
            return
        with self.check(
            f"idempotent_create: {actor_type.value}: CreateActor again with the same key makes no second actor"
        ):
            fields = self.fields[actor_type]
            values = {k: self.sample_value(f) for k, f in fields.items() if f.access == p.FieldAccess.MANDATORY}
            text_key = next(
                (k for k in values if fields[k].type == p.FieldType.TEXT and k in self.searchable.get(actor_type, [])),
                next((k for k in values if fields[k].type == p.FieldType.TEXT), None),
            )
            unique = f"{self.marker}i{secrets.token_hex(2)}"
            if text_key is not None:
                values[text_key] = unique[: fields[text_key].max_length or None]
            created = self.created[actor_type]
            request = p.Actor(
                actor_type=actor_type,
                values=values,
                parent_actor_type=created.parent_actor_type,
                parent_key=created.parent_key,
            )
            key = str(uuid.uuid4())
            first = self.conn.create_actor(request, key)
            again = self.conn.create_actor(request, key)
            expect(bool(first.key), "no key in the answer")
            expect(again.key == first.key, f"the same idempotency key made {first.key} and then {again.key}")
            other = self.conn.create_actor(request, str(uuid.uuid4()))
            expect(other.key != first.key, f"another idempotency key answered the same actor {first.key}")
            if text_key is not None:
                found = [a.key or "" for a in self.conn.search(actor_type, unique, limit=10).actors]
                if first.key in found:  # a simple search that looks at the field: exactly the two actors made
                    expect(
                        sorted(found) == sorted({first.key or "", other.key or ""}),
                        f"three CreateActor calls with two keys made {len(found)} actors: {found}",
                    )

    # v1.1: labels (labels of fields, actor types, list items and configuration fields per language)

    def labels_checks(self, actor_types: list[p.ActorType]) -> None:
        if not self.health.supports(p.Capability.LABELS):
            return
        with self.check("v1.1 labels: every label map has non-empty texts under language codes"):
            problems: list[str] = []
            for info in self.client.get_config_data().data.fields:
                problems += label_map_problems(f"configuration field {info.key}", info.labels)
                problems += label_map_problems(f"configuration field {info.key} descriptions", info.descriptions)
            answer = self.conn.actor_types_data()
            for actor_type, labels in (answer.labels or {}).items():
                if actor_type not in answer.actor_types:
                    problems.append(f"labels of {actor_type.value}, which it does not name")
                problems += label_map_problems(f"actor type {actor_type.value}", labels)
            lists: set[str] = set()
            for actor_type in actor_types:
                for info in self.fields.get(actor_type, {}).values():
                    problems += label_map_problems(f"{actor_type.value} field {info.key}", info.labels)
                    problems += label_map_problems(
                        f"{actor_type.value} field {info.key} descriptions", info.descriptions
                    )
                    if info.list_name:
                        lists.add(info.list_name)
            for list_name in sorted(lists):
                for item in self.conn.get_list(list_name):
                    problems += label_map_problems(f"list {list_name!r} item {item.key}", item.labels)
            expect(not problems, "; ".join(problems[:10]))

    # v1.1: suggested_directions (a suggested sync direction per actor field)

    def suggested_directions_checks(self, actor_types: list[p.ActorType]) -> None:
        if not self.health.supports(p.Capability.SUGGESTED_DIRECTIONS):
            return
        with self.check("v1.1 suggested_directions: valid directions, and none to the ERP for a read-only field"):
            valid = {d.value for d in p.SuggestedDirection}
            problems: list[str] = []
            for actor_type in actor_types:
                # Read raw: a value the protocol does not know would stop the client before it could be named.
                request = p.GetSupportedActorTypeFieldsRequest(connection_id=self.connection_id, actor_type=actor_type)
                for info in self.raw_data("GetSupportedActorTypeFields", request).get("fields", []):
                    where = f"{actor_type.value} field {info.get('key')}"
                    direction = info.get("suggested_direction")
                    if direction is None:
                        continue
                    if direction not in valid:
                        problems.append(f"{where}: {direction!r} is not one of {sorted(valid)}")
                    elif info.get("access") == p.FieldAccess.READ_ONLY.value and direction != "erp_to_crm":
                        problems.append(f"{where} is read-only but suggests {direction}")
            expect(not problems, "; ".join(problems[:10]))

    def raw_data(self, operation: str, request: p.Request) -> dict[str, Any]:
        """An operation's answer data as JSON, read without the protocol models."""
        path = p.OPERATIONS[operation].path
        body = request.wire_json()
        response = self.raw.post(path, content=body, headers=self.signed_headers(path, body))
        expect(response.status_code == 200, f"{operation}: HTTP {response.status_code}")
        answer = response.json()
        expect(isinstance(answer, dict) and answer.get("ok") is True, f"{operation} failed: {response.text[:200]}")
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    # Capability config_list_values

    def config_list_checks(self) -> None:
        """Configuration lists read with the values entered so far: ``depends_on`` names other configuration fields
        and only from a connector that names the capability; GetList (and GetListItems) with the kit's configuration
        answers a valid list that holds the configured value; with no values yet, a list or a refusal for people."""
        fields = self.client.get_config_data().data.fields
        dependent = [f for f in fields if f.depends_on]
        if not self.health.supports(p.Capability.CONFIG_LIST_VALUES):
            if dependent:
                with self.check("config_list_values: depends_on comes only from a connector that names it"):
                    named = [f.key for f in dependent]
                    raise CheckFailed(f"{named} name depends_on but no config_list_values in the health answer")
            return
        keys = {f.key for f in fields}
        lists = [f for f in fields if f.type == p.FieldType.LIST]
        with self.check("config_list_values: a configuration list field depends on configuration fields"):
            expect(bool(lists), "the connector names config_list_values but no configuration field is a list")
            for f in dependent:
                expect(f.type == p.FieldType.LIST, f"{f.key}: depends_on on a {f.type.value} field")
                unknown = [k for k in f.depends_on or [] if k not in keys]
                expect(not unknown, f"{f.key}: depends_on names fields that are not configuration fields: {unknown}")
                expect(f.key not in (f.depends_on or []), f"{f.key}: depends on itself")
        for f in dependent or lists:
            name = f.list_name or ""
            with self.check(f"config_list_values: list {name!r} read with the configuration values is a valid list"):
                items = self.client.get_config_list(name, self.config)
                item_keys = [item.key for item in items]
                expect(bool(item_keys), "the list is empty")
                expect(len(item_keys) == len(set(item_keys)), "the list has duplicate keys")
                configured = self.config.get(f.key)
                if not p.is_empty(configured):
                    expect(
                        str(configured) in item_keys,
                        f"the configured value {configured!r} is not one of its items {item_keys[:10]}",
                    )
                picked = self.client.get_config_list_items(name, item_keys[:2], self.config)
                expect([item.key for item in picked] == item_keys[:2], "GetListItems did not answer the asked keys")
            with self.check(f"config_list_values: list {name!r} with no values entered yet is a list or explained"):
                try:
                    self.client.get_config_list(name, {})
                except ConnectorRejected as e:
                    expect(e.error_code != p.ErrorCode.INVALID_REQUEST, "refused as invalid_request")
                    expect(bool(e.envelope.user_explanation), "refused without a user explanation")

    # Capability change_notifications

    def change_notification_checks(self, actor_types: list[p.ActorType]) -> None:
        """SaveConnection with a notify URL at a receiver the kit runs; then a change the kit makes through the
        connection (SaveActors of an actor it created: writable runs only) must be notified within
        ``notify_wait`` seconds, signed with the shared secret over the notify URL's path and naming the
        connection (and the actor type and key, when the notification names any); a notification answered 503
        must be sent again; and after SaveConnection without a notify URL, no more are sent."""
        if not self.health.supports(p.Capability.CHANGE_NOTIFICATIONS) or not self.writable:
            return
        target = self.notification_target(actor_types)
        if target is None:
            return
        actor_type, key, f = target
        receiver = Receiver(self.notify_host)
        try:
            with self.check("change_notifications: a change is notified within seconds, signed and well formed"):
                self.save_notify_url(receiver.url)
                seen = len(receiver.received)
                self.change_for_notification(actor_type, key, f, "n1")
                found = receiver.wait(self.names_connection, self.notify_wait, since=seen)
                expect(
                    bool(found) or bool(receiver.received[seen:]),
                    f"no notification within {self.notify_wait:g} s of SaveActors",
                )
                for request in receiver.received[seen:]:
                    self.valid_notification(request, receiver.path)
                expect(bool(found), "notifications came, but none named the connection")
                self.names_change(found, actor_type, key)
            with self.check("change_notifications: a notification the CRM answers with 503 is sent again"):
                seen = len(receiver.received)
                receiver.refuse = 1
                self.change_for_notification(actor_type, key, f, "n2")
                found = receiver.wait(self.names_connection, self.notify_wait, since=seen)
                expect(bool(found), f"no notification within {self.notify_wait:g} s of SaveActors")
                again = receiver.wait(
                    lambda r: self.names_connection(r) and r is not found[0], self.notify_wait * 2, since=seen
                )
                expect(bool(again), "the notification answered 503 was not sent again")
                for request in receiver.received[seen:]:
                    self.valid_notification(request, receiver.path)
            with self.check("change_notifications: after SaveConnection without a notify URL, nothing is notified"):
                self.conn.client.call(
                    "SaveConnection", p.SaveConnectionRequest(connection_id=self.connection_id, config=self.config)
                )
                time.sleep(1.0)  # a notification still on its way is let through
                seen = len(receiver.received)
                self.change_for_notification(actor_type, key, f, "n3")
                late = receiver.wait(self.names_connection, min(self.notify_wait, 3.0), since=seen)
                expect(not late, "a change was notified after the notify URL was taken away")
        finally:
            receiver.close()

    def notification_target(self, actor_types: list[p.ActorType]) -> tuple[p.ActorType, str, p.FieldInfo] | None:
        """An actor the kit created and a text field of it the kit may change."""
        for actor_type in actor_types:
            created = self.created.get(actor_type)
            if created is None or not created.key:
                continue
            for f in self.fields.get(actor_type, {}).values():
                if f.type == p.FieldType.TEXT and f.access == p.FieldAccess.NORMAL and (f.max_length or 99) >= 12:
                    return actor_type, created.key, f
        return None

    def save_notify_url(self, url: str) -> None:
        request = p.SaveConnectionRequest(connection_id=self.connection_id, config=self.config, notify_url=url)
        self.conn.client.call("SaveConnection", request)

    def change_for_notification(self, actor_type: p.ActorType, key: str, f: p.FieldInfo, word: str) -> None:
        value = self.text(f, f"{word}{secrets.token_hex(2)}")
        result = self.conn.save_actors([p.Actor(actor_type=actor_type, key=key, values={f.key: value})])[0]
        expect(result.ok, f"SaveActors of {key} failed: {result.error}")

    def names_connection(self, request: Received) -> bool:
        try:
            notification = p.ChangeNotification.model_validate_json(request.body)
        except ValueError:
            return False
        return any(change.connection_id == self.connection_id for change in notification.changes)

    def valid_notification(self, request: Received, path: str) -> None:
        """A notification as the contract has it: POST to the notify URL's path, signed with the shared secret
        (naming the kit's key id, or none), stamped now, and a ChangeNotification body."""
        expect(request.method == "POST", f"a notification sent with {request.method}")
        expect(request.path == path, f"sent to {request.path!r}, not the notify URL's path {path!r}")
        headers = {name.lower(): value for name, value in request.headers.items()}
        timestamp = headers.get(p.HEADER_TIMESTAMP.lower(), "")
        nonce = headers.get(p.HEADER_NONCE.lower(), "")
        given = headers.get(p.HEADER_SIGNATURE.lower(), "")
        expect(bool(timestamp and nonce and given), "a notification without the signature headers")
        expect(
            timestamp.isdigit() and abs(time.time() - int(timestamp)) <= p.SIGNATURE_TOLERANCE_SECONDS,
            f"timestamp {timestamp!r} is not now",
        )
        key_id = headers.get(p.HEADER_KEY_ID.lower(), "")
        expect(key_id in ("", self.key_id), f"signed naming key id {key_id!r}, not the kit's {self.key_id!r}")
        expected = p.signature(self.secret, "POST", path, timestamp, nonce, request.body)
        expect(hmac.compare_digest(expected, given), "the signature is wrong: not made with the shared secret")
        try:
            p.ChangeNotification.model_validate_json(request.body)
        except ValueError as e:
            raise CheckFailed(f"the body is not a ChangeNotification: {e}") from e

    def names_change(self, found: list[Received], actor_type: p.ActorType, key: str) -> None:
        """A notification that names actor types or keys names the one changed, in one of the notifications."""
        changes = [
            change
            for request in found
            for change in p.ChangeNotification.model_validate_json(request.body).changes
            if change.connection_id == self.connection_id
        ]
        expect(
            any(not c.actor_types or actor_type in c.actor_types for c in changes),
            f"the notification names actor types without {actor_type.value}",
        )
        expect(any(not c.keys or key in c.keys for c in changes), f"the notification names keys without {key}")


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def label_map_problems(where: str, labels: dict[str, str] | None) -> list[str]:
    """What is wrong with one v1.1 label map: a key that is not a language code (BCP 47: "sv", "pt-BR"), or an
    empty text."""
    problems = []
    for code, text in (labels or {}).items():
        if not LANGUAGE_CODE.match(code):
            problems.append(f"{where}: {code!r} is not a language code")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: the {code!r} text is empty")
    return problems


def run_conformance(
    base_url: str,
    secret: str,
    config: dict[str, p.Value],
    *,
    writable: bool = True,
    strict: bool = False,
    key_id: str = "",
    replay_wait: float = 0,
    notify_host: str = "127.0.0.1",
    notify_wait: float | None = None,
) -> Report:
    """Run every check against the connector at ``base_url`` and return the report; ``strict`` for v1.1.

    ``key_id`` names the secret's key id on the connector, if it has one; ``replay_wait`` is how long the
    nonce retention check waits before its replay (give more than the tolerance to check the whole window)."""
    return Kit(
        base_url,
        secret,
        config,
        writable,
        strict,
        key_id=key_id,
        replay_wait=replay_wait,
        notify_host=notify_host,
        notify_wait=NOTIFY_WAIT if notify_wait is None else notify_wait,
    ).run()
