"""Saving a CRM form in real Chromium changes only what the user changed, to the byte, in the CRM and in the ERP.

For each form (company, contact, project) a record holds what browsers and forms tend to mangle: addresses and a
description of several lines, names as long as the field allows, decomposed (NFD) letters, Å Ä Ö Ø Æ. A user
changes only the phone (a project's end date), saves, and every other column must be as it was; after the next
sync, run by the job as a worker runs it against the Demo ERP process, so must every value the ERP holds.
A record that is linked holds values the ERP can hold too; one that is not fills the CRM's longest names.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from connections import services
from connections.choices import LinkStatus, RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection, Link
from connectors import protocol as p
from crm.models import Company, Contact, Country, Project

from .conftest import RunningConnector
from .factories import SyncRunFactory, UserFactory
from .sync_helpers import active_connection, enable, erp
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
C, PERSON, PROJECT = p.ActorType.CUSTOMER, p.ActorType.PERSON, p.ActorType.PROJECT
NORDIC = unicodedata.normalize("NFD", "Åsa Ärlebäck Östen Ørsted Ærøskøbing ")


def nordic(length: int) -> str:
    """Decomposed Nordic text of exactly ``length`` code points (Å Ä Ö as letter and mark; Ø Æ have no parts)."""
    text = NORDIC * (length // len(NORDIC) + 1)
    return text[: length - 1] + "x"  # ends in a letter: neither a space a form would trim nor a lone mark


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


STREET = nfd("c/o Åkerström\nLgh 1831\nStorgatan 12 B")
BOX = nfd("Box 1234\nSE-903 25 Umeå")
DESCRIPTION = nfd("Införande av ERP.\n\nFas 1: Ärendehantering\nFas 2: Økonomi och Æ-listor")


@pytest.fixture
def connection(demo_connector: RunningConnector) -> ErpConnection:
    """Customers, persons and projects, every field that has a CRM field of its name synced both ways."""
    connection = active_connection(demo_connector)
    for actor_type in ("Customer", "Person", "Project"):
        enable(connection, actor_type)
    return connection


def row(record: Any) -> dict[str, Any]:
    return type(record)._default_manager.filter(pk=record.pk).values().get()


def linked_and_synced(connection: ErpConnection, record: Any, actor: p.Actor) -> Link:
    """Link ``record`` to ``actor`` and sync once: from then on both sides hold the same values."""
    link = services.link_record(connection, actor.actor_type.value, actor.key or "", record, None)
    sync(link)
    return link


def sync(link: Link) -> None:
    run = SyncRunFactory.create(link=link)
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    link.refresh_from_db()
    assert (run.status, link.status) == (RunStatus.SUCCEEDED, LinkStatus.OK), (run.error, link.last_error)


def erp_values(demo: RunningConnector, connection: ErpConnection, actor_type: p.ActorType, key: str) -> Any:
    return erp(demo, connection).get_actors(actor_type, [key]).actors[0].values


def save_changing_only(page: Any, record: Any, label: str, value: str, shown: dict[str, str]) -> None:
    """Open the record's edit form, check the multi-line values are shown whole, change one field and save."""
    page.goto(reverse(f"crm:{record._meta.model_name}-edit", args=[record.pk]))
    for name, text in shown.items():
        expect(page.locator(f"textarea[name={name}]")).to_have_value(text)
    page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**{record.get_absolute_url()}")
    expect(page.locator(".message-success")).to_be_visible()


def assert_only_changed(record: Any, before: dict[str, Any], **changed: Any) -> None:
    after = row(record)
    assert after.pop("updated_at") >= before.pop("updated_at")
    for name, value in changed.items():
        assert after[name] == value
    assert {k: v for k, v in after.items() if k not in changed} == {k: v for k, v in before.items() if k not in changed}


