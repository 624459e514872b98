"""The Tryton connector: erpsync's protocol on one side, Tryton's JSON-RPC on the other (SDK only)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from connectors import protocol as p
from connectors.sdk import Connector, ConnectorFailure, Context

from . import catalogue as cat
from . import rpc

E = p.ErrorCode
A = p.ActorType
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OVERLAP = timedelta(seconds=5)  # Tryton stamps a whole transaction with one time; late commits land behind
MEMO_SECONDS = 30.0
EU_VAT_PREFIXES = {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT", "LT",
                   "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI"}  # fmt: skip
SCAN_LIMIT = 5000  # candidates read for a search whose criteria Tryton cannot apply itself
READ_FIELDS = ["name", "code", "lang.code", "create_date", "write_date", "identifiers.code",
               "identifiers.create_date", "identifiers.write_date", "addresses.street", "addresses.postal_code",
               "addresses.city", "addresses.country.code", "addresses.create_date", "addresses.write_date",
               "contact_mechanisms.type", "contact_mechanisms.value", "contact_mechanisms.create_date",
               "contact_mechanisms.write_date"]  # fmt: skip
PROJECT_FIELDS = ["name", "number", "comment", "status", "timesheet_duration", "party", "create_date", "write_date"]
T = TypeVar("T")


class ConfigStore:
    """Connections' configurations by id, in a JSON file only this process's user can read (it holds passwords)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, connection_id: str) -> dict[str, Any] | None:
        return self.data.get(connection_id)

    def put(self, connection_id: str, config: dict[str, Any] | None) -> bool:
        with self.lock:
            existed = connection_id in self.data
            if config is None:
                self.data.pop(connection_id, None)
            else:
                self.data[connection_id] = config
            temporary = self.path.with_suffix(".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(self.data, handle)
            temporary.replace(self.path)
            return existed


def say(en: str, sv: str) -> dict[str, str]:
    return {"en": en, "sv": sv}


def _micros(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1_000_000) if moment.tzinfo else _micros(moment.replace(tzinfo=UTC))


def _latest(*moments: Any) -> datetime:
    return max((m for m in moments if isinstance(m, datetime)), default=EPOCH)


def _modified(row: dict[str, Any]) -> datetime:
    """A record's last change: its own dates and those of the children read with it (``addresses.`` …)."""
    children = [c for name in ("addresses.", "contact_mechanisms.", "identifiers.") for c in row.get(name) or []]
    return _latest(row.get("create_date"), row.get("write_date"),
                   *(c.get(k) for c in children for k in ("create_date", "write_date")))  # fmt: skip


class TrytonConnector(Connector):
    name = "Tryton"
    version = "1.0"

    def __init__(self, store: ConfigStore) -> None:
        self.store = store
        self._memo: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._memo_lock = threading.Lock()

    def _remember(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Tryton's setup (modules, categories, the company) changes rarely: kept for MEMO_SECONDS."""
        now = time.monotonic()
        with self._memo_lock:
            hit = self._memo.get(key)
        if hit is not None and hit[0] > now:
            return cast(T, hit[1])
        value = compute()
        with self._memo_lock:
            self._memo[key] = (now + MEMO_SECONDS, value)
        return value

    # Configuration

    def get_config_data(self, request: p.GetConfigDataRequest, context: Context) -> p.FieldsData:
        return p.FieldsData(fields=cat.CONFIG_FIELDS)

    def test_config_data(self, request: p.TestConfigDataRequest, context: Context) -> p.Empty:
        self._check(dict(request.config), context)
        return p.Empty()

    def save_connection(self, request: p.SaveConnectionRequest, context: Context) -> p.Empty:
        config = dict(request.config)
        self._check(config, context)
        self.store.put(request.connection_id, config)
        return p.Empty()

    def test_connection(self, request: p.TestConnectionRequest, context: Context) -> p.Empty:
        self._check(self._config(request.connection_id), context)
        return p.Empty()

    def delete_connection(self, request: p.DeleteConnectionRequest, context: Context) -> p.Empty:
        if not self.store.put(request.connection_id, None):
            raise self._unknown(request.connection_id)
        return p.Empty()

    def _config(self, connection_id: str) -> dict[str, Any]:
        config = self.store.get(connection_id)
        if config is None:
            raise self._unknown(connection_id)
        return config

    @staticmethod
    def _unknown(connection_id: str) -> ConnectorFailure:
        return ConnectorFailure(E.UNKNOWN_CONNECTION, say("The Tryton connector does not know this connection.",
                                                          "Tryton-kopplingen känner inte till kopplingen."),
                                f"no connection {connection_id}")  # fmt: skip

    def _session(self, config: dict[str, Any]) -> rpc.Session:
        return rpc.session_for(str(config.get("server_url") or ""), str(config.get("database") or ""),
                               str(config.get("user") or ""), str(config.get("password") or ""),
                               str(config.get("language") or "en"))  # fmt: skip

    @contextmanager
    def _tryton(self) -> Iterator[None]:
        """Tryton's failures as protocol failures, with Tryton's own words for people."""
        try:
            yield
        except rpc.Unreachable as error:
            raise ConnectorFailure(E.UNAVAILABLE, say("Tryton cannot be reached right now.",
                                                      "Tryton går inte att nå just nu."), str(error)) from error  # fmt: skip
        except rpc.LoginRefused as error:
            raise ConnectorFailure(E.INVALID_CONFIG, say("Tryton refused the user name or password.",
                                                         "Tryton godtog inte användarnamnet eller lösenordet."),
                                   str(error)) from error  # fmt: skip
        except rpc.UnknownDatabase as error:
            raise ConnectorFailure(E.INVALID_CONFIG, say("Tryton has no database by that name.",
                                                         "Tryton har ingen databas med det namnet."), str(error)) from error  # fmt: skip
        except rpc.Concurrency as error:
            raise ConnectorFailure(E.CONFLICT, say("Someone changed it in Tryton at the same moment; try again.",
                                                   "Någon ändrade den i Tryton samtidigt; försök igen."), str(error)) from error  # fmt: skip
        except rpc.UserError as error:
            raise ConnectorFailure(E.VALIDATION_FAILED, str(error), str(error)) from error
        except rpc.Fault as error:
            raise ConnectorFailure(E.INTERNAL_ERROR, say("Tryton answered with an error.", "Tryton svarade med ett fel."),
                                   str(error)) from error  # fmt: skip

    def _check(self, config: dict[str, Any], context: Context) -> None:
        """Log in and check every model, module and name the configuration relies on; say what is missing."""
        known = {field.key for field in cat.CONFIG_FIELDS}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConnectorFailure(E.INVALID_CONFIG, f"Unknown settings: {', '.join(unknown)}.")
        for field in cat.CONFIG_FIELDS:
            if field.access == p.FieldAccess.MANDATORY and config.get(field.key) in (None, ""):
                raise ConnectorFailure(
                    E.INVALID_CONFIG, say(f"{field.label} is required.", f"{field.label} måste anges.")
                )
        url = str(config["server_url"])
        if not url.startswith(("http://", "https://")):
            raise ConnectorFailure(E.INVALID_CONFIG, say("The server URL must start with http:// or https://.",
                                                         "Serverns URL måste börja med http:// eller https://."))  # fmt: skip
        with self._tryton():
            session = self._session(config)
            modules = self._modules(session, fresh=True)
            if "party" not in modules:
                raise ConnectorFailure(E.INVALID_CONFIG, say(
                    "The Tryton module party is not activated in this database.",
                    "Tryton-modulen party är inte aktiverad i databasen."))  # fmt: skip
            for actor_type, setting in cat.CATEGORY_SETTING.items():
                name = config.get(setting)
                if name and not session.call("model.party.category.search", [["name", "=", name]], 0, 1, None, {}):
                    raise ConnectorFailure(E.INVALID_CONFIG, say(
                        f"Tryton has no party category {name!r} for {actor_type.value.lower()}s: create it under "
                        "Party → Configuration → Categories, or change the setting.",
                        f"Tryton har ingen partkategori {name!r}: skapa den under Part → Konfiguration → Kategorier, "
                        "eller ändra inställningen."))  # fmt: skip
            relation = config.get("person_relation")
            if relation:
                if "party_relationship" not in modules:
                    raise ConnectorFailure(E.INVALID_CONFIG, say(
                        "Persons need the Tryton module party_relationship, which is not activated; activate it or "
                        "leave the relation type empty.",
                        "Personer kräver Tryton-modulen party_relationship, som inte är aktiverad; aktivera den "
                        "eller lämna relationstypen tom."))  # fmt: skip
                if not session.call("model.party.relation.type.search", [["name", "=", relation]], 0, 1, None, {}):
                    raise ConnectorFailure(E.INVALID_CONFIG, say(
                        f"Tryton has no party relation type {relation!r}: create it under Party → Configuration → "
                        "Relation Types, or change the setting.",
                        f"Tryton har ingen relationstyp {relation!r}: skapa den eller ändra inställningen."))  # fmt: skip
            company = config.get("company")
            if company:
                if "project" not in modules:
                    raise ConnectorFailure(E.INVALID_CONFIG, say(
                        "Projects need the Tryton module project, which is not activated; activate it or leave the "
                        "company empty.",
                        "Projekt kräver Tryton-modulen project, som inte är aktiverad; aktivera den eller lämna "
                        "företaget tomt."))  # fmt: skip
                if self._company(session, config, fresh=True) is None:
                    raise ConnectorFailure(E.INVALID_CONFIG, say(f"Tryton has no company {company!r}.",
                                                                 f"Tryton har inget företag {company!r}."))  # fmt: skip
            # The user's rights on every model the connection will read and write.
            wanted = ["party.party", "party.address", "party.contact_mechanism", "party.identifier"]
            if relation:
                wanted.append("party.relation")
            if company:
                wanted.append("project.work")
            access = session.call("model.ir.model.access.get_access", wanted, {})
            missing = [f"{right} {model}" for model in wanted for right in ("read", "write", "create")
                       if not access.get(model, {}).get(right)]  # fmt: skip
            if missing:
                raise ConnectorFailure(E.INVALID_CONFIG, say(
                    f"The Tryton user {config['user']!r} lacks these rights: {', '.join(missing)}.",
                    f"Tryton-användaren {config['user']!r} saknar rättigheterna: {', '.join(missing)}."))  # fmt: skip

    def _modules(self, session: rpc.Session, fresh: bool = False) -> set[str]:
        def read() -> set[str]:
            rows = session.call(
                "model.ir.module.search_read", [["state", "=", "activated"]], 0, None, None, ["name"], {}
            )
            return {row["name"] for row in rows}

        return read() if fresh else self._remember(("modules", session.url, session.database), read)

    def _company(self, session: rpc.Session, config: dict[str, Any], fresh: bool = False) -> int | None:
        def read() -> int | None:
            rows = session.call("model.company.company.search", [["party.name", "=", config.get("company")]], 0, 1,
                                None, {})  # fmt: skip
            return rows[0] if rows else None

        key = ("company", session.url, session.database, config.get("company"))
        return read() if fresh else self._remember(key, read)

    def _context(self, session: rpc.Session, config: dict[str, Any]) -> dict[str, Any]:
        company = self._company(session, config) if config.get("company") else None
        return {"company": company, "companies": [company]} if company else {}

    # Metadata

    def _types(self, config: dict[str, Any], session: rpc.Session) -> list[p.ActorType]:
        types = [t for t, setting in cat.CATEGORY_SETTING.items() if config.get(setting)]
        modules = self._modules(session)
        if config.get("person_relation") and "party_relationship" in modules:
            types.append(A.PERSON)
        if config.get("company") and "project" in modules:
            types.append(A.PROJECT)
        return types

    def _actor_type(self, config: dict[str, Any], session: rpc.Session, actor_type: p.ActorType) -> None:
        if actor_type not in self._types(config, session):
            raise ConnectorFailure(E.UNKNOWN_ACTOR_TYPE, f"This Tryton connection does not offer {actor_type.value}.")

    def get_supported_actor_types(self, request: p.GetSupportedActorTypesRequest, context: Context) -> p.ActorTypesData:
        config = self._config(request.connection_id)
        with self._tryton():
            return p.ActorTypesData(actor_types=self._types(config, self._session(config)))

    def get_supported_actor_type_fields(self, request: p.GetSupportedActorTypeFieldsRequest,
                                        context: Context) -> p.FieldsData:  # fmt: skip
        config = self._config(request.connection_id)
        with self._tryton():
            self._actor_type(config, self._session(config), request.actor_type)
        return p.FieldsData(fields=cat.FIELDS[request.actor_type])

    def get_searchable_fields(self, request: p.GetSearchableFieldsRequest, context: Context) -> p.FieldKeysData:
        config = self._config(request.connection_id)
        with self._tryton():
            self._actor_type(config, self._session(config), request.actor_type)
        return p.FieldKeysData(field_keys=cat.SEARCHABLE[request.actor_type])

    # Lists

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData:
        if request.connection_id is None:
            if request.list_name not in cat.CONFIG_LISTS:
                raise ConnectorFailure(E.UNKNOWN_LIST, f"No configuration list {request.list_name!r}.")
            return p.ListData(items=[p.ListItem(key=k, text=t) for k, t in cat.CONFIG_LISTS[request.list_name]])
        config = self._config(request.connection_id)
        with self._tryton():
            return p.ListData(items=[p.ListItem(key=k, text=t) for k, t in self._list(config, request.list_name)])

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> p.ListData:
        if request.connection_id is None:
            items = dict(cat.CONFIG_LISTS.get(request.list_name, []))
        else:
            config = self._config(request.connection_id)
            with self._tryton():
                items = dict(self._list(config, request.list_name))
        return p.ListData(items=[p.ListItem(key=k, text=items[k]) for k in request.keys if k in items])

    def _list(self, config: dict[str, Any], name: str) -> list[tuple[str, str]]:
        session = self._session(config)
        if name == "countries":
            rows = session.call(
                "model.country.country.search_read", [], 0, None, [["name", "ASC"]], ["code", "name"], {}
            )
            return [(row["code"], row["name"]) for row in rows if row.get("code")]
        if name == "languages":
            rows = session.call("model.ir.lang.search_read", [], 0, None, [["name", "ASC"]], ["code", "name"], {})
            return [(row["code"], row["name"]) for row in rows]
        if name == "project_status":
            rows = session.call("model.project.work.status.search_read", [["types", "in", ["project"]]], 0, None,
                                None, ["name"], {})  # fmt: skip
            return [(str(row["id"]), row["name"]) for row in rows]
        raise ConnectorFailure(E.UNKNOWN_LIST, f"The Tryton connector has no list {name!r}.")

    # Reading parties and projects as actors

    def _category(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType) -> int:
        name = config.get(cat.CATEGORY_SETTING[actor_type])
        found = self._remember(("category", session.url, session.database, name), lambda: session.call(
            "model.party.category.search", [["name", "=", name]], 0, 1, None, {}))  # fmt: skip
        if not found:
            raise ConnectorFailure(E.INVALID_CONFIG, f"Tryton has no party category {name!r}.")
        return int(found[0])

    def _relation_type(self, session: rpc.Session, config: dict[str, Any]) -> int:
        name = config.get("person_relation")
        found = self._remember(("relation", session.url, session.database, name), lambda: session.call(
            "model.party.relation.type.search", [["name", "=", name]], 0, 1, None, {}))  # fmt: skip
        if not found:
            raise ConnectorFailure(E.INVALID_CONFIG, f"Tryton has no relation type {name!r}.")
        return int(found[0])

    def _base_domain(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType) -> list[Any]:
        if actor_type in cat.ORGANISATIONS:
            return [["categories", "in", [self._category(session, config, actor_type)]]]
        if actor_type == A.PERSON:
            kind = self._relation_type(session, config)
            return [["relations.type", "=", kind]]
        return [["type", "=", "project"]]

    def _read(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType, ids: list[int],
              keep: set[str] | None = None) -> list[p.Actor]:  # fmt: skip
        """Read records and turn them into actors, in the order of ``ids``."""
        actors: list[p.Actor] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            if actor_type == A.PROJECT:
                rows = session.call("model.project.work.read", chunk, PROJECT_FIELDS, self._context(session, config))
                actors += [self._project(row, keep) for row in rows]
                continue
            rows = session.call("model.party.party.read", chunk, READ_FIELDS, {})
            parents: dict[int, tuple[str, int]] = {}
            if actor_type == A.PERSON:
                parents = self._parents(session, config, chunk)
            actors += [self._party(row, actor_type, keep, parents.get(row["id"])) for row in rows]
        # Tryton answers a read in its own order: put the actors back in the order asked for.
        position = {str(key): index for index, key in enumerate(ids)}
        return sorted(actors, key=lambda actor: position[actor.key or ""])

    def _parents(
        self, session: rpc.Session, config: dict[str, Any], person_ids: list[int]
    ) -> dict[int, tuple[str, int]]:
        rows = session.call("model.party.relation.all.search_read",
                            [["from_", "in", person_ids], ["type", "=", self._relation_type(session, config)]], 0, None,
                            None, ["from_", "to", "to.categories"], {})  # fmt: skip
        categories = {
            self._category(session, config, t): t for t in cat.ORGANISATIONS if config.get(cat.CATEGORY_SETTING[t])
        }
        parents = {}
        for row in rows:
            kinds = [categories[c] for c in row.get("to.", {}).get("categories", []) if c in categories]
            if kinds:
                parents[row["from_"]] = (kinds[0].value, row["to"])
        return parents

    def _stamps(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType,
                ids: list[int]) -> dict[int, datetime]:  # fmt: skip
        """Each record's last change: its own dates and, for a party, those of its addresses, contact
        mechanisms and identifiers (Tryton does not touch the party when only those change)."""
        stamps: dict[int, datetime] = {}
        fields = ["create_date", "write_date"]
        model = "model.project.work" if actor_type == A.PROJECT else "model.party.party"
        if actor_type != A.PROJECT:
            fields += [f"{child}.{date}" for child in ("addresses", "contact_mechanisms", "identifiers")
                       for date in ("create_date", "write_date")]  # fmt: skip
        for start in range(0, len(ids), 1000):
            for row in session.call(f"{model}.read", ids[start : start + 1000], fields, self._context(session, config)):
                stamps[row["id"]] = _modified(row)
        return stamps

    @staticmethod
    def _party(row: dict[str, Any], actor_type: p.ActorType, keep: set[str] | None,
               parent: tuple[str, int] | None) -> p.Actor:  # fmt: skip
        addresses = row.get("addresses.") or []
        mechanisms = row.get("contact_mechanisms.") or []
        identifiers = row.get("identifiers.") or []
        first_address = addresses[0] if addresses else {}

        def mechanism(kind: str) -> str | None:
            return next((m["value"] for m in mechanisms if m["type"] == kind and m.get("value")), None)

        name = row.get("name") or ""
        if actor_type == A.PERSON:
            first, _, last = name.rpartition(" ")
            if not first:  # one word: a first name
                first, last = last, ""
            values: dict[str, Any] = {"NUMBER": row.get("code"), "NAME": name or None, "FIRSTNAME": first or None,
                                      "LASTNAME": last or None,
                                      "EMAIL": mechanism("email"), "PHONE_DIRECT": mechanism("phone"),
                                      "PHONE_MOBILE": mechanism("mobile")}  # fmt: skip
        else:
            values = {"NUMBER2": row.get("code"), "NAME": name or None,
                      "VATNO": identifiers[0]["code"] if identifiers else None,
                      "PHONE": mechanism("phone"), "EMAIL": mechanism("email"), "URL": mechanism("website"),
                      "POSTALAD1": first_address.get("street") or None,
                      "POSTALZIP": first_address.get("postal_code") or None,
                      "POSTALCITY": first_address.get("city") or None,
                      "COUNTRY": (first_address.get("country.") or {}).get("code"),
                      "LANGUAGE": (row.get("lang.") or {}).get("code")}  # fmt: skip
        return p.Actor(actor_type=actor_type, key=str(row["id"]), last_modified=_modified(row),
                       parent_actor_type=p.ActorType(parent[0]) if parent else None,
                       parent_key=str(parent[1]) if parent else None,
                       values={k: v for k, v in values.items() if keep is None or k in keep})  # fmt: skip

    @staticmethod
    def _project(row: dict[str, Any], keep: set[str] | None) -> p.Actor:
        duration = row.get("timesheet_duration")
        hours = round(duration.total_seconds() / 3600, 2) if isinstance(duration, timedelta) else None
        values = {"NUMBER": row.get("number"), "NAME": row.get("name"), "TEXT": row.get("comment") or None,
                  "STATUS": str(row["status"]) if row.get("status") else None, "HOURS_LOGGED": hours}  # fmt: skip
        return p.Actor(actor_type=A.PROJECT, key=str(row["id"]), last_modified=_modified(row),
                       parent_actor_type=A.CUSTOMER if row.get("party") else None,
                       parent_key=str(row["party"]) if row.get("party") else None,
                       values={k: v for k, v in values.items() if keep is None or k in keep})  # fmt: skip

    def _projection(self, actor_type: p.ActorType, field_keys: list[str]) -> set[str] | None:
        unknown = [key for key in field_keys if key not in cat.INDEX[actor_type]]
        if unknown:
            raise ConnectorFailure(E.UNKNOWN_FIELD, f"Tryton has no {actor_type.value} field {', '.join(unknown)}.")
        return set(field_keys) or None

    def _ids(self, keys: list[str]) -> list[int]:
        return [int(k) for k in dict.fromkeys(keys) if k.isdigit()]

    def _prepare(self, request: Any) -> tuple[dict[str, Any], rpc.Session]:
        config = self._config(request.connection_id)
        session = self._session(config)
        self._actor_type(config, session, request.actor_type)
        return config, session

    def get_actors(self, request: p.GetActorsRequest, context: Context) -> p.ActorsData:
        keep = self._projection(request.actor_type, request.field_keys)
        with self._tryton():
            config, session = self._prepare(request)
            ids = self._ids(request.keys)
            model = "model.project.work" if request.actor_type == A.PROJECT else "model.party.party"
            existing = set(session.call(f"{model}.search", [["id", "in", ids], *self._base_domain(session, config, request.actor_type)],
                                        0, None, None, self._context(session, config)))  # fmt: skip
            actors = {
                a.key: a
                for a in self._read(session, config, request.actor_type, [i for i in ids if i in existing], keep)
            }
        wanted = list(dict.fromkeys(request.keys))
        return p.ActorsData(actors=[actors[k] for k in wanted if k in actors],
                            missing_keys=[k for k in wanted if k not in actors])  # fmt: skip

    # Searching

    def _text_domain(self, actor_type: p.ActorType, text: str) -> list[Any]:
        """Every word in the name or the code (a project's number)."""
        code = "number" if actor_type == A.PROJECT else "code"
        return [["OR", ["name", "ilike", f"%{_escape(word)}%"], [code, "ilike", f"%{_escape(word)}%"]]
                for word in text.split()]  # fmt: skip

    def search_actors(self, request: p.SearchActorsRequest, context: Context) -> p.SearchData:
        keep = self._projection(request.actor_type, request.field_keys)
        with self._tryton():
            config, session = self._prepare(request)
            domain = self._base_domain(session, config, request.actor_type) + self._text_domain(
                request.actor_type, request.text
            )
            return self._found(session, config, request.actor_type, domain, request.limit, keep)

    def search_actor_by_parent(self, request: p.SearchActorByParentRequest, context: Context) -> p.SearchData:
        keep = self._projection(request.actor_type, request.field_keys)
        with self._tryton():
            config, session = self._prepare(request)
            domain = self._base_domain(session, config, request.actor_type) + self._text_domain(
                request.actor_type, request.text
            )
            domain += self._parent_domain(session, config, request.actor_type, [request.parent_key])
            return self._found(session, config, request.actor_type, domain, request.limit, keep)

    def _parent_domain(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType,
                       parent_keys: list[Any]) -> list[Any]:  # fmt: skip
        ids = self._ids([str(k) for k in parent_keys])
        if actor_type == A.PROJECT:
            return [["party", "in", ids]]
        if actor_type == A.PERSON:
            kind = self._relation_type(session, config)
            people = session.call("model.party.relation.all.search_read", [["to", "in", ids], ["type", "=", kind]], 0, None,
                                  None, ["from_"], {})  # fmt: skip
            return [["id", "in", [row["from_"] for row in people]]]
        return [["id", "=", -1]]  # organisations have no parent

    def _found(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType, domain: list[Any],
               limit: int, keep: set[str] | None, check: Callable[[p.Actor], bool] | None = None) -> p.SearchData:  # fmt: skip
        model = "model.project.work" if actor_type == A.PROJECT else "model.party.party"
        context = self._context(session, config)
        if check is None:
            ids = session.call(f"{model}.search", domain, 0, limit + 1, [["name", "ASC"], ["id", "ASC"]], context)
            actors = self._read(session, config, actor_type, ids[:limit], keep)
            return p.SearchData(actors=actors, truncated=len(ids) > limit)
        ids = session.call(f"{model}.search", domain, 0, SCAN_LIMIT, [["name", "ASC"], ["id", "ASC"]], context)
        matching = [a for a in self._read(session, config, actor_type, ids) if check(a)]
        trimmed = [a.model_copy(update={"values": {k: v for k, v in a.values.items() if keep is None or k in keep}})
                   for a in matching[:limit]]  # fmt: skip
        return p.SearchData(actors=trimmed, truncated=len(matching) > limit or len(ids) >= SCAN_LIMIT)

    def search_actors_advanced(self, request: p.SearchActorsAdvancedRequest, context: Context) -> p.SearchData:
        keep = self._projection(request.actor_type, request.field_keys)
        fields = cat.INDEX[request.actor_type]
        checks: list[tuple[p.Restriction, p.FieldInfo]] = []
        parents: list[Any] | None = None
        for r in request.restrictions:
            if r.field_key == p.PARENT_KEY:
                if r.operator not in ("equals", "one_of"):
                    raise ConnectorFailure(E.INVALID_REQUEST, f"{r.field_key} takes equals or one_of.")
                parents = list(r.values)
                continue
            if r.field_key == p.PARENT_ACTOR_TYPE:
                continue
            if r.field_key not in cat.SEARCHABLE[request.actor_type]:
                raise ConnectorFailure(
                    E.INVALID_REQUEST, f"{r.field_key} is not searchable for {request.actor_type.value}."
                )
            field = fields[r.field_key]
            if r.operator not in p.OPERATORS[field.type]:
                raise ConnectorFailure(E.INVALID_REQUEST, f"{r.operator} does not apply to {field.type.value} fields; "
                                                          f"use one of {', '.join(p.OPERATORS[field.type])}.")  # fmt: skip
            problem = p.operand_count_problem(r.operator, r.values) or next(
                (p.check_value(field, v) for v in r.values if p.check_value(field, v)), None)  # fmt: skip
            if problem:
                raise ConnectorFailure(E.INVALID_REQUEST, f"{r.field_key}: {problem}")
            checks.append((r, field))
        with self._tryton():
            config, session = self._prepare(request)
            domain = self._base_domain(session, config, request.actor_type)
            if parents is not None:
                domain += self._parent_domain(session, config, request.actor_type, parents)
            # Tryton narrows by name where it can; every criterion is then applied here, with the protocol's
            # own meaning of each operator (docs/connector-protocol.md), so both sides agree on every match.
            for r, _field in checks:
                column = {"NAME": "name", "NUMBER2": "code", "NUMBER": "number" if request.actor_type == A.PROJECT else "code"}.get(r.field_key)  # fmt: skip
                if column and request.actor_type != A.PERSON and r.operator in ("equals", "begins", "contains", "ends"):
                    word = _escape(str(r.values[0]))
                    pattern = {"equals": word, "begins": f"{word}%", "contains": f"%{word}%", "ends": f"%{word}"}[
                        r.operator
                    ]
                    domain.append([column, "ilike", pattern])

            def matches(actor: p.Actor) -> bool:
                return all(p.restriction_matches(f.type, r.operator, list(r.values), actor.values.get(r.field_key))
                           for r, f in checks)  # fmt: skip

            return self._found(session, config, request.actor_type, domain, request.limit, keep, matches)

    # Change feed

    def get_actors_by_timestamp(self, request: p.GetActorsByTimestampRequest, context: Context) -> p.FeedData:
        keep = self._projection(request.actor_type, request.field_keys)
        position: tuple[int, int] | None = None
        since = request.updated_on_or_after
        if request.cursor:
            try:
                state = p.decode_cursor(request.cursor)
                if state["t"] != request.actor_type.value:
                    raise ValueError("cursor of another actor type")
                position = (int(state["m"]), int(state["k"]))
            except (ValueError, KeyError, TypeError) as error:
                raise ConnectorFailure(E.INVALID_REQUEST, "The change feed cursor is not valid.", str(error)) from error
            since = EPOCH + timedelta(microseconds=position[0]) - OVERLAP
        with self._tryton():
            config, session = self._prepare(request)
            domain = self._base_domain(session, config, request.actor_type)
            model = "model.project.work" if request.actor_type == A.PROJECT else "model.party.party"
            if since is not None:
                # Changes to addresses, contact mechanisms and identifiers do not touch the party's own dates.
                dated = ["create_date", "write_date"]
                if request.actor_type != A.PROJECT:
                    dated += [f"{child}.{s}" for child in ("addresses", "contact_mechanisms", "identifiers")
                               for s in ("create_date", "write_date")]  # fmt: skip
                domain.append(["OR", *[[stamp, ">=", since] for stamp in dated]])
            ids = session.call(f"{model}.search", domain, 0, None, [["id", "ASC"]], self._context(session, config))
            # Only the dates of every candidate are read to order the feed; whole records only for the page.
            stamps = self._stamps(session, config, request.actor_type, ids)
            ordered = sorted(((_micros(moment), key) for key, moment in stamps.items()))
            if position is not None:
                ordered = [entry for entry in ordered if entry > position]
            elif since is not None:
                ordered = [entry for entry in ordered if entry[0] >= _micros(since)]
            chosen = ordered[: request.page_size]
            page = self._read(session, config, request.actor_type, [key for _moment, key in chosen], keep)
        if chosen:
            cursor = p.encode_cursor({"t": request.actor_type.value, "m": chosen[-1][0], "k": chosen[-1][1]})
        elif request.cursor:
            cursor = request.cursor
        else:
            start = _micros(since) - 1 if since is not None else -1
            cursor = p.encode_cursor({"t": request.actor_type.value, "m": start, "k": 0})
        # A record changed between the two reads carries its newer time in the page; the cursor stays as ordered.
        return p.FeedData(actors=page, next_cursor=cursor, has_more=len(ordered) > len(page))

    # Writing

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData:
        actor = request.actor
        self._writable(actor, creating=True)
        with self._tryton():
            config = self._config(request.connection_id)
            session = self._session(config)
            self._actor_type(config, session, actor.actor_type)
            if actor.actor_type == A.PROJECT:
                values = self._project_values(actor.values)
                values["type"] = "project"
                company = self._company(session, config)
                values["company"] = company
                if actor.parent_key:
                    values["party"] = int(actor.parent_key)
                [new_id] = session.call("model.project.work.create", [values], self._context(session, config))
            else:
                values = self._party_values(session, actor.actor_type, actor.values, None)
                if actor.actor_type in cat.ORGANISATIONS:
                    values["categories"] = [["add", [self._category(session, config, actor.actor_type)]]]
                if actor.actor_type == A.PERSON:
                    if not actor.parent_key or not actor.parent_key.isdigit():
                        raise ConnectorFailure(E.VALIDATION_FAILED, say("A person is created under a company.",
                                                                        "En person skapas under ett företag."))  # fmt: skip
                    values["relations"] = [["create", [{"to": int(actor.parent_key),
                                                        "type": self._relation_type(session, config)}]]]  # fmt: skip
                [new_id] = session.call("model.party.party.create", [values], {})
            [created] = self._read(session, config, actor.actor_type, [new_id])
        return p.ActorData(actor=created)

    def save_actors(self, request: p.SaveActorsRequest, context: Context) -> p.SaveActorsData:
        config = self._config(request.connection_id)
        results = []
        for actor in request.actors:
            try:
                results.append(p.SaveResult(key=actor.key or "", ok=True, actor=self._save(config, actor)))
            except ConnectorFailure as failure:
                results.append(p.SaveResult(key=actor.key or "", ok=False, error=p.ErrorDetail(
                    error_code=failure.code, user_explanation=failure.user, technical_explanation=failure.technical)))  # fmt: skip
        return p.SaveActorsData(results=results)

    def _save(self, config: dict[str, Any], actor: p.Actor) -> p.Actor:
        self._writable(actor, creating=False)
        with self._tryton():
            session = self._session(config)
            self._actor_type(config, session, actor.actor_type)
            ids = self._ids([actor.key or ""])
            current = self._read(session, config, actor.actor_type, ids) if ids else []
            if not current:
                raise ConnectorFailure(E.ACTOR_NOT_FOUND, f"No {actor.actor_type.value} {actor.key} in Tryton.")
            if (
                actor.last_modified is not None
                and current[0].last_modified
                and current[0].last_modified > actor.last_modified
            ):
                raise ConnectorFailure(E.CONFLICT, say("It was changed in Tryton since it was read.",
                                                       "Den har ändrats i Tryton sedan den lästes."))  # fmt: skip
            if actor.actor_type == A.PROJECT:
                session.call(
                    "model.project.work.write", ids, self._project_values(actor.values), self._context(session, config)
                )
            else:
                values = self._party_values(session, actor.actor_type, actor.values, ids[0])
                if values:
                    session.call("model.party.party.write", ids, values, {})
            return self._read(session, config, actor.actor_type, ids)[0]

    @staticmethod
    def _writable(actor: p.Actor, creating: bool) -> None:
        fields = cat.INDEX[actor.actor_type]
        for key, value in actor.values.items():
            field = fields.get(key)
            if field is None:
                raise ConnectorFailure(E.UNKNOWN_FIELD, f"Tryton has no {actor.actor_type.value} field {key}.")
            if field.access == p.FieldAccess.READ_ONLY:
                raise ConnectorFailure(E.READ_ONLY, say(f"{field.label} is set by Tryton and cannot be changed.",
                                                        f"{field.label} sätts av Tryton och kan inte ändras."))  # fmt: skip
            problem = p.check_value(field, value)
            if problem:
                raise ConnectorFailure(E.VALIDATION_FAILED, say(f"{field.label}: not a valid value.",
                                                                f"{field.label}: ogiltigt värde."), problem)  # fmt: skip
        if creating:
            for field in fields.values():
                if field.access == p.FieldAccess.MANDATORY and actor.values.get(field.key) in (None, ""):
                    raise ConnectorFailure(
                        E.VALIDATION_FAILED, say(f"{field.label} is required.", f"{field.label} måste anges.")
                    )

    @staticmethod
    def _project_values(values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "NAME" in values:
            out["name"] = values["NAME"]
        if "TEXT" in values:
            out["comment"] = values["TEXT"]
        if "STATUS" in values:
            out["status"] = int(values["STATUS"]) if values["STATUS"] else None
        return out

    def _party_values(self, session: rpc.Session, actor_type: p.ActorType, values: dict[str, Any],
                      party_id: int | None) -> dict[str, Any]:  # fmt: skip
        """Our fields as a party's values, with Tryton's one2many operations for addresses and contacts."""
        current: dict[str, Any] = {}
        if party_id is not None:
            current = session.call("model.party.party.read", [party_id],
                                   ["name", "addresses", "identifiers", "contact_mechanisms.type"], {})[0]  # fmt: skip
        out: dict[str, Any] = {}
        if actor_type == A.PERSON and "NAME" not in values and ("FIRSTNAME" in values or "LASTNAME" in values):
            first, _, last = (current.get("name") or "").rpartition(" ")
            if not first:
                first, last = last, ""
            first = values.get("FIRSTNAME", first) or ""
            last = values.get("LASTNAME", last) or ""
            out["name"] = f"{first} {last}".strip()
        elif "NAME" in values:
            out["name"] = values["NAME"]
        if values.get("LANGUAGE") is not None or "LANGUAGE" in values:
            code = values.get("LANGUAGE")
            langs = session.call("model.ir.lang.search", [["code", "=", code]], 0, 1, None, {}) if code else []
            if code and not langs:
                raise ConnectorFailure(E.VALIDATION_FAILED, f"Tryton has no language {code!r}.")
            out["lang"] = langs[0] if langs else None
        if "VATNO" in values:
            existing = current.get("identifiers") or []
            code = values["VATNO"]
            if code:
                # An EU VAT number is stored as one, so Tryton checks it and says so when it is not valid.
                kind = "eu_vat" if code.replace(" ", "")[:2].upper() in EU_VAT_PREFIXES else None
                row = {"code": code, "type": kind}
                out["identifiers"] = [["write", existing[:1], row]] if existing else [["create", [row]]]
            elif existing:
                out["identifiers"] = [["delete", existing[:1]]]
        address = {column: values[key] or "" for key, column in cat.ADDRESS.items() if key in values}
        if "COUNTRY" in values:
            code = values["COUNTRY"]
            found = session.call("model.country.country.search", [["code", "=", code]], 0, 1, None, {}) if code else []
            if code and not found:
                raise ConnectorFailure(E.VALIDATION_FAILED, f"Tryton has no country {code!r}.")
            address["country"] = found[0] if found else None
        if address:
            existing = current.get("addresses") or []
            out["addresses"] = [["write", existing[:1], address]] if existing else [["create", [address]]]
        operations: list[Any] = []
        mechanisms = current.get("contact_mechanisms.") or []
        for key, kind in cat.MECHANISMS.items():
            if key not in values or key not in cat.INDEX[actor_type]:
                continue
            present = [m["id"] for m in mechanisms if m["type"] == kind][:1]
            if values[key]:
                operations.append(["write", present, {"value": values[key]}] if present
                                  else ["create", [{"type": kind, "value": values[key]}]])  # fmt: skip
            elif present:
                operations.append(["delete", present])
        if operations:
            out["contact_mechanisms"] = operations
        return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
