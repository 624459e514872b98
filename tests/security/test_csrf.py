"""CSRF: no URL takes a POST without the token, the token is what lets a POST through, and GET changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse

from connections.choices import RunStatus
from connections.models import ErpConnection, Link, SyncRun, SyncSettings

from .conftest import World
from .url_table import SIGNED_NOT_SESSION, TABLE, url_for

pytestmark = pytest.mark.django_db
SNAPSHOT_APPS = ("auth", "guardian", "crm", "connectors", "connections", "alerts")


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the app's own tables and of users and permissions (not sessions): what a request may change."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values_list())
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in SNAPSHOT_APPS and model._meta.managed and not model._meta.proxy
    }


def changed_tables(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    return [label for label in before if before[label] != after[label]]


def csrf_client(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def token(client: Client) -> str:
    """The CSRF token a page gives the browser: the cookie that the form's hidden field (or X-CSRFToken) matches."""
    client.get(reverse("crm:company-list"))
    return str(client.cookies["csrftoken"].value)


def test_no_url_takes_a_post_without_the_csrf_token(admin_user: Any, world: World) -> None:
    """Every URL in the table, the state-changing ones and the rest: CSRF protection is on everywhere."""
    client = csrf_client(admin_user)
    pks = world.pks()
    state = snapshot()
    failures = []
    for name in TABLE:
        response = client.post(url_for(name, pks), {"action": "import", "active": "0", "kind": "sync_all"})
        if name in SIGNED_NOT_SESSION:
            # No session is worth anything here: the call must be signed, and this one is not.
            if response.status_code != 401:
                failures.append(f"{name}: {response.status_code} to an unsigned POST")
            continue
        if response.status_code != 403 or b"CSRF verification failed" not in response.content:
            failures.append(f"{name}: {response.status_code}")
    assert not failures, "accepted a POST without a CSRF token: " + ", ".join(failures)
    assert not changed_tables(state, snapshot())
    anonymous = Client(enforce_csrf_checks=True)
    login = anonymous.post(reverse("login"), {"username": "ada", "password": "secret-pass-123"})
    assert login.status_code == 403 and "_auth_user_id" not in anonymous.session


def test_the_token_is_what_lets_a_post_through(admin_user: Any, licensed_user: Any, world: World) -> None:
    """The same POSTs, without and then with the token: only the second one does anything."""
    admin_client = csrf_client(admin_user)
    licensed = csrf_client(licensed_user)
    active_url = reverse("connections:connection-active", args=[world.connection.pk])
    settings_url = reverse("connections:sync-settings")
    automatic = {"action": "automatic", "automatic_sync": "on", "interval_minutes": "45"}
    sync_now = reverse("erp:sync-now", args=[world.link.pk])
    disconnect = reverse("erp:disconnect", args=[world.link.pk])
    posts = [
        (admin_client, active_url, {"active": "0"}),
        (admin_client, settings_url, automatic),
        (licensed, sync_now, {}),
        (licensed, disconnect, {}),
    ]
    for client, url, data in posts:
        assert client.post(url, data).status_code == 403, url
    world.connection.refresh_from_db()
    assert world.connection.is_active and SyncSettings.load().interval_minutes != 45
    assert Link.objects.filter(pk=world.link.pk).exists() and not SyncRun.objects.filter(status=RunStatus.QUEUED)

    admin_token, licensed_token = token(admin_client), token(licensed)
    queued = licensed.post(sync_now, HTTP_X_CSRFTOKEN=licensed_token)  # as htmx sends it
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    assert licensed.post(disconnect, {"csrfmiddlewaretoken": licensed_token}).status_code == 302
    assert not Link.objects.filter(pk=world.link.pk).exists()
    deactivate = {"active": "0", "confirm": "1", "csrfmiddlewaretoken": admin_token}
    assert admin_client.post(active_url, deactivate).status_code == 302
    assert not ErpConnection.objects.get(pk=world.connection.pk).is_active
    assert admin_client.post(settings_url, {**automatic, "csrfmiddlewaretoken": admin_token}).status_code == 302
    assert SyncSettings.load().interval_minutes == 45

    logout = reverse("logout")
    assert licensed.post(logout).status_code == 403 and "_auth_user_id" in licensed.session
    assert licensed.post(logout, {"csrfmiddlewaretoken": licensed_token}).status_code == 302
    assert "_auth_user_id" not in licensed.session


def rows_written() -> int:
    """Rows this test's database connection has inserted, updated or deleted so far: one cheap query, so that the
    whole snapshot is compared only after a request that wrote something (a session, say, or a table)."""
    if db_connection.vendor == "sqlite":
        return int(db_connection.connection.total_changes)
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables")
        return int(cursor.fetchone()[0])


def test_no_get_changes_anything(client: Client, users: dict[str, Any], world: World) -> None:
    """GET on every URL, as each logged-in role: no table changes, nobody is logged out, no language is set."""
    pks = world.pks()
    failures = []
    for role in ("outsider", "licensed", "admin"):
        client.force_login(users[role])  # sets last_login: the snapshot is taken after it
        state, sessions = snapshot(), Session.objects.count()
        for name in TABLE:
            url = url_for(name, pks)
            written = rows_written()
            response = client.get(f"{url}{'&' if '?' in url else '?'}active=0&action=import&language=sv")
            if rows_written() != written and changed_tables(state, after := snapshot()):
                failures.append(f"GET {name} as {role} changed {changed_tables(state, after)}")
                state = after
            if "_auth_user_id" not in client.session or Session.objects.count() != sessions:
                failures.append(f"GET {name} as {role} logged the user out")
                client.force_login(users[role])
                state, sessions = snapshot(), Session.objects.count()
            if "django_language" in response.cookies:
                failures.append(f"GET {name} as {role} set the language")
        # A write through any other connection (a thread of the page's own) would not be counted above.
        if changed_tables(state, snapshot()):
            failures.append(f"a GET as {role} changed {changed_tables(state, snapshot())} through another connection")
    assert not failures, "\n".join(failures)
