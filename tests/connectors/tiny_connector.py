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

    def __init__(
        self,
        lie_in_search: bool = False,
        *,
        accept_read_only: bool = False,
        skip_mandatory: bool = False,
        touch_unchanged: bool = False,
        any_actor_type: bool = False,
        ignore_unknown_fields: bool = False,
        compare_spelling: bool = False,
    ) -> None:
        self.connections: dict[str, dict[str, p.Value]] = {}
        self.actors: dict[str, p.Actor] = {}
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        # Deliberately broken variants, each getting one point of the contract wrong, to show the kit can fail:
        self.lie_in_search = lie_in_search  # answers actors that do not match
        self.accept_read_only = accept_read_only  # lets SaveActors change a read-only field
        self.skip_mandatory = skip_mandatory  # creates an actor without its mandatory name
        self.touch_unchanged = touch_unchanged  # moves last_modified when saved values are the same
        self.any_actor_type = any_actor_type  # describes fields for actor types it does not offer
        self.ignore_unknown_fields = ignore_unknown_fields  # answers null for fields it does not have
        self.compare_spelling = compare_spelling  # compares last_modified as text, not as instants
        clock = datetime(2025, 1, 1, tzinfo=UTC)
        for number, (name, city, staff) in enumerate(
            [("Fjordbygg", "Bergen", 12), ("Sjödata", "Umeå", 40), ("Älvkraft", "Luleå", 7)], start=1
        ):
            self._store(
                p.Actor(
                    actor_type=p.ActorType.CUSTOMER,
                    key=f"A{number}",
                    last_modified=clock,
                    values={
                        "NUMBER": f"A{number}",
                        "NAME": name,
                        "CITY": city,
                        "EMPLOYEES": staff,
                        "ACTIVE": number != 3,
                    },
                )
            )
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
        if actor_type != p.ActorType.CUSTOMER and not self.any_actor_type:
            raise ConnectorFailure(p.ErrorCode.UNKNOWN_ACTOR_TYPE, "Address Book only has customers.")

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        return p.FieldsData(
            fields=[p.FieldInfo(key="owner", label="Owner", type=p.FieldType.TEXT, access=p.FieldAccess.MANDATORY)]
        )

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

    def _project(self, actor: p.Actor, field_keys: list[str]) -> p.Actor:
        unknown = [k for k in field_keys if k not in BY_KEY]
        if unknown and not self.ignore_unknown_fields:
            raise ConnectorFailure(p.ErrorCode.UNKNOWN_FIELD, f"Address Book has no field {', '.join(unknown)}.")
        if not field_keys:
            return actor
        return actor.model_copy(update={"values": {k: actor.values.get(k) for k in field_keys}})

    def get_actors(self, request: p.GetActorsRequest, context: Context) -> p.ActorsData:
        self._known(request.connection_id)
        self._project(self.actors["A1"], request.field_keys)  # unknown fields are refused, found or not
        found = [self._project(self.actors[k], request.field_keys) for k in request.keys if k in self.actors]
        return p.ActorsData(actors=found, missing_keys=[k for k in request.keys if k not in self.actors])

    def search_actors(self, request: p.SearchActorsRequest, context: Context) -> p.SearchData:
        self._known(request.connection_id)
        words = request.text.casefold().split()
        hits = [
            a for a in self.actors.values() if all(w in f"{a.key} {a.values.get('NAME')}".casefold() for w in words)
        ]
        return p.SearchData(
            actors=[self._project(a, request.field_keys) for a in hits[: request.limit]],
            truncated=len(hits) > request.limit,
        )

    def search_actors_advanced(self, request: p.SearchActorsAdvancedRequest, context: Context) -> p.SearchData:
        self._known(request.connection_id)
        for r in request.restrictions:
            if r.field_key not in SEARCHABLE or r.operator not in p.OPERATORS[BY_KEY[r.field_key].type]:
                raise ConnectorFailure(p.ErrorCode.INVALID_REQUEST, f"Cannot search {r.field_key} with {r.operator}.")
        hits = [
            a
            for a in self.actors.values()
            if self.lie_in_search
            or all(
                p.restriction_matches(BY_KEY[r.field_key].type, r.operator, r.values, a.values.get(r.field_key))
                for r in request.restrictions
            )
        ]
        return p.SearchData(
            actors=[self._project(a, request.field_keys) for a in hits[: request.limit]],
            truncated=len(hits) > request.limit,
        )

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData:
        self._known(request.connection_id)
        self._customer(request.actor.actor_type)
        if not request.actor.values.get("NAME") and not self.skip_mandatory:
            raise ConnectorFailure(p.ErrorCode.VALIDATION_FAILED, "Name is required.")
        with self.lock:
            key = f"A{next(self.numbers)}"
            actor = request.actor.model_copy(
                update={"key": key, "last_modified": self._now(), "values": {**request.actor.values, "NUMBER": key}}
            )
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
            elif actor.last_modified and (
                actor.last_modified.isoformat() != current.last_modified.isoformat()  # type: ignore[union-attr]
                if self.compare_spelling
                else not p.same_instant(actor.last_modified, current.last_modified)
            ):
                error = p.ErrorDetail(error_code=p.ErrorCode.CONFLICT, user_explanation={"en": "Changed meanwhile."})
            elif not self.accept_read_only and any(
                BY_KEY[k].access == p.FieldAccess.READ_ONLY and v != current.values.get(k)
                for k, v in actor.values.items()
                if k in BY_KEY
            ):
                error = p.ErrorDetail(error_code=p.ErrorCode.READ_ONLY, user_explanation={"en": "Number is read-only."})
            elif not self.touch_unchanged and all(
                p.same_value(v, current.values.get(k)) for k, v in actor.values.items()
            ):
                results.append(p.SaveResult(key=current.key or "", ok=True, actor=current))
                continue
            else:
                with self.lock:
                    saved = self._store(
                        current.model_copy(
                            update={"values": {**current.values, **actor.values}, "last_modified": self._now()}
                        )
                    )
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
        return p.FeedData(
            actors=[self._project(a, request.field_keys) for a in page],
            next_cursor=cursor,
            has_more=len(ordered) > len(page),
        )

    def _now(self) -> datetime:
        latest = max(a.last_modified for a in self.actors.values() if a.last_modified)
        return max(datetime.now(UTC), latest + timedelta(microseconds=1))
