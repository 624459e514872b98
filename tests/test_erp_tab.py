"""The ERP tab as end users meet it: who sees it, live values, Sync now, connect, disconnect, a slow ERP."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connections import mapping, services
from connections.models import ErpConnection, Link, SyncRun
from connectors import protocol as p
from connectors.models import SyncConnector
from crm.models import Contact, Project

from .conftest import Connector
from .connectors.servers import hold, serving
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, enable, erp, erp_values, new_customer

pytestmark = pytest.mark.django_db
CRM = ["crm.view_company", "crm.view_contact", "crm.view_project"]


@pytest.fixture
def setup(demo_erp: Connector) -> dict[str, Any]:
    connection = active_connection(demo_erp)
    # BALANCE and CURRENCY are shown live on the tab (CURRENCY is a list: its text is shown).
    rows = [
        mapping.FieldRow(
            f.key, f.crm_field, f.direction, f.show_in_search or f.key == "NAME", f.key in ("BALANCE", "CURRENCY")
        )
        for f in connection.erp_fields.filter(actor_type="Customer")
    ]
    mapping.save_field_mapping(connection, "Customer", True, rows, None)
    actor = new_customer(demo_erp, connection, PHONE="+46 90 12", CURRENCY="NOK")
    record = company(phone="+46 90 12")
    link = services.link_record(connection, "Customer", actor.key or "", record, None)
    user = UserFactory.create(username="anna", perms=[*CRM, "connections.use_erp_sync"])
    ErpConnection.objects.filter(pk=connection.pk).update(everyone_can_create=True)
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


def test_sync_now_shows_progress_then_the_result_without_a_reload(
    client: Any, setup: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    from connections import jobs

    change_in_erp(demo_erp, setup["connection"], setup["actor"].key, PHONE="+46 changed in the ERP")
    client.force_login(setup["user"])
    with django_capture_on_commit_callbacks(execute=False):
        partial = client.post(reverse("erp:sync-now", args=[setup["link"].pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "<progress" in partial and 'hx-trigger="load delay:500ms, every 2s"' in partial
    run = SyncRun.objects.get(link=setup["link"])
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    done = client.get(reverse("erp:run", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "Succeeded." in done and "<progress" not in done
    assert "Phone: +46 90 12 → +46 changed in the ERP" in done


def test_a_sync_now_whose_run_ended_before_the_card_was_drawn_still_polls_for_the_outcome(
    client: Any, setup: dict[str, Any], monkeypatch: Any
) -> None:
    """A worker fast enough ends the run before the answer to Sync now is drawn: the card still follows it, so its
    poll must be there, or the card would read "syncing" for ever."""
    from connections import jobs, services

    queue = services.start_sync_now

    def queued_and_ended(link: Any, user: Any) -> Any:
        run, created = queue(link, user)
        jobs.run_sync.apply(kwargs={"run_id": run.pk})  # the worker, before the card is drawn
        run.refresh_from_db()
        return run, created

    monkeypatch.setattr(services, "start_sync_now", queued_and_ended)
    client.force_login(setup["user"])
    card = client.post(reverse("erp:sync-now", args=[setup["link"].pk]), HTTP_HX_REQUEST="true").content.decode()
    run = SyncRun.objects.get(link=setup["link"])
    assert run.status == "succeeded" and 'data-state="syncing"' in card
    assert f'hx-get="{reverse("erp:run", args=[run.pk])}' in card  # the poll that brings the outcome
    done = client.get(reverse("erp:run", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="ok"' in done and "Succeeded." in done


@pytest.mark.parametrize("action", ["connect", "create"])
def test_a_link_whose_first_run_ended_before_the_card_was_drawn_still_polls_for_the_outcome(
    client: Any, setup: dict[str, Any], demo_erp: Connector, monkeypatch: Any, action: str
) -> None:
    """Connect and Create in ERP sync the new link at once: like Sync now, the card they answer follows that run, or
    a worker ending it while the card is drawn leaves the card at "Not synced yet" for good."""
    from connections import jobs

    queue = services.start_sync_now

    def queued_and_ended(link: Any, user: Any) -> Any:
        run, created = queue(link, user)
        jobs.run_sync.apply(kwargs={"run_id": run.pk})  # the worker, before the card is drawn
        run.refresh_from_db()
        return run, created

    monkeypatch.setattr(services, "start_sync_now", queued_and_ended)
    connection = setup["connection"]
    record = company(name="Ölands Fönster AB")
    client.force_login(setup["user"])
    if action == "connect":
        actor = new_customer(demo_erp, connection, NAME="Ölands Fönster AB")
        url = reverse("erp:connect", args=[connection.pk, record.pk])
        data = {"kind": "company", "actor_type": "Customer", "key": actor.key, "confirm": "1"}
    else:
        mapping.save_defaults(connection, "Customer", {"CURRENCY": ("SEK", False, False)}, None)
        url = reverse("erp:create", args=[connection.pk, record.pk])
        data = {"kind": "company", "actor_type": "Customer"}
    card = client.post(url, data, HTTP_HX_REQUEST="true").content.decode()
    run = SyncRun.objects.get(link__company=record)
    assert run.status == "succeeded" and 'data-state="syncing"' in card
    assert f'hx-get="{reverse("erp:run", args=[run.pk])}' in card  # the poll that brings the outcome
    done = client.get(reverse("erp:run", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="ok"' in done and "Succeeded." in done


def test_a_sync_now_waiting_for_a_retry_says_why(client: Any, setup: dict[str, Any]) -> None:
    run = SyncRun.objects.create(
        connection=setup["connection"],
        link=setup["link"],
        kind="sync_now",
        total=1,
        attempts=1,
        error="GetActors: no answer within the timeout (ReadTimeout)",
    )
    client.force_login(setup["user"])
    waiting = client.get(reverse("erp:run", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "<progress" in waiting
    assert "The last attempt failed; it will be tried again: GetActors: no answer within the timeout" in waiting
    SyncRun.objects.filter(pk=run.pk).update(attempts=0, error="", send_failed_at=timezone.now())
    unsent = client.get(reverse("erp:run", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "The job queue could not be reached; the run is sent again within a minute" in unsent


def test_an_unlinked_record_is_linked_from_a_search_with_the_users_choice_per_field(
    client: Any, setup: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    from connections import jobs

    connection = setup["connection"]  # the ERP ranks higher: by default its values win
    other = new_customer(
        demo_erp, connection, NAME="Vindkraft Nord AB", PHONE="+47 22 00 00", EMAIL="post@vindkraft.example"
    )
    record = company(name="Vindkraft Nord AB", phone="+46 90 77 77", email="")
    client.force_login(setup["user"])
    assert "Not linked to Demo ERP – Sweden yet." in client.get(tab(record)).content.decode()
    url = reverse("erp:connect", args=[connection.pk, record.pk])
    found = client.get(url, {"kind": "company", "q": "vindkraft nord"}, HTTP_HX_REQUEST="true").content.decode()
    assert other.key in found and "Vindkraft Nord AB" in found
    taken = client.get(url, {"kind": "company", "q": setup["actor"].key}).content.decode()
    assert f'already linked to <a href="{setup["record"].get_absolute_url()}">Granbygg AB</a>' in taken

    chooser = client.post(url, {"kind": "company", "actor_type": "Customer", "key": other.key}).content.decode()
    assert not Link.objects.filter(company=record).exists()  # nothing is stored until the user confirms
    phone = re.search(r'<tr>\s*<th scope="row">Phone.*?</tr>', chooser, re.S)
    assert phone and "+46 90 77 77" in phone[0] and "+47 22 00 00" in phone[0]
    assert 'value="erp" checked' in phone[0]  # the ERP ranks higher
    email = re.search(r'<tr>\s*<th scope="row">E-mail.*?</tr>', chooser, re.S)
    assert email and "Syncs from the ERP only: the field mapping&#x27;s direction is ERP → CRM." in email[0]
    assert "disabled" in email[0]

    with django_capture_on_commit_callbacks(execute=False):
        done = client.post(
            url,
            {"kind": "company", "actor_type": "Customer", "key": other.key, "confirm": "1", "choice-PHONE": "crm"},
            HTTP_HX_REQUEST="true",
        )
    # The whole card is answered in place of the one that asked: linked, syncing, and saying so.
    assert done.status_code == 200 and done["HX-Retarget"] == f"#erp-card-{connection.pk}"
    card = done.content.decode()
    assert f"Linked Vindkraft Nord AB to Customer {other.key}; syncing now." in card
    assert 'data-state="syncing"' in card and "Syncing…" in card and "<progress" in card
    link = Link.objects.get(company=record)
    jobs.run_sync.apply(kwargs={"run_id": SyncRun.objects.get(link=link).pk})
    record.refresh_from_db()
    assert record.phone == "+46 90 77 77" and record.email == "post@vindkraft.example"
    assert erp_values(demo_erp, connection, other.key or "")["PHONE"] == "+46 90 77 77"
    page = client.get(tab(record)).content.decode()
    assert 'data-state="ok"' in page and "In step" in page


def test_linking_an_actor_linked_elsewhere_is_refused_with_a_link_to_that_record(
    client: Any, setup: dict[str, Any]
) -> None:
    record = company(name="Granbygg Nord AB")
    client.force_login(setup["user"])
    url = reverse("erp:connect", args=[setup["connection"].pk, record.pk])
    for data in ({}, {"confirm": "1"}):
        refused = client.post(url, {"kind": "company", "actor_type": "Customer", "key": setup["actor"].key, **data})
        assert refused.status_code == 409
        page = refused.content.decode()
        assert f"Customer {setup['actor'].key} is already linked to Granbygg AB." in page
        assert f'href="{setup["record"].get_absolute_url()}"' in page
    assert not Link.objects.filter(company=record).exists()
    gone = client.post(url, {"kind": "company", "actor_type": "Customer", "key": "C999999"})
    assert gone.status_code == 409 and "no longer exists in the ERP" in gone.content.decode()
    wrong = client.post(url, {"kind": "company", "actor_type": "Person", "key": "P100001"})
    assert wrong.status_code == 409 and not Link.objects.filter(company=record).exists()


def test_advanced_search_sends_typed_criteria_and_explains_bad_ones(
    client: Any, setup: dict[str, Any], demo_erp: Connector
) -> None:
    connection = setup["connection"]
    small = new_customer(demo_erp, connection, NAME="Vindkraft Syd AB", CREDIT_LIMIT="10000.00", CURRENCY="SEK")
    big = new_customer(demo_erp, connection, NAME="Vindkraft Väst AB", CREDIT_LIMIT="90000.00", CURRENCY="EUR")
    record = company(name="Vindkraft AB")
    client.force_login(setup["user"])
    url = reverse("erp:connect", args=[connection.pk, record.pk])
    form = client.get(url, {"kind": "company", "advanced": "1"}).content.decode()
    assert 'name="op-CREDIT_LIMIT"' in form and "is between" in form and ">≥<" in form
    assert 'name="op-NAME"' in form and "begins with" in form and 'type="number"' in form
    query = {"kind": "company", "advanced": "1", "run": "1", "actor_type": "Customer"}
    found = client.get(
        url,
        {
            **query,
            "op-NAME": "begins",
            "v-NAME": "Vindkraft",
            "op-CREDIT_LIMIT": "between",
            "v-CREDIT_LIMIT": "5000",
            "v2-CREDIT_LIMIT": "20000",
        },
    )
    page = found.content.decode()
    assert found.status_code == 200 and small.key in page and big.key not in page
    bad = client.get(url, {**query, "op-CREDIT_LIMIT": "gte", "v-CREDIT_LIMIT": "lots"})
    assert bad.status_code == 400 and "Enter a number." in bad.content.decode()
    half = client.get(url, {**query, "op-CREDIT_LIMIT": "between", "v-CREDIT_LIMIT": "1"})
    assert half.status_code == 400 and "Enter both ends of the range." in half.content.decode()
    empty = client.get(url, query)
    assert empty.status_code == 400 and "Fill in at least one criterion." in empty.content.decode()
    forged = client.get(url, {**query, "op-NAME": "gt", "v-NAME": "x"})
    assert forged.status_code == 400 and "Choose one of the operators offered." in forged.content.decode()


def test_create_in_erp_asks_for_the_prompted_mandatory_default_and_links_the_new_actor(
    client: Any, setup: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    from connections import jobs

    connection = setup["connection"]
    mapping.save_defaults(
        connection, "Customer", {"CURRENCY": ("SEK", True, True), "PAYMENT_TERMS": ("30", False, False)}, None
    )
    record = company(name="Nyköpings Kakel AB", phone="+46 155 12 34")
    client.force_login(setup["user"])
    url = reverse("erp:create", args=[connection.pk, record.pk])
    form = client.get(url, {"kind": "company"}).content.decode()
    assert "Nyköpings Kakel AB" in form and "+46 155 12 34" in form  # what is sent from the CRM
    assert 'name="ask-CURRENCY"' in form and '<option value="SEK" selected>' in form
    missing = client.post(url, {"kind": "company", "actor_type": "Customer", "ask-CURRENCY": ""})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    assert not Link.objects.filter(company=record).exists()
    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(
            url, {"kind": "company", "actor_type": "Customer", "ask-CURRENCY": "NOK"}, HTTP_HX_REQUEST="true"
        )
    assert created["HX-Retarget"] == f"#erp-card-{connection.pk}"
    link = Link.objects.get(company=record)
    values = erp_values(demo_erp, connection, link.erp_key)
    assert values["NAME"] == "Nyköpings Kakel AB" and values["PHONE"] == "+46 155 12 34"
    assert values["CURRENCY"] == "NOK" and values["PAYMENT_TERMS"] == "30"
    jobs.run_sync.apply(kwargs={"run_id": SyncRun.objects.get(link=link).pk})
    link.refresh_from_db()
    assert link.status == "ok" and link.baseline["NAME"] == "Nyköpings Kakel AB"
    again = client.post(url, {"kind": "company", "actor_type": "Customer", "ask-CURRENCY": "NOK"})
    assert again.status_code == 409 and "already linked" in again.content.decode()


def test_create_in_erp_shows_the_erps_refusal_and_stores_nothing(client: Any, setup: dict[str, Any]) -> None:
    # A default the ERP no longer knows (the item was removed after it was chosen): the ERP refuses.
    mapping.save_defaults(setup["connection"], "Customer", {"CUSTOMER_GROUP": ("GONE", False, False)}, None)
    record = company(name="Åsa Bygg AB")
    client.force_login(setup["user"])
    url = reverse("erp:create", args=[setup["connection"].pk, record.pk])
    refused = client.post(url, {"kind": "company", "actor_type": "Customer"})
    assert refused.status_code == 502
    assert "Customer group: Demo ERP has no item &#x27;GONE&#x27;." in refused.content.decode()
    assert not Link.objects.filter(company=record).exists()


def test_every_erp_tab_action_checks_the_visibility_grants_rights_on_the_server(
    client: Any, setup: dict[str, Any], monkeypatch: Any
) -> None:
    monkeypatch.setattr(services, "_send_run", lambda run_id: None)
    connection, link = setup["connection"], setup["link"]
    connection.visibility = "specified"
    connection.save()
    licensed = [*CRM, "connections.use_erp_sync"]
    users = {
        "unlicensed": UserFactory.create(username="u1", perms=CRM),
        "without access": UserFactory.create(username="u2", perms=licensed),
        "view only": UserFactory.create(username="u3", perms=licensed),
        "connect only": UserFactory.create(username="u4", perms=licensed),
        "connect and create": UserFactory.create(username="u5", perms=licensed),
    }
    services.set_grants(
        connection,
        [
            services.Grant(users["view only"], False, False),
            services.Grant(users["connect only"], True, False),
            services.Grant(users["connect and create"], True, True),
        ],
    )
    unlinked = company(name="Vindkraft AB")
    connect = reverse("erp:connect", args=[connection.pk, unlinked.pk])
    create = reverse("erp:create", args=[connection.pk, unlinked.pk])
    requests = {
        "tab": lambda: client.get(tab(unlinked)),
        "search": lambda: client.get(connect, {"kind": "company", "q": "vind"}),
        "advanced search": lambda: client.get(connect, {"kind": "company", "advanced": "1"}),
        "choose": lambda: client.post(connect, {"kind": "company", "actor_type": "Customer", "key": "C999999"}),
        "create form": lambda: client.get(create, {"kind": "company"}),
        "create": lambda: client.post(create, {"kind": "company", "actor_type": "Customer"}),
        "sync now": lambda: client.post(reverse("erp:sync-now", args=[link.pk])),
        "disconnect": lambda: client.post(reverse("erp:disconnect", args=[link.pk])),
    }
    hidden = dict.fromkeys(requests, 404)
    seen = {**dict.fromkeys(requests, 403), "tab": 200, "sync now": 202}
    expected = {
        "unlicensed": hidden,
        "without access": hidden,
        "view only": seen,
        "connect only": {**seen, "search": 200, "advanced search": 200, "choose": 409, "disconnect": 302},
        "connect and create": {
            **seen,
            "search": 200,
            "advanced search": 200,
            "choose": 409,
            "create form": 200,
            "create": 302,
            "disconnect": 302,
        },
    }
    failures = []
    for role, user in users.items():
        client.force_login(user)
        for action, request in requests.items():
            status = request().status_code
            if status != expected[role][action]:
                failures.append(f"{role} / {action}: {status}, expected {expected[role][action]}")
            if action == "disconnect" and status == 302:  # put the link back for the next user
                link = Link.objects.create(
                    connection=connection, actor_type="Customer", erp_key=link.erp_key, company=setup["record"]
                )
                sync_url, disconnect_url = (
                    reverse(f"erp:{name}", args=[link.pk]) for name in ("sync-now", "disconnect")
                )
                requests["sync now"] = lambda url=sync_url: client.post(url)  # type: ignore[misc]
                requests["disconnect"] = lambda url=disconnect_url: client.post(url)  # type: ignore[misc]
            SyncRun.objects.all().delete()
    assert not failures, failures
    assert Link.objects.filter(company=unlinked).count() == 1  # created in the ERP by the one user allowed to
    unlinked = company(name="Vindkraft Syd AB")
    connect = reverse("erp:connect", args=[connection.pk, unlinked.pk])
    client.force_login(users["connect only"])
    page = client.get(tab(unlinked)).content.decode()
    assert (
        "Search the ERP" in page
        and "Create in ERP" not in client.get(connect, {"kind": "company", "q": "v"}).content.decode()
    )
    client.force_login(users["connect and create"])
    assert "Create in ERP" in client.get(connect, {"kind": "company", "q": "v"}).content.decode()
    client.logout()
    assert client.get(connect, {"kind": "company"}).status_code == 302  # to the login page


def test_a_contact_is_linked_to_a_person_under_its_companys_actor(
    client: Any, setup: dict[str, Any], demo_erp: Connector
) -> None:
    connection = setup["connection"]
    enable(connection, "Person", search=("FIRSTNAME", "LASTNAME", "EMAIL"))
    conn = erp(demo_erp, connection)
    parent = {"parent_actor_type": p.ActorType.CUSTOMER, "parent_key": setup["actor"].key}
    mine = conn.create_actor(
        p.Actor(
            actor_type=p.ActorType.PERSON,
            values={"FIRSTNAME": "Karin", "LASTNAME": "Berg", "EMAIL": "karin@granbygg.example"},
            **parent,
        )
    )
    elsewhere = conn.create_actor(
        p.Actor(actor_type=p.ActorType.PERSON, values={"FIRSTNAME": "Karin", "LASTNAME": "Berg"})
    )
    contact = Contact.objects.create(company=setup["record"], first_name="Karin", last_name="Berg")
    client.force_login(setup["user"])
    url = reverse("erp:connect", args=[connection.pk, contact.pk])
    page = client.get(url, {"kind": "contact", "q": "Karin Berg"}).content.decode()
    assert mine.key in page and elsewhere.key not in page and "karin@granbygg.example" in page
    chooser = client.post(url, {"kind": "contact", "actor_type": "Person", "key": mine.key}).content.decode()
    assert "karin@granbygg.example" in chooser
    client.post(
        url, {"kind": "contact", "actor_type": "Person", "key": mine.key, "confirm": "1", "choice-EMAIL": "erp"}
    )
    assert Link.objects.get(contact=contact).erp_key == mine.key
    # A contact whose company is not linked is told to link the company first, for search and for create.
    lone = Contact.objects.create(company=company(name="Ensam AB"), first_name="Per")
    alone = client.get(reverse("erp:connect", args=[connection.pk, lone.pk]), {"kind": "contact", "q": "Per"})
    assert "Link the contact&#x27;s company first" in alone.content.decode()
    create = client.get(reverse("erp:create", args=[connection.pk, lone.pk]), {"kind": "contact"})
    assert create.status_code == 409 and "Link the contact&#x27;s company first" in create.content.decode()


def test_a_contact_created_in_the_erp_is_created_under_its_companys_actor(
    client: Any, setup: dict[str, Any], demo_erp: Connector
) -> None:
    connection = setup["connection"]
    enable(connection, "Person")
    contact = Contact.objects.create(
        company=setup["record"], first_name="Olof", last_name="Lind", email="olof@x.example"
    )
    client.force_login(setup["user"])
    form = client.get(reverse("erp:create", args=[connection.pk, contact.pk]), {"kind": "contact"}).content.decode()
    assert f"It is created under Customer {setup['actor'].key}" in form
    client.post(reverse("erp:create", args=[connection.pk, contact.pk]), {"kind": "contact", "actor_type": "Person"})
    link = Link.objects.get(contact=contact)
    [person] = erp(demo_erp, connection).get_actors(p.ActorType.PERSON, [link.erp_key]).actors
    assert person.parent_key == setup["actor"].key and person.values["FIRSTNAME"] == "Olof"
    assert person.values["EMAIL"] == "olof@x.example"


def test_a_project_is_linked_from_a_search(
    client: Any, setup: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    from connections import jobs

    connection = setup["connection"]
    enable(connection, "Project", search=("NAME", "STATUS"), tab=("STATUS", "HOURS_LOGGED"))
    actor = erp(demo_erp, connection).create_actor(
        p.Actor(actor_type=p.ActorType.PROJECT, values={"NAME": "Kajen etapp 2", "STATUS": "ACTIVE", "TEXT": "Bryggor"})
    )
    project = Project.objects.create(company=setup["record"], name="Kajen etapp 2", text="")
    client.force_login(setup["user"])
    url = reverse("erp:connect", args=[connection.pk, project.pk])
    page = client.get(url, {"kind": "project", "q": "kajen"}).content.decode()
    assert actor.key in page and "In progress" in page  # a list value shown as its text
    with django_capture_on_commit_callbacks(execute=False):
        client.post(url, {"kind": "project", "actor_type": "Project", "key": actor.key, "confirm": "1"})
    link = Link.objects.get(project=project)
    jobs.run_sync.apply(kwargs={"run_id": SyncRun.objects.get(link=link).pk})
    project.refresh_from_db()
    assert project.text == "Bryggor"  # the ERP ranks higher, and the CRM's side was blank
    tab_page = client.get(reverse("crm:project-tab", args=[project.pk, "erp"])).content.decode()
    assert "Hours logged" in tab_page and "In progress" in tab_page


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
        hold(environ, 5)
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
    second = ErpConnection.objects.create(
        name="Second", connector=setup["connection"].connector, is_active=True, last_test_ok=True, priority=9
    )
    for field in setup["connection"].erp_fields.filter(actor_type="Customer"):
        field.pk = None
        field.connection = second
        field.save()
    with CaptureQueriesContext(db_connection) as two:
        page = client.get(tab(setup["record"])).content.decode()
    assert "Not linked to Second yet." in page
    assert len(two.captured_queries) == len(one.captured_queries), [q["sql"][:80] for q in two.captured_queries]
    assert re.search(r"Demo ERP – Sweden.*Second", page, re.S)  # sync-priority order
