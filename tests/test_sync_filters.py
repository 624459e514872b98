"""Sync filters per actor type: only records meeting the CRM-side and ERP-side conditions sync (Sync all, automatic
sync, Sync now, import); the others are left alone, and their ERP tab says why; the form validates and audits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import importing, jobs, services
from connections.choices import MatchKind
from connections.filters import SyncFilter
from connections.models import AuditEntry, ErpActorType, ErpConnection, ErpField, Link, SyncRun, SyncSettings
from connectors import protocol as p
from crm.models import Category, Company

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, company, erp, erp_values, new_customer

pytestmark = pytest.mark.django_db


def run(run_id: int) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


@pytest.fixture
def admin(db: Any) -> Any:
    return UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])


@pytest.fixture
def two(demo_erp: Connector) -> tuple[ErpConnection, Link, Link]:
    """Two linked customers, Granbygg and Ekbygg, whose phones the ERP has and the CRM has not yet."""
    connection = active_connection(demo_erp)
    customer = Category.objects.create(name="Kund")
    links = []
    for name, category in (("Granbygg AB", customer), ("Ekbygg AB", None)):
        actor = new_customer(demo_erp, connection, NAME=name, PHONE=f"+46 {name[:3]}")
        record = company(name=name, phone="", category=category)
        links.append(services.link_record(connection, "Customer", actor.key or "", record, None))
    return connection, links[0], links[1]


def test_an_erp_side_filter_syncs_only_the_records_it_matches_and_the_tab_says_why(
    client: Any, admin: Any, two: Any, demo_erp: Connector
) -> None:
    connection, gran, ek = two
    restriction = p.Restriction(field_key="NAME", operator="begins", values=["gran"])
    services.save_sync_filter(connection, "Customer", {}, [restriction], admin)
    done = run(jobs.queue_bulk(connection, "sync_all").pk)
    assert done.status == "succeeded" and done.done == 2
    assert Company.objects.get(pk=gran.company_id).phone == "+46 Gra"
    assert Company.objects.get(pk=ek.company_id).phone == ""  # left alone, and not deleted anywhere
    assert erp_values(demo_erp, connection, ek.erp_key)["NAME"] == "Ekbygg AB"
    ek.refresh_from_db()
    gran.refresh_from_db()
    assert gran.outside_filter is None and ek.status == "ok" and ek.last_synced_at is None
    assert ek.outside_filter == {"side": "erp", "field": "NAME", "operator": "begins", "values": ["gran"]}
    user = UserFactory.create(username="ulla", perms=["connections.use_erp_sync", "crm.view_company"])
    client.force_login(user)
    tab = client.get(reverse("crm:company-tab", args=[ek.company_id, "erp"])).content.decode()
    assert "Not synced: it is outside the sync filter (Name begins with gran, in the ERP)." in tab
    client.cookies["django_language"] = "sv"
    tab = client.get(reverse("crm:company-tab", args=[ek.company_id, "erp"])).content.decode()
    assert "Synkas inte: posten är utanför synkfiltret (Namn börjar med gran, i ERP)." in tab
    # Once the filter is removed, the next Sync now syncs it and the note goes.
    services.save_sync_filter(connection, "Customer", {}, [], admin)
    assert run(services.start_sync_now(ek, None)[0].pk).status == "succeeded"
    ek.refresh_from_db()
    assert ek.outside_filter is None and Company.objects.get(pk=ek.company_id).phone == "+46 Ekb"


def test_a_crm_side_filter_applies_to_automatic_sync(two: Any, admin: Any, demo_erp: Connector) -> None:
    connection, gran, ek = two
    customer = Category.objects.get(name="Kund")
    services.save_sync_filter(connection, "Customer", {"category": [customer.pk]}, [], admin)
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True})
    automatic = run(jobs.tick_automatic_sync(timezone.now() + timedelta(minutes=1))[0])
    assert automatic.status == "succeeded"
    assert Company.objects.get(pk=gran.company_id).phone == "+46 Gra"
    assert Company.objects.get(pk=ek.company_id).phone == ""
    ek.refresh_from_db()
    assert ek.outside_filter == {"side": "crm", "field": "category", "items": [customer.pk]}
    entry = AuditEntry.objects.filter(connection=connection, action="changed").first()
    assert entry is not None and entry.detail == "sync filter of Customer: Category is one of Kund"


def test_the_import_leaves_out_actors_outside_the_filter(empty_demo: Connector, import_connection: Any) -> None:
    for name in ("Ett AB", "Två AB"):
        erp(empty_demo, import_connection).create_actor(p.Actor(actor_type=p.ActorType.CUSTOMER, values={"NAME": name}))
    restriction = p.Restriction(field_key="NAME", operator="begins", values=["Ett"])
    services.save_sync_filter(import_connection, "Customer", {}, [restriction], None)
    erp_import = importing.start_preview(import_connection, "Customer", everything=True)
    jobs.run_sync.apply(kwargs={"run_id": erp_import.preview_run.pk})  # type: ignore[union-attr]
    erp_import.refresh_from_db()
    rows = {row.name: row for row in erp_import.rows.all()}
    assert rows["Ett AB"].kind == MatchKind.NEW
    assert rows["Två AB"].kind == MatchKind.BLOCKED
    assert rows["Två AB"].reason == "Outside the sync filter: Name begins with Ett."
    imported = importing.start_import(erp_import)
    jobs.run_sync.apply(kwargs={"run_id": imported.pk})
    assert list(Company.objects.values_list("name", flat=True)) == ["Ett AB"]


def test_the_filter_form_validates_saves_and_shows_the_conditions(client: Any, admin: Any, two: Any) -> None:
    connection, _gran, _ek = two
    client.force_login(admin)
    url = reverse("connections:sync-filter", args=[connection.pk, "Customer"])
    page = client.get(url).content.decode()
    assert "No conditions: every record syncs." in page and 'name="crm-category"' in page
    assert 'name="op-NAME"' in page and 'name="crm-country"' in page
    customer = Category.objects.get(name="Kund")
    for bad, error in (
        ({"crm-category": "99999"}, "Choose items from the list."),
        ({"op-NAME": "sounds_like", "v-NAME": "x"}, "Choose one of the operators offered."),
        ({"op-CREDIT_LIMIT": "gt", "v-CREDIT_LIMIT": "lots"}, "Enter a number."),
        ({"op-CUSTOMER_SINCE": "between", "v-CUSTOMER_SINCE": "2024-01-01"}, "Enter both ends of the range."),
    ):
        answer = client.post(url, bad)
        assert answer.status_code == 400 and error in answer.content.decode()
        assert "The sync filter was not saved: correct the conditions marked below." in answer.content.decode()
    row = ErpActorType.objects.get(connection=connection, actor_type="Customer")
    assert (row.crm_filter, row.erp_filter) == ({}, [])
    assert not AuditEntry.objects.filter(connection=connection, detail__startswith="sync filter").exists()
    answer = client.post(
        url,
        {"crm-category": str(customer.pk), "op-NAME": "begins", "v-NAME": "Gran", "op-CREDIT_LIMIT": "gte",
         "v-CREDIT_LIMIT": "1000", "op-COUNTRY": "one_of", "v-COUNTRY": ["SE", "NO"]},
        follow=True,
    )  # fmt: skip
    page = answer.content.decode()
    assert "Saved the sync filter of Customer." in page
    assert (
        "Syncs only when:</strong> Category is one of Kund; Name begins with Gran; Country is one of Sweden, Norway; "
        "Credit limit ≥ 1,000.00"
    ) in page
    row.refresh_from_db()
    assert row.crm_filter == {"category": [customer.pk]}
    assert {r["field_key"]: (r["operator"], r["values"]) for r in row.erp_filter} == {
        "NAME": ("begins", ["Gran"]),
        "CREDIT_LIMIT": ("gte", ["1000"]),
        "COUNTRY": ("one_of", ["SE", "NO"]),
    }
    assert 'name="v-NAME" value="Gran"' in page  # the form shows what is stored
    assert AuditEntry.objects.filter(connection=connection, detail__startswith="sync filter of Customer:").exists()
    assert "Filtered" in client.get(connection.get_absolute_url()).content.decode()
    client.post(url, {})
    row.refresh_from_db()
    assert (row.crm_filter, row.erp_filter) == ({}, [])
    assert AuditEntry.objects.filter(detail="sync filter of Customer removed: every record syncs").exists()
    assert client.get(reverse("connections:sync-filter", args=[connection.pk, "Nothing"])).status_code == 404


def test_a_condition_on_a_field_the_connector_no_longer_returns_is_left_out(two: Any, admin: Any) -> None:
    connection = two[0]
    restriction = p.Restriction(field_key="NAME", operator="begins", values=["gran"])
    services.save_sync_filter(connection, "Customer", {}, [restriction], admin)
    assert SyncFilter.of(connection, "Customer").erp_keys == ["NAME"]
    ErpField.objects.filter(connection=connection, actor_type="Customer", key="NAME").update(missing_in_erp=True)
    assert not SyncFilter.of(connection, "Customer")
