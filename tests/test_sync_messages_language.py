"""Why a sync failed, in the reader's language: the worker writes in its own language (English here), and keeps
with the text what it said (our sentences as message ids and parameters, the connector's explanation in every
language it gave), so the ERP tab, the failed records, the sync log and the connection's runs read in Swedish for
a Swedish reader and in English for an English one. Rows from before are shown as they were written."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from connections import jobs, said, services
from connections.models import ErpConnection, Link, SyncLogEntry, SyncRun
from connectors.models import SyncConnector
from crm.models import Company

from .conftest import DEMO_CONFIG, Connector
from .factories import UserFactory
from .sync_helpers import active_connection, company, new_customer

pytestmark = pytest.mark.django_db
CRM = ["crm.view_company", "connections.use_erp_sync"]


def sync_in_english(link: Link) -> SyncRun:
    """Sync now, run by a worker whose language is English."""
    with translation.override("en"):
        run, _created = services.start_sync_now(link, None)
        jobs.run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    return run


def page(client: Any, url: str, language: str) -> str:
    client.cookies["django_language"] = language
    return client.get(url).content.decode()


@pytest.fixture
def linked(demo_erp: Connector) -> tuple[ErpConnection, Link]:
    connection = active_connection(demo_erp)
    actor = new_customer(demo_erp, connection, NAME="Kortedala Bygg AB", PHONE="+46 31 10 10")
    record = company(name="Kortedala Bygg AB", phone="+46 31 20 20")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    return connection, link


def test_a_refused_change_reads_in_each_readers_language(client: Any, linked: tuple[ErpConnection, Link]) -> None:
    connection, link = linked
    sync_in_english(link)
    Company.objects.filter(pk=link.crm_record.pk).update(name="")  # the ERP refuses a customer without a name
    sync_in_english(link)
    link.refresh_from_db()
    english = "Demo ERP – Sweden refused the change: Name is required."
    swedish = "Demo ERP – Sweden godtog inte ändringen: Namn måste anges."
    assert link.last_error == english  # the text as the worker wrote it, as before
    client.force_login(UserFactory.create(username="anna", perms=CRM, is_staff=False))
    tab = reverse("crm:company-tab", args=[link.crm_record.pk, "erp"])
    html = page(client, tab, "sv")
    assert swedish in html and english not in html
    assert english in page(client, tab, "en")

    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    failed = reverse("connections:failed-records", args=[connection.pk])
    assert swedish in page(client, failed, "sv") and english in page(client, failed, "en")
    # The group's filter is the text as stored, whichever language the page is in: Retry all still finds it.
    assert f'name="error" value="{english}"' in page(client, failed, "sv")
    export = reverse("connections:failed-records-export", args=[connection.pk])
    client.cookies["django_language"] = "sv"
    assert swedish in b"".join(client.get(export).streaming_content).decode("utf-8-sig")

    # The sync log: the connector's words in Swedish, and our own reasons too.
    log = reverse("connections:sync-log", args=[connection.pk])
    assert "Namn måste anges." in page(client, log, "sv")
    assert "ändrat i CRM" in page(client, log, "sv") or "ändrad i CRM" in page(client, log, "sv")
    assert "changed in the CRM" in page(client, log, "en") and "changed in the CRM" not in page(client, log, "sv")


def test_the_sync_history_on_the_erp_tab_says_why_in_the_readers_language(
    client: Any, linked: tuple[ErpConnection, Link]
) -> None:
    _connection, link = linked
    sync_in_english(link)
    entry = SyncLogEntry.objects.get(link=link, field_key="PHONE")
    assert entry.reason_said is not None and entry.reason_said["text"] == entry.reason
    client.force_login(UserFactory.create(username="anna", perms=CRM))
    tab = reverse("crm:company-tab", args=[link.crm_record.pk, "erp"])
    with translation.override("sv"):
        assert escape(entry.reason_shown) in page(client, tab, "sv") and entry.reason_shown != entry.reason
    assert escape(entry.reason) in page(client, tab, "en")


def test_a_failed_run_says_why_in_the_readers_language(client: Any, demo_erp: Connector) -> None:
    # A read-only connection: the connector refuses the whole SaveActors call, and the run fails with its words.
    connection = active_connection(demo_erp)
    actor = new_customer(demo_erp, connection, NAME="Kortedala Bygg AB", PHONE="+46 31 10 10")
    with services.interactive_client(demo_erp.url, demo_erp.secret) as erp:
        fields = erp.get_config_data().data.fields
    values = {**DEMO_CONFIG, "read_only": True}
    services.save_connection(connection, fields=fields, values=values, grants=[], user=None)
    record = company(name="Kortedala Bygg AB", phone="+46 31 20 20")
    link = services.link_record(
        connection, "Customer", actor.key or "", record, None, baseline={"PHONE": "+46 31 10 10"}
    )
    run = sync_in_english(link)
    assert run.status == "failed" and "read_only" in run.error  # the text keeps the code and the English words
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    detail = reverse("connections:connection-detail", args=[connection.pk])
    assert "Kopplingen är skrivskyddad: Demo ERP tar inte emot ändringar via den." in page(client, detail, "sv")
    assert "This connection is read-only: Demo ERP accepts no changes through it." in page(client, detail, "en")


def test_our_own_reasons_for_a_run_are_kept_for_each_language() -> None:
    with translation.override("en"):
        outcome = jobs.outcome_of(SoftTimeLimitExceeded())
    assert outcome.reason.startswith("The run was stopped after")
    assert said.render(outcome.message, "sv").startswith("Körningen stoppades efter")


def test_old_rows_and_texts_set_without_a_message_are_shown_as_written(linked: tuple[ErpConnection, Link]) -> None:
    _connection, link = linked
    Link.objects.filter(pk=link.pk).update(last_error="Old failure, in English.", last_error_said=None)
    link.refresh_from_db()
    with translation.override("sv"):
        assert link.error_shown == "Old failure, in English."
    # A message kept for another text than the one stored now is not used.
    stale = said.kept("changed in the CRM", said.msg("changed in the CRM"))
    Link.objects.filter(pk=link.pk).update(last_error="Something else.", last_error_said=stale)
    link.refresh_from_db()
    with translation.override("sv"):
        assert link.error_shown == "Something else."
    # A message whose parameters do not fit its sentence: the text as it was.
    broken = said.kept("Broken.", said.msg("%(erp)s refused the change: %(why)s", erp="X"))
    Link.objects.filter(pk=link.pk).update(last_error="Broken.", last_error_said=broken)
    link.refresh_from_db()
    with translation.override("sv"):
        assert link.error_shown == "Broken."


def test_a_connector_that_cannot_be_reached_is_said_in_the_readers_language(
    client: Any, linked: tuple[ErpConnection, Link]
) -> None:
    connection, link = linked
    with socket.socket() as held:  # bound, never listening: nothing answers at this address
        held.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{held.getsockname()[1]}"
        SyncConnector.objects.filter(pk=connection.connector_id).update(url=url)
        run = sync_in_english(link)
    assert run.status == "failed" and "cannot reach" in run.error  # the text keeps the technical words
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    detail = reverse("connections:connection-detail", args=[connection.pk])
    assert "Det gick inte att nå Sync Connector: " in page(client, detail, "sv")
    assert "The connector could not be reached: " in page(client, detail, "en")
