"""The Tryton connector against a real Tryton server: the conformance kit, and clear test messages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorRejected
from connectors.conformance import run_conformance

from ..conftest import RunningConnector
from .conftest import TrytonServer


def test_the_tryton_connector_passes_the_whole_contract(
    tryton_server: TrytonServer, tryton_connector: RunningConnector, tryton_samples: dict[str, p.Actor]
) -> None:
    # --strict: protocol v1.1, with the checks of the capabilities it names (key_ids, idempotent_create,
    # tombstones, config_list_values, change_notifications).
    report = run_conformance(tryton_connector.url, tryton_connector.secret, tryton_server.config(), strict=True)
    assert report.ok, "\n".join(line for line in report.lines() if not line.startswith("PASS"))
    names = " | ".join(check.name for check in report.checks)
    assert "Person: SearchActorByParent finds it under its parent" in names
    assert "Project: CreateActor creates one and gives it a key" in names
    assert "v1.1: Customer: SaveActors with the values it has keeps last_modified" in names
    assert "key_ids: a request naming a key id the connector does not hold is refused with 401" in names
    assert "idempotent_create: Customer: CreateActor again with the same key makes no second actor" in names
    assert "tombstones: Customer: tombstones in the feed are well formed and in order" in names
    assert "config_list_values: list 'companies' read with the configuration values is a valid list" in names
    assert "config_list_values: list 'companies' with no values entered yet is a list or explained" in names
    # Tryton's dates watched every second (--watch-seconds 1): the kit's change through SaveActors is told.
    assert "change_notifications: a change is notified within seconds, signed and well formed" in names
    assert "change_notifications: a notification the CRM answers with 503 is sent again" in names
    assert "change_notifications: after SaveConnection without a notify URL, nothing is notified" in names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "wrong"}, "Tryton refused the user name or password."),
        ({"database": "nosuchdb"}, "Tryton has no database by that name."),
        ({"customer_category": "Kunder"}, "Tryton has no party category 'Kunder' for customers"),
        ({"person_relation": "Anställd"}, "Tryton has no party relation type 'Anställd'"),
        ({"company": "Nobody AB"}, "Tryton has no company 'Nobody AB'."),
        ({"server_url": "http://127.0.0.1:9"}, "Tryton cannot be reached right now."),
        (
            {"database": "bare", "company": ""},
            "Persons need the Tryton module party_relationship, which is not activated",
        ),
        (
            {"database": "bare", "person_relation": ""},
            "Projects need the Tryton module project, which is not activated",
        ),
    ],
)
def test_a_bad_configuration_is_explained(
    tryton_server: TrytonServer, tryton_connector: RunningConnector, change: dict[str, Any], message: str
) -> None:
    with (
        ConnectorClient(tryton_connector.url, tryton_connector.secret) as client,
        pytest.raises(ConnectorRejected) as refused,
    ):
        client.test_config_data(tryton_server.config(**change))
    assert message in (refused.value.user_text("en") or "")


def test_the_session_is_reused_and_opened_again_when_tryton_drops_it(tryton_server: TrytonServer) -> None:
    from connectors.tryton import rpc

    session = tryton_server.session()
    assert session.call("model.party.category.search", [], 0, None, None, {})
    first = session.authorization
    assert session.call("model.party.category.search", [], 0, None, None, {})
    assert session.authorization == first  # one login for many calls
    session.call("common.db.logout")  # Tryton forgets the session, as after its timeout
    assert session.call("model.party.category.search", [], 0, None, None, {})
    assert session.authorization not in (None, first)  # logged in again, once, by itself
    wrong = rpc.Session(tryton_server.url, tryton_server.database, "admin", "wrong")
    with pytest.raises(rpc.LoginRefused):
        wrong.call("model.party.category.search", [], 0, None, None, {})


def test_the_change_feed_keeps_time_order_whatever_order_tryton_reads_in(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    # Tryton answers a read in id order; the feed must give the parties in the order they changed.
    from datetime import UTC, datetime

    with ConnectorClient(tryton_connector.url, tryton_connector.secret) as client:
        conn = client.connection(str(uuid.uuid4()), lambda: tryton_server.config())
        since = datetime.now(UTC)
        made = [
            conn.create_actor(p.Actor(actor_type=p.ActorType.SUPPLIER, values={"NAME": name})).key
            for name in ("Örnsköldsvik Trä AB", "Mälar Bygg AB", "Alingsås Plåt AB")
        ]
        [saved] = conn.save_actors(
            [p.Actor(actor_type=p.ActorType.SUPPLIER, key=made[0], values={"POSTALCITY": "Luleå"})]
        )
        assert saved.ok
        made = [*made[1:], made[0]]  # the first one changed last
        pages = list(conn.changes(p.ActorType.SUPPLIER, updated_on_or_after=since, page_size=3))
    seen = [actor.key for page in pages for actor in page.actors]
    assert seen == made
