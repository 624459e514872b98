"""Key ids (protocol v1.1): a connector holds two secrets while its secret is rotated, and the CRM moves over
to the new one with manage.py rotate_connector_secret, with every call succeeding at every step."""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.management import CommandError, call_command

from connections import services
from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorRejected
from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp
from connectors.sdk.runner import argument_parser, read_secrets

from ..conftest import DEMO_CONFIG, ROOT, start_connector
from .servers import serving
from .tiny_connector import AddressBook

STRICT_CLI = ("--strict", "--config", '{"owner": "CLI"}')
OLD = "the-old-shared-secret-0001"
NEW = "the-new-shared-secret-0002"


class KeyIds(AddressBook):
    capabilities = frozenset({p.Capability.KEY_IDS.value})


class Restartable:
    """A connector at one address whose secrets change as if it were restarted with new settings; it records the
    key id each signed call named."""

    def __init__(self, **secrets_: Any) -> None:
        self.connector = KeyIds()
        self.named: list[str] = []
        self.restart(**secrets_)

    def restart(self, **secrets_: Any) -> None:
        self.app = ConnectorApp(self.connector, **secrets_)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] not in ("/v1/health", "/v1/schema"):
            self.named.append(environ.get("HTTP_X_ERPSYNC_KEY_ID", ""))
        return self.app(environ, start_response)


def post(url: str, secret: str, key_id: str = "") -> httpx.Response:
    path, body = p.OPERATIONS["GetConfigData"].path, b"{}"
    stamp, nonce = str(int(time.time())), secrets.token_hex(8)
    headers = {
        "Content-Type": "application/json",
        p.HEADER_TIMESTAMP: stamp,
        p.HEADER_NONCE: nonce,
        p.HEADER_SIGNATURE: p.signature(secret, "POST", path, stamp, nonce, body),
    }
    if key_id:
        headers[p.HEADER_KEY_ID] = key_id
    return httpx.post(url + path, content=body, headers=headers)


def test_a_connector_with_two_secrets_checks_a_named_key_against_its_own_secret_only() -> None:
    with serving(ConnectorApp(KeyIds(), OLD, secrets={"k2": NEW})) as url:
        assert post(url, OLD).status_code == 200  # no key id: v1 signing, with the secret without an id
        assert post(url, NEW).status_code == 200  # no key id: any secret held
        assert post(url, NEW, "k2").status_code == 200
        refused = post(url, OLD, "k2")  # the right secret of another key
        assert refused.status_code == 401 and refused.json()["technical_explanation"] == "bad signature"
        unknown = post(url, NEW, "k9")
        assert unknown.status_code == 401 and unknown.json()["error_code"] == "unauthorized"
        assert "key this connector does not hold" in unknown.json()["user_explanation"]["en"]


def test_the_sdk_refuses_a_bad_key_id_or_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="not a key id"):
        ConnectorApp(KeyIds(), secrets={"no spaces": NEW})
    with pytest.raises(ValueError, match="empty secret"):
        ConnectorApp(KeyIds(), secrets={"k1": ""})
    with pytest.raises(ValueError, match="needs a shared secret"):
        ConnectorApp(KeyIds())


def test_the_command_line_takes_a_second_secret_with_its_key_id(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "old").write_text(OLD + "\n")
    (tmp_path / "new").write_text(NEW)
    parser = argument_parser("test")
    args = parser.parse_args(["--secret-file", str(tmp_path / "old")])
    assert read_secrets(args) == {"secret": OLD, "secrets": {}}
    args = parser.parse_args(
        ["--secret-file", str(tmp_path / "old"), "--next-secret-file", str(tmp_path / "new"), "--next-key-id", "k2"]
    )
    assert read_secrets(args) == {"secret": OLD, "secrets": {"k2": NEW}}
    monkeypatch.setenv("ERPSYNC_CONNECTOR_SECRET", NEW)
    monkeypatch.setenv("ERPSYNC_CONNECTOR_KEY_ID", "k2")
    assert read_secrets(parser.parse_args([])) == {"secret": None, "secrets": {"k2": NEW}}
    monkeypatch.setenv("ERPSYNC_CONNECTOR_NEXT_SECRET", OLD)
    with pytest.raises(SystemExit, match="needs --next-key-id"):
        read_secrets(parser.parse_args([]))
    monkeypatch.setenv("ERPSYNC_CONNECTOR_NEXT_KEY_ID", "k2")
    with pytest.raises(SystemExit, match="different key ids"):
        read_secrets(parser.parse_args([]))


def test_a_demo_erp_process_accepts_a_second_secret_from_its_command_line(tmp_path: Path) -> None:
    (tmp_path / "next").write_text(NEW)
    running = start_connector(
        "connectors.demo",
        tmp_path,
        OLD,
        "--data",
        str(tmp_path / "demo.sqlite3"),
        "--next-secret-file",
        str(tmp_path / "next"),
        "--next-key-id",
        "2026-05",
    )
    try:
        assert "key_ids" in httpx.get(f"{running.url}/v1/health").json()["capabilities"]
        with ConnectorClient(running.url, OLD) as old, ConnectorClient(running.url, NEW, key_id="2026-05") as new:
            assert old.test_config_data(DEMO_CONFIG).envelope.ok
            assert new.test_config_data(DEMO_CONFIG).envelope.ok
        with ConnectorClient(running.url, OLD, key_id="2026-05") as wrong, pytest.raises(ConnectorRejected):
            wrong.get_config_data()
    finally:
        running.process.stop()


