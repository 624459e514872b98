"""Import from ERP against a real Demo ERP process: the plan, the import, retries, and every refusal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from connections import importing, jobs, mapping
from connections.choices import ImportAction, ImportOutcome, MatchKind, RunKind, RunStatus
from connections.jobs import run_sync
from connections.models import (
    ErpConnection,
    ErpImport,
    ImportRow,
    Link,
    ListMapping,
    SyncChunk,
    SyncLogEntry,
    SyncRun,
    SyncSettings,
)
from connections.sync import parts
from connectors import protocol as p
from crm.models import Company, Contact, Country

from .conftest import Connector, in_process_demo
from .sync_helpers import customers_for_import, enable, erp

pytestmark = pytest.mark.django_db
C, PERSON, SUPPLIER = p.ActorType.CUSTOMER, p.ActorType.PERSON, p.ActorType.SUPPLIER


def customer(empty_demo: Connector, import_connection: ErpConnection, **values: Any) -> str:
    actor = erp(empty_demo, import_connection).create_actor(p.Actor(actor_type=C, values=values))
    assert actor.key
    return actor.key


def run(run_row: SyncRun | None) -> SyncRun:
    """The worker's task, run here: claims the run, does the work, records how it ended."""
    assert run_row is not None
    run_sync.apply(kwargs={"run_id": run_row.pk})
    run_row.refresh_from_db()
    return run_row


def preview(import_connection: ErpConnection, actor_type: str = "Customer", **kwargs: Any) -> ErpImport:
    erp_import = importing.start_preview(import_connection, actor_type, **{"everything": True, **kwargs})
    assert run(erp_import.preview_run).status in (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_FAILED)
    erp_import.refresh_from_db()
    return erp_import


def rows(erp_import: ErpImport) -> dict[str, ImportRow]:
    return {row.name: row for row in erp_import.rows.all()}


