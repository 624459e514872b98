"""The Tryton connector: erpsync's protocol on one side, Tryton's JSON-RPC on the other (SDK only)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from connectors import protocol as p
from connectors.sdk import Connector, ConnectorFailure, Context, Notifier
from connectors.sdk.idempotency import reused_key

from . import catalogue as cat
from . import rpc
from .keys import CreatedKeys
from .watch import WATCH_SECONDS, ChangeWatcher

E = p.ErrorCode
A = p.ActorType
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OVERLAP = timedelta(seconds=5)  # Tryton stamps a whole transaction with one time; late commits land behind
MEMO_SECONDS = 30.0
EU_VAT_PREFIXES = {
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "EL",
    "ES",
    "FI",
    "FR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
    "XI",
}
SCAN_LIMIT = 5000  # candidates read for a search whose criteria Tryton cannot apply itself
READ_FIELDS = [
    "name",
    "active",
    "code",
    "lang.code",
    "create_date",
    "write_date",
    "identifiers.code",
    "identifiers.create_date",
    "identifiers.write_date",
    "addresses.street",
    "addresses.postal_code",
    "addresses.city",
    "addresses.country.code",
    "addresses.create_date",
    "addresses.write_date",
    "contact_mechanisms.type",
    "contact_mechanisms.value",
    "contact_mechanisms.create_date",
    "contact_mechanisms.write_date",
]
PROJECT_FIELDS = ["name", "number", "comment", "status", "timesheet_duration", "party", "create_date", "write_date"]
T = TypeVar("T")
Item = TypeVar("Item", bound=tuple[Any, ...])  # something to save, its position in the request first
# Tryton refused the call (a rule, a validation, another error it answered): each record is then tried alone.
# Other failures (unreachable, login refused) concern every call and are not retried one by one.
REFUSALS = (rpc.UserError, rpc.Concurrency, rpc.Fault)


class ConfigStore:
    """Connections' configurations by id, in a JSON file only this process's user can read (it holds passwords)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
        # Where each connection's change notifications go (v1.1), beside it, so that they go on after a restart.
        self.urls_path = path.with_name(f"{path.stem}-notify-urls.json")
        self.urls: dict[str, str] = json.loads(self.urls_path.read_text()) if self.urls_path.exists() else {}

    def get(self, connection_id: str) -> dict[str, Any] | None:
        return self.data.get(connection_id)

    def put(self, connection_id: str, config: dict[str, Any] | None) -> bool:
        with self.lock:
            existed = connection_id in self.data
            if config is None:
                self.data.pop(connection_id, None)
                if self.urls.pop(connection_id, None) is not None:
                    self._write(self.urls_path, self.urls)
            else:
                self.data[connection_id] = config
            self._write(self.path, self.data)
            return existed

    def put_notify_url(self, connection_id: str, url: str | None) -> None:
        """Keep the connection's notify URL (v1.1, change_notifications); None forgets it."""
        with self.lock:
            if (self.urls.get(connection_id) or None) == (url or None):
                return
            if url:
                self.urls[connection_id] = url
            else:
                self.urls.pop(connection_id, None)
            self._write(self.urls_path, self.urls)

    def notify_urls(self) -> dict[str, str]:
        with self.lock:
            return dict(self.urls)

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle)
        temporary.replace(path)


def say(en: str, sv: str) -> dict[str, str]:
    return {"en": en, "sv": sv}


def _micros(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1_000_000) if moment.tzinfo else _micros(moment.replace(tzinfo=UTC))


def _latest(*moments: Any) -> datetime:
    return max((m for m in moments if isinstance(m, datetime)), default=EPOCH)


def _inactive(row: dict[str, Any]) -> bool:
    """A party archived (or merged) in Tryton. Tryton answers its active flag as false, or 0 on SQLite."""
    return "active" in row and row["active"] is not None and not row["active"]


def _modified(row: dict[str, Any]) -> datetime:
    """A record's last change: its own dates and those of the children read with it (``addresses.`` …)."""
    children = [c for name in ("addresses.", "contact_mechanisms.", "identifiers.") for c in row.get(name) or []]
    return _latest(
        row.get("create_date"),
        row.get("write_date"),
        *(c.get(k) for c in children for k in ("create_date", "write_date")),
    )


