"""A plan before bulk work: what a Sync all or Resync from CRM would change, per record and field, computed in parts
without writing; approved, it runs exactly that, and a field whose decision changed since is reported, not written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections import jobs, retention
from connections.choices import Direction, LogOutcome, PlanOutcome, RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, Link, ListMapping, PlanRow, SyncLogEntry, SyncRun
from connections.sync import plan
from crm.models import Company, Country

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, erp_values, new_customer
from .test_mapping import post_tab

pytestmark = pytest.mark.django_db


def work_off(run: SyncRun) -> SyncRun:
    """The run's parts worked off in this process."""
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    return run


def phone(link: Link) -> str:
    return Company.objects.get(pk=link.company_id or 0).phone


@pytest.fixture
def planned(demo_erp: Connector, settings: Any) -> tuple[ErpConnection, dict[str, Link]]:
    """Three links of one connection in step after a Sync all; then one changes in the ERP and one in the CRM."""
    settings.ERPSYNC_PART_SIZE = 2  # several parts
    connection = active_connection(demo_erp)
    links = {}
    for name in ("steady", "erp", "crm"):
        actor = new_customer(demo_erp, connection, NAME=f"Planerad {name} AB", PHONE="+46 8 60 00")
        record = company(name=f"Planerad {name} AB", phone="+46 8 60 00")
        links[name] = Link.objects.create(
            connection=connection, actor_type="Customer", erp_key=actor.key or "", company=record
        )
    assert work_off(SyncRun.objects.create(connection=connection, kind=RunKind.SYNC_ALL)).status == "succeeded"
    change_in_erp(demo_erp, connection, links["erp"].erp_key, PHONE="+46 8 60 99")
    Company.objects.filter(pk=links["crm"].company_id or 0).update(phone="+46 8 60 98")  # no sync on save
    return connection, links


def make_plan(connection: ErpConnection, kind: str = RunKind.SYNC_ALL, keep_non_blank: bool = False) -> SyncRun:
    made = work_off(plan.queue_plan(connection, kind, keep_non_blank=keep_non_blank))
    assert made.status == RunStatus.SUCCEEDED, made.error
    return made


