"""`manage.py seed_demo` gives every machine the same demo data, and running it twice changes nothing."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory

from connectors.models import SyncConnector
from crm.models import Company, Contact, Project

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def log_in(username: str, password: str) -> Any:
    """authenticate() as the log-in form calls it: login throttling (django-axes) needs the request."""
    return authenticate(RequestFactory().post("/login/"), username=username, password=password)


def snapshot() -> tuple[Any, ...]:
    return (
        list(Company.objects.order_by("number2").values_list("number2", "name", "postal_city", "country__code")),
        list(Contact.objects.order_by("number").values_list("number", "first_name", "last_name", "company__number2")),
        list(Project.objects.order_by("number").values_list("number", "name", "company__number2")),
    )


def test_it_creates_nordic_records_users_and_groups() -> None:
    assert "200 companies, 500 contacts, 50 projects created" in seed()
    assert Company.objects.count() == 200 and Contact.objects.count() == 500 and Project.objects.count() == 50
    countries = set(Company.objects.values_list("country__code", flat=True))
    assert countries <= {"SE", "NO", "DK", "FI", "IS"} and len(countries) >= 4
    assert Company.objects.filter(contacts__isnull=True).count() == 0  # every company has someone to call
    assert Company.objects.filter(name__endswith=" AB", vat_no__startswith="SE").exists()

    admin = log_in("admin", "demo")
    assert admin is not None and admin.is_superuser
    anna, erik, sara = (User.objects.get(username=name) for name in ("anna", "erik", "sara"))
    assert anna.has_perm("connections.use_erp_sync") and anna.has_perm("crm.add_company")
    assert erik.has_perm("connections.use_erp_sync") and not erik.has_perm("crm.add_company")
    assert not sara.has_perm("connections.use_erp_sync") and sara.has_perm("crm.view_company")
    assert User.objects.get(username="erpadmin").has_perm("connections.manage_erp_sync")


def test_running_it_again_changes_nothing_and_keeps_edits() -> None:
    seed()
    first = snapshot()
    company = Company.objects.get(number2="10001")
    company.name = "Renamed by a user AB"
    company.save()
    user = User.objects.get(username="anna")
    user.set_password("changed-by-anna")
    user.save()

    assert "0 companies, 0 contacts, 0 projects created" in seed()
    assert Company.objects.count() == 200 and Contact.objects.count() == 500
    assert Company.objects.get(number2="10001").name == "Renamed by a user AB"
    assert log_in("anna", "changed-by-anna") is not None
    company.name = first[0][0][1]
    company.save()
    assert snapshot() == first


def test_it_is_deterministic() -> None:
    from crm import demo_data

    assert demo_data.generate(2026) == demo_data.generate(2026)
    assert demo_data.generate(2026) != demo_data.generate(7)


def test_it_registers_the_demo_connector_with_an_encrypted_secret(settings: Any, tmp_path: Any) -> None:
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--demo-connector-url", "http://127.0.0.1:9101", stdout=StringIO())
    connector = SyncConnector.objects.get(name="Demo ERP")
    secret = (tmp_path / "demo-connector.secret").read_text().strip()
    assert connector.url == "http://127.0.0.1:9101" and connector.secret == secret
    assert secret not in connector.secret_encrypted and len(secret) >= 32
    stamp = connector.updated_at
    call_command("seed_demo", "--demo-connector-url", "http://127.0.0.1:9101", stdout=StringIO())
    assert SyncConnector.objects.get().updated_at == stamp  # nothing to change
    call_command("seed_demo", "--demo-connector-url", "http://127.0.0.1:9201", stdout=StringIO())
    assert SyncConnector.objects.get().url == "http://127.0.0.1:9201"