class TrytonConnector(Connector):
    name = "Tryton"
    version = "1.0"
    # key_ids: the SDK checks signatures, with two secrets and their key ids while one is rotated (--next-secret-file).
    # idempotent_create: keys kept in a SQLite file beside the connections file (keys.py). tombstones: parties
    # archived (deactivated) or merged (replaced by another) in Tryton. config_list_values: the company list.
    capabilities = frozenset(
        {
            p.Capability.KEY_IDS.value,
            p.Capability.IDEMPOTENT_CREATE.value,
            p.Capability.TOMBSTONES.value,
            p.Capability.CONFIG_LIST_VALUES.value,
            p.Capability.LABELS.value,  # English and Swedish labels, Tryton's own translations where it has them
            # Tryton has no outgoing hooks: a thread watches the records' dates every few seconds (watch.py).
            p.Capability.CHANGE_NOTIFICATIONS.value,
        }
    )
    watcher: ChangeWatcher | None = None

    def __init__(
        self, store: ConfigStore, keys: CreatedKeys | None = None, watch_seconds: float = WATCH_SECONDS
    ) -> None:
        self.store = store
        self.watch_seconds = watch_seconds
        self.keys = keys or CreatedKeys(store.path.with_name(f"{store.path.stem}-created-keys.sqlite3"))
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
        return p.FieldsData(fields=cat.CONFIG_FIELDS_LABELLED)

    def test_config_data(self, request: p.TestConfigDataRequest, context: Context) -> p.Empty:
        self._check(dict(request.config), context)
        return p.Empty()

    def save_connection(self, request: p.SaveConnectionRequest, context: Context) -> p.Empty:
        config = dict(request.config)
        self._check(config, context)
        self.store.put(request.connection_id, config)
        self.store.put_notify_url(request.connection_id, request.notify_url)
        if request.notify_url and self.watcher is not None:
            self.watcher.watch(config)
            self.watcher.start()
        return p.Empty()

    def notifications_started(self, notifier: Notifier) -> None:
        """Change notifications (v1.1): the notify URLs kept beside the connections are registered again, and
        Tryton is watched once any connection has one, so that every change is told, however it was made."""
        super().notifications_started(notifier)
        self.watcher = ChangeWatcher(self, notifier, self.watch_seconds)
        urls = self.store.notify_urls()
        for connection_id, url in urls.items():
            if self.store.get(connection_id) is not None:
                notifier.register(connection_id, url)
        if urls:
            self.watcher.start()

    def test_connection(self, request: p.TestConnectionRequest, context: Context) -> p.Empty:
        self._check(self._config(request.connection_id), context)
        return p.Empty()

    def delete_connection(self, request: p.DeleteConnectionRequest, context: Context) -> p.Empty:
        # Idempotent (v1.1): a connection already forgotten, or never known, is forgotten all the same.
        self.store.put(request.connection_id, None)
        self.keys.forget_connection(request.connection_id)
        return p.Empty()

    def _config(self, connection_id: str) -> dict[str, Any]:
        config = self.store.get(connection_id)
        if config is None:
            raise self._unknown(connection_id)
        return config

    @staticmethod
    def _unknown(connection_id: str) -> ConnectorFailure:
        return ConnectorFailure(
            E.UNKNOWN_CONNECTION,
            say(
                "The Tryton connector does not know this connection.", "Tryton-kopplingen känner inte till kopplingen."
            ),
            f"no connection {connection_id}",
        )

    def _session(self, config: dict[str, Any]) -> rpc.Session:
        return rpc.session_for(
            str(config.get("server_url") or ""),
            str(config.get("database") or ""),
            str(config.get("user") or ""),
            str(config.get("password") or ""),
            str(config.get("language") or "en"),
        )

    @contextmanager
    def _tryton(self) -> Iterator[None]:
        """Tryton's failures as protocol failures, with Tryton's own words for people."""
        try:
            yield
        except rpc.Unreachable as error:
            raise ConnectorFailure(
                E.UNAVAILABLE, say("Tryton cannot be reached right now.", "Tryton går inte att nå just nu."), str(error)
            ) from error
        except rpc.LoginRefused as error:
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say("Tryton refused the user name or password.", "Tryton godtog inte användarnamnet eller lösenordet."),
                str(error),
            ) from error
        except rpc.UnknownDatabase as error:
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say("Tryton has no database by that name.", "Tryton har ingen databas med det namnet."),
                str(error),
            ) from error
        except rpc.Concurrency as error:
            raise ConnectorFailure(
                E.CONFLICT,
                say(
                    "Someone changed it in Tryton at the same moment; try again.",
                    "Någon ändrade den i Tryton samtidigt; försök igen.",
                ),
                str(error),
            ) from error
        except rpc.UserError as error:
            raise ConnectorFailure(E.VALIDATION_FAILED, str(error), str(error)) from error
        except rpc.Fault as error:
            raise ConnectorFailure(
                E.INTERNAL_ERROR, say("Tryton answered with an error.", "Tryton svarade med ett fel."), str(error)
            ) from error

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
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say(
                    "The server URL must start with http:// or https://.",
                    "Serverns URL måste börja med http:// eller https://.",
                ),
            )
        with self._tryton():
            session = self._session(config)
            modules = self._modules(session, fresh=True)
            if "party" not in modules:
                raise ConnectorFailure(
                    E.INVALID_CONFIG,
                    say(
                        "The Tryton module party is not activated in this database.",
                        "Tryton-modulen party är inte aktiverad i databasen.",
                    ),
                )
            for actor_type, setting in cat.CATEGORY_SETTING.items():
                name = config.get(setting)
                if name and not session.call("model.party.category.search", [["name", "=", name]], 0, 1, None, {}):
                    raise ConnectorFailure(
                        E.INVALID_CONFIG,
                        say(
                            f"Tryton has no party category {name!r} for {actor_type.value.lower()}s: create it under "
                            "Party → Configuration → Categories, or change the setting.",
                            f"Tryton har ingen partkategori {name!r}: skapa den under Part → Konfiguration → Kategorier, "
                            "eller ändra inställningen.",
                        ),
                    )
            relation = config.get("person_relation")
            if relation:
                if "party_relationship" not in modules:
                    raise ConnectorFailure(
                        E.INVALID_CONFIG,
                        say(
                            "Persons need the Tryton module party_relationship, which is not activated; activate it or "
                            "leave the relation type empty.",
                            "Personer kräver Tryton-modulen party_relationship, som inte är aktiverad; aktivera den "
                            "eller lämna relationstypen tom.",
                        ),
                    )
                if not session.call("model.party.relation.type.search", [["name", "=", relation]], 0, 1, None, {}):
                    raise ConnectorFailure(
                        E.INVALID_CONFIG,
                        say(
                            f"Tryton has no party relation type {relation!r}: create it under Party → Configuration → "
                            "Relation Types, or change the setting.",
                            f"Tryton har ingen relationstyp {relation!r}: skapa den eller ändra inställningen.",
                        ),
                    )
            company = config.get("company")
            if company:
                if "project" not in modules:
                    raise ConnectorFailure(
                        E.INVALID_CONFIG,
                        say(
                            "Projects need the Tryton module project, which is not activated; activate it or leave the "
                            "company empty.",
                            "Projekt kräver Tryton-modulen project, som inte är aktiverad; aktivera den eller lämna "
                            "företaget tomt.",
                        ),
                    )
                if self._company(session, config, fresh=True) is None:
                    raise ConnectorFailure(
                        E.INVALID_CONFIG,
                        say(f"Tryton has no company {company!r}.", f"Tryton har inget företag {company!r}."),
                    )
            # The user's rights on every model the connection will read and write.
            wanted = ["party.party", "party.address", "party.contact_mechanism", "party.identifier"]
            if relation:
                wanted.append("party.relation")
            if company:
                wanted.append("project.work")
            access = session.call("model.ir.model.access.get_access", wanted, {})
            missing = [
                f"{right} {model}"
                for model in wanted
                for right in ("read", "write", "create")
                if not access.get(model, {}).get(right)
            ]
            if missing:
                raise ConnectorFailure(
                    E.INVALID_CONFIG,
                    say(
                        f"The Tryton user {config['user']!r} lacks these rights: {', '.join(missing)}.",
                        f"Tryton-användaren {config['user']!r} saknar rättigheterna: {', '.join(missing)}.",
                    ),
                )

    def _modules(self, session: rpc.Session, fresh: bool = False) -> set[str]:
        def read() -> set[str]:
            rows = session.call(
                "model.ir.module.search_read", [["state", "=", "activated"]], 0, None, None, ["name"], {}
            )
            return {row["name"] for row in rows}

        return read() if fresh else self._remember(("modules", session.url, session.database), read)

    def _company(self, session: rpc.Session, config: dict[str, Any], fresh: bool = False) -> int | None:
        def read() -> int | None:
            rows = session.call(
                "model.company.company.search", [["party.name", "=", config.get("company")]], 0, 1, None, {}
            )
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
            types = self._types(config, self._session(config))
        return p.ActorTypesData(actor_types=types, labels={t: cat.ACTOR_TYPE_LABELS[t] for t in types})

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        config = self._config(request.connection_id)
        with self._tryton():
            session = self._session(config)
            self._actor_type(config, session, request.actor_type)
            translated = self._tryton_strings(session, "sv")
        fields = []
        for info in cat.FIELDS[request.actor_type]:
            where = cat.TRYTON_FIELD.get((request.actor_type, info.key))
            fields.append(cat.labelled(info, translated.get(where, "") if where else ""))
        return p.FieldsData(fields=fields)

    def _tryton_strings(self, session: rpc.Session, language: str) -> dict[tuple[str, str], str]:
        """The field names Tryton has translated into ``language`` (those that differ from its English ones)."""

        def read(lang: str) -> dict[tuple[str, str], str]:
            rows = session.call(
                "model.ir.model.field.search_read",
                [["model", "in", ["party.party", "project.work"]]],
                0,
                None,
                None,
                ["model", "name", "string"],
                {"language": lang},
            )
            return {(row["model"], row["name"]): str(row.get("string") or "") for row in rows}

        def compute() -> dict[tuple[str, str], str]:
            try:
                english, other = read("en"), read(language)
            except rpc.Fault:  # a user who may not read Tryton's models: the connector's own table serves
                return {}
            return {where: text for where, text in other.items() if text and text != english.get(where)}

        return self._remember(("strings", session.url, session.database, language), compute)

    def get_searchable_fields(self, request: p.GetSearchableFieldsRequest, context: Context) -> p.FieldKeysData:
        config = self._config(request.connection_id)
        with self._tryton():
            self._actor_type(config, self._session(config), request.actor_type)
        return p.FieldKeysData(field_keys=cat.SEARCHABLE[request.actor_type])

    # Lists

    def get_list(self, request: p.GetListRequest, context: Context) -> p.ListData:
        if request.connection_id is None:
            items = self._config_list(request.list_name, request.config)
            return p.ListData(items=[p.ListItem(key=k, text=t) for k, t in items])
        config = self._config(request.connection_id)
        with self._tryton():
            return p.ListData(items=[p.ListItem(key=k, text=t) for k, t in self._list(config, request.list_name)])

    def get_list_items(self, request: p.GetListItemsRequest, context: Context) -> p.ListData:
        if request.connection_id is None:
            items = dict(self._config_list(request.list_name, request.config))
        else:
            config = self._config(request.connection_id)
            with self._tryton():
                items = dict(self._list(config, request.list_name))
        return p.ListData(items=[p.ListItem(key=k, text=items[k]) for k in request.keys if k in items])

    def _config_list(self, name: str, config: dict[str, Any] | None) -> list[tuple[str, str]]:
        """A configuration list. The companies depend on the server, database, user and password entered so far
        (v1.1, config_list_values); without values (a CRM of protocol version 1) the list is empty."""
        if name in cat.CONFIG_LISTS:
            return cat.CONFIG_LISTS[name]
        if name != "companies":
            raise ConnectorFailure(E.UNKNOWN_LIST, f"No configuration list {name!r}.")
        if config is None:
            return []
        needed = [f for f in cat.CONFIG_FIELDS if f.key in cat.COMPANY_LIST_NEEDS and config.get(f.key) in (None, "")]
        if needed:
            english = _and([f.label for f in needed], "and")
            swedish = _and([cat.SWEDISH_LABELS[f.key] for f in needed], "och")
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say(f"Fill in {english} to choose a company.", f"Fyll i {swedish} för att välja ett företag."),
            )
        if not str(config["server_url"]).startswith(("http://", "https://")):
            raise ConnectorFailure(
                E.INVALID_CONFIG,
                say(
                    "The server URL must start with http:// or https://.",
                    "Serverns URL måste börja med http:// eller https://.",
                ),
            )
        with self._tryton():
            session = self._session({**config, "language": config.get("language") or "en"})
            if "company" not in self._modules(session, fresh=True):
                raise ConnectorFailure(
                    E.INVALID_CONFIG,
                    say(
                        "This Tryton database has no companies (the module company is not activated); leave the "
                        "company empty, or activate the modules company and project for projects.",
                        "Den här Tryton-databasen har inga företag (modulen company är inte aktiverad); lämna "
                        "företaget tomt, eller aktivera modulerna company och project för projekt.",
                    ),
                )
            rows = session.call("model.company.company.search_read", [], 0, None, None, ["party.name"], {})
        # A company is chosen by its name, which is what a connection saved before the list kept (typed).
        names = sorted({(row.get("party.") or {}).get("name") or "" for row in rows} - {""}, key=str.casefold)
        return [(name, name) for name in names]

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
            rows = session.call(
                "model.project.work.status.search_read", [["types", "in", ["project"]]], 0, None, None, ["name"], {}
            )
            return [(str(row["id"]), row["name"]) for row in rows]
        raise ConnectorFailure(E.UNKNOWN_LIST, f"The Tryton connector has no list {name!r}.")

    # Reading parties and projects as actors

    def _category(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType) -> int:
        name = config.get(cat.CATEGORY_SETTING[actor_type])
        found = self._remember(
            ("category", session.url, session.database, name),
            lambda: session.call("model.party.category.search", [["name", "=", name]], 0, 1, None, {}),
        )
        if not found:
            raise ConnectorFailure(E.INVALID_CONFIG, f"Tryton has no party category {name!r}.")
        return int(found[0])

    def _relation_type(self, session: rpc.Session, config: dict[str, Any]) -> int:
        name = config.get("person_relation")
        found = self._remember(
            ("relation", session.url, session.database, name),
            lambda: session.call("model.party.relation.type.search", [["name", "=", name]], 0, 1, None, {}),
        )
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

    def _read(
        self,
        session: rpc.Session,
        config: dict[str, Any],
        actor_type: p.ActorType,
        ids: list[int],
        keep: set[str] | None = None,
    ) -> list[p.Actor]:
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
        rows = session.call(
            "model.party.relation.all.search_read",
            [["from_", "in", person_ids], ["type", "=", self._relation_type(session, config)]],
            0,
            None,
            None,
            ["from_", "to", "to.categories"],
            {},
        )
        categories = {
            self._category(session, config, t): t for t in cat.ORGANISATIONS if config.get(cat.CATEGORY_SETTING[t])
        }
        parents = {}
        for row in rows:
            kinds = [categories[c] for c in row.get("to.", {}).get("categories", []) if c in categories]
            if kinds:
                parents[row["from_"]] = (kinds[0].value, row["to"])
        return parents

    def _stamps(
        self,
        session: rpc.Session,
        config: dict[str, Any],
        actor_type: p.ActorType,
        ids: list[int],
        gone: dict[int, int | None] | None = None,
    ) -> dict[int, datetime]:
        """Each record's last change: its own dates and, for a party, those of its addresses, contact
        mechanisms and identifiers (Tryton does not touch the party when only those change).

        With ``gone``, parties that are no longer active are put there, each with the party that replaced it
        (a merge in Tryton's Replace wizard) or None (archived)."""
        stamps: dict[int, datetime] = {}
        fields = ["create_date", "write_date"]
        model = "model.project.work" if actor_type == A.PROJECT else "model.party.party"
        if actor_type != A.PROJECT:
            fields += [
                f"{child}.{date}"
                for child in ("addresses", "contact_mechanisms", "identifiers")
                for date in ("create_date", "write_date")
            ]
            if gone is not None:
                fields += ["active", "replaced_by"]
        for start in range(0, len(ids), 1000):
            for row in session.call(f"{model}.read", ids[start : start + 1000], fields, self._context(session, config)):
                stamps[row["id"]] = _modified(row)
                if gone is not None and _inactive(row):
                    gone[row["id"]] = row.get("replaced_by")
        return stamps

    @staticmethod
    def _party(
        row: dict[str, Any], actor_type: p.ActorType, keep: set[str] | None, parent: tuple[str, int] | None
    ) -> p.Actor:
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
            values: dict[str, Any] = {
                "NUMBER": row.get("code"),
                "NAME": name or None,
                "FIRSTNAME": first or None,
                "LASTNAME": last or None,
                "EMAIL": mechanism("email"),
                "PHONE_DIRECT": mechanism("phone"),
                "PHONE_MOBILE": mechanism("mobile"),
            }
        else:
            values = {
                "NUMBER2": row.get("code"),
                "NAME": name or None,
                "VATNO": identifiers[0]["code"] if identifiers else None,
                "PHONE": mechanism("phone"),
                "EMAIL": mechanism("email"),
                "URL": mechanism("website"),
                "POSTALAD1": first_address.get("street") or None,
                "POSTALZIP": first_address.get("postal_code") or None,
                "POSTALCITY": first_address.get("city") or None,
                "COUNTRY": (first_address.get("country.") or {}).get("code"),
                "LANGUAGE": (row.get("lang.") or {}).get("code"),
            }
        return p.Actor(
            actor_type=actor_type,
            key=str(row["id"]),
            last_modified=_modified(row),
            parent_actor_type=p.ActorType(parent[0]) if parent else None,
            parent_key=str(parent[1]) if parent else None,
            values={k: v for k, v in values.items() if keep is None or k in keep},
        )

    @staticmethod
    def _project(row: dict[str, Any], keep: set[str] | None) -> p.Actor:
        duration = row.get("timesheet_duration")
        hours = round(duration.total_seconds() / 3600, 2) if isinstance(duration, timedelta) else None
        values = {
            "NUMBER": row.get("number"),
            "NAME": row.get("name"),
            "TEXT": row.get("comment") or None,
            "STATUS": str(row["status"]) if row.get("status") else None,
            "HOURS_LOGGED": hours,
        }
        return p.Actor(
            actor_type=A.PROJECT,
            key=str(row["id"]),
            last_modified=_modified(row),
            parent_actor_type=A.CUSTOMER if row.get("party") else None,
            parent_key=str(row["party"]) if row.get("party") else None,
            values={k: v for k, v in values.items() if keep is None or k in keep},
        )

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
            existing = set(
                session.call(
                    f"{model}.search",
                    [["id", "in", ids], *self._base_domain(session, config, request.actor_type)],
                    0,
                    None,
                    None,
                    self._context(session, config),
                )
            )
            actors = {
                a.key: a
                for a in self._read(session, config, request.actor_type, [i for i in ids if i in existing], keep)
            }
        wanted = list(dict.fromkeys(request.keys))
        return p.ActorsData(
            actors=[actors[k] for k in wanted if k in actors], missing_keys=[k for k in wanted if k not in actors]
        )

    # Searching

    def _text_domain(self, actor_type: p.ActorType, text: str) -> list[Any]:
        """Every word in the name or the code (a project's number)."""
        code = "number" if actor_type == A.PROJECT else "code"
        return [
            ["OR", ["name", "ilike", f"%{_escape(word)}%"], [code, "ilike", f"%{_escape(word)}%"]]
            for word in text.split()
        ]

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

    def _parent_domain(
        self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType, parent_keys: list[Any]
    ) -> list[Any]:
        ids = self._ids([str(k) for k in parent_keys])
        if actor_type == A.PROJECT:
            return [["party", "in", ids]]
        if actor_type == A.PERSON:
            kind = self._relation_type(session, config)
            people = session.call(
                "model.party.relation.all.search_read",
                [["to", "in", ids], ["type", "=", kind]],
                0,
                None,
                None,
                ["from_"],
                {},
            )
            return [["id", "in", [row["from_"] for row in people]]]
        return [["id", "=", -1]]  # organisations have no parent

    def _found(
        self,
        session: rpc.Session,
        config: dict[str, Any],
        actor_type: p.ActorType,
        domain: list[Any],
        limit: int,
        keep: set[str] | None,
        check: Callable[[p.Actor], bool] | None = None,
    ) -> p.SearchData:
        model = "model.project.work" if actor_type == A.PROJECT else "model.party.party"
        context = self._context(session, config)
        if check is None:
            ids = session.call(f"{model}.search", domain, 0, limit + 1, [["name", "ASC"], ["id", "ASC"]], context)
            actors = self._read(session, config, actor_type, ids[:limit], keep)
            return p.SearchData(actors=actors, truncated=len(ids) > limit)
        ids = session.call(f"{model}.search", domain, 0, SCAN_LIMIT, [["name", "ASC"], ["id", "ASC"]], context)
        matching = [a for a in self._read(session, config, actor_type, ids) if check(a)]
        trimmed = [
            a.model_copy(update={"values": {k: v for k, v in a.values.items() if keep is None or k in keep}})
            for a in matching[:limit]
        ]
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
                raise ConnectorFailure(
                    E.INVALID_REQUEST,
                    f"{r.operator} does not apply to {field.type.value} fields; "
                    f"use one of {', '.join(p.OPERATORS[field.type])}.",
                )
            problem = p.operand_count_problem(r.operator, r.values) or next(
                (p.check_value(field, v) for v in r.values if p.check_value(field, v)), None
            )
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
                column = {
                    "NAME": "name",
                    "NUMBER2": "code",
                    "NUMBER": "number" if request.actor_type == A.PROJECT else "code",
                }.get(r.field_key)
                if column and request.actor_type != A.PERSON and r.operator in ("equals", "begins", "contains", "ends"):
                    word = _escape(str(r.values[0]))
                    pattern = {"equals": word, "begins": f"{word}%", "contains": f"%{word}%", "ends": f"%{word}"}[
                        r.operator
                    ]
                    domain.append([column, "ilike", pattern])

            def matches(actor: p.Actor) -> bool:
                return all(
                    p.restriction_matches(f.type, r.operator, list(r.values), actor.values.get(r.field_key))
                    for r, f in checks
                )

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
                    dated += [
                        f"{child}.{s}"
                        for child in ("addresses", "contact_mechanisms", "identifiers")
                        for s in ("create_date", "write_date")
                    ]
                domain.append(["OR", *[[stamp, ">=", since] for stamp in dated]])
            # Parties archived or merged in Tryton are inactive: searched too, they are the feed's tombstones (v1.1).
            party = request.actor_type != A.PROJECT
            search_context = {**self._context(session, config), **({"active_test": False} if party else {})}
            ids = session.call(f"{model}.search", domain, 0, None, [["id", "ASC"]], search_context)
            # Only the dates of every candidate are read to order the feed; whole records only for the page.
            gone: dict[int, int | None] = {}
            stamps = self._stamps(session, config, request.actor_type, ids, gone if party else None)
            ordered = sorted(((_micros(moment), key) for key, moment in stamps.items()))
            if position is not None:
                ordered = [entry for entry in ordered if entry > position]
            elif since is not None:
                ordered = [entry for entry in ordered if entry[0] >= _micros(since)]
            chosen = ordered[: request.page_size]
            page = self._read(
                session, config, request.actor_type, [key for _moment, key in chosen if key not in gone], keep
            )
            tombstones = [
                p.Tombstone(
                    actor_type=request.actor_type,
                    key=str(key),
                    last_modified=stamps[key],
                    kind=p.TombstoneKind.ARCHIVED if gone[key] is None else p.TombstoneKind.MERGED,
                    merged_into=None if gone[key] is None else str(gone[key]),
                )
                for moment, key in chosen
                if key in gone
            ]
        if chosen:
            cursor = p.encode_cursor({"t": request.actor_type.value, "m": chosen[-1][0], "k": chosen[-1][1]})
        elif request.cursor:
            cursor = request.cursor
        else:
            start = _micros(since) - 1 if since is not None else -1
            cursor = p.encode_cursor({"t": request.actor_type.value, "m": start, "k": 0})
        # A record changed between the two reads carries its newer time in the page; the cursor stays as ordered.
        return p.FeedData(actors=page, next_cursor=cursor, has_more=len(ordered) > len(chosen), tombstones=tombstones)

    # Writing

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData:
        """CreateActor; with an idempotency key (v1.1), a key this connection used before answers the actor it
        created then, as it is now, and creates nothing."""
        key = request.idempotency_key
        if key is None:
            return self._create(request)
        with self.keys.held(request.connection_id, key):
            found = self.keys.find(request.connection_id, key)
            if found is None:
                data = self._create(request)
                self.keys.remember(request.connection_id, key, request.actor.actor_type.value, int(data.actor.key or 0))
                return data
        actor_type, record = found
        if actor_type != request.actor.actor_type.value:
            raise reused_key(p.ActorType(actor_type))
        again = self.get_actors(
            p.GetActorsRequest(
                connection_id=request.connection_id, actor_type=p.ActorType(actor_type), keys=[str(record)]
            ),
            context,
        )
        if not again.actors:
            raise ConnectorFailure(
                E.ACTOR_NOT_FOUND,
                say(
                    "The actor created for this request is no longer in Tryton.",
                    "Aktören som skapades för begäran finns inte längre i Tryton.",
                ),
                f"record {record} made for the idempotency key is gone",
            )
        return p.ActorData(actor=again.actors[0])

    def _create(self, request: p.CreateActorRequest) -> p.ActorData:
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
                values = self._party_values(actor.actor_type, actor.values, None, *self._lookups(session, [actor]))
                if actor.actor_type in cat.ORGANISATIONS:
                    values["categories"] = [["add", [self._category(session, config, actor.actor_type)]]]
                if actor.actor_type == A.PERSON:
                    if not actor.parent_key or not actor.parent_key.isdigit():
                        raise ConnectorFailure(
                            E.VALIDATION_FAILED,
                            say("A person is created under a company.", "En person skapas under ett företag."),
                        )
                    values["relations"] = [
                        ["create", [{"to": int(actor.parent_key), "type": self._relation_type(session, config)}]]
                    ]
                [new_id] = session.call("model.party.party.create", [values], {})
            [created] = self._read(session, config, actor.actor_type, [new_id])
        return p.ActorData(actor=created)

    def save_actors(self, request: p.SaveActorsRequest, context: Context) -> p.SaveActorsData:
        """Many actors with a few calls: each kind of call to Tryton (read, write, read back) is made once for all
        the actors of one type, and once per actor only when Tryton refuses the batch, so that an actor Tryton
        refuses fails alone, with Tryton's words, and the others are written."""
        config = self._config(request.connection_id)
        actors = request.actors
        # The n-th save of one record in a request is made in the n-th round, after the earlier ones: Tryton takes
        # a record once in a write, and each save must see the one before it (last_modified, the current values).
        rounds: list[dict[p.ActorType, list[int]]] = []
        seen: Counter[tuple[bool, str]] = Counter()
        for index, actor in enumerate(actors):
            key = actor.key or ""
            record = (actor.actor_type == A.PROJECT, str(int(key)) if key.isdigit() else key)
            if seen[record] == len(rounds):
                rounds.append({})
            rounds[seen[record]].setdefault(actor.actor_type, []).append(index)
            seen[record] += 1
        outcomes: dict[int, p.Actor | ConnectorFailure] = {}
        for batches in rounds:
            for actor_type, indexes in batches.items():
                saved = self._save_batch(config, actor_type, [actors[i] for i in indexes])
                outcomes.update(zip(indexes, saved, strict=True))
        results = []
        for index, actor in enumerate(actors):
            outcome = outcomes[index]
            if isinstance(outcome, ConnectorFailure):
                error = p.ErrorDetail(
                    error_code=outcome.code, user_explanation=outcome.user, technical_explanation=outcome.technical
                )
                results.append(p.SaveResult(key=actor.key or "", ok=False, error=error))
            else:
                results.append(p.SaveResult(key=actor.key or "", ok=True, actor=outcome))
        return p.SaveActorsData(results=results)

    def _save_batch(
        self, config: dict[str, Any], actor_type: p.ActorType, actors: list[p.Actor]
    ) -> list[p.Actor | ConnectorFailure]:
        """Save actors of one type, each a different record: what each became, or why it was not saved."""
        outcomes: list[p.Actor | ConnectorFailure | None] = [None] * len(actors)
        for index, actor in enumerate(actors):
            try:
                self._writable(actor, creating=False)
            except ConnectorFailure as failure:
                outcomes[index] = failure
        try:
            with self._tryton():
                session = self._session(config)
                self._actor_type(config, session, actor_type)
                records: dict[int, int] = {}  # position → the record's id
                for index, actor in enumerate(actors):
                    if outcomes[index] is None:
                        found = self._ids([actor.key or ""])
                        if found:
                            records[index] = found[0]
                        else:
                            outcomes[index] = self._not_found(actor)
                self._write_batch(session, config, actor_type, actors, records, outcomes)
        except ConnectorFailure as failure:  # e.g. Tryton cannot be reached: every actor not saved yet fails with it
            outcomes = [failure if outcome is None else outcome for outcome in outcomes]
        # An actor still without an outcome was written but not in what Tryton read back: it is gone.
        return [outcome if outcome is not None else self._not_found(actors[i]) for i, outcome in enumerate(outcomes)]

    def _write_batch(
        self,
        session: rpc.Session,
        config: dict[str, Any],
        actor_type: p.ActorType,
        actors: list[p.Actor],
        records: dict[int, int],
        outcomes: list[p.Actor | ConnectorFailure | None],
    ) -> None:
        """Read the records as they are, write them, read them back: one call each for them all. Fills ``outcomes``."""
        project = actor_type == A.PROJECT
        model = "model.project.work" if project else "model.party.party"
        context = self._context(session, config) if project else {}
        fields = PROJECT_FIELDS if project else READ_FIELDS
        wanted = list(records.items())

        def read(chunk: list[tuple[int, int]]) -> list[dict[str, Any]]:
            return cast(list[dict[str, Any]], session.call(f"{model}.read", [r for _i, r in chunk], fields, context))

        rows, refused = self._each_alone(wanted, read)
        for index, reason in refused:
            outcomes[index] = reason
        current = {row["id"]: row for row in rows}
        # An actor that names a parent keeps it: the connector does not move parties or projects in Tryton.
        moving = [(i, r) for i, r in wanted if outcomes[i] is None and actors[i].parent_key is not None]
        if moving:
            now = {a.key: a for a in self._read(session, config, actor_type, [r for _i, r in moving])}
            for index, record in moving:
                actor, was = actors[index], now.get(str(record))
                if was is not None and (was.parent_actor_type, was.parent_key) != (
                    actor.parent_actor_type,
                    actor.parent_key,
                ):
                    outcomes[index] = ConnectorFailure(
                        E.VALIDATION_FAILED,
                        say(
                            "The Tryton connector cannot move it under another parent; change that in Tryton.",
                            "Tryton-kopplingen kan inte flytta den till en annan överordnad; ändra det i Tryton.",
                        ),
                        f"parent {actor.parent_actor_type}/{actor.parent_key} differs from {was.parent_key}",
                    )
        countries, languages = self._lookups(session, [actors[i] for i, _r in wanted if outcomes[i] is None])
        writes: list[tuple[int, int, dict[str, Any]]] = []
        for index, record in wanted:
            if outcomes[index] is not None:
                continue
            actor, row = actors[index], current.get(record)
            if row is None or _inactive(row):  # archived or merged in Tryton: not there any more
                outcomes[index] = self._not_found(actor)
                continue
            if actor.last_modified is not None and _modified(row) > actor.last_modified:
                outcomes[index] = ConnectorFailure(
                    E.CONFLICT,
                    say("It was changed in Tryton since it was read.", "Den har ändrats i Tryton sedan den lästes."),
                )
                continue
            try:
                values = (
                    self._project_values(actor.values)
                    if project
                    else self._party_values(actor_type, actor.values, row, countries, languages)
                )
            except ConnectorFailure as failure:
                outcomes[index] = failure
                continue
            # Values equal to the current ones are not written, so last_modified does not move (v1.1).
            shown = self._project(row, None) if project else self._party(row, actor_type, None, None)
            unchanged = all(p.same_value(shown.values.get(key), value) for key, value in actor.values.items())
            if (values or project) and not unchanged:
                writes.append((index, record, values))

        def write(chunk: list[tuple[int, int, dict[str, Any]]]) -> list[None]:
            # ModelStorage.write takes records and values, any number of times: [ids], {values}, [ids], {values}, …
            session.call(f"{model}.write", *[part for _i, r, values in chunk for part in ([r], values)], context)
            return []

        _, refused = self._each_alone(writes, write)
        for index, reason in refused:
            outcomes[index] = reason
        done = [(index, record) for index, record in wanted if outcomes[index] is None]
        saved, refused = self._each_alone(
            done, lambda chunk: self._read(session, config, actor_type, [r for _i, r in chunk])
        )
        for index, reason in refused:
            outcomes[index] = reason
        by_key = {actor.key: actor for actor in saved}
        for index, record in done:
            if outcomes[index] is None and str(record) in by_key:
                outcomes[index] = by_key[str(record)]

    def _each_alone(
        self, items: list[Item], call: Callable[[list[Item]], list[T]]
    ) -> tuple[list[T], list[tuple[int, ConnectorFailure]]]:
        """``call`` with all the items at once; when Tryton refuses that, with each item alone. Answers what the
        calls returned, and each refused item's position (its first element) with Tryton's reason.

        Only Tryton's refusals lead to single calls; a failure that concerns every call (Tryton cannot be
        reached, the login is refused) is raised."""
        if not items:
            return [], []
        try:
            return call(items), []
        except REFUSALS as error:
            if len(items) == 1:
                return [], [(items[0][0], self._failure(error))]
        answers: list[T] = []
        refused: list[tuple[int, ConnectorFailure]] = []
        for item in items:
            try:
                answers += call([item])
            except REFUSALS as error:
                refused.append((item[0], self._failure(error)))
        return answers, refused

    def _failure(self, error: rpc.TrytonError) -> ConnectorFailure:
        """Tryton's error as the protocol failure ``_tryton`` would raise for it."""
        try:
            with self._tryton():
                raise error
        except ConnectorFailure as failure:
            return failure
        raise AssertionError("_tryton turns every TrytonError into a ConnectorFailure")  # pragma: no cover

    @staticmethod
    def _not_found(actor: p.Actor) -> ConnectorFailure:
        return ConnectorFailure(E.ACTOR_NOT_FOUND, f"No {actor.actor_type.value} {actor.key} in Tryton.")

    @staticmethod
    def _writable(actor: p.Actor, creating: bool) -> None:
        fields = cat.INDEX[actor.actor_type]
        for key, value in actor.values.items():
            field = fields.get(key)
            if field is None:
                raise ConnectorFailure(E.UNKNOWN_FIELD, f"Tryton has no {actor.actor_type.value} field {key}.")
            if field.access == p.FieldAccess.READ_ONLY and not (creating and value is None):
                # A new actor may name a read-only field as null (v1.1): it has no value yet either way.
                raise ConnectorFailure(
                    E.READ_ONLY,
                    say(
                        f"{field.label} is set by Tryton and cannot be changed.",
                        f"{field.label} sätts av Tryton och kan inte ändras.",
                    ),
                )
            problem = p.check_value(field, value)
            if problem:
                raise ConnectorFailure(
                    E.VALIDATION_FAILED,
                    say(f"{field.label}: not a valid value.", f"{field.label}: ogiltigt värde."),
                    problem,
                )
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

    def _lookups(self, session: rpc.Session, actors: list[p.Actor]) -> tuple[dict[str, int], dict[str, int]]:
        """The countries and languages the actors name, by code: one search each for them all."""

        def ids(model: str, key: str) -> dict[str, int]:
            codes = sorted({str(a.values[key]) for a in actors if a.values.get(key)})
            if not codes:
                return {}
            rows = session.call(f"model.{model}.search_read", [["code", "in", codes]], 0, None, None, ["code"], {})
            found: dict[str, int] = {}
            for row in rows:  # in Tryton's order: the first of a code, as a search for that one code finds it
                found.setdefault(row["code"], row["id"])
            return found

        return ids("country.country", "COUNTRY"), ids("ir.lang", "LANGUAGE")

    @staticmethod
    def _party_values(
        actor_type: p.ActorType,
        values: dict[str, Any],
        current: dict[str, Any] | None,
        countries: dict[str, int],
        languages: dict[str, int],
    ) -> dict[str, Any]:
        """Our fields as a party's values, with Tryton's one2many operations for addresses and contacts.

        ``current`` is the party as read with READ_FIELDS (None for a new one); ``countries`` and ``languages``
        are the ids of the codes named (``_lookups``)."""
        current = current or {}
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
        if "LANGUAGE" in values:
            code = values.get("LANGUAGE")
            if code and code not in languages:
                raise ConnectorFailure(E.VALIDATION_FAILED, f"Tryton has no language {code!r}.")
            out["lang"] = languages[code] if code else None
        if "VATNO" in values:
            existing = [row["id"] for row in current.get("identifiers.") or []]
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
            if code and code not in countries:
                raise ConnectorFailure(E.VALIDATION_FAILED, f"Tryton has no country {code!r}.")
            address["country"] = countries[code] if code else None
        if address:
            existing = [row["id"] for row in current.get("addresses.") or []]
            out["addresses"] = [["write", existing[:1], address]] if existing else [["create", [address]]]
        operations: list[Any] = []
        mechanisms = current.get("contact_mechanisms.") or []
        for key, kind in cat.MECHANISMS.items():
            if key not in values or key not in cat.INDEX[actor_type]:
                continue
            present = [m["id"] for m in mechanisms if m["type"] == kind][:1]
            if values[key]:
                operations.append(
                    ["write", present, {"value": values[key]}]
                    if present
                    else ["create", [{"type": kind, "value": values[key]}]]
                )
            elif present:
                operations.append(["delete", present])
        if operations:
            out["contact_mechanisms"] = operations
        return out


def _and(words: list[str], conjunction: str) -> str:
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}" if len(words) > 1 else "".join(words)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
