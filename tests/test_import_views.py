"""The Import from ERP pages, as an admin uses them (and as nobody else can)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from connections.choices import ImportAction, MatchKind
from connections.models import ErpConnection, ErpImport, SyncSettings
from crm.models import Company

from .conftest import Connector
from .test_import import customer, run

pytestmark = pytest.mark.django_db
START = reverse("connections:import")


def test_only_admins_reach_the_import_pages(client: Any, as_user: Any, licensed_user: Any) -> None:
    assert client.get(START).status_code == 302
    assert as_user(licensed_user).get(START).status_code == 403


def test_search_select_preview_decide_import(
    as_user: Any, admin_user: Any, empty_demo: Connector, import_connection: ErpConnection
) -> None:
    browser = as_user(admin_user)
    Company.objects.create(name="Granbygg", postal_city="Umeå")
    Company.objects.create(name="Granbygg", postal_city="Luleå")
    wanted = customer(empty_demo, import_connection, NAME="Granbygg AB", POSTALCITY="Piteå")
    customer(empty_demo, import_connection, NAME="Fjällbygg AB")
    page = browser.get(START, {"connection": import_connection.pk})
    assert page.status_code == 200 and b"Preview import of every Customer" in page.content

    empty = browser.get(START, {"connection": import_connection.pk, "actor_type": "Customer", "run": "1"})
    assert empty.status_code == 400 and b"Fill in at least one criterion" in empty.content
    found = browser.get(
        START,
        {
            "connection": import_connection.pk,
            "actor_type": "Customer",
            "run": "1",
            "op-NAME": "contains",
            "v-NAME": "granbygg",
        },
    )
    assert found.status_code == 200 and wanted.encode() in found.content and "Fjällbygg" not in found.content.decode()

    response = browser.post(
        START,
        {
            "connection": import_connection.pk,
            "actor_type": "Customer",
            "key": [wanted],
            "description": "Name contains granbygg",
        },
    )
    erp_import = ErpImport.objects.get()
    assert response.status_code == 302 and response["Location"] == erp_import.get_absolute_url()
    waiting = browser.get(erp_import.get_absolute_url())
    assert b"Waiting for a worker" in waiting.content
    run(erp_import.preview_run)

    plan = browser.get(erp_import.get_absolute_url())
    assert b"1 row needs a decision" in plan.content and b"Possibly Granbygg" in plan.content
    row = erp_import.rows.get()
    assert row.kind == MatchKind.AMBIGUOUS
    refused = browser.post(
        reverse("connections:import-action", args=[erp_import.pk]), {"action": "import"}, follow=True
    )
    assert b"1 rows need a decision" in refused.content
    row_url = reverse("connections:import-row", args=[erp_import.pk, row.pk])
    bad = browser.post(row_url, {"action": "link:999999"})
    assert bad.status_code == 400 and b"Choose one of the records offered" in bad.content
    target = row.candidates[0]["id"]
    chosen = browser.post(row_url, {"action": f"link:{target}"})
    assert chosen.status_code == 200 and "import-plan-changed" in json.loads(chosen["HX-Trigger"])
    assert b"After import" in chosen.content and b"Pite" in chosen.content  # the field-by-field preview
    counts = browser.get(reverse("connections:import-counts", args=[erp_import.pk]))
    assert b"Import 1 row" in counts.content

    browser.post(reverse("connections:import-action", args=[erp_import.pk]), {"action": "import"})
    erp_import.refresh_from_db()
    progress = browser.get(reverse("connections:import-progress", args=[erp_import.pk]))
    assert "HX-Refresh" not in progress and b"Waiting for a worker" in progress.content
    run(erp_import.import_run)
    assert browser.get(reverse("connections:import-progress", args=[erp_import.pk]))["HX-Refresh"] == "true"
    result = browser.get(erp_import.get_absolute_url(), {"outcome": "updated"})
    assert b"Result" in result.content and b"Granbygg AB" in result.content
    assert Company.objects.get(pk=target).postal_city == "Piteå"
    # The plan cannot be changed any more.
    late = browser.post(row_url, {"action": ImportAction.SKIP})
    assert late.status_code == 400 and b"can no longer be changed" in late.content


def test_the_page_says_why_nothing_can_be_imported(
    as_user: Any, admin_user: Any, empty_demo: Connector, import_connection: ErpConnection
) -> None:
    browser = as_user(admin_user)
    SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": True})
    page = browser.get(START, {"connection": import_connection.pk})
    assert b"Automatic sync is on" in page.content
    import_connection.actor_types.update(sync_enabled=False)
    page = browser.get(START, {"connection": import_connection.pk})
    assert b"Nothing can be imported from" in page.content
    refused = browser.post(
        START, {"connection": import_connection.pk, "actor_type": "Customer", "scope": "all"}, follow=True
    )
    assert b"Customer cannot be imported" in refused.content and not ErpImport.objects.exists()


def test_bad_requests_get_an_answer_not_an_error(
    as_user: Any, admin_user: Any, empty_demo: Connector, import_connection: ErpConnection
) -> None:
    browser = as_user(admin_user)
    assert browser.post(START, {"connection": "abc", "actor_type": "Customer", "scope": "all"}).status_code == 404
    stale = browser.get(START, {"connection": import_connection.pk, "actor_type": "Project"})
    assert stale.status_code == 200 and b"Project cannot be imported" in stale.content
    assert b"Search Customer actors" in stale.content  # the type that can be imported is offered instead

    for name in ("Ett AB", "Två AB"):
        customer(empty_demo, import_connection, NAME=name)
    browser.post(START, {"connection": import_connection.pk, "actor_type": "Customer", "scope": "all"})
    erp_import = ErpImport.objects.get()
    run(erp_import.preview_run)
    action = reverse("connections:import-action", args=[erp_import.pk])
    response = browser.post(action, {"action": "exclude", "kind": "new"})
    assert response["Location"].endswith("?kind=new")
    assert not erp_import.rows.filter(included=True).exists()
    page = browser.get(erp_import.get_absolute_url(), {"kind": "new"})
    assert b"Import 0 rows" in page.content and b"Tick every row of this kind" in page.content
