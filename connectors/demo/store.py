"""Demo ERP's own database: one SQLite file, never the CRM's.

Every write takes the next value of a store-wide clock (microseconds, strictly increasing) inside an
IMMEDIATE transaction, so commits happen in clock order and the change feed never skips a change. Writes are
counted too (``writes``): the ERP's own record of how often it was written, which no retry can hide.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actors (
    actor_type TEXT NOT NULL,
    key TEXT NOT NULL,
    parent_type TEXT,
    parent_key TEXT,
    modified_us INTEGER NOT NULL,
    search TEXT NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (actor_type, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS actors_feed ON actors (actor_type, modified_us, key);
CREATE INDEX IF NOT EXISTS actors_parent ON actors (parent_type, parent_key, actor_type);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS created_keys (
    connection_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_key TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (connection_id, idempotency_key)
) WITHOUT ROWID;
"""

# Actors that are no longer in ``actors``: deleted, merged into another, or archived (kept with their values, so
# that they can be restored). The change feed reports each one as a tombstone at its modified_us.
REMOVED_SCHEMA = """
CREATE TABLE IF NOT EXISTS removed (
    actor_type TEXT NOT NULL,
    key TEXT NOT NULL,
    modified_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    merged_into TEXT,
    parent_type TEXT,
    parent_key TEXT,
    search TEXT,
    vals TEXT,
    PRIMARY KEY (actor_type, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS removed_feed ON removed (actor_type, modified_us, key);
"""

# Where each connection's change notifications go (protocol v1.1, change_notifications): the notify_url of its
# last SaveConnection.
NOTIFY_SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_urls (
    connection_id TEXT PRIMARY KEY,
    url TEXT NOT NULL
);
"""

# How long CreateActor's idempotency keys are kept (the protocol asks for at least 24 hours).
CREATED_KEYS_KEPT = timedelta(days=7)


def fold(value: Any) -> Any:
    """Case-insensitive text for comparisons (SQLite's lower() only knows ASCII: Ö, Å, Ø need this)."""
    return value.casefold() if isinstance(value, str) else value


def decimal_order(value: Any) -> Any:
    """A decimal string as a number SQLite compares exactly: micro-units as an integer (money has two places)."""
    if value is None:
        return None
    try:
        micros = Decimal(str(value)).scaleb(6)
    except InvalidOperation:
        return value
    return int(micros) if micros == micros.to_integral_value() and abs(micros) < 2**63 else float(value)


UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding, so equal instants compare equal)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - UNIX_EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    return UNIX_EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Row:
    """An actor as stored; its values stay JSON text until someone needs them as Python."""

    actor_type: str
    key: str
    parent_type: str | None
    parent_key: str | None
    modified_us: int
    vals_json: str

    @classmethod
    def of(
        cls,
        actor_type: str,
        key: str,
        parent_type: str | None,
        parent_key: str | None,
        modified_us: int,
        values: dict[str, Any],
    ) -> Row:
        return cls(actor_type, key, parent_type, parent_key, modified_us, json.dumps(values, separators=(",", ":")))

    @property
    def values(self) -> dict[str, Any]:
        return dict(json.loads(self.vals_json))

    @property
    def last_modified(self) -> datetime:
        return from_micros(self.modified_us)


@dataclass(frozen=True)
class Removed:
    """An actor taken out of ``actors``, as the change feed reports it."""

    actor_type: str
    key: str
    modified_us: int
    kind: str
    merged_into: str | None

    def tombstone_json(self) -> str:
        return json.dumps(
            {
                "actor_type": self.actor_type,
                "key": self.key,
                "last_modified": from_micros(self.modified_us).isoformat(),
                "kind": self.kind,
                "merged_into": self.merged_into,
            },
            separators=(",", ":"),
        )


