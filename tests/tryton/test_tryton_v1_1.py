"""The Tryton connector's protocol v1.1 capabilities against a real Tryton server: the company list read with the
values entered so far (config_list_values), idempotency keys that survive a restart (idempotent_create), and
parties archived or merged in Tryton reported in the change feed (tombstones)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorRejected
from connectors.models import SyncConnector
from connectors.sdk import ConnectorFailure, Context
from connectors.tryton.connector import ConfigStore, TrytonConnector

from ..conftest import RunningConnector
from ..factories import UserFactory
from .conftest import TrytonServer

A = p.ActorType
CAPABLE = frozenset({p.Capability.CONFIG_LIST_VALUES.value, p.Capability.IDEMPOTENT_CREATE.value})


def companies(connector: RunningConnector, config: dict[str, Any] | None, language: str = "en") -> list[str]:
    with ConnectorClient(connector.url, connector.secret, capabilities=CAPABLE, language=language) as client:
        return [item.text for item in client.get_config_list("companies", config)]


def refusal(connector: RunningConnector, config: dict[str, Any], language: str = "en") -> str:
    with pytest.raises(ConnectorRejected) as refused:
        companies(connector, config, language)
    assert refused.value.error_code == p.ErrorCode.INVALID_CONFIG
    return refused.value.user_text(language)


def test_the_companies_are_listed_with_the_values_entered_so_far(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    with ConnectorClient(tryton_connector.url, tryton_connector.secret) as client:
        [company] = [f for f in client.get_config_data().data.fields if f.key == "company"]
        assert client.health().supports(p.Capability.CONFIG_LIST_VALUES)
    assert (company.type, company.list_name) == (p.FieldType.LIST, "companies")
    assert company.depends_on == ["server_url", "database", "user", "password"]

    entered = {k: v for k, v in tryton_server.config().items() if k in ("server_url", "database", "user", "password")}
    assert companies(tryton_connector, entered) == ["Tryton Test AB"]
    # A connection saved before the list typed the company's name: that name is the item's key, so it still fits.
    with ConnectorClient(tryton_connector.url, tryton_connector.secret, capabilities=CAPABLE) as client:
        picked = client.get_config_list_items("companies", ["Tryton Test AB", "Nobody AB"], entered)
        assert [item.key for item in picked] == ["Tryton Test AB"]
        assert client.test_config_data(tryton_server.config(company="Tryton Test AB")).envelope.ok
    # A CRM of protocol version 1 sends no values: an empty list, never an error that would stop its screen.
    assert companies(tryton_connector, None) == []

    # Until the values work, the connector says why, in the caller's language.
    assert refusal(tryton_connector, {**entered, "password": ""}) == "Fill in Password to choose a company."
    assert refusal(tryton_connector, {"server_url": tryton_server.url}, "sv") == (
        "Fyll i databas, användare och lösenord för att välja ett företag."
    )
    assert refusal(tryton_connector, {**entered, "password": "wrong"}) == "Tryton refused the user name or password."
    assert refusal(tryton_connector, {**entered, "database": "nosuchdb"}) == "Tryton has no database by that name."
    assert refusal(tryton_connector, {**entered, "database": "bare"}).startswith(
        "This Tryton database has no companies"
    )


@pytest.mark.django_db
def test_the_connection_form_offers_the_tryton_companies_once_the_login_is_filled_in(
    client: Any, tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    connector = SyncConnector(name="Tryton", url=tryton_connector.url, capabilities=sorted(CAPABLE))
    connector.set_secret(tryton_connector.secret)
    connector.save()
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    page = client.get(reverse("connections:connection-add") + f"?connector={connector.pk}").content.decode()
    assert "Fill in Database and Password to choose from this list." in page  # URL and user have defaults

    config = tryton_server.config()
    data = {"connector": connector.pk, "config_list_field": "company", **{f"cfg-{k}": v for k, v in config.items()}}
    part = client.post(reverse("connections:connection-config-list-new"), data).content.decode()
    assert re.findall(r'<option value="([^"]+)"', part) == ["Tryton Test AB"]
    assert str(config["password"]) not in part
    wrong = client.post(reverse("connections:connection-config-list-new"), {**data, "cfg-password": "x"})
    assert "Tryton refused the user name or password." in wrong.content.decode()


def local_connector(folder: Path) -> TrytonConnector:
    """The Tryton connector in this process, keeping its files in ``folder``: made again, it is a restart."""
    return TrytonConnector(ConfigStore(folder / "connections.json"))


def test_an_idempotency_key_answers_the_party_it_made_even_after_a_restart(
    tryton_server: TrytonServer, tmp_path: Path
) -> None:
    connector, connection_id = local_connector(tmp_path), str(uuid.uuid4())
    connector.store.put(connection_id, tryton_server.config())
    actor = p.Actor(actor_type=A.CUSTOMER, values={"NAME": f"Idempotent {uuid.uuid4().hex[:6]} AB"})
    request = p.CreateActorRequest(connection_id=connection_id, actor=actor, idempotency_key="key-1")
    first = connector.create_actor(request, Context()).actor

    restarted = local_connector(tmp_path)  # a new process reads the same files
    again = restarted.create_actor(request, Context()).actor
    assert (again.key, again.values["NAME"]) == (first.key, actor.values["NAME"])
    session = tryton_server.session()
    assert len(session.call("model.party.party.search", [["name", "=", actor.values["NAME"]]], 0, None, None, {})) == 1

    other = restarted.create_actor(request.model_copy(update={"idempotency_key": "key-2"}), Context()).actor
    assert other.key != first.key
    person = p.Actor(actor_type=A.PERSON, parent_actor_type=A.CUSTOMER, parent_key=first.key, values={"NAME": "X Y"})
    with pytest.raises(ConnectorFailure) as reused:
        restarted.create_actor(request.model_copy(update={"actor": person}), Context())
    assert reused.value.user["en"] == "This idempotency key was already used to create a Customer."
    # The actor made for a key archived since: not found, and nothing is made again.
    session.call("model.party.party.write", [int(first.key or 0)], {"active": False}, {})
    with pytest.raises(ConnectorFailure) as gone:
        restarted.create_actor(request, Context())
    assert gone.value.code == p.ErrorCode.ACTOR_NOT_FOUND


def test_parties_archived_or_merged_in_tryton_are_tombstones_in_the_feed(
    tryton_server: TrytonServer, tryton_connector: RunningConnector
) -> None:
    with ConnectorClient(tryton_connector.url, tryton_connector.secret) as client:
        conn = client.connection(str(uuid.uuid4()), lambda: tryton_server.config())
        since = datetime.now(UTC)
        archived, merged, survivor = (
            conn.create_actor(p.Actor(actor_type=A.CUSTOMER, values={"NAME": name})).key or ""
            for name in ("Arkivbygg AB", "Dubblettbygg AB", "Dubblettbygg AB")
        )
        session = tryton_server.session()
        session.call("model.party.party.write", [int(archived)], {"active": False}, {})
        # Tryton's Replace wizard, as a Tryton user runs it on a duplicate: it is made inactive, replaced by the other.
        wizard, _start, _end = session.call("wizard.party.replace.create", {})
        ask = {"ask": {"source": int(merged), "destination": int(survivor)}}
        session.call("wizard.party.replace.execute", wizard, ask, "replace", {})
        session.call("wizard.party.replace.delete", wizard, {})

        def feed() -> tuple[list[str], dict[str, tuple[str, str | None]]]:
            pages = list(conn.changes(A.CUSTOMER, updated_on_or_after=since, page_size=2))
            ours = {archived, merged, survivor}  # other tests' parties may have changed in the same moment
            actors = [a.key or "" for page in pages for a in page.actors if a.key in ours]
            gone = {t.key: (t.kind.value, t.merged_into) for page in pages for t in page.tombstones if t.key in ours}
            return actors, gone

        actors, gone = feed()
        assert actors == [survivor]
        assert gone == {archived: ("archived", None), merged: ("merged", survivor)}
        # Gone for the other operations too.
        assert conn.get_actors(A.CUSTOMER, [archived, merged]).missing_keys == [archived, merged]
        [result] = conn.save_actors([p.Actor(actor_type=A.CUSTOMER, key=archived, values={"POSTALCITY": "Umeå"})])
        assert result.error is not None and result.error.error_code == p.ErrorCode.ACTOR_NOT_FOUND

        # Restored in Tryton: an actor again, with a newer last_modified.
        session.call("model.party.party.write", [int(archived)], {"active": True}, {})
        actors, gone = feed()
        assert sorted(actors) == sorted([survivor, archived]) and gone == {merged: ("merged", survivor)}
