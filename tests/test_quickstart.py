"""The README's Quickstart: `make run` from a fresh copy serves the app, with a worker, beat and demo data."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.client import ConnectorClient, ConnectorError

from .conftest import ROOT, Process, free_port, port_open, wait_for

pytestmark = pytest.mark.slow

FIRST_RUN_LIMIT = 180  # seconds: the README promises a running app within 3 minutes


def fresh_copy(target: Path) -> Path:
    """The files a clone would have: tracked and new files, none of the local .venv or var/."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())
    return target


def _config_fields(connector: ConnectorClient) -> list[str] | None:
    try:
        return [field.key for field in connector.get_config_data().data.fields]
    except ConnectorError:
        return None


def log_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    form = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    return client.post("/login/", data={"csrfmiddlewaretoken": token[1], "username": username, "password": password})


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the project's files")
def test_make_run_serves_the_app_with_demo_data_a_working_worker_and_the_demo_connector(tmp_path: Path) -> None:
    project = fresh_copy(tmp_path / "erpsync")
    port = demo_port = free_port()
    while demo_port == port:  # the Demo ERP gets a free port of its own: port + 1 may be another program's
        demo_port = free_port()
    keep = {"PATH", "HOME", "LANG", "PIP_CACHE_DIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
    env["ERPSYNC_HEARTBEAT_SECONDS"] = "2"
    started = time.monotonic()
    app = Process(["make", "run", f"PORT={port}", f"DEMO_PORT={demo_port}"], env, project, tmp_path / "make-run.log")
    try:
        try:
            wait_for(lambda: port_open("127.0.0.1", port), FIRST_RUN_LIMIT, "make run to serve", interval=1)
        except AssertionError:
            raise AssertionError(app.output()[-4000:]) from None
        first_run = time.monotonic() - started
        output = app.output()
        assert f"http://127.0.0.1:{port}/" in output and "admin / demo" in output

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=30) as client:
            assert "Log in to erpsync" in client.get("/").text
            companies = log_in(client, "admin", "demo")
            assert companies.url.path == "/companies/", companies.text[:500]
            assert "1–25 of 200" in companies.text
            workers: Any = lambda: "Running" in client.get("/settings/quote-sync/workers/").text  # noqa: E731
            wait_for(workers, 90, "the worker to run beat's heartbeat", interval=1)
            sync_tab = client.get("/settings/quote-sync/sync/").text
            assert "Demo ERP" in sync_tab and f"http://127.0.0.1:{demo_port}" in sync_tab
        # The Demo ERP connector runs beside the app and answers with the secret seed_demo registered.
        secret = (project / "var" / "demo-connector.secret").read_text().strip()
        with ConnectorClient(f"http://127.0.0.1:{demo_port}", secret) as connector:
            fields = wait_for(lambda: _config_fields(connector), 30, "the Demo ERP connector")
            assert "api_key" in fields
        # The app may call it although it is on loopback: make run names it in ERPSYNC_CONNECTOR_HOSTS.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=30) as client:
            log_in(client, "admin", "demo")
            sync_tab = client.get("/settings/quote-sync/sync/").text
            check = re.search(
                r'action="([^"]+/check/)">\s*<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)"', sync_tab
            )
            assert check, sync_tab[:2000]
            checked = client.post(check[1], data={"csrfmiddlewaretoken": check[2]}).text
            assert "Demo ERP answers as a Sync Connector." in checked, checked[:2000]
        print(f"make run: first run served the login page after {first_run:.0f} s")
    finally:
        os.killpg(app.popen.pid, signal.SIGINT)  # what Ctrl+C sends
        try:
            app.popen.wait(30)
        finally:
            app.stop()
    assert not port_open("127.0.0.1", port), "the web server kept running after Ctrl+C"
    assert (project / "var" / "erpsync.sqlite3").exists()
