"""Small faults a newcomer met in the first hour: where the shared secret comes from, and which connector a new
connection is defined with."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.models import SyncConnector

from .conftest import Connector, start_connector
from .test_sync_tab import erp_admin  # noqa: F401  (the fixture)

DEMO_SECRET = "a-demo-secret-of-some-length"


def test_demo_erp_says_at_start_where_its_shared_secret_is_and_never_prints_it(tmp_path: Path) -> None:
    running = start_connector("connectors.demo", tmp_path, DEMO_SECRET, "--data", str(tmp_path / "erp.sqlite3"))
    try:
        deadline = time.monotonic() + 10
        while "shared secret" not in running.process.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        output = running.process.output()
    finally:
        running.process.stop()
    assert f"Demo ERP's shared secret is in the file {tmp_path / 'secret'}" in output
    assert "enter it as the Shared secret when you add this Sync Connector" in output
    assert DEMO_SECRET not in output


@pytest.mark.django_db
def test_the_connector_form_says_where_the_shared_secret_comes_from_in_swedish(
    client: Any,
    erp_admin: Any,  # noqa: F811
) -> None:
    client.force_login(erp_admin)
    page = client.get(reverse("connections:connector-add"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "Den som driver Sync Connectorn anger den när den startas" in page
    assert "var/demo-connector.secret" in page


@pytest.mark.django_db
def test_a_new_connection_is_defined_with_the_connector_added_last_or_the_one_named(
    client: Any,
    erp_admin: Any,  # noqa: F811
    demo_erp: Connector,
) -> None:
    made = []
    for name in ("Demo ERP", "Zeta ERP", "Alfa ERP"):  # added in this order; listed by name
        connector = SyncConnector(name=name, url=demo_erp.url)
        connector.set_secret(demo_erp.secret)
        connector.save()
        made.append(connector)
    SyncConnector.objects.filter(pk=made[2].pk).update(deleted_at=timezone.now())  # deleted: kept, never offered
    client.force_login(erp_admin)
    page = client.get(reverse("connections:connection-add")).content.decode()
    assert f'<option value="{made[1].pk}" selected>Zeta ERP</option>' in page
    named = client.get(reverse("connections:connection-add"), {"connector": made[0].pk}).content.decode()
    assert f'<option value="{made[0].pk}" selected>Demo ERP</option>' in named
