"""The Tryton connector's change notifications (protocol v1.1, change_notifications). Tryton calls no one when a
record changes, so a thread looks at the ``create_date`` and ``write_date`` of the records the connector maps,
every few seconds, and tells the notifier which actors changed, whoever changed them: a call through the
protocol, a Tryton user in Tryton's own client, an import.

One thread per connector process. The connections with a notify URL are grouped by the Tryton database they
read (server, database, user, company): each group is looked at once a round, with a few searches (parties,
their addresses, contact mechanisms and identifiers, relations, projects), and only when something changed are
the changed records sorted into each connection's actor types. A Tryton that cannot be reached is logged and
looked at again the next round; what changed meanwhile is told then.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from connectors import protocol as p
from connectors.sdk import ConnectorFailure, Notifier

from . import rpc

log = logging.getLogger("connectors.tryton")

A = p.ActorType
WATCH_SECONDS = 2.0  # the default round: a change is told within this, plus the notifier's own short delay
MIN_WATCH_SECONDS = 0.5  # below this the searches would load Tryton for little gain
# Tryton stamps a whole transaction with the time it began, so a transaction that commits late lands behind
# changes already seen: each round looks this far back, and records already told with the same date are skipped.
OVERLAP = timedelta(seconds=5)
# A group that had no connection with a notify URL for this long is primed again before it is looked at, so
# that changes made while no one was to be told of them are not told all at once later.
IDLE_RESET = 10.0
ALL = {"active_test": False}  # archived parties, addresses and contact mechanisms changed too


class Reader(Protocol):
    """What the watcher uses of the connector (TrytonConnector): its connections, its sessions, and its own
    definition of which records are which actor type, so that what is told matches what the feed gives."""

    store: Any  # ConfigStore: .get(connection_id) → the connection's configuration, or None

    def _session(self, config: dict[str, Any]) -> rpc.Session: ...

    def _modules(self, session: rpc.Session, fresh: bool = False) -> set[str]: ...

    def _context(self, session: rpc.Session, config: dict[str, Any]) -> dict[str, Any]: ...

    def _types(self, config: dict[str, Any], session: rpc.Session) -> list[p.ActorType]: ...

    def _base_domain(self, session: rpc.Session, config: dict[str, Any], actor_type: p.ActorType) -> list[Any]: ...


@dataclass(frozen=True)
class Watched:
    """A Tryton model whose dates are watched, and which parties or projects a changed row stands for."""

    model: str
    fields: tuple[str, ...]  # besides the dates: the columns naming the party (or the row itself, "id")
    projects: bool = False


PARTY_MODELS = (
    Watched("party.party", ("id",)),
    Watched("party.address", ("party",)),
    Watched("party.contact_mechanism", ("party",)),
    Watched("party.identifier", ("party",)),
)
# A person joined to (or moved from) a company. party.relation is not open to RPC; the view of both directions is.
RELATIONS = Watched("party.relation.all", ("from_", "to"))
PROJECTS = Watched("project.work", ("id",), projects=True)


@dataclass
class Group:
    """What the watcher knows of one Tryton database: the latest date seen, and the rows already told."""

    primed: bool = False
    watermark: datetime | None = None
    seen: dict[tuple[str, int], datetime] = field(default_factory=dict)
    idle_since: float | None = None
    failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _stamp(row: dict[str, Any]) -> datetime | None:
    dates = [d for d in (row.get("create_date"), row.get("write_date")) if isinstance(d, datetime)]
    return max(dates) if dates else None


class ChangeWatcher:
    """Looks at Tryton every ``interval`` seconds, for the connections registered with ``notifier``."""

    def __init__(
        self,
        connector: Reader,
        notifier: Notifier,
        interval: float = WATCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connector = connector
        self.notifier = notifier
        self.interval = interval
        self._clock = clock
        self._groups: dict[tuple[str, ...], Group] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0  # rounds looked, for tests and metrics

    # Starting and stopping

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name="tryton change watcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop looking; waits for a round under way to end."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.look()
            except Exception:  # a bug must not end the watching: the CRM's polling stays the safety net
                log.exception("looking for changes in Tryton failed")
            self.rounds += 1

    # Which Tryton databases are watched

    @staticmethod
    def _key(config: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(config.get(name) or "") for name in ("server_url", "database", "user", "password", "company"))

    def _group(self, key: tuple[str, ...]) -> Group:
        with self._lock:
            return self._groups.setdefault(key, Group())

    def watch(self, config: dict[str, Any]) -> None:
        """A connection of ``config`` is about to get a notify URL: its Tryton database is primed now, so that a
        change made right after SaveConnection is told. When no connection reading that database is being told of
        changes, it starts from now: what changed before was no one's to be told of (nor this connection's, which
        did not exist or did not listen then). If Tryton cannot be reached, the next round primes it."""
        key = self._key(config)
        group = self._group(key)
        with group.lock:
            if not self._told(key):
                group.primed = False
            group.idle_since = None
            if not group.primed:
                try:
                    self._prime(group, config)
                except (rpc.TrytonError, ConnectorFailure) as error:
                    log.info("could not look at Tryton yet (%s); the watcher tries again", error)

    def _told(self, key: tuple[str, ...]) -> bool:
        """Whether some connection reading the Tryton database of ``key`` has a notify URL now."""
        for connection_id in self.notifier.urls():
            config = self.connector.store.get(connection_id)
            if config is not None and self._key(config) == key:
                return True
        return False

    # Looking

    def look(self) -> None:
        """One round: every Tryton database some connection with a notify URL reads is looked at once, and the
        changes found since the last round are told to those connections."""
        urls = self.notifier.urls()
        wanted: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
        for connection_id in urls:
            config = self.connector.store.get(connection_id)
            if config is not None:
                wanted.setdefault(self._key(config), []).append((connection_id, config))
        now = self._clock()
        with self._lock:
            idle = [group for key, group in self._groups.items() if key not in wanted]
        for group in idle:
            with group.lock:
                if group.idle_since is None:
                    group.idle_since = now
                elif now - group.idle_since > IDLE_RESET:
                    group.primed = False
        for key, connections in wanted.items():
            if self._stop.is_set():
                return
            group = self._group(key)
            with group.lock:
                self._look_at(group, connections)

    def _look_at(self, group: Group, connections: list[tuple[str, dict[str, Any]]]) -> None:
        config = connections[0][1]
        try:
            if group.primed and group.idle_since is not None and self._clock() - group.idle_since > IDLE_RESET:
                group.primed = False
            group.idle_since = None
            if not group.primed:
                self._prime(group, config)
            else:
                parties, projects = self._changes(group, config)
                for connection_id, connection in connections if parties or projects else []:
                    try:
                        self._tell(connection_id, connection, parties, projects)
                    except (rpc.TrytonError, ConnectorFailure) as error:  # e.g. its category was renamed
                        log.warning("cannot sort Tryton's changes for connection %s: %s", connection_id, error)
        except (rpc.TrytonError, ConnectorFailure) as error:
            if not group.failing:
                log.warning(
                    "cannot look for changes in Tryton at %s (%s); trying again every %g s",
                    config.get("server_url"),
                    error,
                    self.interval,
                )
            group.failing = True
            return
        if group.failing:
            log.info("Tryton at %s answers again; changes are told as before", config.get("server_url"))
            group.failing = False

    def _session(self, config: dict[str, Any]) -> rpc.Session:
        return self.connector._session(config)

    def _models(self, session: rpc.Session, config: dict[str, Any]) -> list[Watched]:
        modules = self.connector._modules(session)
        models = list(PARTY_MODELS)
        if "party_relationship" in modules:
            models.append(RELATIONS)
        if config.get("company") and "project" in modules:
            models.append(PROJECTS)
        return models

    def _search(
        self, session: rpc.Session, config: dict[str, Any], watched: Watched, domain: list[Any], **options: Any
    ) -> list[dict[str, Any]]:
        context = {**ALL, **self.connector._context(session, config)} if watched.projects else ALL
        if watched.projects:
            domain = [*domain, ["type", "=", "project"]]
        fields = [f for f in watched.fields if f != "id"] + ["create_date", "write_date"]
        return list(
            session.call(
                f"model.{watched.model}.search_read",
                domain,
                0,
                options.get("limit"),
                options.get("order"),
                fields,
                context,
            )
        )

    def _prime(self, group: Group, config: dict[str, Any]) -> None:
        """Start from now: the latest date in Tryton, and the rows of the last moments already seen."""
        session = self._session(config)
        latest: list[datetime] = []
        for watched in self._models(session, config):
            for column in ("create_date", "write_date"):
                rows = self._search(session, config, watched, [[column, "!=", None]], limit=1, order=[[column, "DESC"]])
                latest += [s for s in map(_stamp, rows) if s is not None]
        group.seen.clear()
        group.watermark = max(latest, default=None)
        group.primed = True
        if group.watermark is not None:
            self._changes(group, config)  # fills ``seen`` with the rows of the overlap: they are not news

    def _changes(self, group: Group, config: dict[str, Any]) -> tuple[set[int], set[int]]:
        """The parties and projects changed since the last round (ids), and the watermark moved on."""
        session = self._session(config)
        since = None if group.watermark is None else group.watermark - OVERLAP
        dated = [] if since is None else [["OR", ["create_date", ">=", since], ["write_date", ">=", since]]]
        parties: set[int] = set()
        projects: set[int] = set()
        latest = group.watermark
        for watched in self._models(session, config):
            for row in self._search(session, config, watched, dated):
                stamp = _stamp(row)
                if stamp is None:
                    continue
                latest = stamp if latest is None else max(latest, stamp)
                if group.seen.get((watched.model, row["id"])) == stamp:
                    continue
                group.seen[(watched.model, row["id"])] = stamp
                found = projects if watched.projects else parties
                for column in watched.fields:
                    value = row.get(column)
                    if isinstance(value, int):
                        found.add(value)
        group.watermark = latest
        if latest is not None:
            oldest = latest - OVERLAP
            group.seen = {key: stamp for key, stamp in group.seen.items() if stamp >= oldest}
        return parties, projects

    def _tell(self, connection_id: str, config: dict[str, Any], parties: set[int], projects: set[int]) -> None:
        """Sort the changed records into the connection's actor types (a party is a customer by its category, a
        person by its relation, …, as the connector reads them) and tell the notifier."""
        session = self._session(config)
        for actor_type in self.connector._types(config, session):
            if len(projects if actor_type == A.PROJECT else parties) > p.MAX_KEYS_PER_CALL:
                # Too many to name (an import): the type is told without keys, and the CRM reads its feed.
                self.notifier.changed(actor_type, None, [connection_id])
                continue
            if actor_type == A.PROJECT:
                keys = sorted(projects)
            elif parties:
                domain = [["id", "in", sorted(parties)], *self.connector._base_domain(session, config, actor_type)]
                keys = sorted(session.call("model.party.party.search", domain, 0, None, None, ALL))
            else:
                keys = []
            if keys:
                self.notifier.changed(actor_type, [str(k) for k in keys], [connection_id])
