"""A connector written to protocol v1 keeps working with a v1.1 CRM: it passes the v1 kit, and a connection to it
is saved, mapped, activated, linked, synced both ways and creates actors, without ever being sent a v1.1 field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from connections import linking, mapping, services
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, SyncRun
from connectors import protocol as p
from connectors.conformance import run_conformance
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp
from crm.models import Company

from .servers import serving
from .tiny_connector import AddressBook

SECRET = "v1-connector-secret-7"
CONFIG: dict[str, p.Value] = {"owner": "Tests"}
# Per operation's path, the request fields version 1.1 added: a v1 connector refuses them as unknown fields.
V1_1_REQUEST_FIELDS = {
    operation.path: {
        name
        for name, info in operation.request.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("since") == "1.1"
    }
    for operation in p.OPERATIONS.values()
}


def as_v1(app: ConnectorApp, seen: list[str]) -> Callable[..., Iterable[bytes]]:
    """``app`` as a v1 connector: a v1 health answer, and 400 for any request carrying a v1.1 field (noted in
    ``seen``), as a connector refusing unknown fields answers."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/v1/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"name": "Address Book", "version": "0.1", "protocol": "1"}).encode()]
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            try:
                sent = json.loads(body or b"{}")
            except ValueError:
                sent = {}  # not JSON: the connector's own answer to that
            added = V1_1_REQUEST_FIELDS.get(environ.get("PATH_INFO", ""), set())
            extra = sorted(added & set(sent if isinstance(sent, dict) else {}))
            if extra:
                seen.extend(extra)
                envelope = {
                    "ok": False,
                    "state": "error",
                    "error_code": "invalid_request",
                    "user_explanation": {"en": f"Unknown fields: {', '.join(extra)}"},
                    "technical_explanation": "",
                }
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [json.dumps(envelope).encode()]
            environ["wsgi.input"] = _Body(body)
        return app(environ, start_response)

    return wrapped


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        data, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return data


def test_the_v1_connector_passes_the_v1_kit_and_is_refused_a_v1_1_field() -> None:
    seen: list[str] = []
    with serving(as_v1(ConnectorApp(AddressBook(), SECRET), seen)) as url:
        assert run_conformance(url, SECRET, CONFIG).ok
    assert seen == []  # the kit, in plain mode, sends v1 only


@pytest.mark.django_db
def test_a_v1_connector_is_linked_synced_both_ways_and_creates_actors(admin_user: Any) -> None:
    seen: list[str] = []
    book = AddressBook()
    with serving(as_v1(ConnectorApp(book, SECRET), seen)) as url:
        connector = SyncConnector(name="Address Book", url=url)
        assert services.save_checked_connector(connector, SECRET, admin_user) is None
        connector.refresh_from_db()
        assert (connector.protocol_version, connector.capabilities) == ("1", [])
        with services.interactive_client(url, SECRET) as client:
            fields = client.get_config_data().data.fields
        connection = services.save_connection(
            ErpConnection(name="Address Book", connector=connector), fields=fields, values=CONFIG, grants=[], user=None
        )
        rows = [
            mapping.FieldRow(f.key, *{"NAME": ("NAME", "both")}.get(f.key, ("", "")), False, False)
            for f in connection.erp_fields.filter(actor_type="Customer")
        ]
        mapping.save_field_mapping(connection, "Customer", True, rows, None)
        services.set_active(connection, True, None)
        connection.refresh_from_db()
        assert connection.is_active

        # Link a company to an actor and sync: the ERP's name arrives; then a CRM edit reaches the ERP.
        company = Company.objects.create(name="Fjordbygg")
        link = linking.link_record(connection, "Customer", "A1", company, admin_user, baseline={})
        run = SyncRun.objects.create(connection=connection, link=link, kind="sync_now", total=1)
        run_sync.apply(kwargs={"run_id": run.pk})
        assert SyncRun.objects.get(pk=run.pk).status == "succeeded"
        Company.objects.filter(pk=company.pk).update(name="Fjordbygg AS")
        run = SyncRun.objects.create(connection=connection, link=link, kind="sync_now", total=1)
        run_sync.apply(kwargs={"run_id": run.pk})
        assert SyncRun.objects.get(pk=run.pk).status == "succeeded"
        assert book.actors["A1"].values["NAME"] == "Fjordbygg AS"

        # Create in ERP with an idempotency key at hand: not sent to a connector that does not name it.
        other = Company.objects.create(name="Nordträ AB")
        plan = linking.creation_plan(connection, "Customer", other)
        created = linking.create_in_erp(connection, plan, other, {}, admin_user, "sv", idempotency_key="k-1")
        assert book.actors[created.erp_key].values["NAME"] == "Nordträ AB"
        assert Link.objects.filter(connection=connection).count() == 2
    assert seen == [], f"v1.1 fields were sent to a v1 connector: {seen}"
