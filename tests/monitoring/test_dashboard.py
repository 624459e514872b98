"""The sample Grafana dashboard queries only metrics the app serves."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import ROOT
from .conftest import TOKEN

DASHBOARD = ROOT / "docs" / "monitoring" / "grafana-dashboard.json"


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_is_importable_json_with_a_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert len(expressions()) >= 10


@pytest.mark.django_db
def test_every_metric_the_dashboard_queries_is_served(client: Client, monitoring: Any) -> None:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    # Families, not samples: on an empty database some families have none yet, and they still exist.
    families = {family.name for family in text_string_to_metric_families(response.content.decode())}
    queried = {name for expr in expressions() for name in re.findall(r"\berpsync_[a-z_]+", expr)}
    missing = sorted(name for name in queried if family_of(name) not in families)
    assert not missing, f"the dashboard queries metrics /metrics does not serve: {missing}"


def family_of(sample_name: str) -> str:
    """erpsync_x_seconds_bucket → erpsync_x_seconds; a counter's _total goes too, as the parser names families."""
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name
