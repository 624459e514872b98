"""SaveActors against a real Tryton: many actors are written with a few JSON-RPC calls, and an actor Tryton
refuses fails alone, with Tryton's own words, while the others are written."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.sdk import Context
from connectors.tryton import rpc
from connectors.tryton.connector import ConfigStore, TrytonConnector

from ..conftest import RunningConnector
from .conftest import TrytonServer

A = p.ActorType


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every JSON-RPC call this test process makes to Tryton, by method: the real session's calls, counted."""
    counted: Counter[str] = Counter()
    real = rpc.Session.call

    def call(self: rpc.Session, method: str, *params: Any) -> Any:
        counted[method] += 1
        return real(self, method, *params)

    monkeypatch.setattr(rpc.Session, "call", call)
    return counted


@pytest.fixture
def connector(tryton_server: TrytonServer, tmp_path: Path) -> tuple[TrytonConnector, str]:
    """The Tryton connector in this process (so its calls can be counted), with one connection."""
    store = ConfigStore(tmp_path / "connections.json")
    connection_id = str(uuid.uuid4())
    store.put(connection_id, tryton_server.config())
    return TrytonConnector(store), connection_id


def save(connector: tuple[TrytonConnector, str], actors: list[p.Actor]) -> list[p.SaveResult]:
    instance, connection_id = connector
    request = p.SaveActorsRequest(connection_id=connection_id, actors=actors)
    return instance.save_actors(request, Context()).results


def create(connector: tuple[TrytonConnector, str], actor: p.Actor) -> p.Actor:
    instance, connection_id = connector
    return instance.create_actor(p.CreateActorRequest(connection_id=connection_id, actor=actor), Context()).actor


def customers(server: TrytonServer, prefix: str, count: int) -> list[int]:
    """Customers made in Tryton itself; every other one with an address and a phone number."""
    session = server.session()
    [category] = session.call("model.party.category.search", [["name", "=", "Customer"]], 0, 1, None, {})
    children = {
        "addresses": [["create", [{"street": "Storgatan 1", "city": "Umeå"}]]],
        "contact_mechanisms": [["create", [{"type": "phone", "value": "+46 90 1"}]]],
    }
    rows = [
        {"name": f"{prefix} {n}", "categories": [["add", [category]]], **(children if n % 2 else {})}
        for n in range(count)
    ]
    return list(session.call("model.party.party.create", rows, {}))


def parties(server: TrytonServer, ids: list[int]) -> dict[int, dict[str, Any]]:
    fields = [
        "name",
        "lang.code",
        "identifiers.code",
        "addresses.city",
        "addresses.country.code",
        "contact_mechanisms.type",
        "contact_mechanisms.value",
    ]
    return {row["id"]: row for row in server.session().call("model.party.party.read", ids, fields, {})}


