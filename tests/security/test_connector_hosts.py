"""Where Sync Connectors may be: http(s) only, no credentials in the URL, hosts ERPSYNC_CONNECTOR_HOSTS allows, and
internal addresses (loopback, link-local, private, cloud metadata) only for hosts it names.

Checked when a connector is saved, and again before every call to a stored connector and at every connection, against
the address connected to, so a URL stored before the setting changed, or a name that resolves elsewhere the second
time, is refused with a message and never called. What answers at an address that is not a connector is described by
status and content type, never by its body.
"""

from __future__ import annotations

import os
import re
import socket
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
from connections.jobs import run_sync
from connectors.client import ConnectorClient, ConnectorNotAllowed, ProtocolError
from connectors.hosts import address_problem, url_problem
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp
from erpsync_admin.env import ConfigError, Env

from ..conftest import ROOT
from ..connectors.servers import answer, serving
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
def test_without_the_setting_any_host_on_the_internet_is_allowed_but_not_credentials(settings: Any) -> None:
    settings.ERPSYNC_CONNECTOR_HOSTS = []
    assert not url_errors("http://93.184.215.14:8001") and not url_errors("https://erp.anywhere.example")
    assert url_errors("http://admin:hunter2@93.184.215.14:8001")[0].startswith(CREDENTIALS)
    assert url_errors("ftp://93.184.215.14")[0] == SCHEME


INTERNAL = "an internal address (loopback, link-local, private or cloud metadata)"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8001", "127.0.0.1:8001 is at 127.0.0.1"),
        ("http://localhost:8001", "localhost:8001 is at 127.0.0.1"),  # a name is judged by what it resolves to
        ("http://[::1]:8001", "[::1]:8001 is at ::1"),
        ("http://[::ffff:127.0.0.1]:8001", "[::ffff:127.0.0.1]:8001 is at ::ffff:127.0.0.1"),
        ("http://10.20.30.40", "10.20.30.40:80 is at 10.20.30.40"),
        ("https://192.168.1.5", "192.168.1.5:443 is at 192.168.1.5"),
        ("http://172.16.0.1", "172.16.0.1:80 is at 172.16.0.1"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254:80 is at 169.254.169.254"),
        ("http://100.100.100.200", "100.100.100.200:80 is at 100.100.100.200"),
        ("http://168.63.129.16", "168.63.129.16:80 is at 168.63.129.16"),
        ("http://[fd00:ec2::254]", "[fd00:ec2::254]:80 is at fd00:ec2::254"),
        ("http://0.0.0.0:8001", "0.0.0.0:8001 is at 0.0.0.0"),
    ],
)
def test_with_the_default_empty_list_internal_addresses_are_refused(settings: Any, url: str, shown: str) -> None:
    settings.ERPSYNC_CONNECTOR_HOSTS = []
    errors = url_errors(url)
    assert len(errors) == 1 and errors[0].startswith(f"{shown}, {INTERNAL}"), errors


@pytest.mark.django_db
def test_an_internal_address_is_allowed_when_the_list_names_its_host(settings: Any) -> None:
    settings.ERPSYNC_CONNECTOR_HOSTS = ["127.0.0.1:8001", "localhost", "erp.corp.example"]
    assert not url_errors("http://127.0.0.1:8001") and not url_errors("http://localhost:9000")
    assert url_errors("http://127.0.0.1:8002")[0].startswith("127.0.0.1:8002 is not an allowed host")


