"""The conformance kit passes against the Demo ERP process over loopback HTTP, and its command line works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from connectors import protocol as p
from connectors.client import ConnectorClient
from connectors.conformance import run_conformance
from connectors.demo.seed import dump, seed
from connectors.demo.store import Store

from ..conftest import DEMO_CONFIG, ROOT, InProcessConnector, RunningConnector


def test_the_demo_connector_passes_the_whole_contract(demo_connector: RunningConnector) -> None:
    report = run_conformance(demo_connector.url, demo_connector.secret, DEMO_CONFIG)
    assert report.ok, "\n".join(line for line in report.lines() if not line.startswith("PASS"))
    names = " | ".join(check.name for check in report.checks)
    for operator in ("begins", "not_contains", "between", "one_of", "not_one_of", "before_or_equal", "gte"):
        assert f" {operator}" in names
    assert len(report.checks) > 200


def test_the_command_line_prints_a_report_and_exits_with_its_verdict(demo_connector: RunningConnector) -> None:
    good = subprocess.run(
        [
            sys.executable,
            "-m",
            "connectors.conformance",
            demo_connector.url,
            "--secret",
            demo_connector.secret,
            "--config",
            '{"client_name": "CLI", "api_key": "demo-api-key", "company_number": 1}',
            "--read-only",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0, good.stdout[-2000:]
    assert good.stdout.strip().splitlines()[-1].endswith("passed, 0 failed")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "connectors.conformance",
            demo_connector.url,
            "--secret",
            "the-wrong-secret-0000",
            "--config",
            "{}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert (
        "FAIL  GetConfigData describes the configuration fields: ConnectorRejected: GetConfigData: unauthorized"
        in bad.stdout
    )


def test_demo_configuration_errors_explain_themselves_in_both_languages(demo_erp: InProcessConnector) -> None:
    with ConnectorClient(demo_erp.url, demo_erp.secret, language="sv") as client:
        try:
            client.test_config_data({**DEMO_CONFIG, "company_number": 7})
        except Exception as e:
            assert getattr(e, "user_text")("sv") == "Företag 7 finns inte i Demo ERP; det har företag 1."  # noqa: B009
            assert getattr(e, "user_text")("en") == "Company 7 does not exist in Demo ERP; it has company 1."  # noqa: B009
        else:
            raise AssertionError("company 7 was accepted")
        warning = client.test_config_data({**DEMO_CONFIG, "vat_rate": 17.0}).envelope
        assert warning.ok and warning.state == p.State.WARNING and "17.0 %" in warning.user_explanation["en"]


def test_the_seed_is_deterministic_and_only_fills_an_empty_store(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "a.sqlite3"), Store(tmp_path / "b.sqlite3")
    assert seed(first, 500) == 500 and seed(second, 500) == 500
    assert dump(first) == dump(second)
    assert seed(first, 800) == 0 and first.count() == 500


def test_demo_erp_describes_its_configuration_in_the_callers_language(demo_erp: InProcessConnector) -> None:
    with ConnectorClient(demo_erp.url, demo_erp.secret, language="sv") as client:
        labels = {field.key: field.label for field in client.get_config_data().data.fields}
    assert labels["api_key"] == "API-nyckel" and labels["company_number"] == "Företagsnummer"