def test_saving_a_form_keeps_every_field_it_did_not_change_in_the_crm_and_the_erp(
    browser: Any,  # noqa: F811
    live_server: Any,
    connection: ErpConnection,
    demo_connector: RunningConnector,
) -> None:
    client = erp(demo_connector, connection)
    sweden = Country.objects.get(code="SE")
    customer = client.create_actor(
        p.Actor(
            actor_type=C,
            values={
                "NAME": nordic(99),  # the ERP's NAME holds 100 characters
                "NUMBER1": nfd("ÅÄÖØÆ-1"),
                "PHONE": "+46 90 12 34 56",
                "POSTALAD1": BOX,
                "POSTALAD2": nfd("Lgh 1831\nTrappa 2"),
                "POSTALZIP": "903 25",
                "POSTALCITY": nfd("Umeå"),
                "COUNTRY": "SE",
            },
        )
    )
    company = Company.objects.create(
        name=nordic(99),
        number1=nfd("ÅÄÖØÆ-1"),
        phone="+46 90 12 34 56",
        postal_address1=BOX,
        postal_address2=nfd("Lgh 1831\nTrappa 2"),
        postal_zip="903 25",
        postal_city=nfd("Umeå"),
        country=sweden,
        department=nordic(99),
        street_address1=STREET,
        street_address2=nfd("Ö-huset\nPlan 3"),
        street_city=nfd("Tromsø"),
    )
    company_link = linked_and_synced(connection, company, customer)

    person = client.create_actor(
        p.Actor(
            actor_type=PERSON,
            parent_actor_type=C,
            parent_key=customer.key,
            values={
                "FIRSTNAME": nordic(59),  # 60 in the ERP and in the CRM
                "LASTNAME": nordic(59),
                "TITLE": nfd("Inköpschef för Ørestad"),
                "PHONE_MOBILE": "+46 70 111 22 33",
                "BIRTHDATE": "1980-02-29",
            },
        )
    )
    contact = Contact.objects.create(
        company=company,
        first_name=nordic(59),
        middle_name=nordic(59),
        last_name=nordic(59),
        title=nfd("Inköpschef för Ørestad"),
        phone_mobile="+46 70 111 22 33",
        birth_date="1980-02-29",
        postal_address1=STREET,
        postal_city=nfd("Ærøskøbing"),
    )
    contact_link = linked_and_synced(connection, contact, person)

    job = client.create_actor(
        p.Actor(
            actor_type=PROJECT,
            parent_actor_type=C,
            parent_key=customer.key,
            values={"NAME": nordic(99), "TEXT": DESCRIPTION, "ENDDATE": "2026-12-31"},
        )
    )
    project = Project.objects.create(company=company, name=nordic(99), text=DESCRIPTION, end_date="2026-12-31")
    project_link = linked_and_synced(connection, project, job)

    # Not linked: the CRM's longest names, which the ERP's fields could not hold.
    long_company = Company.objects.create(name=nordic(199), department=nordic(99), street_address1=STREET)
    long_project = Project.objects.create(company=long_company, name=nordic(199), text=DESCRIPTION)

    UserFactory.create(
        username="anna", perms=[f"crm.{a}_{m}" for a in ("view", "change") for m in ("company", "contact", "project")]
    )
    context = browser.new_context(base_url=live_server.url, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    log_in(page, "anna", "secret-pass-123")
    page.wait_for_url("**/companies/")

    cases = [
        (company, company_link, C, customer.key, "Phone", "phone", "PHONE", "+46 90 65 43 21"),
        (contact, contact_link, PERSON, person.key, "Mobile phone", "phone_mobile", "PHONE_MOBILE", "+46 70 999 88 77"),
        (project, project_link, PROJECT, job.key, "End date", "end_date", "ENDDATE", "2027-03-31"),
    ]
    multiline = {
        Company: {"postal_address1": BOX, "street_address1": STREET},
        Contact: {"postal_address1": STREET},
        Project: {"text": DESCRIPTION},
    }
    for record, link, actor_type, key, label, column, erp_field, value in cases:
        before, erp_before = row(record), erp_values(demo_connector, connection, actor_type, key or "")
        save_changing_only(page, record, label, value, multiline[type(record)])
        expected = date.fromisoformat(value) if column == "end_date" else value
        assert_only_changed(record, before, **{column: expected})
        sync(link)
        assert erp_values(demo_connector, connection, actor_type, key or "") == {**erp_before, erp_field: value}

    for record, label, column, value, shown in (
        (long_company, "Phone", "phone", "+46 8 1", {"street_address1": STREET}),
        (long_project, "End date", "end_date", "2027-01-31", {"text": DESCRIPTION}),
    ):
        before = row(record)
        save_changing_only(page, record, label, value, shown)
        expected = date.fromisoformat(value) if column == "end_date" else value
        assert_only_changed(record, before, **{column: expected})
    context.close()
