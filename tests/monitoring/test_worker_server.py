"""The worker's metrics server and the checks that guard its settings (the real worker: test_metrics_processes)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitoring.checks import check_worker_metrics
from monitoring.worker import serve, start_worker_metrics

from ..conftest import free_port
from .conftest import TOKEN


@pytest.fixture
def worker_server(monitoring: Any) -> Iterator[str]:
    server = serve(free_port(), "127.0.0.1")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_it_serves_metrics_at_metrics_only_and_for_get_only(worker_server: str) -> None:
    assert httpx.get(f"{worker_server}/", timeout=2).status_code == 404
    assert httpx.post(f"{worker_server}/metrics", timeout=2).status_code == 405
    answer = httpx.get(f"{worker_server}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE erpsync_connector_call_duration_seconds histogram" in answer.text
    assert "erpsync_sync_runs" not in answer.text  # the database's figures are the web app's to serve


def test_it_applies_the_web_apps_access_rules(worker_server: str, monitoring: Any) -> None:
    monitoring.ERPSYNC_MONITORING_NETWORKS = ["10.0.0.0/8"]  # the test connects from loopback
    refused = httpx.get(f"{worker_server}/metrics", timeout=2)
    assert refused.status_code == 403 and refused.headers["WWW-Authenticate"] == "Bearer"
    monitoring.ERPSYNC_METRICS_TOKEN = ""
    monitoring.ERPSYNC_MONITORING_NETWORKS = []
    assert httpx.get(f"{worker_server}/metrics", timeout=2).status_code == 404


def test_a_port_already_taken_is_logged_and_the_worker_goes_on(
    monitoring: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104  (the address the worker binds)
        taken.listen(1)
        monitoring.ERPSYNC_WORKER_METRICS_PORT = taken.getsockname()[1]
        with caplog.at_level(logging.INFO, logger="monitoring.worker"):
            start_worker_metrics(sender=None)
    assert "could not be served on port" in caplog.text


def test_a_prefork_worker_without_a_multiprocess_directory_is_warned_about(
    monitoring: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with socket.socket() as taken:  # a taken port, so that no server is left running
        taken.bind(("0.0.0.0", 0))  # noqa: S104
        taken.listen(1)
        monitoring.ERPSYNC_WORKER_METRICS_PORT = taken.getsockname()[1]

        class Worker:
            pool_cls = "prefork"

        with caplog.at_level(logging.WARNING, logger="monitoring.worker"):
            start_worker_metrics(sender=Worker())
    assert "PROMETHEUS_MULTIPROC_DIR is not" in caplog.text


def test_the_system_checks_warn_of_a_worker_port_nobody_may_read_or_that_shows_nothing(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings.ERPSYNC_WORKER_METRICS_PORT = 0
    assert check_worker_metrics(None) == []
    settings.ERPSYNC_WORKER_METRICS_PORT = 9101
    settings.ERPSYNC_METRICS_TOKEN, settings.ERPSYNC_MONITORING_NETWORKS = "", []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert [message.id for message in check_worker_metrics(None)] == ["erpsync.W010", "erpsync.W011"]
    settings.ERPSYNC_METRICS_TOKEN = TOKEN
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert check_worker_metrics(None) == []
