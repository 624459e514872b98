"""Secrets never leak: not into pages, JSON, headers, Django admin, logs, the database's plain columns or errors.

The secrets are the connector's shared secret, the connection's API key (a password-type configuration value),
their encrypted forms, the Fernet keys and SECRET_KEY. Each is distinctive, so finding one anywhere is a leak.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core import serializers
from django.test import Client, RequestFactory
from django.urls import reverse

from connections import services
from connections.choices import RunStatus
from connections.jobs import run_sync
from connections.models import ErpConnection
from connectors.models import SyncConnector

from ..conftest import RunningConnector, free_port
from ..sync_helpers import run_for
from .conftest import API_KEY, CONNECTOR_SECRET, World
from .url_table import TABLE, url_for

pytestmark = pytest.mark.django_db
WRONG_SECRET = "sec-suite-wrong-secret-0c9e41d7"
WRONG_API_KEY = "sec-suite-wrong-api-key-7e2b90f4"
DATABASE_APPS = ("crm", "connectors", "connections")


def secrets_of(world: World) -> dict[str, str]:
    """What must never be shown, by a name that may be: a failing test must not print the secret itself."""
    connector = SyncConnector.objects.get(pk=world.connector.pk)
    connection = ErpConnection.objects.get(pk=world.connection.pk)
    assert set(connection.secrets) == {"api_key"} and "api_key" not in connection.config  # stored encrypted only
    found = {
        "the shared secret": CONNECTOR_SECRET,
        "the API key": API_KEY,
        "a wrong shared secret typed in": WRONG_SECRET,
        "a wrong API key typed in": WRONG_API_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        "the encrypted shared secret": connector.secret_encrypted,
        "the encrypted API key": connection.secrets["api_key"],
    }
    found.update({f"Fernet key {n}": key for n, key in enumerate(settings.ERPSYNC_FERNET_KEYS, start=1)})
    return found


def leaked(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


def shown(response: Any) -> str:
    """Everything a response gives the browser: status line, headers, cookies and body."""
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    # A CSV export streams its body: read it whole, as the browser saving the file would.
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return f"{response.status_code}\n{headers}\n{response.cookies}\n{body.decode(errors='replace')}"


def plain_columns() -> str:
    """The app's tables as JSON, without the two columns that hold encrypted secrets."""
    dumped = []
    for model in apps.get_models():
        if model._meta.app_label in DATABASE_APPS and model._meta.managed:
            fields = [f.name for f in model._meta.concrete_fields if f.name not in ("secret_encrypted", "secrets")]
            dumped.append(serializers.serialize("json", model._base_manager.all(), fields=fields))
    return "\n".join(dumped)


def config_post(world: World, **overrides: str) -> dict[str, str]:
    """The connection's configuration as its form posts it; an empty password field keeps the stored value."""
    return {
        "cfg-client_name": "Tests",
        "cfg-api_key": "",
        "cfg-company_number": "1",
        "cfg-vat_rate": "25",
        "cfg-default_currency": "SEK",
        **overrides,
    }


def test_no_page_json_or_header_shows_a_secret(
    client: Client, admin_user: Any, licensed_user: Any, world: World
) -> None:
    secrets = secrets_of(world)
    pks = world.pks()
    failures = []
    for user in (admin_user, licensed_user):
        client.force_login(user)
        for name in TABLE:
            response = client.get(url_for(name, pks))
            failures += [f"GET {name} as {user.username} shows {what}" for what in leaked(shown(response), secrets)]
    client.force_login(admin_user)
    connector_edit = reverse("connections:connector-edit", args=[world.connector.pk])
    posts: list[tuple[str, dict[str, str] | None, dict[str, str]]] = [
        # The ERP tab's partials as htmx asks for them, and the forms that call the connector.
        (reverse("erp:run", args=[world.run.pk]), None, {"HX-Request": "true"}),
        (
            reverse("crm:company-tab", args=[world.company.pk, "erp"]),
            None,
            {"HX-Request": "true", "HX-Target": "tab-body"},
        ),
        (reverse("connections:connection-test", args=[world.connection.pk]), config_post(world), {}),
        (
            reverse("connections:connection-test-new"),
            config_post(world, connector=str(world.connector.pk), **{"cfg-api_key": WRONG_API_KEY}),
            {},
        ),
        (connector_edit, {"name": "Demo ERP", "url": world.connector.url, "secret": ""}, {}),
        (connector_edit, {"name": "Demo ERP", "url": world.connector.url, "secret": WRONG_SECRET}, {}),
        (reverse("connections:connector-check", args=[world.connector.pk]), {}, {}),
        (reverse("connections:connection-test-saved", args=[world.connection.pk]), {}, {}),
    ]
    for url, data, headers in posts:
        if data is None:
            response = client.get(url, headers=headers)
        else:
            response = client.post(url, data, follow=True, headers=headers)
        assert response.status_code == 200, url
        failures += [f"{url} shows {what}" for what in leaked(shown(response), secrets)]
    wrong = client.post(connector_edit, {"name": "Demo ERP", "url": world.connector.url, "secret": WRONG_SECRET})
    assert b"refused the shared secret" in wrong.content  # the form came back, without the secret typed in
    assert not failures, "\n".join(failures)


