"""The run page and Undo: who may undo (the right of Sync all and Resync), what the confirmation says, and that a
scope undone once is refused the second time with a message, changing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from connections import jobs, services
from connections.choices import RunKind, RunStatus
from connections.models import ErpConnection, Link, SyncRun
from crm.models import Company

from .conftest import Connector
from .factories import ErpConnectionFactory
from .sync_helpers import active_connection, change_in_erp, company, new_customer

pytestmark = pytest.mark.django_db


def written_run(demo: Connector) -> tuple[ErpConnection, Link, SyncRun]:
    connection = active_connection(demo)
    actor = new_customer(demo, connection, PHONE="+46 1", EMAIL="a@granbygg.se")
    record = company(phone="+46 1", email="a@granbygg.se")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    first = SyncRun.objects.create(connection=connection, link=link, kind=RunKind.SYNC_NOW, total=1)
    jobs.run_sync.apply(kwargs={"run_id": first.pk})
    Company.objects.filter(pk=record.pk).update(phone="+46 2")
    change_in_erp(demo, connection, actor.key or "", EMAIL="b@granbygg.se")
    run = SyncRun.objects.create(connection=connection, link=link, kind=RunKind.SYNC_NOW, total=1)
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.changed == 2
    return connection, link, run


def test_an_admin_undoes_a_run_from_its_page(demo_erp: Connector, admin_user: Any, client: Any) -> None:
    connection, link, run = written_run(demo_erp)
    client.force_login(admin_user)
    page = client.get(reverse("connections:run-detail", args=[connection.pk, run.pk])).content.decode()
    undo_url = reverse("connections:run-undo", args=[connection.pk, run.pk])
    assert "Undo this run" in page and f'href="{undo_url}"' in page
    assert f"{undo_url}?link={link.pk}&amp;field=PHONE" in page and f"{undo_url}?link={link.pk}" in page
    confirm = client.get(undo_url).content.decode()
    assert "In the CRM: 1 field on 1 record is put back." in confirm
    assert "In Demo ERP – Sweden: 1 field on 1 record is put back." in confirm
    field_confirm = client.get(undo_url, {"link": link.pk, "field": "PHONE"}).content.decode()
    assert "In the CRM: 0 fields on 0 records are put back." in field_confirm
    response = client.post(undo_url)
    started = SyncRun.objects.get(undoes=run)
    assert response.status_code == 302
    assert response["Location"] == reverse("connections:run-detail", args=[connection.pk, started.pk])
    assert (started.kind, started.status, started.total, started.created_by) == ("undo", "queued", 1, admin_user)
    undo_page = client.get(response["Location"]).content.decode()
    assert f"Job #{started.pk}: Undo" in undo_page and 'hx-trigger="every 1s"' in undo_page
    undone_page = client.get(reverse("connections:run-detail", args=[connection.pk, run.pk])).content.decode()
    assert f"Undone by run #{started.pk}" in undone_page and "Undo this run" not in undone_page
    # The second time: refused with a message, and no second undo.
    again = client.post(undo_url, follow=True).content.decode()
    assert f"Run #{run.pk} was already undone by run #{started.pk}." in again
    assert SyncRun.objects.filter(undoes=run).count() == 1


def test_undo_needs_the_right_of_sync_all(demo_erp: Connector, licensed_user: Any, client: Any) -> None:
    connection, link, run = written_run(demo_erp)
    undo_url = reverse("connections:run-undo", args=[connection.pk, run.pk])
    client.force_login(licensed_user)  # may sync a record now, may not run Sync all or Resync
    assert client.post(reverse("connections:connection-bulk-run", args=[connection.pk])).status_code == 403
    assert client.post(undo_url).status_code == 403
    assert client.post(undo_url, {"link": link.pk}).status_code == 403
    assert client.get(reverse("connections:run-detail", args=[connection.pk, run.pk])).status_code == 403
    assert not SyncRun.objects.filter(undoes=run).exists()


def test_bad_scopes_are_refused_with_a_message(demo_erp: Connector, admin_user: Any, client: Any) -> None:
    connection, link, run = written_run(demo_erp)
    other = ErpConnectionFactory.create()
    client.force_login(admin_user)
    undo_url = reverse("connections:run-undo", args=[connection.pk, run.pk])
    for data, message in [
        ({"link": "x"}, "No such record in this run."),
        ({"link": str(2**70)}, "No such record in this run."),
        ({"field": "PHONE"}, "A field is undone on one record: name the record too."),
        ({"link": str(link.pk + 1000)}, "That record is no longer linked in this connection."),
        ({"link": link.pk, "field": "CREDIT_LIMIT"}, f"Nothing to undo: run #{run.pk} wrote no field here."),
    ]:
        page = client.post(undo_url, data, follow=True).content.decode()
        assert message in page, data
    # A run is found only under its own connection.
    assert client.get(reverse("connections:run-detail", args=[other.pk, run.pk])).status_code == 404
    assert client.post(reverse("connections:run-undo", args=[other.pk, run.pk])).status_code == 404
    assert not SyncRun.objects.filter(undoes=run).exists()


def test_a_sync_all_running_holds_the_undo_back(demo_erp: Connector, admin_user: Any, client: Any) -> None:
    connection, _link, run = written_run(demo_erp)
    jobs.queue_bulk(connection, RunKind.SYNC_ALL)
    client.force_login(admin_user)
    page = client.post(reverse("connections:run-undo", args=[connection.pk, run.pk]), follow=True).content.decode()
    assert "is already running an import, a bulk sync or an undo; try again when it has finished." in page
    assert not SyncRun.objects.filter(undoes=run).exists()
