"""Every URL the resolver knows, requested with GET by anonymous, outsider, licensed user and admin.

The expected answers are the table in url_table.py; a URL pattern missing from it fails the first test.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.test import Client
from django.urls import reverse

from .conftest import World
from .url_table import API_NAMESPACE, API_TABLE, LOGIN, ROLES, TABLE, resolver_entries, url_for


def test_the_table_describes_every_url_pattern_and_nothing_else() -> None:
    every = list(resolver_entries())
    entries = [entry for entry in every if not entry.name.startswith(f"{API_NAMESPACE}:")]
    api_names = {entry.name for entry in every} - {entry.name for entry in entries}
    assert api_names == set(API_TABLE), f"describe the API's routes in API_TABLE: {sorted(api_names ^ set(API_TABLE))}"
    names = [entry.name for entry in entries]
    assert not sorted({n for n in names if names.count(n) > 1}), "two URL patterns share a name"
    unknown = sorted(set(names) - set(TABLE))
    assert not unknown, f"describe these URLs in tests/security/url_table.py: {unknown}"
    gone = sorted(set(TABLE) - set(names))
    assert not gone, f"these URLs are gone; remove them from tests/security/url_table.py: {gone}"
    arguments = [
        (e.name, e.route, sorted(TABLE[e.name].kwargs)) for e in entries if e.arguments != set(TABLE[e.name].kwargs)
    ]
    assert not arguments, f"the table fills other arguments than the route has: {arguments}"


def answer(client: Client, users: dict[str, Any], role: str, url: str) -> Any:
    client.logout()
    if role != "anonymous":
        client.force_login(users[role])
    return client.get(url)


@pytest.mark.django_db
def test_every_url_answers_each_role_as_the_table_says(client: Client, users: dict[str, Any], world: World) -> None:
    pks = world.pks()
    failures = []
    # Role by role, logged in once for all the URLs (a login costs more than most pages); logged in again
    # only if a page ended the session, which test_csrf reports on its own.
    for role in ROLES:
        client.logout()
        for name, row in TABLE.items():
            url = url_for(name, pks)
            if role != "anonymous" and "_auth_user_id" not in client.session:
                client.force_login(users[role])
            response = client.get(url)
            expected = row.expected(role)
            if expected == LOGIN:
                if response.status_code != 302 or response["Location"] != redirect_to_login(url).url:
                    failures.append(
                        f"{name} {url} {role}: {response.status_code} {response.get('Location')}, "
                        "expected a redirect to log in"
                    )
            elif response.status_code != expected:
                failures.append(f"{name} {url} {role}: {response.status_code}, expected {expected}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_django_admin_is_for_staff_only(client: Client, users: dict[str, Any], world: World) -> None:
    """Django admin's own URLs are left out of the table: its index and every model's list, for the same roles."""
    pages = [reverse("admin:index")] + [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]
    failures = []
    for url in pages:
        for role in ROLES:
            response = answer(client, users, role, url)
            if role == "admin":
                if response.status_code != 200:
                    failures.append(f"{url} admin: {response.status_code}")
            elif response.status_code != 302 or not response["Location"].startswith(reverse("admin:login")):
                failures.append(f"{url} {role}: {response.status_code} {response.get('Location')}")
    assert not failures, "\n".join(failures)
