"""A Swedish admin in real Chromium sets how many parts of bulk work a Sync Connector takes at once: the field and
its help are in Swedish, a value out of range is refused in Swedish and changes nothing, and a good one is saved
with the secret kept."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from connectors.models import SyncConnector

from .conftest import RunningConnector
from .sync_helpers import active_connection
from .test_browser import browser  # noqa: F401  (the browser fixture)
from .test_first_hour_browser import swedish_admin  # noqa: F401  (the Swedish admin's page)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_swedish_admin_sets_the_parts_a_connector_takes_at_once(
    swedish_admin: Any,  # noqa: F811
    demo_connector: RunningConnector,
) -> None:
    connector = active_connection(demo_connector).connector
    secret = connector.secret
    page = swedish_admin
    page.goto(reverse("connections:connector-edit", args=[connector.pk]))
    field = page.get_by_label("Delar som bearbetas samtidigt")
    expect(field).to_have_value("4")
    expect(page.get_by_text("Högst så här många delar av den här Sync Connectorns ERP-kopplingar")).to_be_visible()

    field.fill("0")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_text("större än eller lika med 1")).to_be_visible()
    assert SyncConnector.objects.get(pk=connector.pk).max_parallel_parts == 4

    page.get_by_label("Delar som bearbetas samtidigt").fill("2")
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("heading", name="Offert/Synk")).to_be_visible()
    saved = SyncConnector.objects.get(pk=connector.pk)
    assert (saved.max_parallel_parts, saved.secret) == (2, secret)
    body = page.locator("main").inner_text()
    assert "parts worked on" not in body and "Bulk work" not in body
