"""One validation path: a value the CRM's edit form refuses is refused however it arrives (sync, import, Create in
ERP), as an error of its field in the sync log, and is never stored; a stored web address is a link only if it is
http or https."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from connections import importing, linking, services
from connections.choices import Direction, ImportOutcome, LinkStatus, LogOutcome, MatchKind
from connections.models import ErpConnection, Link, ListMapping, SyncLogEntry
from connections.sync.engine import sync_links
from connectors import protocol as p
from crm.forms import CompanyForm
from crm.models import Company
from crm.validators import clean_value

from ..conftest import Connector
from ..sync_helpers import claimed_run_for, company, customers_for_import, new_customer
from ..test_import import customer, preview, run

pytestmark = pytest.mark.django_db

SCRIPT_ADDRESS = "javascript:alert(document.cookie)"


@pytest.fixture
def connection(demo_erp: Connector) -> ErpConnection:
    """Customers sync name, phone, e-mail, web address, postal address and country both ways."""
    return customers_for_import(demo_erp)


def field_errors(run_id: int) -> dict[str, str]:
    entries = SyncLogEntry.objects.filter(run_id=run_id, outcome=LogOutcome.ERROR).exclude(field_key="")
    return dict(entries.values_list("field_key", "reason"))


def test_values_the_form_refuses_are_refused_by_the_sync_field_by_field_and_never_stored(
    demo_erp: Connector, connection: ErpConnection, client: Client, admin_user: Any
) -> None:
    actor = new_customer(
        demo_erp,
        connection,
        NAME="Granbygg Nord AB",
        URL=SCRIPT_ADDRESS,
        EMAIL="not an address",
        PHONE="+46 90\x0712 34",
        POSTALCITY="Umeå",
    )
    record = company(url="https://granbygg.se")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    run = claimed_run_for(link)
    counts = sync_links(run, [link])

    record.refresh_from_db()
    link.refresh_from_db()
    # The values the form accepts arrive; each refused one is left as the CRM had it, and says why.
    assert (record.name, record.postal_city) == ("Granbygg Nord AB", "Umeå")
    assert (record.url, record.email, record.phone) == ("https://granbygg.se", "", "")
    assert field_errors(run.pk) == {
        "URL": "Enter a valid URL.",
        "EMAIL": "Enter a valid email address.",
        "PHONE": "Remove the control character U+0007 (character 7).",
    }
    assert link.status == LinkStatus.FAILED and counts.failed == 1
    assert "Website: Enter a valid URL." in link.last_error
    assert "URL" not in link.baseline  # tried again by the next sync, and refused again
    assert not SyncLogEntry.objects.filter(run=run, outcome=LogOutcome.WRITTEN, field_key="URL").exists()

    client.force_login(admin_user)
    page = client.get(record.get_absolute_url()).content.decode()
    assert "javascript:" not in page

    # The form refuses the same values, with the same words.
    form = CompanyForm(
        {"name": "Granbygg Nord AB", "url": SCRIPT_ADDRESS, "email": "not an address", "phone": "+46 90\x0712 34"},
        instance=record,
    )
    assert not form.is_valid()
    assert form.errors["url"] == ["Enter a valid URL."]
    assert form.errors["email"] == ["Enter a valid email address."]
    assert form.errors["phone"] == ["Remove the control character U+0007 (character 7)."]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("url", "ftp://files.granbygg.se/", "Enter a valid URL."),  # Django's own form field allows ftp
        ("url", "data:text/html,<script>alert(1)</script>", "Enter a valid URL."),
        ("name", "Granbygg\x1b[31m AB", "Remove the control character U+001B (character 9)."),
        ("department", "Sälj\u2028Nord", "Remove the control character U+2028 (character 5)."),
    ],
)
def test_the_edit_form_refuses_other_schemes_and_control_characters(field: str, value: str, error: str) -> None:
    form = CompanyForm({"name": "Granbygg AB", field: value})
    assert not form.is_valid() and form.errors[field] == [error]


def test_line_breaks_are_kept_only_in_fields_of_several_lines() -> None:
    form = CompanyForm({"name": "Granbygg AB", "postal_address1": "c/o Berg\r\nLgh 1831"})
    assert form.is_valid(), form.errors
    assert clean_value(Company._meta.get_field("postal_address1"), "c/o Berg\nLgh 1831") == "c/o Berg\nLgh 1831"
    with pytest.raises(ValidationError, match=r"U\+000A \(character 9\)"):
        clean_value(Company._meta.get_field("name"), "Granbygg\nAB")


def test_a_web_address_without_a_scheme_is_taken_as_https_on_every_way_in(
    demo_erp: Connector, connection: ErpConnection
) -> None:
    form = CompanyForm({"name": "Granbygg AB", "url": "www.granbygg.se"})
    assert form.is_valid() and form.cleaned_data["url"] == "https://www.granbygg.se"
    actor = new_customer(demo_erp, connection, NAME="Granbygg AB", URL="www.granbygg.se")
    link = services.link_record(connection, "Customer", actor.key or "", company(), None)
    sync_links(claimed_run_for(link), [link])
    link.refresh_from_db()
    assert link.status == LinkStatus.OK and link.crm_record.url == "https://www.granbygg.se"
    assert link.baseline["URL"] == "https://www.granbygg.se"  # compared as the CRM stores it: no endless change


def test_an_address_stored_before_the_checks_is_shown_but_never_a_link(client: Client, admin_user: Any) -> None:
    record = company()
    Company.objects.filter(pk=record.pk).update(url=SCRIPT_ADDRESS)  # as an older version stored it
    client.force_login(admin_user)
    page = client.get(record.get_absolute_url()).content.decode()
    assert SCRIPT_ADDRESS in page and 'href="javascript:' not in page  # shown as text, for someone to correct


def test_the_import_refuses_the_same_values_field_by_field_and_stores_none_of_them(
    empty_demo: Connector, import_connection: ErpConnection
) -> None:
    script = customer(empty_demo, import_connection, NAME="Granbygg AB", URL=SCRIPT_ADDRESS, POSTALCITY="Umeå")
    control = customer(empty_demo, import_connection, NAME="Fjällbygg\x07 AB")
    havsbygg = customer(empty_demo, import_connection, NAME="Havsbygg AB", URL="https://havsbygg.se", COUNTRY="SE")
    erp_import = preview(import_connection)
    plan = {row.erp_key: row for row in erp_import.rows.all()}
    # The preview says which values will not come in; a record without its required name cannot come in at all.
    assert plan[script].kind == MatchKind.NEW
    [website] = [
        c for c in importing.field_changes(erp_import, [plan[script]])[plan[script].pk] if c.label == "Website"
    ]
    assert (website.after, website.note) == ("", "not imported: Enter a valid URL.")
    assert plan[control].kind == MatchKind.BLOCKED
    assert plan[control].reason.startswith("Name: Remove the control character U+0007 (character 10).")

    # Between the preview and the import, Sweden loses its list mapping: that row fails as a whole, as before.
    ListMapping.objects.filter(connection=import_connection, erp_key="SE").update(crm_item_id=None)
    done = run(importing.start_import(erp_import))
    imported = Company.objects.get()
    assert (imported.name, imported.postal_city, imported.url) == ("Granbygg AB", "Umeå", "")
    link = Link.objects.get(company=imported)
    assert (link.erp_key, link.status, link.last_error) == (script, LinkStatus.FAILED, "Website: Enter a valid URL.")
    assert "URL" not in link.baseline  # the next sync tries the field again, and refuses it again
    assert erp_import.rows.get(erp_key=havsbygg).outcome == ImportOutcome.FAILED
    # Every refused value is an error of its field in the import's sync log, the preview's too.
    assert field_errors(done.pk) == {
        "URL": "Enter a valid URL.",
        "NAME": "Remove the control character U+0007 (character 10).",
        "COUNTRY": "no CRM item is mapped to ERP item SE",
    }
    entry = SyncLogEntry.objects.get(run=done, field_key="URL")
    assert (entry.direction, entry.erp_key, entry.link) == (Direction.ERP_TO_CRM, script, link)


def test_an_erp_answering_create_with_a_key_the_crm_cannot_store_links_nothing(
    demo_erp: Connector, connection: ErpConnection, admin_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = company(name="Åsa Bygg AB")
    plan = linking.creation_plan(connection, "Customer", record)
    answered = p.Actor(actor_type=p.ActorType.CUSTOMER, key="C-1\x1b[2J")
    monkeypatch.setattr("connectors.client.ConnectionClient.create_actor", lambda _self, _actor, _key=None: answered)
    with pytest.raises(services.LinkRefused, match="answered a key the CRM cannot store"):
        linking.create_in_erp(connection, plan, record, {}, admin_user, "en")
    assert not Link.objects.filter(company=record).exists()
