"""Monitoring fixtures: settings that say who may look, a real connector on loopback, and reading /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from connectors.models import SyncConnector
from connectors.sdk import ConnectorApp

from ..connectors.servers import serving
from ..connectors.tiny_connector import AddressBook
from ..factories import ErpConnectionFactory, SyncConnectorFactory

TOKEN = "metrics-token-for-tests-7f3a9c51"
CONNECTOR_SECRET = "monitoring-connector-secret-61b2"
OUTSIDE = "203.0.113.9"  # an address on no allow-list (TEST-NET-3)


@pytest.fixture
def monitoring(settings: Any) -> Any:
    """Loopback is allowed, and the metrics token is set: what each test starts from, whatever the environment."""
    settings.ERPSYNC_MONITORING_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.ERPSYNC_METRICS_TOKEN = TOKEN
    settings.ERPSYNC_HEARTBEAT_SECONDS = 30
    return settings


@pytest.fixture(scope="session")
def address_book() -> Iterator[str]:
    """A real SDK connector served over HTTP on loopback, with its own shared secret; yields its URL."""
    with serving(ConnectorApp(AddressBook(), CONNECTOR_SECRET), threads=8) as url:
        yield url


def connector_with_active_connection(
    name: str, url: str, secret: str = CONNECTOR_SECRET, active: bool = True
) -> SyncConnector:
    connector = SyncConnectorFactory.create(name=name, url=url, secret=secret)
    ErpConnectionFactory.create(name=f"{name} connection", connector=connector, is_active=active)
    return connector


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: Client) -> Samples:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return parse(response.content.decode())