def test_the_plan_tells_new_from_matches_and_the_import_creates_links_and_updates(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    vat_twin = Company.objects.create(name="Old name Ltd", vat_no="se 5560001111", phone="+46 8 1")
    same_name = Company.objects.create(name="Fjällbygg", postal_city="Umeå")
    Company.objects.create(name="Nordkust AB", postal_city="Luleå")  # same name, two cities: a person decides
    Company.objects.create(name="Nordkust", postal_city="Kiruna")
    customer(
        empty_demo,
        import_connection,
        NAME="Granbygg AB",
        VATNO="SE5560001111",
        PHONE="",
        POSTALCITY="Umeå",
        COUNTRY="SE",
    )
    customer(empty_demo, import_connection, NAME="Fjällbygg AB", POSTALCITY="umeå", EMAIL="info@fjallbygg.se")
    customer(empty_demo, import_connection, NAME="Nordkust AB", POSTALCITY="Piteå")
    customer(empty_demo, import_connection, NAME="Nyföretaget AB", POSTALCITY="Gävle", COUNTRY="SE")
    customer(empty_demo, import_connection, NAME="Norsk AS", COUNTRY="NO")

    erp_import = preview(import_connection)
    plan = rows(erp_import)
    assert {name: row.kind for name, row in plan.items()} == {
        "Granbygg AB": MatchKind.MATCH,
        "Fjällbygg AB": MatchKind.MATCH,
        "Nordkust AB": MatchKind.AMBIGUOUS,
        "Nyföretaget AB": MatchKind.NEW,
        "Norsk AS": MatchKind.BLOCKED,
    }
    assert plan["Granbygg AB"].target_id == vat_twin.pk and plan["Granbygg AB"].score == 100
    assert "same VAT number" in plan["Granbygg AB"].reason
    assert plan["Fjällbygg AB"].target_id == same_name.pk and "same name and city" in plan["Fjällbygg AB"].reason
    assert plan["Nordkust AB"].action == "" and "Possibly" in plan["Nordkust AB"].reason
    assert len(plan["Nordkust AB"].candidates) == 2
    assert "no CRM item is mapped to ERP item NO" in plan["Norsk AS"].reason
    assert not Link.objects.exists() and Company.objects.count() == 4  # the preview writes nothing in the CRM

    # Import is refused until the ambiguous row is decided; a record offered can be chosen.
    with pytest.raises(importing.ImportRefused, match="1 rows need a decision"):
        importing.start_import(erp_import)
    with pytest.raises(importing.ImportRefused, match="Choose one of the records offered"):
        importing.decide(plan["Nordkust AB"], action=ImportAction.LINK, target=vat_twin.pk)
    importing.decide(plan["Nordkust AB"], action=ImportAction.CREATE)

    finished = run(importing.start_import(erp_import))
    assert (finished.status, finished.done, finished.changed, finished.failed) == (RunStatus.SUCCEEDED, 4, 4, 0)
    outcome = {row.name: row.outcome for row in erp_import.rows.all()}
    assert outcome == {
        "Granbygg AB": ImportOutcome.UPDATED,
        "Fjällbygg AB": ImportOutcome.UPDATED,
        "Nordkust AB": ImportOutcome.NEW,
        "Nyföretaget AB": ImportOutcome.NEW,
        "Norsk AS": ImportOutcome.SKIPPED,
    }
    vat_twin.refresh_from_db()
    # The ERP's values win on a match, but a blank ERP value does not blank a two-way CRM field.
    assert (vat_twin.name, vat_twin.postal_city, vat_twin.phone) == ("Granbygg AB", "Umeå", "+46 8 1")
    link = Link.objects.get(company=vat_twin)
    assert link.baseline["PHONE"] is None and link.baseline["NAME"] == "Granbygg AB"
    created = Company.objects.get(name="Nyföretaget AB")
    assert (created.postal_city, created.country.code) == ("Gävle", "SE")  # type: ignore[union-attr]
    new_link = Link.objects.get(company=created)
    assert new_link.erp_key == plan["Nyföretaget AB"].erp_key and new_link.baseline["COUNTRY"] == "SE"
    assert SyncLogEntry.objects.filter(run=finished, link=new_link, reason__contains="created").count() == 1
    assert SyncLogEntry.objects.filter(run=finished, link=link, field_key="NAME", old="Old name Ltd").exists()

    # The same import again: every actor is already linked, nothing new is created.
    again = importing.prepare_again(erp_import, None, "en")
    run(again.preview_run)
    kinds = {row.name: row.kind for row in again.rows.all()}
    assert kinds == {name: MatchKind.BLOCKED if name == "Norsk AS" else MatchKind.LINKED for name in plan}
    with pytest.raises(importing.ImportRefused, match="No row is ticked"):
        importing.start_import(again)
    assert Company.objects.count() == 6 and Link.objects.count() == 4


def test_a_row_that_fails_does_not_stop_the_others_and_can_be_retried(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    for number in range(3):
        customer(empty_demo, import_connection, NAME=f"Kund {number} AB", COUNTRY="SE")
    erp_import = preview(import_connection)
    assert set(erp_import.rows.values_list("kind", flat=True)) == {MatchKind.NEW}
    # Between the preview and the import, Sweden loses its list mapping: those rows cannot be converted.
    ListMapping.objects.filter(connection=import_connection, erp_key="SE").update(crm_item_id=None)
    customer(empty_demo, import_connection, NAME="Later AB")  # not in the plan: not imported
    first = run(importing.start_import(erp_import))
    assert (first.status, first.failed) == (RunStatus.PARTIALLY_FAILED, 3)
    failed = erp_import.rows.filter(outcome=ImportOutcome.FAILED)
    assert failed.count() == 3 and "no CRM item is mapped to ERP item SE" in failed[0].error
    assert not Company.objects.exists()

    ListMapping.objects.filter(connection=import_connection, erp_key="SE").update(
        crm_item_id=Country.objects.get(code="SE").pk
    )
    erp_import.refresh_from_db()
    retried = run(importing.start_import(erp_import, retry=True))
    assert (retried.status, retried.done, retried.failed) == (RunStatus.SUCCEEDED, 3, 0)
    assert sorted(Company.objects.values_list("name", flat=True)) == ["Kund 0 AB", "Kund 1 AB", "Kund 2 AB"]
    erp_import.refresh_from_db()
    with pytest.raises(importing.ImportRefused, match="nothing to retry"):
        importing.start_import(erp_import, retry=True)


def test_a_record_added_after_the_preview_is_not_duplicated(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    customer(empty_demo, import_connection, NAME="Sen AB", VATNO="SE5569990000")
    erp_import = preview(import_connection)
    Company.objects.create(name="Sen Aktiebolag", vat_no="SE556999-0000")
    finished = run(importing.start_import(erp_import))
    assert finished.status == RunStatus.PARTIALLY_FAILED
    row = erp_import.rows.get()
    assert row.outcome == ImportOutcome.FAILED and "added to the CRM after the preview" in row.error
    assert Company.objects.count() == 1 and not Link.objects.exists()


def test_actors_that_look_the_same_in_the_erp_are_not_both_created_silently(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    first = customer(empty_demo, import_connection, NAME="Dubbel AB", VATNO="SE5561112222")
    customer(empty_demo, import_connection, NAME="Dubbel AB (gammal)", VATNO="SE 556111 2222")
    customer(empty_demo, import_connection, NAME="Annan AB", VATNO="SE5563334444", EMAIL="ekonomi@koncern.se")
    customer(empty_demo, import_connection, NAME="Syster AB", VATNO="SE5565556666", EMAIL="ekonomi@koncern.se")
    erp_import = preview(import_connection)
    # The first is planned as new; the one after it that has the same VAT number waits for a decision. A shared
    # invoice mailbox alone does not make two customers the same.
    assert list(erp_import.rows.values_list("name", "kind", "action")) == [
        ("Dubbel AB", MatchKind.NEW, ImportAction.CREATE),
        ("Dubbel AB (gammal)", MatchKind.AMBIGUOUS, ""),
        ("Annan AB", MatchKind.NEW, ImportAction.CREATE),
        ("Syster AB", MatchKind.NEW, ImportAction.CREATE),
    ]
    twin = erp_import.rows.get(name="Dubbel AB (gammal)")
    assert twin.reason == f"The ERP has another actor in this import that looks the same: {first} (same VAT number)."
    assert importing.decide_all(erp_import, ImportAction.SKIP) == 1
    run(importing.start_import(erp_import))
    assert sorted(Company.objects.values_list("name", flat=True)) == ["Annan AB", "Dubbel AB", "Syster AB"]


def test_one_import_or_bulk_sync_at_a_time_per_connection_and_none_while_automatic_sync_is_on(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    customer(empty_demo, import_connection, NAME="Ett AB")
    first = importing.start_preview(import_connection, "Customer", everything=True)
    with pytest.raises(jobs.AlreadyRunning, match="already running an import"):
        importing.start_preview(import_connection, "Customer", everything=True)
    with pytest.raises(jobs.AlreadyRunning):
        jobs.queue_bulk(import_connection, RunKind.SYNC_ALL)
    run(first.preview_run)
    first.refresh_from_db()
    sync_all = jobs.queue_bulk(import_connection, RunKind.SYNC_ALL)
    with pytest.raises(jobs.AlreadyRunning):
        importing.start_import(first)
    SyncRun.objects.filter(pk=sync_all.pk).update(status=RunStatus.SUCCEEDED)
    SyncSettings.objects.filter(pk=1).update(automatic_sync=True)
    with pytest.raises(importing.ImportRefused, match="Automatic sync is on"):
        importing.start_import(first)
    assert ErpImport.objects.count() == 1 and not Company.objects.exists()


def test_the_worker_refuses_an_import_when_automatic_sync_was_turned_on_after_it_was_queued(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    customer(empty_demo, import_connection, NAME="Ett AB")
    erp_import = preview(import_connection)
    queued = importing.start_import(erp_import)
    SyncSettings.objects.filter(pk=1).update(automatic_sync=True)
    finished = run(queued)
    assert finished.status == RunStatus.FAILED and "Automatic sync is on" in finished.error
    assert not Company.objects.exists()
    # Once automatic sync is off again, the rows the failed run never reached are imported.
    SyncSettings.objects.filter(pk=1).update(automatic_sync=False)
    erp_import.refresh_from_db()
    assert run(importing.start_import(erp_import, retry=True)).status == RunStatus.SUCCEEDED
    assert list(Company.objects.values_list("name", flat=True)) == ["Ett AB"]


def test_persons_bring_their_company_along_and_fail_without_it(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    enable(import_connection, "Person", search=("LASTNAME",))
    client = erp(empty_demo, import_connection)
    parent = customer(empty_demo, import_connection, NAME="Moderbolaget AB", COUNTRY="SE")
    supplier = client.create_actor(p.Actor(actor_type=SUPPLIER, values={"NAME": "Leverantören AB"})).key
    for first, (kind, key) in {"Anna": (C, parent), "Bo": (C, parent), "Cia": (SUPPLIER, supplier)}.items():
        client.create_actor(
            p.Actor(
                actor_type=PERSON, parent_actor_type=kind, parent_key=key, values={"FIRSTNAME": first, "LASTNAME": "Ek"}
            )
        )
    erp_import = preview(import_connection, "Person")
    plan = {(row.level, row.name): row for row in erp_import.rows.all()}
    assert {name: row.kind for name, row in plan.items()} == {
        (0, "Moderbolaget AB"): MatchKind.NEW,
        (1, "Anna Ek"): MatchKind.NEW,
        (1, "Bo Ek"): MatchKind.NEW,
        (1, "Cia Ek"): MatchKind.BLOCKED,
    }
    assert "Supplier actors are not synced on this connection" in plan[(1, "Cia Ek")].reason

    # Without its company, a person is not imported, and says why; with it, it lands under the company.
    importing.decide(plan[(0, "Moderbolaget AB")], included=False)
    finished = run(importing.start_import(erp_import))
    assert (finished.status, finished.failed) == (RunStatus.PARTIALLY_FAILED, 2)
    assert "Its company, Customer" in erp_import.rows.get(name="Anna Ek").error
    assert not Contact.objects.exists()

    company = Company.objects.create(name="Moderbolaget AB")
    Link.objects.create(connection=import_connection, actor_type="Customer", erp_key=parent, company=company)
    erp_import.refresh_from_db()
    run(importing.start_import(erp_import, retry=True))
    assert sorted(Contact.objects.filter(company=company).values_list("first_name", flat=True)) == ["Anna", "Bo"]
    assert Link.objects.filter(connection=import_connection, actor_type="Person").count() == 2


def test_selected_keys_are_planned_and_bad_requests_are_refused(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    wanted = customer(empty_demo, import_connection, NAME="Vald AB")
    customer(empty_demo, import_connection, NAME="Inte vald AB")
    erp_import = preview(import_connection, everything=False, keys=[wanted, "C999999"])
    assert sorted(erp_import.rows.values_list("name", "kind")) == [
        ("C999999", MatchKind.BLOCKED),
        ("Vald AB", MatchKind.NEW),
    ]
    with pytest.raises(importing.ImportRefused, match="Select at least one row"):
        importing.start_preview(import_connection, "Customer", keys=[])
    with pytest.raises(importing.ImportRefused, match="Supplier cannot be imported"):
        importing.start_preview(import_connection, "Supplier", everything=True)
    import_connection.is_active = False
    import_connection.save()
    with pytest.raises(importing.ImportRefused, match="is not active"):
        importing.start_preview(import_connection, "Customer", everything=True)


def test_the_command_previews_imports_and_reports(
    empty_demo: Connector, import_connection: ErpConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import CommandError, call_command

    Company.objects.create(name="Ambig", postal_city="A")
    Company.objects.create(name="Ambig", postal_city="B")
    for name in ("Skript AB", "Skript Två AB", "Ambig AB"):
        customer(empty_demo, import_connection, NAME=name, COUNTRY="SE")
    call_command(
        "import_from_erp",
        "--connection",
        "demo erp – sweden",
        "--actor-type",
        "Customer",
        "--where",
        "NAME",
        "contains",
        "skript",
        "--preview-only",
    )
    out = capsys.readouterr().out
    assert "New: 2" in out and "review it at /settings/" in out and not Link.objects.exists()

    call_command("import_from_erp", "--connection", str(import_connection.pk), "--actor-type", "Customer", "--all")
    out = capsys.readouterr().out
    assert "Needs a decision: 1" in out and "--undecided create" in out and not Link.objects.exists()

    call_command(
        "import_from_erp",
        "--connection",
        str(import_connection.pk),
        "--actor-type",
        "Customer",
        "--all",
        "--undecided",
        "skip",
    )
    out = capsys.readouterr().out
    assert "New: 2 · Updated: 0 · Failed: 0 · Skipped: 1" in out
    assert sorted(Company.objects.filter(erp_links__isnull=False).values_list("name", flat=True)) == [
        "Skript AB",
        "Skript Två AB",
    ]

    with pytest.raises(CommandError, match="No ERP connection is called 'Nowhere'"):
        call_command("import_from_erp", "--connection", "Nowhere", "--actor-type", "Customer", "--all")
    with pytest.raises(CommandError, match="Not a searchable field: PHONE"):
        call_command(
            "import_from_erp",
            "--connection",
            str(import_connection.pk),
            "--actor-type",
            "Customer",
            "--where",
            "PHONE",
            "contains",
            "1",
        )


def test_an_import_whose_worker_stopped_resumes_without_duplicates(
    empty_demo: Connector, import_connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(5):
        customer(empty_demo, import_connection, NAME=f"Del {number} AB")
    erp_import = preview(import_connection)
    monkeypatch.setattr(importing, "CHUNK", 2)
    original, calls = importing._Importer.write, list[int]()

    def stop_after_first_chunk(self: Any, chunk: Any) -> None:
        if calls:
            raise KeyboardInterrupt  # the worker stops between two chunks, as a SIGKILL would leave it
        calls.append(1)
        original(self, chunk)

    monkeypatch.setattr(importing._Importer, "write", stop_after_first_chunk)
    queued = importing.start_import(erp_import)
    with pytest.raises(KeyboardInterrupt):
        run_sync.apply(kwargs={"run_id": queued.pk}, throw=True)
    queued.refresh_from_db()
    part = SyncChunk.objects.get(run=queued)
    assert (queued.status, part.status, Company.objects.count()) == (RunStatus.RUNNING, RunStatus.RUNNING, 2)

    monkeypatch.setattr(importing._Importer, "write", original)
    monkeypatch.setattr(parts, "_send", lambda part_id, countdown=0, seen=None: None)  # run here, below
    assert parts.sweep_stuck_parts(timezone.now() + timedelta(hours=1)) == [part.pk]
    parts.run_part.apply(kwargs={"part_id": part.pk}, throw=True)
    finished = SyncRun.objects.get(pk=queued.pk)
    part.refresh_from_db()
    # Counted over both attempts of the part: its first attempt's chunk is not done again.
    assert (finished.status, finished.total, finished.done, part.attempts) == (RunStatus.SUCCEEDED, 5, 5, 2)
    assert Company.objects.count() == 5 and Link.objects.count() == 5
    assert set(erp_import.rows.values_list("outcome", flat=True)) == {ImportOutcome.NEW}
    assert jobs.claim(queued.pk) == 0 and parts.claim(part.pk) == 0  # a late duplicate delivery does nothing


def test_an_import_goes_in_parts_each_a_task_of_its_own(
    empty_demo: Connector, import_connection: ErpConnection, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part is a task of its own, sent up to the connector's limit; the last part to end ends the run."""
    settings.ERPSYNC_PART_SIZE = 2
    for number in range(5):
        customer(empty_demo, import_connection, NAME=f"Del {number} AB")
    erp_import = preview(import_connection)
    queued = importing.start_import(erp_import)
    sent: list[int] = []
    monkeypatch.setattr(parts, "_send", lambda part_id, countdown=0, seen=None: sent.append(part_id))
    run_sync.apply(kwargs={"run_id": queued.pk}, throw=True)
    made = list(SyncChunk.objects.filter(run=queued).order_by("number"))
    assert [len(part.link_ids) for part in made] == [2, 2, 1] and sent == [made[0].pk, made[1].pk, made[2].pk]
    for part_id in list(sent):
        parts.run_part.apply(kwargs={"part_id": part_id}, throw=True)
    queued.refresh_from_db()
    assert (queued.status, queued.total, queued.done, queued.changed) == (RunStatus.SUCCEEDED, 5, 5, 5)
    assert Company.objects.count() == 5


def test_the_parts_of_persons_wait_until_every_company_part_has_ended(
    import_connection: ErpConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_row = jobs.new_bulk_run(import_connection, RunKind.IMPORT, send_task=False)
    SyncRun.objects.filter(pk=run_row.pk).update(status=RunStatus.RUNNING)
    sent: list[int] = []
    monkeypatch.setattr(parts, "_send", lambda part_id, countdown=0, seen=None: sent.append(part_id))
    rows = [(1, "Customer", 0), (2, "Customer", 0), (3, "Supplier", 0), (4, "Person", 1), (5, "Person", 1)]
    assert parts.split(run_row, rows, size=1) == 5
    made = {part.link_ids[0]: part.pk for part in SyncChunk.objects.filter(run=run_row)}
    assert [made[i] for i in (1, 2, 3)] == parts.dispatch(run_row.pk) == sent  # the persons' stage waits
    for row_id in (1, 2):
        parts.end(made[row_id], None, RunStatus.SUCCEEDED)
    assert sent == [made[1], made[2], made[3]]  # a company part is still at work
    parts.end(made[3], None, RunStatus.SUCCEEDED)
    assert sent[3:] == [made[4], made[5]]


def test_every_person_comes_in_with_their_companies_however_many_there_are(tmp_path: Path) -> None:
    # 8,560 seeded actors hold 2,140 persons, each under a customer or a supplier that the import brings along:
    # a page and a chunk of a thousand persons ask for a thousand parents at once.
    with in_process_demo(tmp_path, seed_actors=8560) as demo:
        connection = customers_for_import(demo)
        enable(connection, "Supplier")
        enable(connection, "Person", search=("LASTNAME",))
        countries = {"SE": "Sweden", "NO": "Norway", "DK": "Denmark", "FI": "Finland", "IS": "Iceland"}
        items = {
            code: Country.objects.get_or_create(code=code, defaults={"name": name})[0].pk
            for code, name in countries.items()
        }
        for actor_type in ("Customer", "Supplier"):
            mapping.save_list_mapping(connection, actor_type, "COUNTRY", list(countries.items()), dict(items), None)

        erp_import = importing.start_preview(connection, "Person", everything=True)
        planned = run(erp_import.preview_run)
        assert (planned.status, planned.error) == (RunStatus.SUCCEEDED, "")
        persons = erp_import.rows.filter(level=1)
        assert persons.count() == 2140 and not persons.exclude(kind=MatchKind.NEW).exists()
        companies = erp_import.rows.filter(level=0).count()
        assert companies > 1000
        importing.decide_all(erp_import, ImportAction.CREATE)  # seeded companies may share a name and a city

        imported = run(importing.start_import(erp_import))
        assert (imported.status, imported.error, imported.done) == (RunStatus.SUCCEEDED, "", 2140 + companies)
    assert Contact.objects.count() == 2140 and Company.objects.count() == companies
    assert Link.objects.filter(connection=connection, actor_type="Person").count() == 2140
    assert not Contact.objects.filter(company__isnull=True).exists()
