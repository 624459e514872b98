"""Change notifications (protocol v1.1, capability ``change_notifications``): the connector tells the CRM that actors
changed, and the CRM syncs them within seconds instead of at its next round.

    class MyErp(Connector):
        capabilities = frozenset({"change_notifications"})

        def save_actors(self, request, context):
            ...  # write to the ERP
            self.notify_changed(request.connection_id, p.ActorType.CUSTOMER, [a.key for a in request.actors])

The SDK keeps each connection's notify URL (the ``notify_url`` of SaveConnection; DeleteConnection forgets it) and
sends notifications from a thread of its own: ``changed()`` returns at once, changes made close together go in one
notification per URL, and a notification the CRM did not take (unreachable, 5xx, 429, 401) is sent again with
exponential backoff, changes made meanwhile joining it, for ``give_up_after`` seconds; after that the CRM's polling
finds the changes. A connector with a store of its own keeps the URLs there too and registers them again when it
starts (``Connector.notifications_started``), as Demo ERP does.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from .. import protocol as p

log = logging.getLogger("connectors.sdk.notify")


@dataclass
class _Change:
    """What one connection has to be told: the actor types and keys that changed, or None where a change did not
    say (then the notification does not say either)."""

    actor_types: set[str] | None = field(default_factory=set)
    keys: set[str] | None = field(default_factory=set)

    def add(self, actor_type: str | None, keys: Iterable[str] | None) -> None:
        if actor_type is None:
            self.actor_types = None
        elif self.actor_types is not None:
            self.actor_types.add(actor_type)
        if keys is None:
            self.keys = None
        elif self.keys is not None:
            self.keys.update(keys)
            if len(self.keys) > p.MAX_KEYS_PER_CALL:
                self.keys = None  # too many to name: the CRM reads the change feed anyway


@dataclass
class _Batch:
    """Changes waiting to be sent to one notify URL."""

    first_at: float
    changes: dict[str, _Change] = field(default_factory=dict)  # connection id → what changed
    attempts: int = 0
    not_before: float = 0.0

    def due(self, delay: float) -> float:
        return max(self.not_before, self.first_at + delay)

    def absorb(self, other: _Batch) -> None:
        self.first_at = min(self.first_at, other.first_at)
        for connection_id, change in other.changes.items():
            mine = self.changes.setdefault(connection_id, _Change())
            if change.actor_types is None:
                mine.actor_types = None
            elif mine.actor_types is not None:
                mine.actor_types |= change.actor_types
            if change.keys is None or mine.keys is None:
                mine.keys = None
            else:
                mine.keys |= change.keys
                if len(mine.keys) > p.MAX_KEYS_PER_CALL:
                    mine.keys = None


class Notifier:
    """Sends a connector's change notifications, signed with ``secret`` (naming ``key_id`` when given), to the notify
    URL of each connection it was told of. Thread-safe; ``changed()`` never blocks on the network."""

    def __init__(
        self,
        secret: str,
        key_id: str = "",
        *,
        delay: float = 0.2,
        timeout: float = 10.0,
        give_up_after: float = 300.0,
        first_retry: float = 0.5,
        longest_retry: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret:
            raise ValueError("change notifications are signed: give the shared secret")
        self.secret = secret
        self.key_id = key_id
        self.delay = delay
        self.timeout = timeout
        self.give_up_after = give_up_after
        self.first_retry = first_retry
        self.longest_retry = longest_retry
        self._clock = clock
        self._urls: dict[str, str] = {}
        self._pending: dict[str, _Batch] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._http: httpx.Client | None = None
        # What happened so far, for a connector's own metrics and for tests.
        self.delivered = 0
        self.retried = 0
        self.dropped = 0

    # Which connections are told, and where

    def register(self, connection_id: str, url: str | None) -> None:
        """Send the connection's notifications to ``url`` from now on; None or "" stops them."""
        with self._lock:
            if url:
                self._urls[connection_id] = url
            else:
                self._urls.pop(connection_id, None)

    def forget(self, connection_id: str) -> None:
        self.register(connection_id, None)

    def urls(self) -> dict[str, str]:
        """Connection id → notify URL, as registered now."""
        with self._lock:
            return dict(self._urls)

    # Telling

    def changed(
        self,
        actor_type: p.ActorType | str | None = None,
        keys: Iterable[str] | None = None,
        connection_ids: Iterable[str] | None = None,
    ) -> None:
        """Actors changed: of ``actor_type`` (None: not said), with ``keys`` (None: not said), seen through the
        connections ``connection_ids`` (None: every connection registered, as for a change made in the ERP itself).
        Returns at once; the notification is sent within ``delay`` seconds from a thread of the notifier's own."""
        type_name = actor_type.value if isinstance(actor_type, p.ActorType) else actor_type
        key_list = None if keys is None else [str(key) for key in keys]
        now = self._clock()
        with self._lock:
            if self._closed:
                return
            targets = list(self._urls) if connection_ids is None else list(connection_ids)
            added = False
            for connection_id in targets:
                url = self._urls.get(connection_id)
                if not url:
                    continue
                batch = self._pending.setdefault(url, _Batch(first_at=now))
                batch.changes.setdefault(connection_id, _Change()).add(type_name, key_list)
                added = True
            if added:
                self._start()
                self._wake.set()

    def pending(self) -> int:
        """Notify URLs with changes still to be sent."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Stop sending; what is still pending is dropped (the CRM's polling finds it)."""
        with self._lock:
            self._closed = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join(self.timeout + 1)
        if self._http is not None:
            self._http.close()

    # The sending thread

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="change notifications", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            due: list[tuple[str, _Batch]] = []
            wait: float | None = None
            with self._lock:
                if self._closed:
                    return
                for url, batch in list(self._pending.items()):
                    at = batch.due(self.delay)
                    if at <= now:
                        due.append((url, self._pending.pop(url)))
                    else:
                        wait = at - now if wait is None else min(wait, at - now)
            for url, batch in due:
                try:
                    self._deliver(url, batch)
                except Exception:  # a bug must not end the thread: the changes are dropped, polling finds them
                    log.exception("change notification to %s failed", url)
                    self.dropped += 1
            if not due:
                self._wake.wait(wait)

    def _deliver(self, url: str, batch: _Batch) -> None:
        items = list(batch.changes.items())
        left = _Batch(first_at=batch.first_at, attempts=batch.attempts)
        retry_after: float | None = None
        for start in range(0, len(items), p.MAX_NOTIFIED_CONNECTIONS):
            part = items[start : start + p.MAX_NOTIFIED_CONNECTIONS]
            outcome, asked = self._post(url, part)
            if outcome == "again":
                left.changes.update(part)
                retry_after = max(retry_after or 0.0, asked or 0.0) if asked else retry_after
        if not left.changes:
            return
        now = self._clock()
        if now - batch.first_at > self.give_up_after:
            log.warning(
                "gave up notifying %s after %s attempts; the CRM's polling finds the changes", url, batch.attempts + 1
            )
            self.dropped += 1
            return
        left.attempts += 1
        backoff = min(self.longest_retry, self.first_retry * 2 ** (left.attempts - 1))
        left.not_before = now + max(retry_after or 0.0, backoff * random.uniform(0.8, 1.2))  # noqa: S311  (jitter)
        self.retried += 1
        with self._lock:
            if self._closed:
                return
            newer = self._pending.get(url)
            if newer is not None:
                left.absorb(newer)
            self._pending[url] = left

    def _post(self, url: str, part: list[tuple[str, _Change]]) -> tuple[str, float | None]:
        """Send one notification: ("done", None), ("again", retry_after) or ("dropped", None)."""
        body = _body(part, with_keys=True)
        if len(body) > p.MAX_NOTIFICATION_BYTES:
            body = _body(part, with_keys=False)
        path = urlsplit(url).path or "/"
        headers = p.signed_headers(self.secret, path, body, key_id=self.key_id)
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False)
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            log.info("could not notify %s (%s); sending again later", url, e or type(e).__name__)
            return "again", None
        asked = None
        try:
            envelope = p.Envelope.model_validate_json(response.content)
            asked = envelope.retry_after
        except ValidationError:
            envelope = None
        if response.status_code == 200 and envelope is not None and envelope.ok:
            self.delivered += 1
            try:
                data = p.NotificationData.model_validate(envelope.data or {})
            except ValidationError:
                return "done", None
            for ignored in data.ignored:
                log.info("the CRM took no notice of connection %s: %s", ignored.connection_id, ignored.reason.value)
            return "done", None
        if response.status_code in (401, 408, 429) or response.status_code >= 500:
            what = envelope.technical_explanation if envelope is not None else ""
            log.info(
                "the CRM did not take a notification (HTTP %s %s); sending again later", response.status_code, what
            )
            return "again", asked
        log.warning(
            "the CRM refused a change notification (HTTP %s %s); it is not sent again",
            response.status_code,
            envelope.technical_explanation if envelope is not None else "",
        )
        self.dropped += 1
        return "dropped", None


def _body(part: list[tuple[str, _Change]], with_keys: bool) -> bytes:
    changes = [
        p.NotifiedChange(
            connection_id=connection_id,
            actor_types=[
                p.ActorType(t) for t in sorted(change.actor_types or ()) if t in p.ActorType._value2member_map_
            ],
            keys=sorted(change.keys) if with_keys and change.keys else [],
        )
        for connection_id, change in part
    ]
    return p.ChangeNotification(changes=changes).model_dump_json().encode()