@pytest.mark.django_db
def test_a_stored_connector_on_an_internal_address_is_never_called(
    settings: Any, world: World, counted: tuple[str, list[str]]
) -> None:
    """Saved before the check existed, or before the setting changed: every connection is checked again."""
    url, hits = counted
    SyncConnector.objects.filter(pk=world.connector.pk).update(url=url)
    world.connector.refresh_from_db()
    settings.ERPSYNC_CONNECTOR_HOSTS = []
    with pytest.raises(ConnectorNotAllowed, match=f"is at 127.0.0.1, {re.escape(INTERNAL)}") as refused:
        world.connector.client().get_config_data()
    assert refused.value.permanent and hits == []
    run = run_for(world.link)
    run_sync.apply(kwargs={"run_id": run.pk})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.attempts == 1 and INTERNAL in run.error
    assert hits == [], "a connector on an internal address was called"


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """rebind.example resolves to an address on the internet twice (for the form's checks), then to loopback: DNS
    rebinding."""
    answers = ["93.184.215.14", "93.184.215.14"]
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            address = answers.pop(0) if answers else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.django_db
def test_the_address_checked_is_the_address_connected_to(
    client: Client, admin_user: Any, settings: Any, counted: tuple[str, list[str]], rebinding: list[str]
) -> None:
    url, hits = counted
    rebound = url.replace("127.0.0.1", "rebind.example")
    settings.ERPSYNC_CONNECTOR_HOSTS = []
    assert url_errors(rebound) == []  # at the form's look, the name is on the internet
    client.force_login(admin_user)
    page = client.post(
        reverse("connections:connector-add"), {"name": "Rebound", "url": rebound, "secret": CONNECTOR_SECRET}
    )
    # When connecting, it resolves to loopback: the connection is refused there, and nothing is sent.
    assert f"is at 127.0.0.1, {INTERNAL}" in page.content.decode() and hits == []
    assert not SyncConnector.objects.filter(name="Rebound").exists()

    settings.ERPSYNC_CONNECTOR_HOSTS = ["rebind.example"]  # the administrator names it: then it may be internal
    saved = client.post(
        reverse("connections:connector-add"), {"name": "Rebound", "url": rebound, "secret": CONNECTOR_SECRET}
    )
    assert saved.status_code == 302 and hits == CHECKED


def test_an_answer_that_is_not_a_connectors_says_nothing_of_its_body() -> None:
    """A page of an internal service (here on loopback, which the list allows) is not repeated in any message."""
    body = b'{"service": "internal-admin", "token": "tok-7f3a9c"}'
    for app in (answer("200 OK", body), answer("404 Not Found", b"<h1>tok-7f3a9c</h1>", "text/html")):
        with serving(app) as url:
            client = ConnectorClient(url, CONNECTOR_SECRET, refusal=url_problem, address_refusal=address_problem)
            with client, pytest.raises(ProtocolError) as error:
                client.get_config_data()
        assert "tok-7f3a9c" not in str(error.value) and "internal-admin" not in str(error.value)
        assert str(error.value) in (
            "GetConfigData: HTTP 200 (application/json): a JSON object that is not a connector's envelope",
            "GetConfigData: HTTP 404 (text/html) with a body that is not JSON",
        )


# Checking a connector: GetConfigData proves it answers with the secret, its health answer names its capabilities.
CHECKED = ["/v1/get-config-data", "/v1/health"]


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
    assert SyncConnector.objects.get().url == url and hits == CHECKED


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
    assert "är inte en tillåten värd för Sync Connectors" in swedish
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
    assert hits == CHECKED  # allowed again: called again


def test_the_setting_is_read_as_host_entries_and_a_bad_one_stops_start_up() -> None:
    env = Env({"ERPSYNC_CONNECTOR_HOSTS": " ERP.example.com, *.corp.example:8001 ,[::1]:8001,, 10.0.0.5"})
    assert env.hosts("ERPSYNC_CONNECTOR_HOSTS", []) == [
        "erp.example.com",
        "*.corp.example:8001",
        "[::1]:8001",
        "10.0.0.5",
    ]
    assert Env({}).hosts("ERPSYNC_CONNECTOR_HOSTS", []) == []
    for bad in ("https://erp.example.com", "erp.example.com/v1", "erp.example.com:http", "*", "user@erp.example.com"):
        with pytest.raises(ConfigError, match="give host names or host:port"):
            Env({"ERPSYNC_CONNECTOR_HOSTS": bad}).hosts("ERPSYNC_CONNECTOR_HOSTS", [])
    environ = {**os.environ, "DEBUG": "1", "ERPSYNC_CONNECTOR_HOSTS": "https://erp.example.com"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
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
