"""Every route of /api/v1/, called with no token and with a token of each role (API_TABLE in url_table.py), and
every write again with read-only tokens: refused, and nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from api import tokens
from api.models import Scope

from .conftest import World
from .test_csrf import changed_tables, snapshot
from .url_table import API_ROLES, API_TABLE, api_body, api_url

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, url: str, body: Any, token: str | None) -> Any:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is None:
        return client.generic(method, url, **headers)
    return client.generic(method, url, json.dumps(body), content_type="application/json", **headers)


def role_tokens(users: dict[str, Any], scope: str) -> dict[str, str | None]:
    issued: dict[str, str | None] = {"none": None}
    for role in API_ROLES[1:]:
        issued[role] = tokens.issue(users[role], f"{role} token", scope)[1]
    return issued


def test_every_api_route_answers_each_role_as_the_table_says(users: dict[str, Any], world: World) -> None:
    pks, client = world.pks(), Client()
    issued = role_tokens(users, Scope.WRITE)
    failures = []
    for name, row in API_TABLE.items():
        url = api_url(name, pks)
        for role in API_ROLES:
            response = call(client, row.method, url, api_body(row, pks), issued[role])
            if response.status_code != row.expected(role):
                failures.append(f"{name} {row.method} {url} {role}: {response.status_code} {response.content[:200]!r}")
            elif response.status_code >= 400 and response.get("Content-Type") == "application/json":
                answer = response.json()
                if not (answer.get("code") and answer.get("message")):
                    failures.append(f"{name} {role}: an error without code and message: {answer}")
    assert not failures, "\n".join(failures)


def test_a_read_only_token_writes_nothing_for_any_role(users: dict[str, Any], world: World) -> None:
    pks, client = world.pks(), Client()
    issued = role_tokens(users, Scope.READ)
    state = snapshot()
    failures = []
    for name, row in API_TABLE.items():
        if row.method == "GET":
            continue
        for role in API_ROLES:
            response = call(client, row.method, api_url(name, pks), api_body(row, pks), issued[role])
            if response.status_code not in (401, 403):
                failures.append(f"{name} {role}: {response.status_code}")
            elif role == "admin" and response.json()["code"] != "read_only_token":
                failures.append(f"{name} admin: {response.json()}")
    assert not failures, "\n".join(failures)
    assert not [t for t in changed_tables(state, snapshot()) if t != "api.ApiToken"]


def test_a_session_is_not_enough_for_the_api(admin_user: Any, world: World) -> None:
    """Logged in to the pages is not logged in to the API: no token, 401 (and so no CSRF question arises)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.get(api_url("api:connections", world.pks()))
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    response = client.post(api_url("api:connection-deactivate", world.pks()), "{}", content_type="application/json")
    assert response.status_code == 401
    world.connection.refresh_from_db()
    assert world.connection.is_active
