"""The whole chain against a real Tryton: connector and connection, mapping, activation, create in ERP, link,
Sync now, automatic sync both ways (including a change made only to an address), and Tryton's own refusal."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from connections import jobs, linking, mapping, services
from connections.models import ErpConnection, Link, SyncRun, SyncSettings
from connectors import protocol as p
from connectors.models import SyncConnector
from crm.models import Company, Country

from ..conftest import RunningConnector
from .conftest import TrytonServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(
    tryton_server: TrytonServer, tryton_connector: RunningConnector, tryton_samples: dict[str, p.Actor]
) -> ErpConnection:
    """What an admin does on the Sync tab, through the same services the pages call."""
    connector = SyncConnector(name="Tryton", url=tryton_connector.url)
    connector.set_secret(tryton_connector.secret)
    connector.save()
    fields = services.probe_connector(connector.url, connector.secret)
    config = tryton_server.config()
    outcome = services.test_config(connector, config, None)
    assert outcome.passed, outcome
    connection = services.save_connection(
        ErpConnection(name="Tryton", connector=connector), fields=fields, values=config, grants=[], user=None
    )
    wanted = {
        "NAME": "both",
        "PHONE": "both",
        "EMAIL": "both",
        "POSTALCITY": "both",
        "VATNO": "both",
        "NUMBER2": "erp_to_crm",
        "COUNTRY": "both",
    }
    rows = [
        mapping.FieldRow(f.key, f.crm_field if f.key in wanted else "", wanted.get(f.key, ""), f.key == "NAME", False)
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    sweden = Country.objects.get_or_create(code="SE", defaults={"name": "Sweden"})[0]
    norway = Country.objects.get_or_create(code="NO", defaults={"name": "Norway"})[0]
    finland = Country.objects.get_or_create(code="FI", defaults={"name": "Finland"})[0]
    mapping.save_list_mapping(
        connection,
        "Customer",
        "COUNTRY",
        [("SE", "Sweden"), ("NO", "Norway"), ("FI", "Finland")],
        {"SE": sweden.pk, "NO": norway.pk, "FI": finland.pk},
        None,
    )
    assert services.activation_problems(connection) == []
    services.set_active(connection, True, None)
    SyncSettings.objects.update_or_create(
        pk=1, defaults={"crm_priority": 1, "automatic_sync": True, "interval_minutes": 1}
    )
    connection.refresh_from_db()
    return connection


def party(server: TrytonServer, key: str) -> dict[str, Any]:
    fields = [
        "name",
        "code",
        "addresses.city",
        "contact_mechanisms.type",
        "contact_mechanisms.value",
        "identifiers.code",
        "categories.name",
    ]
    return server.session().call("model.party.party.read", [int(key)], fields, {})[0]


def run(run_id: int) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


def automatic_sync() -> list[SyncRun]:
    SyncSettings.objects.filter(pk=1).update(last_automatic_at=timezone.now() - timedelta(hours=1))
    return [run(run_id) for run_id in jobs.tick_automatic_sync()]


def test_a_company_created_in_tryton_from_the_crm_then_synced_both_ways(
    connection: ErpConnection, tryton_server: TrytonServer, django_capture_on_commit_callbacks: Any
) -> None:
    record = Company.objects.create(
        name="Älvdata AB", phone="+46 90 77 77 77", email="info@alvdata.example", postal_city="Umeå"
    )
    plan = linking.creation_plan(connection, "Customer", record)
    with django_capture_on_commit_callbacks(execute=False):
        link = linking.create_in_erp(connection, plan, record, {}, None, "en")
    created = party(tryton_server, link.erp_key)
    assert created["name"] == "Älvdata AB" and [c["name"] for c in created["categories."]] == ["Customer"]
    assert {(m["type"], m["value"]) for m in created["contact_mechanisms."]} == {
        ("phone", "+46 90 77 77 77"),
        ("email", "info@alvdata.example"),
    }
    assert [a["city"] for a in created["addresses."]] == ["Umeå"]
    first = run(services.start_sync_now(link, None)[0].pk)
    assert first.status == "succeeded", first.error
    record.refresh_from_db()
    assert record.number2 == created["code"]  # the code Tryton gave it arrived in the CRM

    # A change made in Tryton only to the address (the party's own write_date does not move) ...
    session = tryton_server.session()
    [address] = session.call("model.party.party.read", [int(link.erp_key)], ["addresses"], {})[0]["addresses"]
    time.sleep(0.01)
    session.call("model.party.address.write", [address], {"city": "Luleå"}, {})
    # ... and one made in the CRM to the phone number: both arrive with the next automatic sync.
    Company.objects.filter(pk=record.pk).update(phone="+46 920 1 2 3", updated_at=timezone.now())
    runs = automatic_sync()
    assert runs and all(r.status == "succeeded" for r in runs), [(r.status, r.error) for r in runs]
    record.refresh_from_db()
    assert record.postal_city == "Luleå"
    assert ("phone", "+46 920 1 2 3") in {
        (m["type"], m["value"]) for m in party(tryton_server, link.erp_key)["contact_mechanisms."]
    }


def test_an_existing_tryton_customer_is_linked_and_synced(
    connection: ErpConnection, tryton_server: TrytonServer, tryton_samples: dict[str, p.Actor]
) -> None:
    actor = tryton_samples["Fjordkraft AS"]
    record = Company.objects.create(name="Fjordkraft AS")
    comparison = linking.compare(connection, "Customer", actor.key or "", record, "en")
    assert {d.field.key for d in comparison.differences} >= {"PHONE", "POSTALCITY", "COUNTRY"}
    link = linking.connect(connection, "Customer", actor.key or "", record, None, {}, "en")
    done = run(services.start_sync_now(link, None)[0].pk)
    assert done.status == "succeeded", done.error
    record.refresh_from_db()
    assert record.postal_city == "Bergen" and record.country is not None and record.country.code == "NO"
    assert record.phone == "+46 90 12 34"


def test_trytons_own_refusal_reaches_the_user(connection: ErpConnection, tryton_server: TrytonServer) -> None:
    record = Company.objects.create(name="Felnummer AB", vat_no="SE123")
    plan = linking.creation_plan(connection, "Customer", record)
    with pytest.raises(services.ConnectorError) as refused:
        linking.create_in_erp(connection, plan, record, {}, None, "en")
    assert (
        'The European VAT Number "SE123" for party "Felnummer AB" is not valid.'
        in services.explain(refused.value).message
    )
    assert not Link.objects.filter(company=record).exists()
    # The same refusal on a sync is the record's error, shown on its ERP tab and in the failed records.
    record.vat_no = ""
    record.save()
    link = linking.create_in_erp(
        connection, linking.creation_plan(connection, "Customer", record), record, {}, None, "en"
    )
    Company.objects.filter(pk=record.pk).update(vat_no="SE123", updated_at=timezone.now())
    failed = run(services.start_sync_now(link, None)[0].pk)
    link.refresh_from_db()
    assert failed.status == "partially_failed" and link.status == "failed"
    assert 'The European VAT Number "SE123" for party "Felnummer AB" is not valid.' in link.last_error
