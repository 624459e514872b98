"""Checks a running connector against protocol v1, over real HTTP, using only the published contract."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from connectors import protocol as p
from connectors.client import ConnectionClient, ConnectorClient, ConnectorError, ConnectorRejected


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


class CheckFailed(Exception):
    pass


def expect(condition: bool, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


class Kit:
    def __init__(self, base_url: str, secret: str, config: dict[str, p.Value], writable: bool) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.config = config
        self.writable = writable
        self.report = Report()
        self.client = ConnectorClient(self.base_url, secret)
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

    def signed_headers(self, path: str, body: bytes, *, secret: str | None = None, timestamp: int | None = None,
                       nonce: str | None = None) -> dict[str, str]:  # fmt: skip
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(16)
        return {
            "Content-Type": "application/json",
            p.HEADER_TIMESTAMP: stamp,
            p.HEADER_NONCE: nonce,
            p.HEADER_SIGNATURE: p.signature(secret or self.secret, "POST", path, stamp, nonce, body),
        }

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
        self.configuration_checks()
        with self.check("SaveConnection and TestConnection accept the configuration"):
            self.conn.save()
            self.conn.test()
        with self.check("an unknown connection id is answered with unknown_connection"):
            other = ConnectorClient(self.base_url, self.secret).connection(str(uuid.uuid4()), lambda: {})
            self.rejected(lambda: other.client.call("TestConnection", p.TestConnectionRequest(connection_id=other.connection_id)),
                          p.ErrorCode.UNKNOWN_CONNECTION)  # fmt: skip
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
        with self.check("DeleteConnection forgets the connection"):
            self.conn.delete()
            self.rejected(lambda: self.client.call("TestConnection", p.TestConnectionRequest(connection_id=self.connection_id)),
                          p.ErrorCode.UNKNOWN_CONNECTION)  # fmt: skip
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
            self.refused(self.raw.post(path, content=body, headers={"Content-Type": "application/json"}), 401,
                         p.ErrorCode.UNAUTHORIZED)  # fmt: skip
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
            self.refused(self.raw.post(test_path, content=bad, headers=self.signed_headers(test_path, bad)), 400,
                         p.ErrorCode.INVALID_REQUEST)  # fmt: skip
        with self.check("a request of the wrong shape is answered with 400 invalid_request"):
            bad = b'{"config": 5}'
            test_path = p.OPERATIONS["TestConfigData"].path
            self.refused(self.raw.post(test_path, content=bad, headers=self.signed_headers(test_path, bad)), 400,
                         p.ErrorCode.INVALID_REQUEST)  # fmt: skip
        with self.check("an oversized body is answered with 413 payload_too_large"):
            big = b'{"config": {"x": "' + b"a" * p.MAX_REQUEST_BYTES + b'"}}'
            test_path = p.OPERATIONS["TestConfigData"].path
            self.refused(self.raw.post(test_path, content=big, headers=self.signed_headers(test_path, big)), 413,
                         p.ErrorCode.PAYLOAD_TOO_LARGE)  # fmt: skip
        with self.check("an unknown path is answered with 404 and an envelope"):
            self.refused(self.raw.post(f"{p.PREFIX}/no-such-operation", content=body,
                                       headers=self.signed_headers(f"{p.PREFIX}/no-such-operation", body)), 404,
                         p.ErrorCode.NOT_FOUND)  # fmt: skip

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
            if config_field.type == p.FieldType.LIST:
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
        return None

    def actor_checks(self, actor_type: p.ActorType) -> None:
        fields = self.fields[actor_type]
        name = f"{actor_type.value}:"
        actor: p.Actor | None = None
        if self.writable:
            with self.check(f"{name} CreateActor creates one and gives it a key"):
                values = {k: self.sample_value(f) for k, f in fields.items() if f.access == p.FieldAccess.MANDATORY}
                parent_type = p.ActorType.CUSTOMER if p.ActorType.CUSTOMER in self.created and actor_type in (
                    p.ActorType.PERSON, p.ActorType.PROJECT) else None  # fmt: skip
                request = p.Actor(actor_type=actor_type, values=values, parent_actor_type=parent_type,
                                  parent_key=self.created[parent_type].key if parent_type else None)  # fmt: skip
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
                    wrong = [a.key for a in found.actors
                             if not p.restriction_matches(f.type, operator, values, a.values.get(key))]  # fmt: skip
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
        writable = next((k for k, f in fields.items() if f.type == p.FieldType.TEXT and f.access != p.FieldAccess.READ_ONLY
                         and f.access != p.FieldAccess.MANDATORY), None)  # fmt: skip
        read_only = next((k for k, f in fields.items() if f.access == p.FieldAccess.READ_ONLY), None)
        assert actor.key
        updated: p.Actor | None = None
        if writable:
            with self.check(f"{name} SaveActors changes a field and moves last_modified"):
                new_value = self.text(fields[writable], "saved")
                result = self.conn.save_actors([p.Actor(actor_type=actor_type, key=actor.key,
                                                        values={writable: new_value})])[0]  # fmt: skip
                expect(result.ok and result.actor is not None, f"not saved: {result.error}")
                assert result.actor is not None
                updated = result.actor
                expect(updated.values.get(writable) == new_value, "the new value was not kept")
                expect(bool(updated.last_modified and actor.last_modified and updated.last_modified > actor.last_modified),
                       "last_modified did not move forward")  # fmt: skip
            with self.check(f"{name} the change feed shows the saved change"):
                since = (actor.last_modified or datetime.now(UTC)) - timedelta(seconds=1)
                changed = [a.key for page in self.conn.changes(actor_type, updated_on_or_after=since, page_size=50)
                           for a in page.actors]  # fmt: skip
                expect(actor.key in changed, "the saved actor is not in the feed")
        if updated is not None:
            with self.check(f"{name} SaveActors with a stale last_modified is a conflict"):
                stale = p.Actor(actor_type=actor_type, key=actor.key, last_modified=actor.last_modified,
                                values={writable or "": self.text(fields[writable or ""], "stale")})  # fmt: skip
                result = self.conn.save_actors([stale])[0]
                expect(not result.ok and result.error is not None and result.error.error_code == p.ErrorCode.CONFLICT,
                       f"expected a conflict, got {result}")  # fmt: skip
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


def run_conformance(base_url: str, secret: str, config: dict[str, p.Value], *, writable: bool = True) -> Report:
    """Run every check against the connector at ``base_url`` and return the report."""
    return Kit(base_url, secret, config, writable).run()