def test_the_conformance_command_line_signs_with_a_key_id(tmp_path: Path) -> None:
    with serving(ConnectorApp(KeyIds(), secrets={"k7": NEW})) as url:
        done = subprocess.run(
            [sys.executable, "-m", "connectors.conformance", url, "--secret", NEW, "--key-id", "k7", *STRICT_CLI],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "PASS  key_ids: a request naming the key id k7 is accepted" in done.stdout


def rotate(connector: SyncConnector, *args: str) -> str:
    out = io.StringIO()
    call_command("rotate_connector_secret", str(connector.pk), *args, stdout=out)
    return out.getvalue()


def works(connector_id: int) -> str:
    """A call as a sync job makes it, with the connector as stored now: the key id it named."""
    connector = SyncConnector.objects.get(pk=connector_id)
    connector.client().get_config_data()
    assert services.recheck_connector(connector) is None
    return connector.key_id


@pytest.mark.django_db
def test_the_secret_is_rotated_with_no_refused_call_at_any_step(admin_user: Any, tmp_path: Path) -> None:
    served = Restartable(secret=OLD)
    with serving(served) as url:
        connector = SyncConnector(name="Rotated", url=url)
        services.save_checked_connector(connector, OLD, admin_user)
        assert works(connector.pk) == ""

        # 1. The CRM keeps a next secret under a new key id, and still signs with the old one.
        (tmp_path / "new").write_text(NEW + "\n")
        said = rotate(connector, "add", "--key-id", "2026-05", "--secret-file", str(tmp_path / "new"))
        assert "Kept the next secret under key id 2026-05" in said and NEW not in said
        connector.refresh_from_db()
        assert (connector.key_id, connector.next_key_id, connector.next_secret) == ("", "2026-05", NEW)
        assert works(connector.pk) == ""

        # Activating before the connector holds the new secret changes nothing.
        with pytest.raises(CommandError, match="did not accept the next secret"):
            rotate(connector, "activate")
        assert works(connector.pk) == ""

        # 2. The connector is restarted holding both secrets.
        served.restart(secret=OLD, secrets={"2026-05": NEW})
        assert works(connector.pk) == ""

        # 3. The CRM signs with the new key id.
        assert "now signs with key id 2026-05" in rotate(connector, "activate")
        connector.refresh_from_db()
        assert (connector.secret, connector.key_id, connector.next_secret_encrypted) == (NEW, "2026-05", "")
        served.named.clear()
        assert works(connector.pk) == "2026-05"
        assert set(served.named) == {"2026-05"}

        # 4. The old secret is removed from the connector.
        served.restart(secrets={"2026-05": NEW})
        assert works(connector.pk) == "2026-05"
        assert post(url, OLD).status_code == 401
    assert "No rotation under way" in rotate(connector, "status")


@pytest.mark.django_db
def test_the_rotation_command_explains_what_it_cannot_do(admin_user: Any) -> None:
    with serving(ConnectorApp(AddressBook(), OLD)) as url:  # names no key_ids
        connector = SyncConnector(name="Plain", url=url)
        services.save_checked_connector(connector, OLD, admin_user)
        with pytest.raises(CommandError, match="does not name the capability key_ids"):
            rotate(connector, "add", "--key-id", "k2")
    with pytest.raises(CommandError, match="Give the new secret's key id"):
        rotate(connector, "add")
    with pytest.raises(CommandError, match="is not a key id"):
        rotate(connector, "add", "--key-id", "a b")
    with pytest.raises(CommandError, match="No next secret is kept"):
        rotate(connector, "activate")
    with pytest.raises(CommandError, match="No Sync Connector 'Nobody'"):
        call_command("rotate_connector_secret", "Nobody", "status")
    connector.refresh_from_db()
    assert (connector.key_id, connector.next_secret_encrypted) == ("", "")


@pytest.mark.django_db
def test_a_generated_next_secret_is_shown_once_and_can_be_cancelled(admin_user: Any) -> None:
    with serving(ConnectorApp(KeyIds(), OLD)) as url:
        connector = SyncConnector(name="Generated", url=url)
        services.save_checked_connector(connector, OLD, admin_user)
        said = rotate(connector, "add", "--key-id", "k2")
    connector.refresh_from_db()
    assert f"New secret (shown once): {connector.next_secret}" in said and len(connector.next_secret) >= 40
    with pytest.raises(CommandError, match="already kept under key id 'k2'"):
        rotate(connector, "add", "--key-id", "k3")
    assert "Forgot the next secret (key id k2)" in rotate(connector, "cancel")
    connector.refresh_from_db()
    assert (connector.secret, connector.next_key_id, connector.next_secret_encrypted) == (OLD, "", "")
