"""The ERP tab's card has one state: its badge, its banner, its values and the sync history agree after every
action (link, Sync now, the run ending, Disconnect), each of which answers the whole card from the server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse

from connections import jobs, mapping, services
from connections.models import ErpConnection, Link, SyncRun
from crm.models import Company

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, company, erp_values, new_customer

pytestmark = pytest.mark.django_db
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project", "connections.use_erp_sync"]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def linked(demo_erp: Connector, client: Any) -> dict[str, Any]:
    connection = active_connection(demo_erp)
    rows = [
        mapping.FieldRow(f.key, f.crm_field, f.direction, f.key == "NAME", f.key == "BALANCE")
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(demo_erp, connection, NAME="Kortedala Bygg AB", PHONE="+46 31 10 10")
    record = company(name="Kortedala Bygg AB", phone="+46 31 10 10")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    client.force_login(UserFactory.create(username="anna", perms=CRM))
    return {"connection": connection, "record": record, "link": link, "actor": actor}


def tab(record: Any) -> str:
    return reverse("crm:company-tab", args=[record.pk, "erp"])


def sync_now(client: Any, link: Link, django_capture_on_commit_callbacks: Any) -> tuple[str, SyncRun]:
    """Press Sync now (htmx), run the job here, and let the card's polling find it ended: the card it answers."""
    with django_capture_on_commit_callbacks(execute=False):
        pressed = client.post(reverse("erp:sync-now", args=[link.pk]), **HTMX)
    assert pressed["HX-Retarget"] == f"#erp-card-{link.connection_id}" and pressed["HX-Reswap"] == "outerHTML"
    card = pressed.content.decode()
    assert 'data-state="syncing"' in card and "<progress" in card  # one state while it runs
    assert "badge-error" not in card and "erp-error" not in card
    run = SyncRun.objects.filter(link=link).latest("pk")
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    ended = client.get(reverse("erp:run", args=[run.pk]), **HTMX)
    assert ended["HX-Retarget"] == f"#erp-card-{link.connection_id}"
    return ended.content.decode(), SyncRun.objects.get(pk=run.pk)


def test_a_link_never_synced_says_so_in_its_badge_and_nowhere_claims_to_be_in_step(
    client: Any, linked: dict[str, Any]
) -> None:
    page = client.get(tab(linked["record"])).content.decode()
    assert 'data-state="never"' in page and "Not synced yet" in page
    assert "In step" not in page and "badge-ok" not in page


