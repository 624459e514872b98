"""The Tryton connector's change notifications (protocol v1.1, change_notifications) against a real Tryton server:
changes made in Tryton itself, through its own RPC and not through the connector, reach the notify URL within
seconds, naming the actor type and key; a burst makes few notifications; a Tryton that cannot be reached does not
stop the watching of the others; notify URLs survive a restart of the connector."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.conformance.receiver import Received, Receiver
from connectors.sdk import ConnectorApp
from connectors.tryton.connector import ConfigStore, TrytonConnector
from connectors.tryton.watch import MIN_WATCH_SECONDS

from ..conftest import RunningConnector, free_port
from .conftest import CONNECTOR_SECRET, TrytonServer

A = p.ActorType
WAIT = 15.0  # generous for a busy machine; the figures asserted are tighter


def changes_for(request: Received, connection_id: str) -> list[p.NotifiedChange]:
    notification = p.ChangeNotification.model_validate_json(request.body)
    return [change for change in notification.changes if change.connection_id == connection_id]


def named(receiver: Receiver, connection_id: str, since: int) -> dict[str, set[str]]:
    """Actor type → keys named for the connection in the notifications from index ``since`` on."""
    found: dict[str, set[str]] = {}
    for request in receiver.received[since:]:
        for change in changes_for(request, connection_id):
            for actor_type in change.actor_types:
                found.setdefault(actor_type.value, set()).update(change.keys)
    return found


def wait_for_keys(receiver: Receiver, connection_id: str, since: int, actor_type: A, keys: set[str]) -> float:
    """Seconds until the notifications since ``since`` named every key of ``keys`` as ``actor_type``."""
    started = time.monotonic()
    receiver.wait(
        lambda _r: keys <= named(receiver, connection_id, since).get(actor_type.value, set()), WAIT, since=since
    )
    assert keys <= named(receiver, connection_id, since).get(actor_type.value, set()), (
        f"{actor_type.value} {sorted(keys)} not notified within {WAIT:g} s: {named(receiver, connection_id, since)}"
    )
    return time.monotonic() - started


def category(session: Any, name: str) -> int:
    [found] = session.call("model.party.category.search", [["name", "=", name]], 0, 1, None, {})
    return int(found)


def save_connection(connector: RunningConnector, connection_id: str, config: dict[str, Any], url: str | None) -> None:
    capable = frozenset({p.Capability.CHANGE_NOTIFICATIONS.value})
    with ConnectorClient(connector.url, connector.secret, capabilities=capable) as client:
        assert client.health().supports(p.Capability.CHANGE_NOTIFICATIONS)
        request = p.SaveConnectionRequest(connection_id=connection_id, config=config, notify_url=url)
        assert client.call("SaveConnection", request).envelope.ok


def test_changes_made_in_tryton_reach_the_notify_url_within_seconds(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    receiver = Receiver()
    connection_id = str(uuid.uuid4())
    tryton = tryton_server.session()  # Tryton's own RPC, as a Tryton user's client: the connector is not involved
    try:
        save_connection(tryton_connector, connection_id, tryton_server.config(), receiver.url)

        # A customer created in Tryton, with an address: named as a Customer, by its key, within seconds.
        seen = len(receiver.received)
        [customer] = tryton.call(
            "model.party.party.create",
            [
                {
                    "name": f"Notifierad Kund {uuid.uuid4().hex[:6]}",
                    "categories": [["add", [category(tryton, "Customer")]]],
                    "addresses": [["create", [{"city": "Kiruna"}]]],
                }
            ],
            {},
        )
        took = wait_for_keys(receiver, connection_id, seen, A.CUSTOMER, {str(customer)})
        assert took < 6, f"notified after {took:.1f} s; the connector looks every second"
        for request in receiver.received[seen:]:
            assert request.path == receiver.path
            assert not changes_for(request, connection_id) or all(
                set(change.actor_types) <= {A.CUSTOMER} for change in changes_for(request, connection_id)
            ), "a customer was told as another actor type"

        # Only the address changed: Tryton leaves the party's own dates alone, the watcher sees the address's.
        seen = len(receiver.received)
        [address] = tryton.call("model.party.address.search", [["party", "=", customer]], 0, 1, None, {})
        tryton.call("model.party.address.write", [address], {"city": "Luleå"}, {})
        wait_for_keys(receiver, connection_id, seen, A.CUSTOMER, {str(customer)})

        # A burst of changes, one call each: all named, in a few notifications rather than one each.
        seen = len(receiver.received)
        supplier = category(tryton, "Supplier")
        made = {
            str(
                tryton.call(
                    "model.party.party.create",
                    [{"name": f"Burst {i} {uuid.uuid4().hex[:6]}", "categories": [["add", [supplier]]]}],
                    {},
                )[0]
            )
            for i in range(30)
        }
        wait_for_keys(receiver, connection_id, seen, A.SUPPLIER, made)
        told = [r for r in receiver.received[seen:] if changes_for(r, connection_id)]
        assert len(told) <= 6, f"30 changes made {len(told)} notifications"
        assert not named(receiver, connection_id, seen).get(A.CUSTOMER.value), "suppliers were told as customers"
        # (That nothing is told once SaveConnection takes the notify URL away, the conformance kit checks.)
    finally:
        save_connection(tryton_connector, connection_id, tryton_server.config(), None)
        receiver.close()


def test_a_connection_is_told_only_of_changes_made_after_it_was_saved(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    receiver = Receiver()
    earlier, later = str(uuid.uuid4()), str(uuid.uuid4())
    tryton = tryton_server.session()
    supplier = category(tryton, "Supplier")
    try:
        # Another connection to the same database was told of changes a moment ago, and is told no more.
        save_connection(tryton_connector, earlier, tryton_server.config(), receiver.url)
        save_connection(tryton_connector, earlier, tryton_server.config(), None)
        # A supplier made while no connection listens: no one's news, nor that of a connection saved after it.
        [before] = tryton.call(
            "model.party.party.create",
            [{"name": f"Före {uuid.uuid4().hex[:6]}", "categories": [["add", [supplier]]]}],
            {},
        )
        save_connection(tryton_connector, later, tryton_server.config(), receiver.url)
        seen = len(receiver.received)
        [after] = tryton.call(
            "model.party.party.create",
            [{"name": f"Efter {uuid.uuid4().hex[:6]}", "categories": [["add", [supplier]]]}],
            {},
        )
        wait_for_keys(receiver, later, seen, A.SUPPLIER, {str(after)})
        told = named(receiver, later, 0)
        assert str(before) not in set().union(*told.values()), f"told of a change made before it was saved: {told}"
    finally:
        save_connection(tryton_connector, later, tryton_server.config(), None)
        receiver.close()


def test_the_watcher_goes_on_past_a_tryton_that_cannot_be_reached_and_after_a_restart(
    tryton_server: TrytonServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()
    live, dead = str(uuid.uuid4()), str(uuid.uuid4())
    # What an earlier run of the connector kept: two connections with notify URLs, one of them at a Tryton that
    # is down (nothing listens at its port).
    store = ConfigStore(tmp_path / "connections.json")
    store.put(live, tryton_server.config())
    store.put(dead, tryton_server.config(server_url=f"http://127.0.0.1:{free_port()}"))
    store.put_notify_url(live, receiver.url)
    store.put_notify_url(dead, receiver.url)
    caplog.set_level(logging.INFO, logger="connectors.tryton")

    # The connector starting again: the URLs kept are registered, and the watching starts by itself.
    connector = TrytonConnector(ConfigStore(tmp_path / "connections.json"), watch_seconds=MIN_WATCH_SECONDS)
    app = ConnectorApp(connector, CONNECTOR_SECRET)
    assert app.notifier is not None and connector.watcher is not None
    try:
        assert app.notifier.urls() == {live: receiver.url, dead: receiver.url}
        assert connector.watcher.running()
        tryton = tryton_server.session()
        deadline = time.monotonic() + WAIT
        while connector.watcher.rounds < 2 and time.monotonic() < deadline:  # the first round primes
            time.sleep(0.1)
        seen = len(receiver.received)
        [party] = tryton.call(
            "model.party.party.create",
            [{"name": f"Levande {uuid.uuid4().hex[:6]}", "categories": [["add", [category(tryton, "Supplier")]]]}],
            {},
        )
        wait_for_keys(receiver, live, seen, A.SUPPLIER, {str(party)})
        assert not any(changes_for(r, dead) for r in receiver.received), "a Tryton that is down told of changes"
        down = [r.getMessage() for r in caplog.records if "cannot look for changes in Tryton" in r.getMessage()]
        assert len(down) == 1, f"the Tryton that is down is logged once, not each round: {down}"
        rounds = connector.watcher.rounds
        while connector.watcher.rounds < rounds + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert connector.watcher.rounds >= rounds + 2, "the watcher stopped looking"

        # A deleted connection is forgotten with its URL, here and after the next restart.
        connector.store.put(dead, None)
        assert ConfigStore(tmp_path / "connections.json").notify_urls() == {live: receiver.url}
    finally:
        connector.watcher.stop()
        app.notifier.close()
        receiver.close()
    assert not connector.watcher.running(), "the watcher thread did not stop"
