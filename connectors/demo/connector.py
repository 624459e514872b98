"""Demo ERP's operations, written only against the SDK and the protocol models."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from typing import Any

from connectors import protocol as p
from connectors.sdk import Connector, ConnectorFailure, Context, EncodedData, Notifier
from connectors.sdk.base import method_name
from connectors.sdk.idempotency import reused_key

from . import catalogue as cat
from .latency import Latency
from .store import Removed, Row, Store, decimal_order, fold, from_micros, to_micros
from .watch import ChangeWatcher

E = p.ErrorCode


def say(en: str, sv: str) -> dict[str, str]:
    return {"en": en, "sv": sv}


def _sv(label: str) -> str:
    """An actor field's label in Swedish, as its labels give it."""
    return cat.in_both(label)["sv"]


def _item(key: str, text: str) -> p.ListItem:
    """A list item with its text in English and Swedish (protocol v1.1, capability labels)."""
    return p.ListItem(key=key, text=text, labels=cat.in_both(text))


class DemoConnector(Connector):
    name = "Demo ERP"
    version = "1.0"
    # The SDK checks signatures, with two secrets and their key ids while one is rotated (--next-secret-file).
    capabilities = frozenset(
        {
            p.Capability.KEY_IDS.value,
            p.Capability.IDEMPOTENT_CREATE.value,
            p.Capability.DECIMAL.value,
            p.Capability.TOMBSTONES.value,
            p.Capability.LABELS.value,  # Swedish and English labels of everything it names
            p.Capability.SUGGESTED_DIRECTIONS.value,  # each actor field says which way it is best synced
            p.Capability.CHANGE_NOTIFICATIONS.value,
        }
    )
    watcher: ChangeWatcher | None = None

    def __init__(self, store: Store, api_key: str, *, latency: Latency | None = None) -> None:
        """``latency``: every protocol operation waits that long before it runs, as a real ERP answers in its own
        time; the schema and health pages, served by the SDK, answer at once."""
        self.store = store
        self.api_key = api_key
        self.latency = latency
        store.money_as_decimals(cat.DECIMAL_FIELDS)
        if latency is not None:
            for operation in p.OPERATIONS:
                name = method_name(operation)
                setattr(self, name, latency.delaying(getattr(self, name)))

    # Configuration and connections

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        if context.language != "sv":
            return p.FieldsData(fields=cat.CONFIG_FIELDS_LABELLED)
        translated = []
        for field in cat.CONFIG_FIELDS_LABELLED:
            label, description = cat.CONFIG_FIELDS_SV.get(field.key, (field.label, field.description))
            translated.append(
                field.model_copy(update={"label": label, "description": description or field.description})
            )
        return p.FieldsData(fields=translated)

    def test_config_data(self, request: p.TestConfigDataRequest, context: Context) -> p.Empty:
        self._check_config(request.config, context)
        return p.Empty()

    def save_connection(self, request: p.SaveConnectionRequest, context: Context) -> p.Empty:
        self._check_config(request.config, context)
        self.store.save_connection(request.connection_id, dict(request.config))
        self.store.save_notify_url(request.connection_id, request.notify_url)
        if request.notify_url and self.watcher is not None:
            self.watcher.start()
        return p.Empty()

    def notifications_started(self, notifier: Notifier) -> None:
        """Change notifications (v1.1): the notify URLs kept in the store are registered again, and the store is
        watched once any connection has one, so that every change is told, however it was made."""
        super().notifications_started(notifier)
        self.watcher = ChangeWatcher(self.store, notifier)
        urls = self.store.notify_urls()
        for connection_id, url in urls.items():
            notifier.register(connection_id, url)
        if urls:
            self.watcher.start()

    def test_connection(self, request: p.TestConnectionRequest, context: Context) -> p.Empty:
        self._check_config(self._config(request.connection_id), context)
        return p.Empty()

    def delete_connection(self, request: p.DeleteConnectionRequest, context: Context) -> p.Empty:
        # Idempotent (v1.1): a connection already forgotten, or never known, is forgotten all the same.
        self.store.delete_connection(request.connection_id)
        return p.Empty()

    def _check_config(self, config: dict[str, p.Value], context: Context) -> None:
        fields = {field.key: field for field in cat.CONFIG_FIELDS}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say(f"Unknown settings: {', '.join(unknown)}.", f"Okända inställningar: {', '.join(unknown)}."),
            )
        for field in cat.CONFIG_FIELDS:
            value = config.get(field.key, field.default)
            if field.access == p.FieldAccess.MANDATORY and value in (None, ""):
                raise ConnectorFailure(
                    E.INVALID_CONFIG,
                    say(f"{field.label} is required.", f"{field.label} måste anges."),
                    f"{field.key} is missing",
                )
            problem = p.check_value(field, value)
            if problem:
                raise ConnectorFailure(
                    E.INVALID_CONFIG,
                    say(f"{field.label} has a wrong kind of value.", f"{field.label} har fel sorts värde."),
                    problem,
                )
        if config.get("api_key") != self.api_key:
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say("Demo ERP refused the API key.", "Demo ERP godtog inte API-nyckeln."),
                "api_key does not match the key Demo ERP was started with",
            )
        if config.get("company_number", 1) != 1:
            number = config.get("company_number")
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say(
                    f"Company {number} does not exist in Demo ERP; it has company 1.",
                    f"Företag {number} finns inte i Demo ERP; det har företag 1.",
                ),
            )
        currency = config.get("default_currency", "SEK")
        if currency not in dict(cat.LISTS["currencies"]):
            raise ConnectorFailure(
                E.INVALID_CONFIG, say(f"Demo ERP has no currency {currency}.", f"Demo ERP har ingen valuta {currency}.")
            )
        rate = config.get("vat_rate", 25.0)
        if isinstance(rate, int | float) and not 0 <= rate <= 100:
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say("The VAT rate must be between 0 and 100 %.", "Momssatsen måste vara mellan 0 och 100 %."),
            )
        if rate not in (0, 6, 12, 25, 24, 25.5, 14, 15):
            context.notice(
                p.State.WARNING,
                say(
                    f"{rate} % is not a standard Nordic VAT rate; check it.",
                    f"{rate} % är ingen nordisk standardmomssats; kontrollera den.",
                ),
            )

    def _config(self, connection_id: str) -> dict[str, Any]:
        config = self.store.connection(connection_id)
        if config is None:
            raise self._unknown(connection_id)
        return config

    @staticmethod
    def _unknown(connection_id: str) -> ConnectorFailure:
        return ConnectorFailure(
            E.UNKNOWN_CONNECTION,
            say("Demo ERP does not know this connection.", "Demo ERP känner inte till kopplingen."),
            f"no connection {connection_id}",
        )

    # Metadata

    def get_supported_actor_types(self, request: p.GetSupportedActorTypesRequest, context: Context) -> p.ActorTypesData:
        self._config(request.connection_id)
        return p.ActorTypesData(actor_types=list(cat.FIELDS), labels={t: cat.ACTOR_TYPE_LABELS[t] for t in cat.FIELDS})

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        self._config(request.connection_id)
        self._fields(request.actor_type)
        return p.FieldsData(fields=cat.FIELDS_LABELLED[request.actor_type])

    def get_searchable_fields(self, request: p.GetSearchableFieldsRequest, context: Context) -> p.FieldKeysData:
        self._config(request.connection_id)
        self._fields(request.actor_type)
        return p.FieldKeysData(field_keys=cat.SEARCHABLE[request.actor_type])

    @staticmethod
    def _fields(actor_type: p.ActorType) -> list[p.FieldInfo]:
        if actor_type not in cat.FIELDS:
            raise ConnectorFailure(E.UNKNOWN_ACTOR_TYPE, f"Demo ERP has no {actor_type.value} actors.")
        return cat.FIELDS[actor_type]

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData:
        if request.connection_id is None:
            if request.list_name not in cat.CONFIG_LISTS:
                raise ConnectorFailure(E.UNKNOWN_LIST, f"No configuration list {request.list_name!r}.")
        else:
            self._config(request.connection_id)
        return p.ListData(items=[_item(k, t) for k, t in self._list(request.list_name)])

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> p.ListData:
        if request.connection_id is not None:
            self._config(request.connection_id)
        items = dict(self._list(request.list_name))
        return p.ListData(items=[_item(k, items[k]) for k in request.keys if k in items])

    @staticmethod
    def _list(name: str) -> list[tuple[str, str]]:
        if name not in cat.LISTS:
            raise ConnectorFailure(E.UNKNOWN_LIST, f"Demo ERP has no list {name!r}.")
        return cat.LISTS[name]

    # Reading

    def get_actors(self, request: p.GetActorsRequest, context: Context) -> p.ActorsData | EncodedData:
        self._config(request.connection_id)
        keep = self._projection(request.actor_type, request.field_keys)
        with self.store.read() as db:
            rows = Store.fetch(db, request.actor_type.value, request.keys)
        wanted = list(dict.fromkeys(request.keys))
        missing = json.dumps([key for key in wanted if key not in rows])
        actors = _actors_json([rows[key] for key in wanted if key in rows], keep)
        return EncodedData(f'{{"actors":{actors},"missing_keys":{missing}}}')

    def search_actors(self, request: p.SearchActorsRequest, context: Context) -> p.SearchData | EncodedData:
        self._config(request.connection_id)
        keep = self._projection(request.actor_type, request.field_keys)
        where, params = _text_match("actor_type = ?", [request.actor_type.value], request.text)
        return self._search(where, params, request.limit, keep)

    def search_actor_by_parent(
        self, request: p.SearchActorByParentRequest, context: Context
    ) -> p.SearchData | EncodedData:
        self._config(request.connection_id)
        keep = self._projection(request.actor_type, request.field_keys)
        where, params = _text_match(
            "actor_type = ? AND parent_type = ? AND parent_key = ?",
            [request.actor_type.value, request.parent_actor_type.value, request.parent_key],
            request.text,
        )
        return self._search(where, params, request.limit, keep)

    def search_actors_advanced(
        self, request: p.SearchActorsAdvancedRequest, context: Context
    ) -> p.SearchData | EncodedData:
        self._config(request.connection_id)
        keep = self._projection(request.actor_type, request.field_keys)
        where, params = "actor_type = ?", [request.actor_type.value]
        for restriction in request.restrictions:
            clause, values = self._restriction_sql(request.actor_type, restriction)
            where += f" AND {clause}"
            params.extend(values)
        return self._search(where, params, request.limit, keep)

    def _search(self, where: str, params: list[Any], limit: int, keep: set[str] | None) -> p.SearchData | EncodedData:
        with self.store.read() as db:
            rows = Store.select(db, where, params, "search, key", limit + 1)
        actors = _actors_json(rows[:limit], keep)
        return EncodedData(f'{{"actors":{actors},"truncated":{json.dumps(len(rows) > limit)}}}')

    def _restriction_sql(self, actor_type: p.ActorType, r: p.Restriction) -> tuple[str, list[Any]]:
        if r.field_key in (p.PARENT_KEY, p.PARENT_ACTOR_TYPE):
            column = "parent_key" if r.field_key == p.PARENT_KEY else "parent_type"
            if r.operator not in ("equals", "one_of"):
                raise ConnectorFailure(E.INVALID_REQUEST, f"{r.field_key} takes equals or one_of.")
            return f"{column} IN ({','.join('?' * len(r.values))})", list(r.values)
        if r.field_key not in cat.SEARCHABLE[actor_type]:
            raise ConnectorFailure(E.INVALID_REQUEST, f"{r.field_key} is not searchable for {actor_type.value}.")
        field = cat.FIELD_INDEX[actor_type][r.field_key]
        if r.operator not in p.OPERATORS[field.type]:
            raise ConnectorFailure(
                E.INVALID_REQUEST,
                f"{r.operator} does not apply to {field.type.value} fields; use one of {', '.join(p.OPERATORS[field.type])}.",
            )
        problem = p.operand_count_problem(r.operator, r.values) or next(
            (p.check_value(field, v) for v in r.values if p.check_value(field, v)), None
        )
        if problem:
            raise ConnectorFailure(E.INVALID_REQUEST, f"{r.field_key}: {problem}")
        values = [_stored(field, v) for v in r.values]
        if field.type == p.FieldType.TEXT:
            values = [fold(v) for v in values]
        if field.type == p.FieldType.DECIMAL:
            values = [decimal_order(v) for v in values]
        raw = "json_extract(vals, ?)"
        path = f'$."{r.field_key}"'
        x = (
            f"fold({raw})"
            if field.type == p.FieldType.TEXT
            else f"dec({raw})"
            if field.type == p.FieldType.DECIMAL
            else raw
        )
        op, first = r.operator, values[0]
        if op in ("one_of", "not_one_of"):
            present = [v for v in values if v is not None]
            has_null = None in values
            if op == "one_of":
                listed = f"{x} IN ({','.join('?' * len(present))})" if present else "0"
                return f"({listed} OR ({raw} IS NULL AND ?))", [*([path] if present else []), *present, path, has_null]
            unlisted = f"{x} NOT IN ({','.join('?' * len(present))})" if present else "1"
            clause = f"(({raw} IS NULL AND NOT ?) OR ({raw} IS NOT NULL AND {unlisted}))"
            return clause, [path, has_null, path, *([path] if present else []), *present]
        if op in ("equals", "eq", "is_not", "ne") and first is None:
            return f"{raw} IS {'NOT ' if op in ('is_not', 'ne') else ''}NULL", [path]
        positive = {
            "equals": (f"{x} = ?", [first]),
            "eq": (f"{x} = ?", [first]),
            "is_not": (f"{x} = ?", [first]),
            "ne": (f"{x} = ?", [first]),
            "between": (f"{x} BETWEEN ? AND ?", values),
            "begins": (f"substr({x}, 1, length(?)) = ?", [first, first]),
            "contains": (f"instr({x}, ?) > 0", [first]),
            "ends": (f"(length(?) = 0 OR substr({x}, -length(?)) = ?)", [first, first, first]),
            "gt": (f"{x} > ?", [first]),
            "lt": (f"{x} < ?", [first]),
            "gte": (f"{x} >= ?", [first]),
            "lte": (f"{x} <= ?", [first]),
            "after": (f"{x} > ?", [first]),
            "before": (f"{x} < ?", [first]),
            "after_or_equal": (f"{x} >= ?", [first]),
            "before_or_equal": (f"{x} <= ?", [first]),
        }
        clause, operands = positive[op.removeprefix("not_")]
        ordered = _bind(clause, raw, path, operands)
        if op.startswith("not_") or op in ("is_not", "ne"):
            return f"({raw} IS NULL OR NOT ({clause}))", [path, *ordered]
        return clause, ordered

    def _projection(self, actor_type: p.ActorType, field_keys: list[str]) -> set[str] | None:
        known = cat.FIELD_INDEX[actor_type] if actor_type in cat.FIELDS else self._fields(actor_type)
        unknown = [key for key in field_keys if key not in known]
        if unknown:
            raise ConnectorFailure(E.UNKNOWN_FIELD, f"Demo ERP has no {actor_type.value} field {', '.join(unknown)}.")
        return set(field_keys) or None

    # Change feed

    def get_actors_by_timestamp(
        self, request: p.GetActorsByTimestampRequest, context: Context
    ) -> p.FeedData | EncodedData:
        config = self._config(request.connection_id)
        keep = self._projection(request.actor_type, request.field_keys)
        where, params = "actor_type = ?", [request.actor_type.value]
        params_any: list[Any] = params
        lower_bounds = []
        if config.get("sync_from"):
            lower_bounds.append(_micros(datetime.fromisoformat(str(config["sync_from"])).replace(tzinfo=UTC)))
        if request.cursor:
            try:
                position = p.decode_cursor(request.cursor)
                if position["t"] != request.actor_type.value:
                    raise ValueError("cursor of another actor type")
                modified, key = int(position["m"]), str(position["k"])
            except (ValueError, KeyError, TypeError) as e:
                raise ConnectorFailure(E.INVALID_REQUEST, "The change feed cursor is not valid.", str(e)) from e
            where += " AND (modified_us, key) > (?, ?)"
            params_any += [modified, key]
        elif request.updated_on_or_after is not None:
            lower_bounds.append(_micros(request.updated_on_or_after))
        if lower_bounds:
            where += " AND modified_us >= ?"
            params_any.append(max(lower_bounds))
        with self.store.read() as db:
            found = Store.select(db, where, params_any, "modified_us, key", request.page_size + 1)
            gone = Store.select_removed(db, where, params_any, request.page_size + 1)
        # Actors and tombstones in one order, counted together in the page.
        rows: list[Row | Removed] = sorted([*found, *gone], key=lambda r: (r.modified_us, r.key))
        rows = rows[: request.page_size + 1]
        page = rows[: request.page_size]
        if page:
            last = page[-1]
            cursor = p.encode_cursor({"t": request.actor_type.value, "m": last.modified_us, "k": last.key})
        elif request.cursor:
            cursor = request.cursor
        else:
            start = max(lower_bounds, default=0) - 1
            cursor = p.encode_cursor({"t": request.actor_type.value, "m": start, "k": ""})
        actors = _actors_json([r for r in page if isinstance(r, Row)], keep)
        tombstones = [r.tombstone_json() for r in page if isinstance(r, Removed)]
        extra = f',"tombstones":[{",".join(tombstones)}]' if tombstones else ""
        return EncodedData(
            f'{{"actors":{actors},"next_cursor":{json.dumps(cursor)},'
            f'"has_more":{json.dumps(len(rows) > len(page))}{extra}}}'
        )

    # Writing

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData:
        config = self._config(request.connection_id)
        self._writable(config)
        actor = request.actor
        if actor.key is not None:
            raise ConnectorFailure(E.INVALID_REQUEST, "A new actor has no key yet; Demo ERP gives it one.")
        self._fields(actor.actor_type)
        with self.store.write() as db:
            if request.idempotency_key is not None:
                remembered = self._created_before(db, request)
                if remembered is not None:
                    return p.ActorData(actor=_actor(remembered, None))
            values = self._validated(db, actor, None, config)
            number = Store.next_numbers(db, f"key:{actor.actor_type.value}", 1, 100001)
            key = f"{cat.KEY_PREFIX[actor.actor_type]}{number}"
            values[cat.KEY_FIELD[actor.actor_type]] = key
            row = Row.of(
                actor.actor_type.value, key, _enum(actor.parent_actor_type), actor.parent_key, Store.tick(db), values
            )
            Store.insert(db, [_insert_tuple(row)])
            if request.idempotency_key is not None:
                Store.remember_created(db, request.connection_id, request.idempotency_key, row.actor_type, key)
        return p.ActorData(actor=_actor(row, None))

    @staticmethod
    def _created_before(db: sqlite3.Connection, request: p.CreateActorRequest) -> Row | None:
        """The actor already created for the request's idempotency key, as it is now; None for a new key."""
        assert request.idempotency_key is not None
        remembered = Store.created_for(db, request.connection_id, request.idempotency_key)
        if remembered is None:
            return None
        actor_type, key = remembered
        if actor_type != request.actor.actor_type.value:
            raise reused_key(p.ActorType(actor_type))
        row = Store.fetch(db, actor_type, [key]).get(key)
        if row is None:
            raise ConnectorFailure(
                E.ACTOR_NOT_FOUND,
                say(
                    f"{actor_type} {key}, created for this request before, no longer exists in Demo ERP.",
                    f"{actor_type} {key}, som skapades för den här begäran tidigare, finns inte längre i Demo ERP.",
                ),
                "the actor created for this idempotency key was deleted since",
            )
        return row

    def save_actors(self, request: p.SaveActorsRequest, context: Context) -> p.SaveActorsData:
        config = self._config(request.connection_id)
        self._writable(config)
        results = []
        for actor in request.actors:
            try:
                results.append(self._save_one(actor, config))
            except ConnectorFailure as failure:
                detail = p.ErrorDetail(
                    error_code=failure.code, user_explanation=failure.user, technical_explanation=failure.technical
                )
                results.append(p.SaveResult(key=actor.key or "", ok=False, error=detail))
        return p.SaveActorsData(results=results)

    def _save_one(self, actor: p.Actor, config: dict[str, Any]) -> p.SaveResult:
        if actor.key is None:
            raise ConnectorFailure(E.INVALID_REQUEST, "SaveActors updates existing actors; give each one its key.")
        self._fields(actor.actor_type)
        with self.store.write() as db:
            current = Store.fetch(db, actor.actor_type.value, [actor.key]).get(actor.key)
            if current is None:
                raise ConnectorFailure(E.ACTOR_NOT_FOUND, f"{actor.actor_type.value} {actor.key} does not exist.")
            if actor.last_modified is not None and _micros(actor.last_modified) != current.modified_us:
                raise ConnectorFailure(
                    E.CONFLICT,
                    say(
                        f"{actor.actor_type.value} {actor.key} was changed in Demo ERP meanwhile.",
                        f"{actor.actor_type.value} {actor.key} har ändrats i Demo ERP under tiden.",
                    ),
                    "last_modified does not match; read the actor again",
                )
            values = self._validated(db, actor, current, config)
            parent_type = _enum(actor.parent_actor_type) if actor.parent_key else current.parent_type
            parent_key = actor.parent_key or current.parent_key
            row = Row.of(current.actor_type, current.key, parent_type, parent_key, current.modified_us, values)
            before = current.values
            changed = any(not p.same_value(values.get(k), before.get(k)) for k in values.keys() | before.keys())
            if changed or (parent_type, parent_key) != (current.parent_type, current.parent_key):
                modified = Store.tick(db)
                Store.update(db, row, modified, _search_text(row))
                row = Row(row.actor_type, row.key, row.parent_type, row.parent_key, modified, row.vals_json)
        return p.SaveResult(key=row.key, ok=True, actor=_actor(row, None))

    @staticmethod
    def _writable(config: dict[str, Any]) -> None:
        if config.get("read_only"):
            raise ConnectorFailure(
                E.READ_ONLY,
                say(
                    "This connection is read-only: Demo ERP accepts no changes through it.",
                    "Kopplingen är skrivskyddad: Demo ERP tar inte emot ändringar via den.",
                ),
            )

    def _validated(
        self, db: sqlite3.Connection, actor: p.Actor, current: Row | None, config: dict[str, Any]
    ) -> dict[str, Any]:
        fields = cat.FIELD_INDEX[actor.actor_type]
        values = dict(current.values) if current else {}
        for key, value in actor.values.items():
            field = fields.get(key)
            if field is None:
                raise ConnectorFailure(E.UNKNOWN_FIELD, f"Demo ERP has no {actor.actor_type.value} field {key}.")
            problem = p.check_value(field, value)
            if problem:
                raise ConnectorFailure(
                    E.VALIDATION_FAILED,
                    say(f"{field.label}: not a valid value.", f"{_sv(field.label)}: ogiltigt värde."),
                    problem,
                )
            stored = _stored(field, value)
            if field.access == p.FieldAccess.READ_ONLY:
                if stored != values.get(key):
                    raise ConnectorFailure(
                        E.READ_ONLY,
                        say(
                            f"{field.label} is set by Demo ERP and cannot be changed.",
                            f"{_sv(field.label)} sätts av Demo ERP och kan inte ändras.",
                        ),
                        f"{key} is read-only",
                    )
                continue
            if (
                field.type == p.FieldType.LIST
                and stored is not None
                and stored not in dict(cat.LISTS[field.list_name or ""])
            ):
                raise ConnectorFailure(
                    E.VALIDATION_FAILED,
                    say(
                        f"{field.label}: Demo ERP has no item {stored!r}.",
                        f"{_sv(field.label)}: Demo ERP har inget värde {stored!r}.",
                    ),
                )
            values[key] = stored
        if current is None:
            self._defaults(actor.actor_type, values, config)
        for field in fields.values():
            if field.access == p.FieldAccess.MANDATORY and values.get(field.key) in (None, ""):
                raise ConnectorFailure(
                    E.VALIDATION_FAILED,
                    say(f"{field.label} is required.", f"{_sv(field.label)} måste anges."),
                    f"{field.key} is mandatory",
                )
        parent_key = actor.parent_key
        if parent_key is not None:
            allowed = cat.PARENTS.get(actor.actor_type, ())
            if actor.parent_actor_type not in allowed:
                raise ConnectorFailure(
                    E.VALIDATION_FAILED,
                    f"A {actor.actor_type.value} cannot belong to a {_enum(actor.parent_actor_type)}.",
                )
            assert actor.parent_actor_type is not None
            if not Store.fetch(db, actor.parent_actor_type.value, [parent_key]):
                raise ConnectorFailure(
                    E.VALIDATION_FAILED, f"{actor.parent_actor_type.value} {parent_key} does not exist."
                )
        return values

    @staticmethod
    def _defaults(actor_type: p.ActorType, values: dict[str, Any], config: dict[str, Any]) -> None:
        if actor_type in (p.ActorType.CUSTOMER, p.ActorType.SUPPLIER):
            values.setdefault("CURRENCY", config.get("default_currency") or "SEK")
            values.setdefault("BLOCKED", False)
            values["BALANCE"] = "0.00"
        if actor_type == p.ActorType.CUSTOMER:
            values["INVOICE_COUNT"] = 0
            values["CUSTOMER_SINCE"] = date.today().isoformat()
        if actor_type == p.ActorType.PROJECT:
            values["HOURS_LOGGED"] = 0
            values.setdefault("STATUS", "PLAN")


