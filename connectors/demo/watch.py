"""Demo ERP's change notifications (protocol v1.1, change_notifications): a thread watches the store's clock and
tells the notifier which actors changed, whoever changed them: a call through the protocol, the ERP's own users
(deleting, merging, archiving), or another process writing to the same file. Every write ticks the clock in its
own transaction, so a clock value read means every write up to it is committed and visible."""

from __future__ import annotations

import logging
import threading

from connectors import protocol as p
from connectors.sdk import Notifier

from . import catalogue as cat
from .store import Store

log = logging.getLogger("connectors.demo")

# How often the clock is looked at: a change is notified within this, plus the notifier's own short delay.
WATCH_INTERVAL = 0.25


class ChangeWatcher:
    """Started once a connection has a notify URL; looks at the clock every ``interval`` seconds, and reads what
    changed only when it moved and some connection is to be told."""

    def __init__(self, store: Store, notifier: Notifier, interval: float = WATCH_INTERVAL) -> None:
        self.store = store
        self.notifier = notifier
        self.interval = interval
        self._seen = store.clock()
        self._started = False
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            # Changes made before any connection had a notify URL are no one's to be told of.
            self._seen = self.store.clock()
        threading.Thread(target=self._loop, name="demo change watcher", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.look()
            except Exception:  # a locked or missing file now and then: look again at the next tick
                log.warning("could not look for changes", exc_info=True)

    def look(self) -> None:
        """Tell the notifier about every actor written since the last look."""
        now = self.store.clock()
        if now <= self._seen:
            return
        if not self.notifier.urls():
            self._seen = now
            return
        changed = self.store.changed_since(self._seen, [t.value for t in cat.FIELDS], p.MAX_KEYS_PER_CALL)
        self._seen = now
        for actor_type, keys in changed.items():
            self.notifier.changed(actor_type, keys)
