"""Demo ERP's own database: one SQLite file, never the CRM's.

Every write takes the next value of a store-wide clock (microseconds, strictly increasing) inside an
IMMEDIATE transaction, so commits happen in clock order and the change feed never skips a change.
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
"""


def fold(value: Any) -> Any:
    """Case-insensitive text for comparisons (SQLite's lower() only knows ASCII: Ö, Å, Ø need this)."""
    return value.casefold() if isinstance(value, str) else value


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
    def of(cls, actor_type: str, key: str, parent_type: str | None, parent_key: str | None, modified_us: int,
           values: dict[str, Any]) -> Row:  # fmt: skip
        return cls(actor_type, key, parent_type, parent_key, modified_us, json.dumps(values, separators=(",", ":")))

    @property
    def values(self) -> dict[str, Any]:
        return dict(json.loads(self.vals_json))

    @property
    def last_modified(self) -> datetime:
        return from_micros(self.modified_us)


class Store:
    """Thread-safe access to the Demo ERP database at ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._connection().executescript(SCHEMA)  # executescript manages its own transaction

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.create_function("fold", 1, fold, deterministic=True)
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
            return db.execute("DELETE FROM connections WHERE id = ?", (connection_id,)).rowcount > 0

    # Actors

    @staticmethod
    def insert(db: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (actor_type, key, parent_type, parent_key, modified_us, search, values-json)."""
        db.executemany(
            "INSERT INTO actors (actor_type, key, parent_type, parent_key, modified_us, search, vals)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    @staticmethod
    def update(db: sqlite3.Connection, row: Row, modified_us: int, search: str) -> None:
        db.execute(
            "UPDATE actors SET parent_type = ?, parent_key = ?, modified_us = ?, search = ?, vals = ?"
            " WHERE actor_type = ? AND key = ?",
            (row.parent_type, row.parent_key, modified_us, search, row.vals_json, row.actor_type, row.key),
        )

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

    def count(self) -> int:
        with self.read() as db:
            return int(db.execute("SELECT count(*) FROM actors").fetchone()[0])


def _row(record: tuple[Any, ...]) -> Row:
    return Row(record[0], record[1], record[2], record[3], record[4], record[5])
