"""A second connector, written only against the SDK and the published protocol: an in-memory address book ERP.

It exists to show that a connector can be built from docs/connector-protocol.md and connectors.sdk alone.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

from connectors import protocol as p
from connectors.sdk import Connector, ConnectorFailure, Context

FIELDS = [
    p.FieldInfo(key="NUMBER", label="Number", type=p.FieldType.TEXT, access=p.FieldAccess.READ_ONLY),
    p.FieldInfo(key="NAME", label="Name", type=p.FieldType.TEXT, access=p.FieldAccess.MANDATORY, max_length=80),
    p.FieldInfo(key="CITY", label="City", type=p.FieldType.TEXT, max_length=40),
    p.FieldInfo(key="EMPLOYEES", label="Employees", type=p.FieldType.INTEGER),
    p.FieldInfo(key="ACTIVE", label="Active", type=p.FieldType.CHECKBOX),
]
BY_KEY = {f.key: f for f in FIELDS}
SEARCHABLE = ["NAME", "CITY", "EMPLOYEES", "ACTIVE"]


class AddressBook(Connector):
    name = "Address Book"
    version = "0.1"

    def __init__(self, lie_in_search: bool = False) -> None:
        self.connections: dict[str, dict[str, p.Value]] = {}
        self.actors: dict[str, p.Actor] = {}
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.lie_in_search = lie_in_search  # a deliberately broken variant, to show the kit can fail
        clock = datetime(2025, 1, 1, tzinfo=UTC)
        for number, (name, city, staff) in enumerate([("Fjordbygg", "Bergen", 12), ("Sjödata", "Umeå", 40),
                                                      ("Älvkraft", "Luleå", 7)], start=1):  # fmt: skip
            self._store(p.Actor(actor_type=p.ActorType.CUSTOMER, key=f"A{number}", last_modified=clock,
                                values={"NUMBER": f"A{number}", "NAME": name, "CITY": city, "EMPLOYEES": staff,
                                        "ACTIVE": number != 3}))  # fmt: skip
            clock += timedelta(seconds=1)
            next(self.numbers)

    def _store(self, actor: p.Actor) -> p.Actor:
        assert actor.key
        self.actors[actor.key] = actor
        return actor

    def _known(self, connection_id: str) -> None:
        if connection_id not in self.connections:
            raise ConnectorFailure(p.ErrorCode.UNKNOWN_CONNECTION, "Unknown connection.")

    def _customer(self, actor_type: p.ActorType) -> None:
        if actor_type != p.ActorType.CUSTOMER:
            raise ConnectorFailure(p.ErrorCode.UNKNOWN_ACTOR_TYPE, "Address Book only has customers.")

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        return p.FieldsData(fields=[p.FieldInfo(key="owner", label="Owner", type=p.FieldType.TEXT,
                                                access=p.FieldAccess.MANDATORY)])  # fmt: skip

    def test_config_data(self, request: p.TestConfigDataRequest, context: Context) -> p.Empty:
        if not request.config.get("owner"):
            raise ConnectorFailure(p.ErrorCode.INVALID_CONFIG, "Owner is required.")
        return p.Empty()

    def save_connection(self, request: p.SaveConnectionRequest, context: Context) -> p.Empty:
        self.test_config_data(p.TestConfigDataRequest(config=request.config), context)
        self.connections[request.connection_id] = dict(request.config)
        return p.Empty()

    def test_connection(self, request: p.TestConnectionRequest, context: Context) -> p.Empty:
        self._known(request.connection_id)
        return p.Empty()

    def delete_connection(self, request: p.DeleteConnectionRequest, context: Context) -> p.Empty:
        self._known(request.connection_id)
        del self.connections[request.connection_id]
        return p.Empty()

    def get_supported_actor_types(self, request: p.GetSupportedActorTypesRequest, context: Context) -> p.ActorTypesData:
        self._known(request.connection_id)
        return p.ActorTypesData(actor_types=[p.ActorType.CUSTOMER])

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        self._known(request.connection_id)
        self._customer(request.actor_type)
        return p.FieldsData(fields=FIELDS)

    def get_searchable_fields(self, request: p.GetSearchableFieldsRequest, context: Context) -> p.FieldKeysData:
        self._known(request.connection_id)
        return p.FieldKeysData(field_keys=SEARCHABLE)

    @staticmethod
    def _project(actor: p.Actor, field_keys: list[str]) -> p.Actor:
        if not field_keys:
            return actor
        return actor.model_copy(update={"values": {k: actor.values.get(k) for k in field_keys}})

    def get_actors(self, request: p.GetActorsRequest, context: Context) -> p.ActorsData:
        self._known(request.connection_id)
        found = [self._project(self.actors[k], request.field_keys) for k in request.keys if k in self.actors]
        return p.ActorsData(actors=found, missing_keys=[k for k in request.keys if k not in self.actors])

    def search_actors(self, request: p.SearchActorsRequest, context: Context) -> p.SearchData:
        self._known(request.connection_id)
        words = request.text.casefold().split()
        hits = [a for a in self.actors.values()
                if all(w in f"{a.key} {a.values.get('NAME')}".casefold() for w in words)]  # fmt: skip
        return p.SearchData(actors=[self._project(a, request.field_keys) for a in hits[: request.limit]],
                            truncated=len(hits) > request.limit)  # fmt: skip

    def search_actors_advanced(self, request: p.SearchActorsAdvancedRequest, context: Context) -> p.SearchData:
        self._known(request.connection_id)
        for r in request.restrictions:
            if r.field_key not in SEARCHABLE or r.operator not in p.OPERATORS[BY_KEY[r.field_key].type]:
                raise ConnectorFailure(p.ErrorCode.INVALID_REQUEST, f"Cannot search {r.field_key} with {r.operator}.")
        hits = [a for a in self.actors.values()
                if self.lie_in_search or all(p.restriction_matches(BY_KEY[r.field_key].type, r.operator, r.values,
                                                                   a.values.get(r.field_key)) for r in request.restrictions)]  # fmt: skip
        return p.SearchData(actors=[self._project(a, request.field_keys) for a in hits[: request.limit]],
                            truncated=len(hits) > request.limit)  # fmt: skip

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData:
        self._known(request.connection_id)
        self._customer(request.actor.actor_type)
        if not request.actor.values.get("NAME"):
            raise ConnectorFailure(p.ErrorCode.VALIDATION_FAILED, "Name is required.")
        with self.lock:
            key = f"A{next(self.numbers)}"
            actor = request.actor.model_copy(update={"key": key, "last_modified": self._now(),
                                                     "values": {**request.actor.values, "NUMBER": key}})  # fmt: skip
            return p.ActorData(actor=self._store(actor))

    def save_actors(self, request: p.SaveActorsRequest, context: Context) -> p.SaveActorsData:
        self._known(request.connection_id)
        results = []
        for actor in request.actors:
            current = self.actors.get(actor.key or "")
            if current is None:
                error = p.ErrorDetail(
                    error_code=p.ErrorCode.ACTOR_NOT_FOUND, user_explanation={"en": "No such customer."}
                )
            elif actor.last_modified and actor.last_modified != current.last_modified:
                error = p.ErrorDetail(error_code=p.ErrorCode.CONFLICT, user_explanation={"en": "Changed meanwhile."})
            elif any(BY_KEY[k].access == p.FieldAccess.READ_ONLY and v != current.values.get(k)
                     for k, v in actor.values.items() if k in BY_KEY):  # fmt: skip
                error = p.ErrorDetail(error_code=p.ErrorCode.READ_ONLY, user_explanation={"en": "Number is read-only."})
            else:
                with self.lock:
                    saved = self._store(current.model_copy(update={"values": {**current.values, **actor.values},
                                                                   "last_modified": self._now()}))  # fmt: skip
                results.append(p.SaveResult(key=saved.key or "", ok=True, actor=saved))
                continue
            results.append(p.SaveResult(key=actor.key or "", ok=False, error=error))
        return p.SaveActorsData(results=results)

    def get_actors_by_timestamp(self, request: p.GetActorsByTimestampRequest, context: Context) -> p.FeedData:
        self._known(request.connection_id)
        ordered = sorted(self.actors.values(), key=lambda a: (a.last_modified, a.key))
        if request.cursor:
            after = p.decode_cursor(request.cursor)
            ordered = [a for a in ordered if (a.last_modified.isoformat(), a.key) > (after["m"], after["k"])]  # type: ignore[union-attr]
        elif request.updated_on_or_after:
            ordered = [a for a in ordered if a.last_modified and a.last_modified >= request.updated_on_or_after]
        page = ordered[: request.page_size]
        cursor = request.cursor or p.encode_cursor({"m": "", "k": ""})
        if page:
            cursor = p.encode_cursor({"m": page[-1].last_modified.isoformat(), "k": page[-1].key})  # type: ignore[union-attr]
        return p.FeedData(actors=[self._project(a, request.field_keys) for a in page], next_cursor=cursor,
                          has_more=len(ordered) > len(page))  # fmt: skip

    def _now(self) -> datetime:
        latest = max(a.last_modified for a in self.actors.values() if a.last_modified)
        return max(datetime.now(UTC), latest + timedelta(microseconds=1))