def _text_match(where: str, params: list[Any], text: str) -> tuple[str, list[Any]]:
    """Add simple search: every word of ``text`` must occur in the actor's search text, ignoring case."""
    for word in fold(text).split()[:8]:
        where += " AND instr(search, ?) > 0"
        params = [*params, word]
    return where, params


def _bind(clause: str, raw: str, path: str, operands: list[Any]) -> list[Any]:
    """Parameters for ``clause`` in order: the JSON path for every json_extract, operands for the rest."""
    params: list[Any] = []
    remaining = iter(operands)
    position = 0
    while True:
        next_raw = clause.find(raw, position)
        next_mark = clause.find("?", position)
        if next_mark == -1:
            return params
        if next_raw != -1 and next_raw < next_mark:
            params.append(path)
            position = next_raw + len(raw)
        else:
            params.append(next(remaining))
            position = next_mark + 1


def _enum(value: p.ActorType | None) -> str | None:
    return value.value if value is not None else None


_micros = to_micros


def _stored(field: p.FieldInfo, value: p.Value) -> p.Value:
    """Values as Demo ERP stores them: datetimes in UTC with microseconds, doubles as floats."""
    if value is None or value == "":
        return None  # "" and null are both empty: kept as null, so that saving "" over null changes nothing
    if field.type == p.FieldType.DATETIME:
        moment = datetime.fromisoformat(str(value))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment.isoformat(timespec="microseconds")
    if field.type == p.FieldType.DOUBLE:
        return float(value)
    if field.type == p.FieldType.DECIMAL:
        return p.decimal_value(p.parse_decimal(value), field.decimal_places)
    return value


