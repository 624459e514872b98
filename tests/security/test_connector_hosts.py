"""Where Sync Connectors may be: http(s) only, no credentials in the URL, and hosts ERPSYNC_CONNECTOR_HOSTS allows.

Checked when a connector is saved, and again before every call to a stored connector, so a URL stored before the
setting changed is refused with a message and never called.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from connections import services
from connections.choices import RunStatus
from connections.forms import SyncConnectorForm
from connections.tasks import run_sync
from connectors.client import ConnectorNotAllowed
from connectors.hosts import url_problem
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp
from erpsync_admin.env import ConfigError, Env

from ..conftest import ROOT
from ..connectors.servers import serving
from ..connectors.tiny_connector import AddressBook
from ..sync_helpers import run_for
from .conftest import CONNECTOR_SECRET, World

ALLOWED = ["erp.example.com", "*.corp.example:8001", "[::1]:8001"]
NOT_ALLOWED = "is not an allowed host for Sync Connectors. Allowed: erp.example.com, *.corp.example:8001, [::1]:8001"
SCHEME = "Use an http:// or https:// address."
CREDENTIALS = "Leave the user name and password out of the address"


def url_errors(url: str) -> list[str]:
    form = SyncConnectorForm({"name": "Visma", "url": url, "secret": "s" * 20})
    form.is_valid()
    return [str(error) for error in form.errors.get("url", [])]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://erp.example.com/", SCHEME),
        ("javascript:alert(1)", "Enter a valid URL."),  # Django's URLField refuses it before the form's own rule
        ("file:///etc/passwd", "Enter a valid URL."),
        ("http://user:pass@erp.example.com", CREDENTIALS),
        ("https://erp.example.com:8443@evil.example", CREDENTIALS),  # a host that is really a user name
        ("http://other.example.com", f"other.example.com {NOT_ALLOWED}"),
        ("http://corp.example:8001", f"corp.example:8001 {NOT_ALLOWED}"),  # *. is for the names under it
        ("http://erp.corp.example:9000", f"erp.corp.example:9000 {NOT_ALLOWED}"),  # the port is part of the entry
        ("http://127.0.0.1:8001", f"127.0.0.1:8001 {NOT_ALLOWED}"),
        ("https://erp.example.com", None),
        ("http://ERP.example.com:8001/", None),  # any port: the entry names none
        ("http://erp.corp.example:8001", None),
        ("http://a.b.corp.example:8001", None),
        ("http://[::1]:8001", None),
    ],
)
def test_the_connector_form_allows_only_http_without_credentials_on_allowed_hosts(
    settings: Any, url: str, expected: str | None
) -> None:
    settings.ERPSYNC_CONNECTOR_HOSTS = ALLOWED
    errors = url_errors(url)
    if expected is None:
        assert not errors
    else:
        assert len(errors) == 1 and errors[0].startswith(expected), errors


@pytest.mark.django_db
def test_without_the_setting_any_host_is_allowed_but_not_credentials(settings: Any) -> None:
    settings.ERPSYNC_CONNECTOR_HOSTS = []
    assert not url_errors("http://10.20.30.40:8001") and not url_errors("https://erp.anywhere.example")
    assert url_errors("http://admin:hunter2@10.20.30.40:8001")[0].startswith(CREDENTIALS)
    assert url_errors("ftp://10.20.30.40")[0] == SCHEME


def counting(app: ConnectorApp, hits: list[str]) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    def wrapper(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        hits.append(environ.get("PATH_INFO", ""))
        return app(environ, start_response)

    return wrapper


@pytest.fixture
def counted() -> Iterator[tuple[str, list[str]]]:
    """A connector on loopback that counts the requests it gets."""
    hits: list[str] = []
    with serving(counting(ConnectorApp(AddressBook(), CONNECTOR_SECRET), hits)) as url:
        yield url, hits


@pytest.mark.django_db
def test_saving_a_connector_outside_the_list_is_refused_before_anything_is_sent(
    client: Client, admin_user: Any, settings: Any, counted: tuple[str, list[str]]
) -> None:
    url, hits = counted
    settings.ERPSYNC_CONNECTOR_HOSTS = ["erp.example.com"]
    client.force_login(admin_user)
    data = {"name": "Address Book", "url": url, "secret": CONNECTOR_SECRET}
    page = client.post(reverse("connections:connector-add"), data)
    assert page.status_code == 200 and b"is not an allowed host for Sync Connectors" in page.content
    assert not SyncConnector.objects.exists() and hits == []
    settings.ERPSYNC_CONNECTOR_HOSTS = ["erp.example.com", "127.0.0.1"]
    assert client.post(reverse("connections:connector-add"), data).status_code == 302
    assert SyncConnector.objects.get().url == url and hits == ["/v1/get-config-data"]


@pytest.mark.django_db
def test_a_stored_connector_outside_the_list_is_refused_at_call_time_with_a_message(
    client: Client, admin_user: Any, settings: Any, world: World, counted: tuple[str, list[str]]
) -> None:
    """The setting changed after the connector was saved: jobs, pages and the ERP tab refuse, nothing is sent."""
    url, hits = counted
    SyncConnector.objects.filter(pk=world.connector.pk).update(url=url)
    world.connection.refresh_from_db()
    settings.ERPSYNC_CONNECTOR_HOSTS = ["erp.example.com"]
    message = f"{url.removeprefix('http://')} is not an allowed host for Sync Connectors. Allowed: erp.example.com"

    run = run_for(world.link)
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.attempts == 1  # failed at once: retrying cannot help
    assert message in run.error

    client.force_login(admin_user)
    tab = client.get(reverse("crm:company-tab", args=[world.company.pk, "erp"]))
    assert message in tab.content.decode()
    # The tab asks its connectors from other threads; the reason still comes in the reader's language.
    client.cookies["django_language"] = "sv"
    swedish = client.get(reverse("crm:company-tab", args=[world.company.pk, "erp"])).content.decode()
    assert "är inte en tillåten värd för Synkkopplingar" in swedish
    client.cookies["django_language"] = "en"
    checked = client.post(reverse("connections:connector-check", args=[world.connector.pk]), follow=True)
    assert message in checked.content.decode()
    edit = client.get(reverse("connections:connection-edit", args=[world.connection.pk]))
    assert message in edit.content.decode()
    outcome = services.test_saved_connection(world.connection, admin_user)
    assert not outcome.passed and message in outcome.message
    with pytest.raises(ConnectorNotAllowed, match="is not an allowed host"):
        world.connector.client().get_config_data()
    assert hits == [], "a connector outside ERPSYNC_CONNECTOR_HOSTS was called"

    settings.ERPSYNC_CONNECTOR_HOSTS = ["erp.example.com", "127.0.0.1"]
    client.post(reverse("connections:connector-check", args=[world.connector.pk]))
    assert hits == ["/v1/get-config-data"]  # allowed again: called again


def test_the_setting_is_read_as_host_entries_and_a_bad_one_stops_start_up() -> None:
    env = Env({"ERPSYNC_CONNECTOR_HOSTS": " ERP.example.com, *.corp.example:8001 ,[::1]:8001,, 10.0.0.5"})
    assert env.hosts("ERPSYNC_CONNECTOR_HOSTS", []) == ["erp.example.com", "*.corp.example:8001", "[::1]:8001",
                                                        "10.0.0.5"]  # fmt: skip
    assert Env({}).hosts("ERPSYNC_CONNECTOR_HOSTS", []) == []
    for bad in ("https://erp.example.com", "erp.example.com/v1", "erp.example.com:http", "*", "user@erp.example.com"):
        with pytest.raises(ConfigError, match="give host names or host:port"):
            Env({"ERPSYNC_CONNECTOR_HOSTS": bad}).hosts("ERPSYNC_CONNECTOR_HOSTS", [])
    environ = {**os.environ, "DEBUG": "1", "ERPSYNC_CONNECTOR_HOSTS": "https://erp.example.com"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0 and "ERPSYNC_CONNECTOR_HOSTS='https://erp.example.com' is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_check_uses_the_host_the_client_would_connect_to(settings: Any) -> None:
    settings.ERPSYNC_CONNECTOR_HOSTS = ["*.corp.example"]
    assert url_problem("http://evil.example\\.corp.example") is not None  # not a host name
    assert url_problem("http://erp.corp.example.") is None  # the root's dot changes nothing
    assert url_problem("http://erp.corp.example@evil.example") is not None
    assert url_problem("http://evil.example#.corp.example") is not None
    assert url_problem("http://evil.example/.corp.example") is not None
    assert url_problem("http://evil.example?.corp.example") is not None
