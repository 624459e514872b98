"""The shell around the records: start page, navigator, Settings and maintenance → Quote/Sync, health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connections.models import WorkerHeartbeat
from connections.services import record_worker_heartbeat

from .factories import UserFactory
from .permission_matrix import assert_access

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(admin_user: Any, licensed_user: Any, outsider: Any) -> dict[str, Any]:
    return {"admin": admin_user, "licensed": licensed_user, "outsider": outsider}


ADMIN_ONLY = {"anonymous": 302, "outsider": 403, "licensed": 403, "admin": 200}


@pytest.mark.parametrize("url_name", ["settings", "connections:sync", "connections:workers"])
def test_settings_pages_are_for_erp_sync_admins_only(client: Any, users: dict[str, Any], url_name: str) -> None:
    assert_access(client, users, reverse(url_name), ADMIN_ONLY)


def test_an_erp_sync_admin_who_is_not_superuser_reaches_quote_sync(client: Any) -> None:
    erp_admin = UserFactory.create(username="lars", perms=["connections.manage_erp_sync"])
    client.force_login(erp_admin)
    page = client.get(reverse("connections:sync")).content.decode()
    assert "Sync Connectors" in page and "ERP connections" in page
    assert reverse("settings") in page  # navigator entry and breadcrumb back


def test_the_start_page_sends_each_user_to_what_they_may_use(client: Any, licensed_user: Any, outsider: Any) -> None:
    assert client.get("/")["Location"].startswith("/login/")
    client.force_login(licensed_user)
    assert client.get("/")["Location"] == reverse("crm:company-list")
    client.force_login(outsider)
    page = client.get("/")
    assert page.status_code == 403 and "Your account has no access yet" in page.content.decode()


def test_the_navigator_shows_only_what_the_user_may_open(client: Any, licensed_user: Any, admin_user: Any) -> None:
    client.force_login(licensed_user)
    page = client.get(reverse("crm:company-list")).content.decode()
    assert 'aria-current="page"' in page and reverse("crm:contact-list") in page
    assert reverse("settings") not in page
    client.force_login(admin_user)
    assert reverse("settings") in client.get(reverse("crm:company-list")).content.decode()


def test_quote_sync_warns_when_no_worker_is_running(client: Any, admin_user: Any) -> None:
    client.force_login(admin_user)
    assert "No worker has run a job in the last 90 seconds" in client.get(reverse("connections:sync")).content.decode()
    record_worker_heartbeat("celery@app-1")
    stale = record_worker_heartbeat("celery@app-2")
    WorkerHeartbeat.objects.filter(pk=stale.pk).update(last_seen=timezone.now() - timedelta(minutes=10))
    page = client.get(reverse("connections:workers")).content.decode()
    assert "No worker has run a job" not in page
    assert "celery@app-1" in page and "Running" in page
    assert "celery@app-2" in page and "Not reporting" in page


def test_heartbeats_count_per_worker() -> None:
    record_worker_heartbeat("celery@app-1")
    assert record_worker_heartbeat("celery@app-1").jobs_run == 2


def test_logging_out_needs_a_post_and_ends_the_session(client: Any, licensed_user: Any) -> None:
    client.force_login(licensed_user)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    assert client.get(reverse("crm:company-list")).status_code == 302


def test_the_health_endpoint_answers_without_login(client: Any) -> None:
    response = client.get(reverse("health"))
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_the_sync_tab_lists_connectors_without_their_secrets(client: Any, admin_user: Any) -> None:
    from connectors.models import SyncConnector

    connector = SyncConnector(name="Fortnox bridge", url="https://bridge.example.com/erp")
    connector.set_secret("very-secret-shared-value-123")
    connector.save()
    client.force_login(admin_user)
    page = client.get(reverse("connections:sync")).content.decode()
    assert "Fortnox bridge" in page and "https://bridge.example.com/erp" in page
    assert "very-secret-shared-value-123" not in page and connector.secret_encrypted not in page
    assert "Not encrypted" not in page


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://erp.example.com:8001", True),
        ("http://10.0.0.5:8001", True),
        ("https://erp.example.com", False),
        ("http://127.0.0.1:8001", False),
        ("http://localhost:8001", False),
        ("http://[::1]:8001", False),
    ],
)
def test_a_connector_reached_over_plain_http_from_another_machine_is_marked(
    client: Any, admin_user: Any, url: str, warned: bool
) -> None:
    from connectors.models import SyncConnector

    connector = SyncConnector(name="Bridge", url=url)
    connector.set_secret("very-secret-shared-value-123")
    connector.save()
    client.force_login(admin_user)
    page = client.get(reverse("connections:sync")).content.decode()
    assert ("Not encrypted" in page) is warned