def test_a_plan_keeps_each_field_that_would_change_and_writes_nothing(
    demo_erp: Connector, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = planned
    before_erp = {name: erp_values(demo_erp, connection, link.erp_key) for name, link in links.items()}
    before_baselines = {name: Link.objects.get(pk=link.pk).baseline for name, link in links.items()}

    made = make_plan(connection)

    assert (made.kind, made.planned_kind, made.total, made.done, made.changed) == ("plan", "sync_all", 3, 3, 2)
    assert made.chunks.count() == 2
    rows = {
        (row.link_id, row.field_key): (row.direction, row.old, row.new, row.record_name)
        for row in PlanRow.objects.filter(run=made)
    }
    assert rows == {
        (links["erp"].pk, "PHONE"): (Direction.ERP_TO_CRM, "+46 8 60 00", "+46 8 60 99", "Planerad erp AB"),
        (links["crm"].pk, "PHONE"): (Direction.CRM_TO_ERP, "+46 8 60 00", "+46 8 60 98", "Planerad crm AB"),
    }
    assert all(row.reason_shown for row in PlanRow.objects.filter(run=made))
    assert plan.totals(made) == {
        "fields": 2,
        "records": 2,
        "to_crm": 1,
        "to_erp": 1,
        "written": 0,
        "failed": 0,
        "changed": 0,
    }
    # Nothing written on either side, no baseline moved, nothing in the sync log.
    assert {name: erp_values(demo_erp, connection, link.erp_key) for name, link in links.items()} == before_erp
    assert (phone(links["erp"]), phone(links["crm"])) == ("+46 8 60 00", "+46 8 60 98")
    assert {name: Link.objects.get(pk=link.pk).baseline for name, link in links.items()} == before_baselines
    assert not SyncLogEntry.objects.filter(run=made).exists()
    assert plan.phase(made) == "ready"


def test_a_resync_plan_sends_the_crm_values_to_the_erp(
    demo_erp: Connector, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = planned
    made = make_plan(connection, RunKind.RESYNC, keep_non_blank=True)
    assert (made.planned_kind, made.keep_non_blank) == ("resync", True)
    rows = {(row.link_id, row.field_key): (row.direction, row.new) for row in PlanRow.objects.filter(run=made)}
    # Resync from CRM: the CRM's phone goes to the ERP where they differ, the ERP's change included.
    assert rows == {
        (links["erp"].pk, "PHONE"): (Direction.CRM_TO_ERP, "+46 8 60 00"),
        (links["crm"].pk, "PHONE"): (Direction.CRM_TO_ERP, "+46 8 60 98"),
    }


def test_an_approved_resync_plan_runs_as_resync_from_crm(
    demo_erp: Connector, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = planned
    run = work_off(plan.approve(make_plan(connection, RunKind.RESYNC, keep_non_blank=True)))
    assert (run.kind, run.keep_non_blank, run.status, run.changed) == (RunKind.RESYNC, True, RunStatus.SUCCEEDED, 2)
    assert erp_values(demo_erp, connection, links["erp"].erp_key)["PHONE"] == "+46 8 60 00"  # the CRM's value won
    assert erp_values(demo_erp, connection, links["crm"].erp_key)["PHONE"] == "+46 8 60 98"
    assert phone(links["erp"]) == "+46 8 60 00"


def test_approving_writes_exactly_the_plan(demo_erp: Connector, planned: tuple[ErpConnection, dict[str, Link]]) -> None:
    connection, links = planned
    change_in_erp(demo_erp, connection, links["erp"].erp_key, EMAIL="ekonomi@planerad.se")  # two fields of one
    made = make_plan(connection)
    assert (plan.totals(made)["fields"], plan.totals(made)["records"]) == (3, 2)
    # After the plan: a change it did not see, on a record it has nothing for. The approved run leaves it.
    change_in_erp(demo_erp, connection, links["steady"].erp_key, PHONE="+46 8 60 55")

    run = work_off(plan.approve(made))

    assert (run.kind, run.plan_id, run.status, run.total, run.done, run.changed) == (
        RunKind.SYNC_ALL,
        made.pk,
        RunStatus.SUCCEEDED,
        2,
        2,
        3,
    )
    assert phone(links["erp"]) == "+46 8 60 99"
    assert Company.objects.get(pk=links["erp"].company_id or 0).email == "ekonomi@planerad.se"
    assert erp_values(demo_erp, connection, links["crm"].erp_key)["PHONE"] == "+46 8 60 98"
    assert phone(links["steady"]) == "+46 8 60 00"  # not in the plan: not written
    assert set(SyncLogEntry.objects.filter(run=run).values_list("link_id", "field_key", "outcome")) == {
        (links["erp"].pk, "PHONE", LogOutcome.WRITTEN),
        (links["erp"].pk, "EMAIL", LogOutcome.WRITTEN),
        (links["crm"].pk, "PHONE", LogOutcome.WRITTEN),
    }
    assert SyncLogEntry.objects.filter(run=run).count() == 3  # each written once
    assert set(PlanRow.objects.filter(run=made).values_list("outcome", flat=True)) == {PlanOutcome.WRITTEN}
    assert plan.phase(made) == "finished"
    # A Sync all afterwards finds the steady record's change: it was left for it, baseline and all.
    assert work_off(jobs.queue_bulk(connection, RunKind.SYNC_ALL)).changed == 1
    assert phone(links["steady"]) == "+46 8 60 55"


def test_a_field_changed_since_the_plan_is_not_written_and_is_reported(
    demo_erp: Connector, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = planned
    made = make_plan(connection)
    # Someone changes the CRM phone again, and the ERP phone back to the baseline, before the plan is approved.
    Company.objects.filter(pk=links["crm"].company_id or 0).update(phone="+46 8 60 97")
    change_in_erp(demo_erp, connection, links["erp"].erp_key, PHONE="+46 8 60 00")

    run = work_off(plan.approve(made))

    assert (run.status, run.changed) == (RunStatus.SUCCEEDED, 0)
    assert erp_values(demo_erp, connection, links["crm"].erp_key)["PHONE"] == "+46 8 60 00"  # not written
    assert phone(links["erp"]) == "+46 8 60 00"
    rows = {row.link_id: row for row in PlanRow.objects.filter(run=made)}
    crm_row, erp_row = rows[links["crm"].pk], rows[links["erp"].pk]
    assert (crm_row.outcome, crm_row.new, crm_row.now_direction, crm_row.now_new) == (
        PlanOutcome.CHANGED,
        "+46 8 60 98",
        Direction.CRM_TO_ERP,
        "+46 8 60 97",
    )
    # The two sides agree again: nothing to change any more.
    assert (erp_row.outcome, erp_row.now_direction) == (PlanOutcome.CHANGED, "")
    logged = SyncLogEntry.objects.filter(run=run)
    assert {(e.link_id, e.outcome, e.reason) for e in logged} == {
        (links["crm"].pk, LogOutcome.SKIPPED, "changed since the plan; not written"),
        (links["erp"].pk, LogOutcome.SKIPPED, "changed since the plan; not written"),
    }
    assert plan.totals(made)["changed"] == 2
    # The baseline did not move: the next Sync all still sees the CRM's change and sends it.
    assert work_off(jobs.queue_bulk(connection, RunKind.SYNC_ALL)).changed == 1
    assert erp_values(demo_erp, connection, links["crm"].erp_key)["PHONE"] == "+46 8 60 97"


def test_a_plan_is_approved_once_and_only_while_young(
    planned: tuple[ErpConnection, dict[str, Link]], settings: Any
) -> None:
    connection, _links = planned
    made = make_plan(connection)
    settings.ERPSYNC_PLAN_MAX_AGE_HOURS = 24
    SyncRun.objects.filter(pk=made.pk).update(finished_at=timezone.now() - timedelta(hours=25))
    made.refresh_from_db()
    assert plan.phase(made) == "old"
    with pytest.raises(jobs.SyncRefused, match="more than 24 hours ago; make it again"):
        plan.approve(made)
    SyncRun.objects.filter(pk=made.pk).update(finished_at=timezone.now())
    work_off(plan.approve(made))
    with pytest.raises(jobs.SyncRefused, match="approved already"):
        plan.approve(made)
    with pytest.raises(jobs.AlreadyRunning, match="approved already"):
        plan.discard(made)
    assert SyncRun.objects.filter(plan=made).count() == 1


def test_a_plan_with_nothing_to_change_cannot_be_approved_and_can_be_discarded(
    planned: tuple[ErpConnection, dict[str, Link]],
) -> None:
    connection, _links = planned
    work_off(jobs.queue_bulk(connection, RunKind.SYNC_ALL))  # in step
    made = make_plan(connection)
    assert made.changed == 0
    with pytest.raises(jobs.SyncRefused, match="nothing to change"):
        plan.approve(made)
    plan.discard(made)
    assert not SyncRun.objects.filter(pk=made.pk).exists()


def test_a_plan_is_refused_while_a_bulk_run_is_queued(planned: tuple[ErpConnection, dict[str, Link]]) -> None:
    connection, _links = planned
    jobs.queue_bulk(connection, RunKind.SYNC_ALL)
    with pytest.raises(jobs.AlreadyRunning):
        plan.queue_plan(connection, RunKind.SYNC_ALL)
    with pytest.raises(jobs.SyncRefused, match="Only Sync all and Resync"):
        plan.queue_plan(connection, RunKind.RECONCILE)


def test_the_plan_page_shows_totals_filters_rows_and_runs_the_plan_on_approval(
    client: Any, demo_erp: Connector, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, links = planned
    client.force_login(UserFactory.create(username="greta", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = "en"
    page = client.get(connection.get_absolute_url()).content.decode()
    assert page.count("Plan first") == 2
    answer = client.post(reverse("connections:connection-plan", args=[connection.pk]), {"kind": "sync_all"})
    made = SyncRun.objects.get(connection=connection, kind=RunKind.PLAN)
    assert answer["Location"] == reverse("connections:plan", args=[made.pk])
    page = client.get(answer["Location"]).content.decode()
    assert "Waiting for a worker…" in page and "Approve and run" not in page  # still being made
    work_off(made)

    page = client.get(answer["Location"]).content.decode()
    assert "Plan: Sync all of Demo ERP – Sweden" in page
    assert '<li data-count="records"><span class="badge">2</span> records change</li>' in page
    assert '<li data-count="to_crm"><span class="badge">1</span> field to the CRM</li>' in page
    assert '<li data-count="to_erp"><span class="badge">1</span> field to the ERP</li>' in page
    assert "+46 8 60 00 → +46 8 60 99" in page and "+46 8 60 00 → +46 8 60 98" in page
    assert "Approve and run" in page
    # Filters: by side, by field, by record.
    to_crm = client.get(answer["Location"], {"direction": "erp_to_crm"}).content.decode()
    assert "Planerad erp AB" in to_crm and "Planerad crm AB" not in to_crm
    by_record = client.get(answer["Location"], {"record": "crm ab"}).content.decode()
    assert "Planerad crm AB" in by_record and "Planerad erp AB" not in by_record
    by_field = client.get(answer["Location"], {"field": "PHONE", "direction": "crm_to_erp"}).content.decode()
    assert '<option value="PHONE" selected>' in by_field  # only the plan's fields are offered
    assert "Planerad crm AB" in by_field and "Planerad erp AB" not in by_field
    nobody = client.get(answer["Location"], {"record": "Ingen sådan"}).content.decode()
    assert "No field of the plan matches the filter." in nobody
    odd = client.get(answer["Location"], {"direction": "sideways", "field": "<b>"}).content.decode()
    assert "Planerad crm AB" in odd and "Planerad erp AB" in odd  # not one of the choices: ignored
    # The progress of a plan that is made asks the page to reload.
    assert client.get(reverse("connections:plan-progress", args=[made.pk]))["HX-Refresh"] == "true"

    # Someone changes the CRM phone again before the plan is approved.
    Company.objects.filter(pk=links["crm"].company_id or 0).update(phone="+46 8 60 97")
    action = reverse("connections:plan-action", args=[made.pk])
    answer = client.post(action, {"action": "approve"}, follow=True)
    assert "Sync all of Demo ERP – Sweden is queued: it carries out this plan." in answer.content.decode()
    work_off(SyncRun.objects.get(plan=made))

    page = client.get(reverse("connections:plan", args=[made.pk])).content.decode()
    assert "Sync all: Succeeded." in page and "1 field written" in page
    assert "Changed since the plan" in page and "+46 8 60 00 → +46 8 60 97" in page
    assert phone(links["erp"]) == "+46 8 60 99"
    assert erp_values(demo_erp, connection, links["crm"].erp_key)["PHONE"] == "+46 8 60 00"
    changed_only = client.get(reverse("connections:plan", args=[made.pk]), {"outcome": "changed"}).content.decode()
    assert 'data-erp-key="' + links["erp"].erp_key + '" data-field' not in changed_only
    # The connection's jobs lead to the plan, from the plan and from the run that carried it out.
    page = client.get(connection.get_absolute_url()).content.decode()
    assert page.count(f'href="{reverse("connections:plan", args=[made.pk])}"') == 2 and "as planned" in page
    # Approving twice is refused, and says why; so is discarding a plan that ran.
    answer = client.post(action, {"action": "approve"}, follow=True)
    assert "This plan was approved already" in answer.content.decode()
    assert SyncRun.objects.filter(plan=made).count() == 1
    answer = client.post(action, {"action": "discard"}, follow=True)
    assert "it is kept with the run that carried it out" in answer.content.decode()

    # In Swedish.
    client.cookies["django_language"] = "sv"
    page = client.get(reverse("connections:plan", args=[made.pk])).content.decode()
    assert "Plan: Synkronisera alla för Demo ERP – Sweden" in page
    assert "Ändrad sedan planen" in page and "Godkänn och kör" not in page


def test_discarding_and_planning_again_from_the_page(
    client: Any, planned: tuple[ErpConnection, dict[str, Link]], settings: Any
) -> None:
    connection, _links = planned
    client.force_login(UserFactory.create(username="gun", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = "en"
    client.post(
        reverse("connections:connection-plan", args=[connection.pk]), {"kind": "resync", "keep_non_blank": "on"}
    )
    made = work_off(SyncRun.objects.get(connection=connection, kind=RunKind.PLAN))
    assert (made.planned_kind, made.keep_non_blank) == (RunKind.RESYNC, True)
    settings.ERPSYNC_PLAN_MAX_AGE_HOURS = 1
    SyncRun.objects.filter(pk=made.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    page = client.get(reverse("connections:plan", args=[made.pk])).content.decode()
    assert "This plan was made more than 1 hour ago: make it again to approve it." in page
    action = reverse("connections:plan-action", args=[made.pk])
    answer = client.post(action, {"action": "approve"}, follow=True)
    assert "more than 1 hours ago; make it again" in answer.content.decode()
    answer = client.post(action, {"action": "again"})
    again = SyncRun.objects.exclude(pk=made.pk).get(kind=RunKind.PLAN)
    assert answer["Location"] == reverse("connections:plan", args=[again.pk])
    assert (again.planned_kind, again.keep_non_blank) == (RunKind.RESYNC, True)
    work_off(again)
    answer = client.post(action, {"action": "discard"}, follow=True)
    assert "The plan is discarded." in answer.content.decode()
    assert not SyncRun.objects.filter(pk=made.pk).exists()
    # Someone without the right to Sync all may not plan.
    client.force_login(UserFactory.create(username="sune"))
    assert client.post(reverse("connections:connection-plan", args=[connection.pk]), {}).status_code == 403
    assert client.get(reverse("connections:plan", args=[again.pk])).status_code == 403


def test_a_mapping_change_that_affects_linked_records_offers_to_plan_its_effect(
    client: Any, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    connection, _links = planned
    client.force_login(UserFactory.create(username="gert", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = "en"
    unchanged = post_tab(client, connection)
    assert unchanged.status_code == 302 and "plan_effect" not in unchanged["Location"]
    changed = post_tab(client, connection, {"dir-EMAIL": "both"})
    assert changed["Location"].endswith("?plan_effect=1")
    page = client.get(changed["Location"]).content.decode()
    assert "The change affects how 3 linked records sync." in page and "Plan the effect" in page
    client.cookies["django_language"] = "sv"
    assert "Planera effekten" in client.get(changed["Location"]).content.decode()


def test_a_list_mapping_change_of_a_synced_field_offers_to_plan_its_effect(
    client: Any, planned: tuple[ErpConnection, dict[str, Link]]
) -> None:
    """Norway's ERP item stood for no CRM country; mapping it to one changes what linked records sync to. Saving
    the same mapping again, or one of a field that does not sync, changes nothing linked records sync."""
    connection, _links = planned
    norway = Country.objects.get_or_create(code="NO", defaults={"name": "Norway"})[0]
    sweden = Country.objects.get(code="SE")
    client.force_login(UserFactory.create(username="gert", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = "en"
    url = reverse("connections:mapping-list", args=[connection.pk, "Customer", "COUNTRY"])
    unchanged = client.post(url, {"item-SE": sweden.pk, "item-NO": ""})
    assert unchanged.status_code == 302 and "plan_effect" not in unchanged["Location"]
    changed = client.post(url, {"item-SE": sweden.pk, "item-NO": norway.pk})
    assert changed["Location"].endswith("?plan_effect=1")
    assert (
        ListMapping.objects.get(
            connection=connection, actor_type="Customer", field_key="COUNTRY", erp_key="NO"
        ).crm_item_id
        == norway.pk
    )
    page = client.get(changed["Location"]).content.decode()
    assert "The change affects how 3 linked records sync." in page and "Plan the effect" in page
    # The same change on a field that does not sync: nothing to plan.
    connection.erp_fields.filter(actor_type="Customer", key="COUNTRY").update(direction="")
    again = client.post(url, {"item-SE": sweden.pk, "item-NO": ""})
    assert again.status_code == 302 and "plan_effect" not in again["Location"]
    answer = client.post(reverse("connections:connection-plan", args=[connection.pk]), {"kind": "sync_all"})
    made = SyncRun.objects.get(connection=connection, kind=RunKind.PLAN)
    assert (made.planned_kind, answer["Location"]) == (RunKind.SYNC_ALL, reverse("connections:plan", args=[made.pk]))
    # Without the mapping change, the page offers nothing.
    page = client.get(reverse("connections:mapping", args=[connection.pk, "Customer"])).content.decode()
    assert "Fältmappning" in page or "mapping-form" in page
    assert "Planera effekten" not in page


def test_the_rows_of_old_plans_go_with_the_sync_log_retention(
    planned: tuple[ErpConnection, dict[str, Link]], settings: Any
) -> None:
    connection, _links = planned
    old, recent = make_plan(connection), make_plan(connection)
    settings.ERPSYNC_SYNC_LOG_RETENTION_DAYS = 30
    SyncRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert retention.prune_plans(batch_size=1) == 2
    assert (old.plan_rows.count(), recent.plan_rows.count()) == (0, 2)
    assert SyncRun.objects.filter(pk=old.pk).exists()
    settings.ERPSYNC_SYNC_LOG_RETENTION_DAYS = 0  # kept for ever
    SyncRun.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=3650))
    assert retention.prune_plans() == 0 and recent.plan_rows.count() == 2
