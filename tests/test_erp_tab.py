"""The ERP tab as end users meet it: who sees it, live values, Sync now, connect, disconnect, a slow ERP."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connections import mapping, services
from connections.models import ErpConnection, Link, SyncRun
from connectors.models import SyncConnector

from .conftest import RunningConnector
from .connectors.servers import serving
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, new_customer

pytestmark = pytest.mark.django_db
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project"]


@pytest.fixture
def setup(demo_connector: RunningConnector) -> dict[str, Any]:
    connection = active_connection(demo_connector)
    # BALANCE and CURRENCY are shown live on the tab (CURRENCY is a list: its text is shown).
    rows = [mapping.FieldRow(f.key, f.crm_field, f.direction, f.show_in_search or f.key == "NAME",
                             f.key in ("BALANCE", "CURRENCY"))
            for f in connection.erp_fields.filter(actor_type="Customer")]  # fmt: skip
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(demo_connector, connection, PHONE="+46 90 12", CURRENCY="NOK")
    record = company(phone="+46 90 12")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    user = UserFactory.create(username="anna", perms=[*CRM, "connections.use_erp_sync"])
    return {"connection": connection, "record": record, "link": link, "user": user, "actor": actor}


def tab(record: Any) -> str:
    return reverse("crm:company-tab", args=[record.pk, "erp"])


def test_only_licensed_users_with_an_active_connection_see_the_tab(client: Any, setup: dict[str, Any]) -> None:
    record = setup["record"]
    client.force_login(setup["user"])
    assert tab(record) in client.get(record.get_absolute_url()).content.decode()
    assert client.get(tab(record)).status_code == 200
    unlicensed = UserFactory.create(username="sara", perms=CRM)
    client.force_login(unlicensed)
    assert tab(record) not in client.get(record.get_absolute_url()).content.decode()
    assert client.get(tab(record)).status_code == 404
    ErpConnection.objects.filter(pk=setup["connection"].pk).update(visibility="specified")  # no grant for anna
    client.force_login(setup["user"])
    assert client.get(tab(record)).status_code == 404
    ErpConnection.objects.filter(pk=setup["connection"].pk).update(visibility="everyone", is_active=False)
    assert client.get(tab(record)).status_code == 404


def test_a_linked_record_shows_live_values_and_last_synced_ones(client: Any, setup: dict[str, Any]) -> None:
    client.force_login(setup["user"])
    page = client.get(tab(setup["record"])).content.decode()
    assert f"Linked to Customer {setup['actor'].key}." in page
    assert "Norwegian krone" in page  # a list value shown as its text
    assert "Balance due" in page and "Sync now" in page and "Disconnect" in page


def test_sync_now_shows_progress_then_the_result_without_a_reload(client: Any, setup: dict[str, Any],
                                                                 demo_connector: RunningConnector,
                                                                 django_capture_on_commit_callbacks: Any) -> None:  # fmt: skip
    from connections import tasks

    change_in_erp(demo_connector, setup["connection"], setup["actor"].key, PHONE="+46 changed in the ERP")
    client.force_login(setup["user"])
    with django_capture_on_commit_callbacks(execute=False):
        partial = client.post(reverse("erp:sync-now", args=[setup["link"].pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "<progress" in partial and 'hx-trigger="load delay:500ms"' in partial
    run = SyncRun.objects.get(link=setup["link"])
    tasks.run_sync.apply(kwargs={"run_id": run.pk})
    done = client.get(reverse("erp:run", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Succeeded." in done and "<progress" not in done
    assert "<code>PHONE</code>: +46 90 12 → +46 changed in the ERP" in done


def test_an_unlinked_record_is_linked_from_a_search(client: Any, setup: dict[str, Any], demo_connector: RunningConnector,
                                                    django_capture_on_commit_callbacks: Any, monkeypatch: Any) -> None:  # fmt: skip
    monkeypatch.setattr(services, "_send_run", lambda run_id: None)
    connection = setup["connection"]
    other = new_customer(demo_connector, connection, NAME="Vindkraft Nord AB")
    record = company(name="Vindkraft Nord AB")
    client.force_login(setup["user"])
    assert "Not linked to Demo ERP – Sweden yet." in client.get(tab(record)).content.decode()
    url = reverse("erp:connect", args=[connection.pk, record.pk])
    found = client.get(url, {"kind": "company", "q": "vindkraft nord"}, HTTP_HX_REQUEST="true").content.decode()
    assert other.key in found and "Vindkraft Nord AB" in found
    taken = client.get(url, {"kind": "company", "q": "granbygg"}).content.decode()
    assert "already linked" in taken
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"kind": "company", "actor_type": "Customer", "key": other.key})
    link = Link.objects.get(company=record)
    assert link.erp_key == other.key and SyncRun.objects.filter(link=link).exists()
    refused = client.post(url, {"kind": "company", "actor_type": "Customer", "key": setup["actor"].key}, follow=True)
    assert "is already linked" in refused.content.decode()


def test_disconnect_needs_the_connect_right_and_removes_only_the_link(client: Any, setup: dict[str, Any]) -> None:
    connection, link = setup["connection"], setup["link"]
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_connect=False)
    client.force_login(setup["user"])
    assert "Disconnect" not in client.get(tab(setup["record"])).content.decode()
    assert client.post(reverse("erp:disconnect", args=[link.pk])).status_code == 403
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_connect=True)
    client.post(reverse("erp:disconnect", args=[link.pk]))
    assert not Link.objects.filter(pk=link.pk).exists()
    assert "Not linked to Demo ERP – Sweden yet." in client.get(tab(setup["record"])).content.decode()


def test_a_hanging_connector_costs_the_page_at_most_its_timeout(
    client: Any, setup: dict[str, Any], settings: Any
) -> None:
    settings.ERPSYNC_ERP_TAB_TIMEOUT = 1
    settings.ERPSYNC_CONNECTOR_TIMEOUT = 1

    def hang(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        time.sleep(5)
        start_response("200 OK", [])
        return [b""]

    with serving(hang, threads=8) as url:
        SyncConnector.objects.filter(pk=setup["connection"].connector_id).update(url=url)
        client.force_login(setup["user"])
        started = time.monotonic()
        page = client.get(tab(setup["record"])).content.decode()
        assert time.monotonic() - started < 3
        # The connect search of an unlinked record answers in time too.
        other = company(name="Vindkraft AB")
        started = time.monotonic()
        found = client.get(
            reverse("erp:connect", args=[setup["connection"].pk, other.pk]), {"kind": "company", "q": "vind"}
        )
        assert time.monotonic() - started < 3
    assert "cannot be reached right now; the values below are the last synced ones." in page
    assert "did not answer in time" in page
    assert "The connector did not answer in time." in found.content.decode()


def test_the_tab_reads_the_database_a_fixed_number_of_times(client: Any, setup: dict[str, Any], settings: Any) -> None:
    settings.ERPSYNC_ERP_TAB_TIMEOUT = 1
    client.force_login(setup["user"])
    client.get(tab(setup["record"]))  # warm caches (sessions, content types)
    with CaptureQueriesContext(db_connection) as one:
        client.get(tab(setup["record"]))
    second = ErpConnection.objects.create(name="Second", connector=setup["connection"].connector, is_active=True,
                                          last_test_ok=True, priority=9)  # fmt: skip
    for field in setup["connection"].erp_fields.filter(actor_type="Customer"):
        field.pk = None
        field.connection = second
        field.save()
    with CaptureQueriesContext(db_connection) as two:
        page = client.get(tab(setup["record"])).content.decode()
    assert "Not linked to Second yet." in page
    assert len(two.captured_queries) == len(one.captured_queries), [q["sql"][:80] for q in two.captured_queries]
    assert re.search(r"Demo ERP – Sweden.*Second", page, re.S)  # sync-priority order