def _search_text(row: Row) -> str:
    words = [row.key, *(str(row.values.get(k) or "") for k in cat.SEARCH_TEXT[p.ActorType(row.actor_type)])]
    return fold(" ".join(w for w in words if w))


def _insert_tuple(row: Row) -> tuple[Any, ...]:
    return (row.actor_type, row.key, row.parent_type, row.parent_key, row.modified_us, _search_text(row), row.vals_json)


def _actors_json(rows: list[Row], keep: set[str] | None) -> str:
    """Actors as protocol JSON, using the stored values' JSON as it is when all fields are wanted."""
    parts = []
    for row in rows:
        values = row.vals_json if keep is None else json.dumps({key: row.values.get(key) for key in keep})
        parent = f'"{row.parent_type}"' if row.parent_type else "null"
        parent_key = json.dumps(row.parent_key)
        parts.append(
            f'{{"actor_type":"{row.actor_type}","key":{json.dumps(row.key)},'
            f'"last_modified":"{from_micros(row.modified_us).isoformat()}",'
            f'"parent_actor_type":{parent},"parent_key":{parent_key},"values":{values}}}'
        )
    return "[" + ",".join(parts) + "]"


def _actor(row: Row, keep: set[str] | None) -> p.Actor:
    values = row.values if keep is None else {key: row.values.get(key) for key in keep}
    return p.Actor.model_construct(
        actor_type=p.ActorType(row.actor_type),
        key=row.key,
        last_modified=row.last_modified,
        parent_actor_type=p.ActorType(row.parent_type) if row.parent_type else None,
        parent_key=row.parent_key,
        values=values,
    )