def mechanisms(row: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((m["type"], m["value"]) for m in row["contact_mechanisms."])


def test_many_parties_are_saved_with_a_few_calls(
    tryton_server: TrytonServer, connector: tuple[TrytonConnector, str], calls: Counter[str]
) -> None:
    made = customers(tryton_server, "Batchbygg", 44)

    def changes(ids: list[int]) -> list[p.Actor]:
        return [
            p.Actor(
                actor_type=A.CUSTOMER,
                key=str(i),
                values={
                    "NAME": f"Batchbygg {i} AB",
                    "PHONE": f"+46 920 {i}",
                    "EMAIL": f"info{i}@batchbygg.example",
                    "POSTALCITY": "Luleå",
                    "COUNTRY": "SE",
                    "LANGUAGE": "en",
                    "VATNO": f"NO-{i}",
                },
            )
            for i in ids
        ]

    before = datetime.now(UTC)
    few = save(connector, changes(made[:4]))
    calls.clear()
    many = save(connector, changes(made[4:]))
    # 40 parties, each with a new name, phone, e-mail, address, country, language and identifier: one read of
    # them all, one search for the country and one for the language, one write, one read back.
    assert calls["model.party.party.write"] == 1
    assert calls["model.party.party.read"] == 2
    assert sum(calls.values()) <= 6, calls

    assert [r.ok for r in few + many] == [True] * len(made), [r.error for r in few + many if not r.ok]
    for result, key in zip(few + many, made, strict=True):
        assert result.key == str(key) and result.actor is not None
        assert result.actor.values["NAME"] == f"Batchbygg {key} AB" and result.actor.values["POSTALCITY"] == "Luleå"
        assert result.actor.last_modified is not None and result.actor.last_modified >= before.replace(microsecond=0)
    for key, row in parties(tryton_server, made).items():
        assert row["name"] == f"Batchbygg {key} AB" and row["lang."]["code"] == "en"
        assert [i["code"] for i in row["identifiers."]] == [f"NO-{key}"]
        # The address and phone a party had are changed, not added beside: still one of each.
        assert [(a["city"], a["country."]["code"]) for a in row["addresses."]] == [("Luleå", "SE")], key
        assert mechanisms(row) == [("email", f"info{key}@batchbygg.example"), ("phone", f"+46 920 {key}")]

    # Emptied values: every phone number deleted, in one write.
    calls.clear()
    cleared = save(connector, [p.Actor(actor_type=A.CUSTOMER, key=str(i), values={"PHONE": ""}) for i in made])
    assert all(r.ok for r in cleared) and calls["model.party.party.write"] == 1
    assert all(
        mechanisms(row) == [("email", f"info{key}@batchbygg.example")]
        for key, row in parties(tryton_server, made).items()
    )


def test_persons_and_projects_are_saved_with_one_write_for_each_type(
    tryton_server: TrytonServer, connector: tuple[TrytonConnector, str], calls: Counter[str]
) -> None:
    company = create(connector, p.Actor(actor_type=A.CUSTOMER, values={"NAME": "Personbatch AB"}))
    people = [
        create(
            connector,
            p.Actor(actor_type=A.PERSON, parent_actor_type=A.CUSTOMER, parent_key=company.key, values={"NAME": name}),
        )
        for name in ("Karin Berg", "Olof Lind", "Anna Maria Ek")
    ]
    projects = [
        create(
            connector,
            p.Actor(actor_type=A.PROJECT, parent_actor_type=A.CUSTOMER, parent_key=company.key, values={"NAME": name}),
        )
        for name in ("Kajen 1", "Kajen 2", "Kajen 3")
    ]
    calls.clear()
    results = save(
        connector,
        [
            # A first or last name alone is joined with the rest of the name each person has in Tryton.
            p.Actor(actor_type=A.PERSON, key=people[0].key, values={"FIRSTNAME": "Kerstin"}),
            p.Actor(actor_type=A.PROJECT, key=projects[0].key, values={"NAME": "Kajen etapp 1"}),
            p.Actor(actor_type=A.PERSON, key=people[1].key, values={"LASTNAME": "Lindqvist"}),
            p.Actor(actor_type=A.PROJECT, key=projects[1].key, values={"NAME": "Kajen etapp 2", "TEXT": "Bryggor"}),
            p.Actor(actor_type=A.PERSON, key=people[2].key, values={"PHONE_MOBILE": "+46 70 3"}),
            p.Actor(actor_type=A.PROJECT, key=projects[2].key, values={"NAME": "Kajen etapp 3"}),
        ],
    )
    assert all(r.ok for r in results), [r.error for r in results]
    assert calls["model.party.party.write"] == 1 and calls["model.project.work.write"] == 1
    names = [(r.actor.values.get("NAME"), r.actor.parent_key) for r in results if r.actor]
    assert names == [
        ("Kerstin Berg", company.key),
        ("Kajen etapp 1", company.key),
        ("Olof Lindqvist", company.key),
        ("Kajen etapp 2", company.key),
        ("Anna Maria Ek", company.key),
        ("Kajen etapp 3", company.key),
    ]
    assert results[3].actor is not None and results[3].actor.values["TEXT"] == "Bryggor"
    assert results[4].actor is not None and results[4].actor.values["PHONE_MOBILE"] == "+46 70 3"


def test_a_party_tryton_refuses_fails_alone_with_trytons_words(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    made = customers(tryton_server, "Avvisning", 5)
    keys = [str(i) for i in made]
    with ConnectorClient(tryton_connector.url, tryton_connector.secret) as client:
        conn = client.connection(str(uuid.uuid4()), lambda: tryton_server.config())
        results = conn.save_actors(
            [
                p.Actor(actor_type=A.CUSTOMER, key=keys[0], values={"NAME": "Avvisning 0 AB"}),
                # Tryton checks an EU VAT number and refuses this one: the whole write is refused.
                p.Actor(actor_type=A.CUSTOMER, key=keys[1], values={"NAME": "Avvisning 1 AB", "VATNO": "SE123"}),
                p.Actor(actor_type=A.CUSTOMER, key=keys[2], values={"NAME": "Avvisning 2 AB", "POSTALCITY": "Kiruna"}),
                # Read long before Tryton's last change: a conflict, not written.
                p.Actor(
                    actor_type=A.CUSTOMER,
                    key=keys[3],
                    last_modified=datetime(2001, 1, 1, tzinfo=UTC),
                    values={"NAME": "Avvisning 3 AB"},
                ),
                # No such party: Tryton refuses to read it.
                p.Actor(actor_type=A.CUSTOMER, key="987654321", values={"NAME": "Ingen AB"}),
                p.Actor(actor_type=A.CUSTOMER, key=keys[4], values={"NAME": "Avvisning 4 AB", "PHONE": "+46 980 4"}),
                # The same party again: saved after its first save, which it sees.
                p.Actor(actor_type=A.CUSTOMER, key=keys[0], values={"PHONE": "+46 980 0"}),
            ]
        )
    assert [r.key for r in results] == [keys[0], keys[1], keys[2], keys[3], "987654321", keys[4], keys[0]]
    assert [r.ok for r in results] == [True, False, True, False, False, True, True]
    refused = results[1].error
    assert refused is not None and refused.error_code == p.ErrorCode.VALIDATION_FAILED
    assert 'The European VAT Number "SE123" for party "Avvisning 1 AB" is not valid.' in refused.user_explanation["en"]
    stale = results[3].error
    assert stale is not None and stale.error_code == p.ErrorCode.CONFLICT
    missing = results[4].error
    assert missing is not None and missing.error_code == p.ErrorCode.VALIDATION_FAILED
    assert 'You are trying to read records "987654321" of "Party" that don\'t exist.' in missing.user_explanation["en"]
    assert results[6].actor is not None
    assert results[6].actor.values["NAME"] == "Avvisning 0 AB" and results[6].actor.values["PHONE"] == "+46 980 0"

    now = parties(tryton_server, made)
    assert [now[i]["name"] for i in made] == [
        "Avvisning 0 AB",
        "Avvisning 1",  # refused: nothing of it written
        "Avvisning 2 AB",
        "Avvisning 3",  # the conflict: not written
        "Avvisning 4 AB",
    ]
    assert now[made[1]]["identifiers."] == []
    assert [a["city"] for a in now[made[2]]["addresses."]] == ["Kiruna"]
    assert mechanisms(now[made[0]]) == [("phone", "+46 980 0")]
    assert mechanisms(now[made[4]]) == [("phone", "+46 980 4")]


def test_a_refused_batch_is_written_again_one_party_at_a_time(
    tryton_server: TrytonServer, connector: tuple[TrytonConnector, str], calls: Counter[str]
) -> None:
    made = customers(tryton_server, "Enstaka", 3)
    calls.clear()
    results = save(
        connector,
        [
            p.Actor(actor_type=A.CUSTOMER, key=str(made[0]), values={"NAME": "Enstaka 0 AB"}),
            p.Actor(actor_type=A.CUSTOMER, key=str(made[1]), values={"VATNO": "SE123"}),
            p.Actor(actor_type=A.CUSTOMER, key=str(made[2]), values={"NAME": "Enstaka 2 AB"}),
        ],
    )
    assert [r.ok for r in results] == [True, False, True]
    # The batch, refused as a whole, then each party alone; the two written are read back together.
    assert calls["model.party.party.write"] == 1 + 3
    assert calls["model.party.party.read"] == 2
    assert [row["name"] for _key, row in sorted(parties(tryton_server, made).items())] == [
        "Enstaka 0 AB",
        "Enstaka 1",
        "Enstaka 2 AB",
    ]
