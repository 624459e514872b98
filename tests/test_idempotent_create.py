"""Protocol v1.1, capability idempotent_create: Create in ERP sends an idempotency key, the same on every attempt,
so an attempt whose answer was lost after the ERP created the actor is retried without making a second one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from connections import services
from connections.models import ErpConnection, Link
from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorRejected
from connectors.demo.connector import DemoConnector
from connectors.demo.seed import seed
from connectors.demo.store import Store
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp, CreatedKeys

from .conftest import DEMO_CONFIG, DEMO_SECRET, InProcessConnector
from .connectors.servers import hold, serving
from .connectors.tiny_connector import AddressBook
from .factories import UserFactory
from .sync_helpers import active_connection, company

C = p.ActorType.CUSTOMER
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project"]


def customers(store: Store) -> list[str]:
    with store.read() as db:
        return [row[0] for row in db.execute("SELECT key FROM actors WHERE actor_type = 'Customer' ORDER BY key")]


def test_the_demo_erp_answers_the_actor_it_already_made_for_a_key(empty_demo: InProcessConnector) -> None:
    client = ConnectorClient(empty_demo.url, empty_demo.secret, capabilities=frozenset({"idempotent_create"}))
    conn = client.connection("0c9d6f3e-5a55-4d4f-9e11-3c1a2b3c4d5e", lambda: DEMO_CONFIG)
    conn.save()
    actor = p.Actor(actor_type=C, values={"NAME": "Granbygg AB"})
    writes = empty_demo.store.writes()
    first = conn.create_actor(actor, "attempt-1")
    assert conn.create_actor(actor, "attempt-1").key == first.key
    assert empty_demo.store.writes() == writes + 1
    assert conn.create_actor(actor, "attempt-2").key != first.key
    with pytest.raises(ConnectorRejected) as refused:
        conn.create_actor(p.Actor(actor_type=p.ActorType.PROJECT, values={"NAME": "Bygget"}), "attempt-1")
    assert refused.value.error_code == p.ErrorCode.INVALID_REQUEST
    assert "already used to create a Customer" in refused.value.user_text()
    # Without the capability named, no key is sent (a v1 connector would refuse the field) and each call creates.
    v1 = ConnectorClient(empty_demo.url, empty_demo.secret).connection(conn.connection_id, lambda: DEMO_CONFIG)
    assert v1.create_actor(actor, "attempt-1").key != first.key
    assert len(customers(empty_demo.store)) == 3


class Remembering(AddressBook):
    capabilities = frozenset({"idempotent_create"})

    def __init__(self) -> None:
        super().__init__()
        self.created = CreatedKeys()

    def create_actor(self, request: p.CreateActorRequest, context: Any) -> p.ActorData:
        return self.created.create(request, lambda: super(Remembering, self).create_actor(request, context))


def test_the_sdks_created_keys_make_one_actor_per_key() -> None:
    book = Remembering()
    with serving(ConnectorApp(book, "tiny-connector-secret-42")) as url:
        client = ConnectorClient(url, "tiny-connector-secret-42", capabilities=frozenset({"idempotent_create"}))
        conn = client.connection("0c9d6f3e-5a55-4d4f-9e11-3c1a2b3c4d5e", lambda: {"owner": "Tests"})
        conn.save()
        before = len(book.actors)
        actor = p.Actor(actor_type=C, values={"NAME": "Fjällbygg"})
        assert conn.create_actor(actor, "k1").key == conn.create_actor(actor, "k1").key
        assert len(book.actors) == before + 1


class LosesFirstCreateAnswer:
    """The Demo ERP, whose first CreateActor answer is lost: the ERP creates the actor, then the answer comes
    later than the CRM waits (a slow network or proxy)."""

    def __init__(self, app: ConnectorApp, seconds: float) -> None:
        self.app, self.seconds, self.lost = app, seconds, 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != p.OPERATIONS["CreateActor"].path or self.lost:
            return self.app(environ, start_response)
        self.lost += 1
        answer = b"".join(self.app(environ, lambda *args: None))
        hold(environ, self.seconds)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]


@pytest.fixture
def slow_demo(tmp_path: Path) -> Iterator[tuple[InProcessConnector, LosesFirstCreateAnswer]]:
    store = Store(tmp_path / "demo-erp.sqlite3")
    seed(store, 0)
    proxy = LosesFirstCreateAnswer(ConnectorApp(DemoConnector(store, api_key="demo-api-key"), DEMO_SECRET), 5)
    with serving(proxy) as url:
        yield InProcessConnector(url, DEMO_SECRET, store), proxy


def create_in_erp(client: Any, connection: ErpConnection, record: Any) -> Any:
    url = reverse("erp:create", args=[connection.pk, record.pk])
    return client.post(url, {"kind": "company", "actor_type": "Customer"}, HTTP_HX_REQUEST="true")


def as_creator(client: Any, connection: ErpConnection, settings: Any) -> None:
    settings.ERPSYNC_CONNECTOR_TIMEOUT = 1
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_create=True)
    client.force_login(UserFactory.create(username="anna", perms=[*CRM, "connections.use_erp_sync"]))


@pytest.mark.django_db
def test_create_in_erp_retried_after_a_lost_answer_links_the_one_actor_the_erp_made(
    client: Any, slow_demo: tuple[InProcessConnector, LosesFirstCreateAnswer], settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(services, "_send_run", lambda run_id: None)
    demo, proxy = slow_demo
    SyncConnector.objects.all().delete()
    connection = active_connection(demo)  # made here so that its connector is checked: it names the capability
    assert services.recheck_connector(connection.connector) is None
    connection.connector.refresh_from_db()
    assert connection.connector.supports(p.Capability.IDEMPOTENT_CREATE)
    as_creator(client, connection, settings)
    record = company(name="Nyköpings Kakel AB")
    first = create_in_erp(client, connection, record)
    assert first.status_code == 502 and proxy.lost == 1
    page = first.content.decode()
    assert "The connector did not answer in time." in page and "Press Create in ERP again" in page
    made = customers(demo.store)
    assert len(made) == 1 and not Link.objects.filter(company=record).exists()  # made in the ERP, not linked
    second = create_in_erp(client, connection, record)
    assert second.status_code == 200 and "HX-Retarget" in second  # the card, linked
    assert customers(demo.store) == made  # still one actor
    assert Link.objects.get(company=record).erp_key == made[0]
    # The key was used up by the link: Create in ERP for another record makes another actor.
    other = company(name="Åsa Bygg AB")
    assert "HX-Retarget" in create_in_erp(client, connection, other)
    assert len(customers(demo.store)) == 2


@pytest.mark.django_db
def test_without_the_capability_the_retry_makes_a_second_actor(
    client: Any, slow_demo: tuple[InProcessConnector, LosesFirstCreateAnswer], settings: Any, monkeypatch: Any
) -> None:
    """What idempotent_create prevents: a v1 connector (or one that does not name it) cannot tell a retry."""
    monkeypatch.setattr(services, "_send_run", lambda run_id: None)
    demo, _proxy = slow_demo
    connection = active_connection(demo)  # never checked: no capabilities known
    as_creator(client, connection, settings)
    record = company(name="Nyköpings Kakel AB")
    first = create_in_erp(client, connection, record)
    assert first.status_code == 502 and "Press Create in ERP again" not in first.content.decode()
    assert "HX-Retarget" in create_in_erp(client, connection, record)
    assert len(customers(demo.store)) == 2