def test_django_admin_never_shows_a_secret(client: Client, admin_user: Any, world: World) -> None:
    """Every registered model's list and first object's page, and the models holding secrets, if registered."""
    secrets = secrets_of(world)
    client.force_login(admin_user)
    failures = []
    for model in admin.site._registry:
        base = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages = [reverse(f"{base}_changelist")]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages += [reverse(f"{base}_change", args=[first.pk]), reverse(f"{base}_history", args=[first.pk])]
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, url
            failures += [f"{url} shows {what}" for what in leaked(shown(response), secrets)]
    holding_secrets = [m for m in (SyncConnector, ErpConnection) if admin.site.is_registered(m)]
    request = RequestFactory().get("/")
    request.user = admin_user
    for model in holding_secrets:  # if registered one day: its pages were scanned above; these fields stay out
        form = admin.site._registry[model].get_form(request)
        assert not {"secret_encrypted", "secrets"} & set(form.base_fields)
    assert not failures, "\n".join(failures)


def test_logs_runs_audit_and_sync_log_never_hold_a_secret(
    client: Client, admin_user: Any, world: World, secret_demo: RunningConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync run in-process, then the failures: a wrong shared secret, a wrong API key, an unreachable URL."""
    secrets = secrets_of(world)
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "connectors", "connections", "celery", "django.request", "waitress"):
        caplog.set_level(logging.DEBUG, logger=name)

    run = run_for(world.link)
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error

    client.force_login(admin_user)
    connector = SyncConnector.objects.get(pk=world.connector.pk)
    connector.set_secret(WRONG_SECRET)
    connector.save(update_fields=["secret_encrypted"])
    failed = run_for(world.link)
    run_sync.apply(kwargs={"run_id": failed.pk})
    failed.refresh_from_db()
    assert failed.status == RunStatus.FAILED and "unauthorized" in failed.error
    client.post(reverse("connections:connector-check", args=[connector.pk]))
    client.get(reverse("crm:company-tab", args=[world.company.pk, "erp"]))
    tested = client.post(
        reverse("connections:connection-test", args=[world.connection.pk]),
        config_post(world, **{"cfg-api_key": WRONG_API_KEY}),
    )
    assert b"refused the shared secret" in tested.content
    connector.set_secret(CONNECTOR_SECRET)
    connector.save(update_fields=["secret_encrypted"])
    tested = client.post(
        reverse("connections:connection-test-new"),
        config_post(world, connector=str(connector.pk), **{"cfg-api_key": WRONG_API_KEY}),
    )
    assert b"Demo ERP refused the API key" in tested.content
    assert services.test_saved_connection(world.connection, admin_user).passed

    SyncConnector.objects.filter(pk=connector.pk).update(url=f"http://127.0.0.1:{free_port()}")
    unreachable = run_for(world.link)
    run_sync.apply(kwargs={"run_id": unreachable.pk})
    unreachable.refresh_from_db()
    assert "cannot reach" in unreachable.error

    logged = caplog.text + "\n".join(repr(vars(record)) for record in caplog.records)
    assert not leaked(logged, secrets), f"the log shows {leaked(logged, secrets)}"
    stored = plain_columns()
    assert "refused the shared secret" in stored and "cannot reach" in stored  # the failures are recorded
    assert not leaked(stored, secrets), f"the database holds in plain text {leaked(stored, secrets)}"
    assert not leaked(secret_demo.process.output(), {"the API key": API_KEY, "the shared secret": CONNECTOR_SECRET})