class Store:
    """Thread-safe access to the Demo ERP database at ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._connection().executescript(
            SCHEMA + REMOVED_SCHEMA + NOTIFY_SCHEMA
        )  # executescript manages its own transaction

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.create_function("fold", 1, fold, deterministic=True)
            db.create_function("dec", 1, decimal_order, deterministic=True)
            self._local.db = db
        return db

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # Clock and keys (call inside write())

    @staticmethod
    def tick(db: sqlite3.Connection, count: int = 1) -> int:
        """Reserve ``count`` clock values; returns the first. Never goes backwards, even if the wall clock does."""
        now = time.time_ns() // 1000
        row = db.execute("SELECT value FROM counters WHERE name = 'clock'").fetchone()
        first = max(now, (row[0] + 1) if row else 0)
        db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('clock', ?)", (first + count - 1,))
        return first

    @staticmethod
    def next_numbers(db: sqlite3.Connection, name: str, count: int, start: int) -> int:
        row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        first = row[0] + 1 if row else start
        db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (name, first + count - 1))
        return first

    # Connections

    def save_connection(self, connection_id: str, config: dict[str, Any]) -> None:
        with self.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO connections (id, config, saved_at) VALUES (?, ?, ?)",
                (connection_id, json.dumps(config), datetime.now(UTC).isoformat()),
            )

    def connection(self, connection_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT config FROM connections WHERE id = ?", (connection_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def delete_connection(self, connection_id: str) -> bool:
        with self.write() as db:
            db.execute("DELETE FROM notify_urls WHERE connection_id = ?", (connection_id,))
            return db.execute("DELETE FROM connections WHERE id = ?", (connection_id,)).rowcount > 0

    def save_notify_url(self, connection_id: str, url: str | None) -> None:
        with self.write() as db:
            if url:
                db.execute(
                    "INSERT OR REPLACE INTO notify_urls (connection_id, url) VALUES (?, ?)", (connection_id, url)
                )
            else:
                db.execute("DELETE FROM notify_urls WHERE connection_id = ?", (connection_id,))

    def notify_urls(self) -> dict[str, str]:
        """Connection id → notify URL, for every connection that has one."""
        with self.read() as db:
            return {str(row[0]): str(row[1]) for row in db.execute("SELECT connection_id, url FROM notify_urls")}

    # What changed (the change notifications' watcher)

    def clock(self) -> int:
        """The store's clock: the last value a write took (0 for a store never written)."""
        with self.read() as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'clock'").fetchone()
        return int(row[0]) if row else 0

    def changed_since(self, clock: int, actor_types: Iterable[str], limit: int) -> dict[str, list[str] | None]:
        """Actor type → keys of the actors written (or removed) after ``clock``; None for a type with more than
        ``limit`` of them."""
        changed: dict[str, list[str] | None] = {}
        with self.read() as db:
            for actor_type in actor_types:
                keys = [
                    str(row[0])
                    for table in ("actors", "removed")
                    for row in db.execute(
                        f"SELECT key FROM {table} WHERE actor_type = ? AND modified_us > ? LIMIT ?",
                        (actor_type, clock, limit + 1),
                    )
                ]
                if keys:
                    changed[actor_type] = None if len(keys) > limit else sorted(set(keys))
        return changed

    # Actors

    @staticmethod
    def insert(db: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (actor_type, key, parent_type, parent_key, modified_us, search, values-json)."""
        rows = list(rows)
        db.executemany(
            "INSERT INTO actors (actor_type, key, parent_type, parent_key, modified_us, search, vals)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        Store.count_writes(db, len(rows))

    @staticmethod
    def update(db: sqlite3.Connection, row: Row, modified_us: int, search: str) -> None:
        db.execute(
            "UPDATE actors SET parent_type = ?, parent_key = ?, modified_us = ?, search = ?, vals = ?"
            " WHERE actor_type = ? AND key = ?",
            (row.parent_type, row.parent_key, modified_us, search, row.vals_json, row.actor_type, row.key),
        )
        Store.count_writes(db, 1)

    @staticmethod
    def count_writes(db: sqlite3.Connection, count: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES ('writes', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (count,),
        )

    def writes(self) -> int:
        """Actors written since the store was made: each one created and each change saved."""
        with self.read() as db:
            row = db.execute("SELECT value FROM counters WHERE name = 'writes'").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def fetch(db: sqlite3.Connection, actor_type: str, keys: Sequence[str]) -> dict[str, Row]:
        found: dict[str, Row] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for record in db.execute(
                "SELECT actor_type, key, parent_type, parent_key, modified_us, vals FROM actors"
                f" WHERE actor_type = ? AND key IN ({marks})",
                (actor_type, *chunk),
            ):
                found[record[1]] = _row(record)
        return found

    @staticmethod
    def select(db: sqlite3.Connection, where: str, params: Sequence[Any], order: str, limit: int) -> list[Row]:
        sql = (
            "SELECT actor_type, key, parent_type, parent_key, modified_us, vals FROM actors"
            f" WHERE {where} ORDER BY {order} LIMIT ?"
        )
        return [_row(record) for record in db.execute(sql, (*params, limit))]

    # Idempotency keys of CreateActor (call inside write())

    @staticmethod
    def created_for(db: sqlite3.Connection, connection_id: str, idempotency_key: str) -> tuple[str, str] | None:
        """(actor type, key) of the actor created for ``idempotency_key``, if it is still remembered."""
        oldest = to_micros(datetime.now(UTC) - CREATED_KEYS_KEPT)
        row = db.execute(
            "SELECT actor_type, actor_key FROM created_keys"
            " WHERE connection_id = ? AND idempotency_key = ? AND created_us >= ?",
            (connection_id, idempotency_key, oldest),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    @staticmethod
    def remember_created(
        db: sqlite3.Connection, connection_id: str, idempotency_key: str, actor_type: str, actor_key: str
    ) -> None:
        now = datetime.now(UTC)
        db.execute("DELETE FROM created_keys WHERE created_us < ?", (to_micros(now - CREATED_KEYS_KEPT),))
        db.execute(
            "INSERT OR REPLACE INTO created_keys (connection_id, idempotency_key, actor_type, actor_key, created_us)"
            " VALUES (?, ?, ?, ?, ?)",
            (connection_id, idempotency_key, actor_type, actor_key, to_micros(now)),
        )

    # Deleting, merging, archiving and restoring (what the ERP's own users do; the protocol cannot)

    def remove(self, actor_type: str, key: str, kind: str, merged_into: str | None = None) -> int:
        """Take an actor out: ``kind`` is deleted, merged (into ``merged_into``, which must exist) or archived.
        Returns the clock value of its tombstone. Raises KeyError when there is no such actor."""
        with self.write() as db:
            if kind == "merged" and not Store.fetch(db, actor_type, [merged_into or ""]):
                raise KeyError(f"{actor_type} {merged_into}")
            row = db.execute(
                "SELECT parent_type, parent_key, search, vals FROM actors WHERE actor_type = ? AND key = ?",
                (actor_type, key),
            ).fetchone()
            if row is None:
                raise KeyError(f"{actor_type} {key}")
            modified = Store.tick(db)
            db.execute("DELETE FROM actors WHERE actor_type = ? AND key = ?", (actor_type, key))
            kept = row if kind == "archived" else (None, None, None, None)
            db.execute(
                "INSERT OR REPLACE INTO removed"
                " (actor_type, key, modified_us, kind, merged_into, parent_type, parent_key, search, vals)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (actor_type, key, modified, kind, merged_into if kind == "merged" else None, *kept),
            )
            Store.count_writes(db, 1)
        return modified

    def restore(self, actor_type: str, key: str) -> int:
        """Bring an archived actor back; it is a change (the feed reports it again). Raises KeyError when no
        archived actor has this key."""
        with self.write() as db:
            row = db.execute(
                "SELECT parent_type, parent_key, search, vals FROM removed"
                " WHERE actor_type = ? AND key = ? AND kind = 'archived'",
                (actor_type, key),
            ).fetchone()
            if row is None:
                raise KeyError(f"{actor_type} {key}")
            modified = Store.tick(db)
            db.execute("DELETE FROM removed WHERE actor_type = ? AND key = ?", (actor_type, key))
            parent_type, parent_key, search, vals = row
            db.execute(
                "INSERT INTO actors (actor_type, key, parent_type, parent_key, modified_us, search, vals)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (actor_type, key, parent_type, parent_key, modified, search, vals),
            )
            Store.count_writes(db, 1)
        return modified

    def money_as_decimals(self, fields: dict[Any, list[str]]) -> None:
        """Keep ``fields`` (actor type → field keys) as decimal strings with two places: a store made before money
        fields were decimals holds them as JSON numbers. A change of form, not of value: nothing is ticked."""
        with self.write() as db:
            for actor_type, keys in fields.items():
                for key in keys:
                    path = f'$."{key}"'
                    db.execute(
                        "UPDATE actors SET vals = json_set(vals, ?, printf('%.2f', json_extract(vals, ?)))"
                        " WHERE actor_type = ? AND json_type(vals, ?) IN ('real', 'integer')",
                        (path, path, str(actor_type), path),
                    )

    @staticmethod
    def select_removed(db: sqlite3.Connection, where: str, params: Sequence[Any], limit: int) -> list[Removed]:
        """Tombstones matching ``where`` (the change feed's conditions on actor_type, modified_us and key)."""
        sql = (
            "SELECT actor_type, key, modified_us, kind, merged_into FROM removed"
            f" WHERE {where} ORDER BY modified_us, key LIMIT ?"
        )
        return [Removed(*record) for record in db.execute(sql, (*params, limit))]

    def count(self) -> int:
        with self.read() as db:
            return int(db.execute("SELECT count(*) FROM actors").fetchone()[0])


def _row(record: tuple[Any, ...]) -> Row:
    return Row(record[0], record[1], record[2], record[3], record[4], record[5])
