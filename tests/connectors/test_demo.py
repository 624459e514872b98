"""Demo ERP behaves like an ERP: read-only connections, Nordic search, parents, its change feed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors import protocol as p
from connectors.client import ConnectionClient, ConnectorClient, ConnectorRejected

from ..conftest import DEMO_CONFIG, Connector

C = p.ActorType.CUSTOMER


def connect(demo: Connector, **config: Any) -> ConnectionClient:
    client = ConnectorClient(demo.url, demo.secret)
    conn = client.connection(str(uuid.uuid4()), lambda: {**DEMO_CONFIG, **config})
    conn.save()
    return conn


def test_a_read_only_connection_reads_but_refuses_changes(demo_erp: Connector) -> None:
    conn = connect(demo_erp, read_only=True)
    assert conn.search(C, "ab", limit=1).actors
    with pytest.raises(ConnectorRejected) as error:
        conn.create_actor(p.Actor(actor_type=C, values={"NAME": "Nope AB"}))
    assert error.value.error_code == p.ErrorCode.READ_ONLY
    assert "skrivskyddad" in error.value.user_text("sv")


def test_search_ignores_case_in_nordic_letters(demo_erp: Connector) -> None:
    conn = connect(demo_erp)
    created = conn.create_actor(p.Actor(actor_type=C, values={"NAME": "Ørneteknikk Åsane AS", "COUNTRY": "NO"}))
    assert created.key in [a.key for a in conn.search(C, "ØRNETEKNIKK åsane").actors]
    contains = p.Restriction(field_key="NAME", operator="contains", values=["ÅSANE"])
    assert created.key in [a.key for a in conn.search_advanced(C, [contains]).actors]


def test_persons_belong_to_an_existing_customer(demo_erp: Connector) -> None:
    conn = connect(demo_erp)
    customer = conn.create_actor(p.Actor(actor_type=C, values={"NAME": "Granbygg AB"}))
    person = conn.create_actor(
        p.Actor(
            actor_type=p.ActorType.PERSON, values={"FIRSTNAME": "Sigrid"}, parent_actor_type=C, parent_key=customer.key
        )
    )
    found = conn.search_by_parent(p.ActorType.PERSON, C, customer.key or "")
    assert [a.key for a in found.actors] == [person.key]
    with pytest.raises(ConnectorRejected, match="does not exist"):
        conn.create_actor(
            p.Actor(
                actor_type=p.ActorType.PERSON, values={"FIRSTNAME": "Nils"}, parent_actor_type=C, parent_key="C999999"
            )
        )


def test_unknown_list_items_and_missing_mandatory_fields_are_refused(demo_erp: Connector) -> None:
    conn = connect(demo_erp)
    with pytest.raises(ConnectorRejected, match="Currency: Demo ERP has no item 'XYZ'"):
        conn.create_actor(p.Actor(actor_type=C, values={"NAME": "Listbolaget AB", "CURRENCY": "XYZ"}))
    with pytest.raises(ConnectorRejected) as error:
        conn.create_actor(p.Actor(actor_type=C, values={"PHONE": "+46 1"}))
    assert error.value.error_code == p.ErrorCode.VALIDATION_FAILED and error.value.user_text() == "Name is required."


def test_the_change_feed_resumes_from_its_cursor_and_sees_new_changes(demo_erp: Connector) -> None:
    conn = connect(demo_erp)
    pages = list(conn.changes(p.ActorType.PROJECT, page_size=40))
    keys = [a.key for page in pages for a in page.actors]
    assert len(keys) == len(set(keys)) >= 100  # every seeded project, once
    cursor = pages[-1].next_cursor
    assert conn.changes_page(p.ActorType.PROJECT, cursor=cursor).actors == []
    project = conn.create_actor(p.Actor(actor_type=p.ActorType.PROJECT, values={"NAME": "Cloud move"}))
    after = conn.changes_page(p.ActorType.PROJECT, cursor=cursor)
    assert [a.key for a in after.actors] == [project.key]


def test_sync_from_hides_older_changes_from_the_feed(demo_erp: Connector) -> None:
    conn = connect(demo_erp, sync_from=datetime.now(UTC).date().isoformat())
    page = conn.changes_page(p.ActorType.SUPPLIER, page_size=1000)
    assert all(a.last_modified and a.last_modified.date() >= datetime.now(UTC).date() for a in page.actors)


def test_a_cursor_of_another_actor_type_is_refused(demo_erp: Connector) -> None:
    conn = connect(demo_erp)
    cursor = conn.changes_page(p.ActorType.PERSON, page_size=1).next_cursor
    with pytest.raises(ConnectorRejected) as error:
        conn.changes_page(C, cursor=cursor)
    assert error.value.error_code == p.ErrorCode.INVALID_REQUEST
    assert error.value.user_text() == "The change feed cursor is not valid."
