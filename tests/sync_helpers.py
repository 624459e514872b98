"""A configured, active connection to the Demo ERP process, for engine and job tests."""

from __future__ import annotations

from typing import Any

from connections import jobs, mapping, services
from connections.models import ErpConnection, SyncRun, SyncSettings
from connectors import protocol as p
from connectors.client import ConnectionClient, ConnectorClient
from connectors.models import SyncConnector
from crm.models import Company, Country

from .conftest import DEMO_CONFIG, Connector
from .factories import SyncRunFactory

C = p.ActorType.CUSTOMER


def saved_connection(
    demo: Connector, name: str, customers: dict[str, tuple[str, str]], config: dict[str, Any] | None = None
) -> ErpConnection:
    """A Demo ERP connection saved as the connection form saves it, with Customers synced as ``customers`` maps
    them (ERP field key → (CRM field, direction)); not active yet."""
    connector = SyncConnector(name="Demo ERP", url=demo.url)
    connector.set_secret(demo.secret)
    connector.save()
    with services.interactive_client(demo.url, demo.secret) as client:
        fields = client.get_config_data().data.fields
    connection = services.save_connection(
        ErpConnection(name=name, connector=connector),
        fields=fields,
        values=dict(config or DEMO_CONFIG),
        grants=[],
        user=None,
    )
    rows = [
        mapping.FieldRow(f.key, *customers.get(f.key, ("", "")), False, False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    return connection


def active_connection(demo: Connector, erp_first: bool = True, config: dict[str, Any] | None = None) -> ErpConnection:
    """Customers sync to companies: NAME and PHONE both ways, EMAIL ERP → CRM, COUNTRY ERP → CRM through a list mapping.

    ``config`` replaces the Demo ERP configuration (DEMO_CONFIG), e.g. for a Demo ERP started with another API key.
    """
    customers = {
        "NAME": ("NAME", "both"),
        "PHONE": ("PHONE", "both"),
        "EMAIL": ("EMAIL", "erp_to_crm"),
        "COUNTRY": ("COUNTRY", "erp_to_crm"),
    }
    connection = saved_connection(demo, "Demo ERP – Sweden", customers, config)
    sweden = Country.objects.get_or_create(code="SE", defaults={"name": "Sweden"})[0]
    mapping.save_list_mapping(
        connection, "Customer", "COUNTRY", [("SE", "Sweden"), ("NO", "Norway")], {"SE": sweden.pk, "NO": None}, None
    )
    services.set_active(connection, True, None)
    settings_row = SyncSettings.load()
    settings_row.crm_priority = 1 if erp_first else 0
    settings_row.save()
    ErpConnection.objects.filter(pk=connection.pk).update(priority=0 if erp_first else 1)
    connection.refresh_from_db()
    return connection


def erp(demo: Connector, connection: ErpConnection) -> ConnectionClient:
    return ConnectorClient(demo.url, demo.secret).connection(str(connection.guid), connection.config_values)


def new_customer(demo: Connector, connection: ErpConnection, **values: Any) -> p.Actor:
    return erp(demo, connection).create_actor(p.Actor(actor_type=C, values={"NAME": "Granbygg AB", **values}))


def erp_values(demo: Connector, connection: ErpConnection, key: str) -> dict[str, Any]:
    return erp(demo, connection).get_actors(C, [key]).actors[0].values


def change_in_erp(demo: Connector, connection: ErpConnection, key: str, **values: Any) -> None:
    [result] = erp(demo, connection).save_actors([p.Actor(actor_type=C, key=key, values=values)])
    assert result.ok, result.error


def company(**values: Any) -> Company:
    return Company.objects.create(**{"name": "Granbygg AB", **values})


def run_for(link: Any) -> SyncRun:
    return SyncRunFactory.create(link=link, total=1)


def claimed_run_for(link: Any) -> SyncRun:
    """A run of ``link`` claimed as the task claims it: the engine commits a batch only while the run is its
    attempt's."""
    run = run_for(link)
    jobs.claim(run.pk)
    run.refresh_from_db()
    return run


def enable(connection: ErpConnection, actor_type: str, search: tuple[str, ...] = (), tab: tuple[str, ...] = ()) -> None:
    """Turn sync on for ``actor_type`` with the automatic mapping, showing ``search`` / ``tab`` fields."""
    rows = []
    for f in connection.erp_fields.filter(actor_type=actor_type):
        direction = ""
        if f.crm_field:  # both ways where the field allows it, else the one way it allows
            problems = mapping.direction_problems(actor_type, f.type, f.access, f.crm_field)
            direction = next((d for d in ("both", "erp_to_crm", "crm_to_erp") if d not in problems), "")
        rows.append(mapping.FieldRow(f.key, f.crm_field if direction else "", direction, f.key in search, f.key in tab))
    mapping.save_field_mapping(connection, actor_type, True, rows, None)


def customers_for_import(demo: Connector, config: dict[str, Any] | None = None) -> ErpConnection:
    """An active connection whose Customers map name, numbers, VAT, address, phone, e-mail and country."""
    connection = active_connection(demo, config=config)
    both = ("NAME", "VATNO", "PHONE", "EMAIL", "URL", "POSTALAD1", "POSTALZIP", "POSTALCITY", "COUNTRY")
    rows = [
        mapping.FieldRow(
            f.key,
            f.key if f.key in both or f.key == "NUMBER2" else "",
            "both" if f.key in both else "erp_to_crm" if f.key == "NUMBER2" else "",
            f.key == "NAME",
            False,
        )
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    sweden = Country.objects.get(code="SE")
    mapping.save_list_mapping(
        connection, "Customer", "COUNTRY", [("SE", "Sweden"), ("NO", "Norway")], {"SE": sweden.pk, "NO": None}, None
    )
    return connection
