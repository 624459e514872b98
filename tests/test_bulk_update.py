"""``connections.bulk.update_rows`` on the database the suite runs on (SQLite, and PostgreSQL in CI's second pass): every
kind of value the sync saves comes back as it was saved, including what breaks hand-built SQL."""

from __future__ import annotations

import unicodedata
from datetime import timedelta

import pytest
from django.utils import timezone

from connections import bulk
from connections.choices import DriftState, LinkStatus
from connections.models import Link
from crm.models import Company

from .factories import CompanyFactory, ErpConnectionFactory

pytestmark = pytest.mark.django_db

NFD = unicodedata.normalize("NFD", "Åsa Öberg & Ærø Ødegård")
LONG = ("Ä" * 198) + "ö"  # 199 characters
AWKWARD = 'O\'Brien %s %(x)s \\ "quoted"; DROP TABLE x; --'


def test_every_value_comes_back_as_saved_and_other_rows_and_fields_are_left_alone() -> None:
    companies = [CompanyFactory.create(name=f"Före {n}", phone="1", postal_address1="Gamla vägen 1") for n in range(3)]
    untouched = CompanyFactory.create(name="Orörd AB", phone="2")
    companies[0].name, companies[0].postal_address1 = NFD, "Storgatan 1\nBox 22\r\n123 45 Malmö"
    companies[1].name, companies[1].postal_address1 = LONG, ""
    companies[2].name, companies[2].postal_address1 = AWKWARD, "Kungsgatan 3"
    for company in companies:
        company.phone = "ignored"  # not among the fields saved
    assert bulk.update_rows(Company, companies, ["name", "postal_address1"]) == 3

    saved = Company.objects.in_bulk([c.pk for c in companies])
    assert saved[companies[0].pk].name == NFD  # not normalised on the way
    assert saved[companies[0].pk].postal_address1 == "Storgatan 1\nBox 22\r\n123 45 Malmö"
    assert saved[companies[1].pk].name == LONG and saved[companies[1].pk].postal_address1 == ""
    assert saved[companies[2].pk].name == AWKWARD
    assert {c.phone for c in saved.values()} == {"1"}
    untouched.refresh_from_db()
    assert untouched.name == "Orörd AB" and untouched.phone == "2"


def test_json_dates_nulls_and_numbers_of_a_link_come_back_as_saved() -> None:
    connection = ErpConnectionFactory.create()
    links = [
        Link.objects.create(
            connection=connection, actor_type="Customer", erp_key=f"K/{n} x", company=CompanyFactory.create()
        )
        for n in range(2)
    ]
    when = timezone.now() - timedelta(days=3)
    links[0].baseline = {"NAME": NFD, "STREET": "Rad 1\nRad 2", "EMPTY": None, "N": 3, "LIST": ["Å", {"B": True}]}
    links[0].last_synced_at, links[0].status, links[0].repeats = when, LinkStatus.FAILED, 7
    links[0].last_error_said = None
    links[0].drift = DriftState.DRIFTED
    links[1].baseline = {}
    links[1].last_synced_at, links[1].status, links[1].repeats = None, LinkStatus.OK, 0
    links[1].last_error_said = {"en": "It's 100% gone", "sv": "Den är 100 % borta"}
    links[1].drift = DriftState.IN_STEP
    fields = ["baseline", "last_synced_at", "status", "repeats", "last_error_said", "drift"]
    assert bulk.update_rows(Link, links, fields) == 2

    first, second = (Link.objects.get(pk=link.pk) for link in links)
    assert first.baseline == links[0].baseline and first.last_synced_at == when
    assert (first.status, first.repeats, first.last_error_said, first.drift) == (
        LinkStatus.FAILED,
        7,
        None,
        DriftState.DRIFTED,
    )
    assert second.baseline == {} and second.last_synced_at is None
    assert second.last_error_said == {"en": "It's 100% gone", "sv": "Den är 100 % borta"}
    assert (second.status, second.repeats, second.drift) == (LinkStatus.OK, 0, DriftState.IN_STEP)


def test_more_rows_than_one_statement_takes_are_all_saved() -> None:
    companies = Company.objects.bulk_create(Company(name=f"Bolag {n}") for n in range(1000 + 5))
    for company in companies:
        company.name = f"Nytt namn {company.pk}"
    assert bulk.update_rows(Company, companies, ["name"]) == len(companies)
    assert Company.objects.filter(name__startswith="Nytt namn").count() == len(companies)
    assert Company.objects.get(pk=companies[-1].pk).name == f"Nytt namn {companies[-1].pk}"


def test_nothing_to_save_sends_nothing() -> None:
    company = CompanyFactory.create()
    assert bulk.update_rows(Company, [], ["name"]) == 0
    assert bulk.update_rows(Company, [company], []) == 0
