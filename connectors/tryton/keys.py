"""The idempotency keys of CreateActor (protocol v1.1, capability ``idempotent_create``) for the Tryton connector.

Tryton has no store for them, and a key kept in a party (as an identifier, say) would show in Tryton and in the
fields the connector maps. So the connector keeps them itself, in a small SQLite file beside its connections file:
which record each key created, for KEEP_SECONDS. The file survives a restart of the connector.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

KEEP_SECONDS = 7 * 24 * 60 * 60.0  # the protocol asks for at least a day


class CreatedKeys:
    """(connection id, idempotency key) → the actor type and the Tryton record id it created."""

    def __init__(self, path: Path | str, keep: float = KEEP_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.keep = keep
        self.clock = clock
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS created_key ("
                " connection_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, actor_type TEXT NOT NULL,"
                " record_id INTEGER NOT NULL, created_at REAL NOT NULL,"
                " PRIMARY KEY (connection_id, idempotency_key))"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction, committed on leaving
                yield db
        finally:
            db.close()

    @contextmanager
    def held(self, connection_id: str, key: str) -> Iterator[None]:
        """Held while a key is looked up and, if new, its actor created: a second call with the same key at the
        same moment waits, then finds what the first created. (The connector is one process.)"""
        with self._guard:
            lock = self._locks.setdefault((connection_id, key), threading.Lock())
        with lock:
            yield
        with self._guard:
            if not lock.locked():
                self._locks.pop((connection_id, key), None)

    def find(self, connection_id: str, key: str) -> tuple[str, int] | None:
        """The actor type and record id created for the key, if it was used within ``keep``."""
        with self._db() as db:
            db.execute("DELETE FROM created_key WHERE created_at < ?", (self.clock() - self.keep,))
            row = db.execute(
                "SELECT actor_type, record_id FROM created_key WHERE connection_id = ? AND idempotency_key = ?",
                (connection_id, key),
            ).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    def remember(self, connection_id: str, key: str, actor_type: str, record_id: int) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO created_key VALUES (?, ?, ?, ?, ?)",
                (connection_id, key, actor_type, record_id, self.clock()),
            )

    def forget_connection(self, connection_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM created_key WHERE connection_id = ?", (connection_id,))