def test_a_failed_sync_then_a_successful_sync_now_leaves_no_trace_of_the_failure(
    client: Any, linked: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    link, record = linked["link"], linked["record"]
    sync_now(client, link, django_capture_on_commit_callbacks)
    # Someone empties the company's name: the ERP refuses it, the card says so once, in red.
    Company.objects.filter(pk=record.pk).update(name="")
    card, _run = sync_now(client, link, django_capture_on_commit_callbacks)
    assert 'data-state="failed"' in card and "badge-error" in card
    assert "refused the change: Name is required." in card
    assert "Succeeded" not in card and "Nothing needed to change" not in card
    assert 'id="erp-history" hx-swap-oob="true"' in card  # the history comes along
    assert 'data-state="failed"' in client.get(tab(record)).content.decode()  # and a reload agrees

    # Put right, synced again: no red badge, no old error banner, the new values shown.
    Company.objects.filter(pk=record.pk).update(name="Kortedala Bygg och Måleri AB")
    card, run = sync_now(client, link, django_capture_on_commit_callbacks)
    assert run.status == "succeeded"
    card = card.split('<div id="erp-history"')[0]  # the history below keeps the failure, as history does
    assert 'data-state="ok"' in card and "In step" in card and "Succeeded." in card
    assert "badge-error" not in card and "erp-error" not in card and "Name is required" not in card
    assert "Kortedala Bygg och Måleri AB" in card  # as last synced, and in the ERP now
    assert erp_values(demo_erp, linked["connection"], link.erp_key)["NAME"] == "Kortedala Bygg och Måleri AB"
    page = client.get(tab(record)).content.decode()
    assert 'data-state="ok"' in page and "Name is required" not in page.split('id="erp-history"')[0]


def test_a_run_that_could_not_reach_the_erp_fails_the_card_until_a_sync_passes(
    client: Any, linked: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    link = linked["link"]
    sync_now(client, link, django_capture_on_commit_callbacks)
    synced_at = Link.objects.get(pk=link.pk).last_synced_at
    assert synced_at is not None
    failed = SyncRun.objects.create(
        connection=linked["connection"], link=link, kind="sync_now", status="failed", error="GetActors: refused"
    )
    SyncRun.objects.filter(pk=failed.pk).update(finished_at=synced_at)
    page = client.get(tab(linked["record"])).content.decode()
    assert 'data-state="ok"' in page  # a failure no later than the last sync is over
    SyncRun.objects.filter(pk=failed.pk).update(finished_at=synced_at + timedelta(seconds=5))
    page = client.get(tab(linked["record"])).content.decode()
    assert 'data-state="failed"' in page and "GetActors: refused" in page and "In step" not in page


def test_disconnect_answers_the_card_unlinked_and_without_javascript_the_tab(
    client: Any, linked: dict[str, Any]
) -> None:
    link, record = linked["link"], linked["record"]
    card = client.post(reverse("erp:disconnect", args=[link.pk]), **HTMX)
    assert card["HX-Retarget"] == f"#erp-card-{link.connection_id}"
    text = card.content.decode()
    assert 'data-state="unlinked"' in text and "Not linked to Demo ERP – Sweden yet." in text
    assert "Disconnected Kortedala Bygg AB from Demo ERP – Sweden." in text and "erp-badge" not in text
    relinked = services.link_record(linked["connection"], "Customer", link.erp_key, record, None)
    plain = client.post(reverse("erp:disconnect", args=[relinked.pk]), HTTP_ACCEPT="text/html")
    assert plain.status_code == 302 and plain["Location"] == tab(record)


def test_sync_now_without_javascript_goes_back_to_the_tab_which_shows_the_run(
    client: Any, linked: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        pressed = client.post(reverse("erp:sync-now", args=[linked["link"].pk]), HTTP_ACCEPT="text/html")
    assert pressed.status_code == 302 and pressed["Location"] == tab(linked["record"])
    page = client.get(tab(linked["record"])).content.decode()
    assert 'data-state="syncing"' in page and "<progress" in page
    # The API still answers JSON (no Accept: text/html): the run already queued.
    assert client.post(reverse("erp:sync-now", args=[linked["link"].pk])).json()["created"] is False


def test_a_deactivated_connection_ends_the_polling_with_the_run_result(
    client: Any, linked: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("erp:sync-now", args=[linked["link"].pk]), **HTMX)
    run = SyncRun.objects.get(link=linked["link"])
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    ErpConnection.objects.filter(pk=linked["connection"].pk).update(is_active=False)
    ended = client.get(reverse("erp:run", args=[run.pk]), **HTMX)
    assert "HX-Retarget" not in ended and "Succeeded." in ended.content.decode()


def test_a_link_removed_while_its_run_goes_on_ends_the_polling_with_the_card_unlinked(
    client: Any, linked: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        card = client.post(reverse("erp:sync-now", args=[linked["link"].pk]), **HTMX).content.decode()
    record = linked["record"]
    polling = reverse("erp:run", args=[SyncRun.objects.get(link=linked["link"]).pk])
    assert f"{polling}?kind=company&amp;record={record.pk}" in card
    run = SyncRun.objects.get(link=linked["link"])
    Link.objects.filter(pk=linked["link"].pk).delete()  # someone disconnects it in another window
    SyncRun.objects.filter(pk=run.pk).update(status="failed", error="The link is gone.")
    ended = client.get(polling, {"kind": "company", "record": record.pk}, **HTMX)
    assert ended["HX-Retarget"] == f"#erp-card-{linked['connection'].pk}"
    assert 'data-state="unlinked"' in ended.content.decode()
