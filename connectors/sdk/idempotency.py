"""Idempotent CreateActor (protocol v1.1, capability ``idempotent_create``) for connectors without a store of
their own: the answer to each idempotency key is remembered in memory for a day.

    class MyErp(Connector):
        capabilities = frozenset({"idempotent_create"})
        created = CreatedKeys()

        def create_actor(self, request, context):
            return self.created.create(request, lambda: self._create(request.actor))

Memory is lost when the connector restarts; a connector with a database should keep the keys there, in the
transaction that creates the actor, as Demo ERP does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .. import protocol as p
from .base import ConnectorFailure

DAY = 24 * 60 * 60.0


class CreatedKeys:
    """What CreateActor answered per (connection id, idempotency key), kept for ``keep`` seconds. Two calls with
    the same key at once make one actor: the second waits for the first and gets its answer."""

    def __init__(self, keep: float = DAY, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self._clock = clock
        self._answers: dict[tuple[str, str], tuple[float, p.ActorType, p.ActorData]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def create(self, request: p.CreateActorRequest, make: Callable[[], p.ActorData]) -> p.ActorData:
        """``make()``'s answer, or, for a key seen within ``keep`` seconds, the answer it gave then."""
        if request.idempotency_key is None:
            return make()
        key = (request.connection_id, request.idempotency_key)
        with self._lock:
            self._forget_old()
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            remembered = self._answers.get(key)
            if remembered is not None:
                _at, actor_type, data = remembered
                if actor_type != request.actor.actor_type:
                    raise reused_key(actor_type)
                return data
            data = make()
            self._answers[key] = (self._clock(), request.actor.actor_type, data)
            return data

    def _forget_old(self) -> None:
        oldest = self._clock() - self.keep
        for key in [key for key, (at, _type, _data) in self._answers.items() if at < oldest]:
            del self._answers[key]
            self._locks.pop(key, None)


def reused_key(actor_type: p.ActorType) -> ConnectorFailure:
    """The answer to an idempotency key used again for another kind of actor."""
    return ConnectorFailure(
        p.ErrorCode.INVALID_REQUEST,
        {
            "en": f"This idempotency key was already used to create a {actor_type.value}.",
            "sv": f"Den här idempotensnyckeln har redan använts för att skapa en {actor_type.value}.",
        },
        "idempotency_key reused for another actor type",
    )
