"""X-Forwarded-Proto is believed only when ERPSYNC_TRUSTED_PROXIES says a proxy in front sets it.

From anyone else the header is whatever the client chose to send: a plain-http request claiming https would skip the
redirect to https and be handed Secure cookies over plain http.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory, override_settings

from ..conftest import ROOT

HOST = "crm.example.com"
SETTINGS = ROOT / "erpsync_admin" / "settings.py"


def settings_with(monkeypatch: pytest.MonkeyPatch, **environ: str) -> dict[str, Any]:
    """The settings module as it reads this environment, run afresh (the running settings stay as they are)."""
    monkeypatch.delenv("ERPSYNC_TRUSTED_PROXIES", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("erpsync_admin.settings_as_read", SETTINGS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)  # not put in sys.modules: nothing else sees it
    spec.loader.exec_module(module)
    return vars(module)


def answer(proxy_header: Any, forwarded_proto: str) -> tuple[bool, Any]:
    """A plain-http GET carrying ``X-Forwarded-Proto``, with production's redirect to https on, under the given
    SECURE_PROXY_SSL_HEADER: whether Django takes it for https, and the answer."""
    headers = {"Host": HOST, "X-Forwarded-Proto": forwarded_proto}
    with override_settings(SECURE_PROXY_SSL_HEADER=proxy_header, SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=[HOST]):
        request = RequestFactory().get("/health/", headers=headers)
        return request.is_secure(), Client().get("/health/", headers=headers)


def test_without_a_trusted_proxy_a_forwarded_proto_from_a_client_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = settings_with(monkeypatch)
    secure, response = answer(configured["SECURE_PROXY_SSL_HEADER"], "https")
    assert not secure
    assert response.status_code == 301 and response["Location"] == f"https://{HOST}/health/"
    assert configured["SECURE_PROXY_SSL_HEADER"] is None


def test_behind_a_trusted_proxy_its_forwarded_proto_makes_the_request_secure(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = settings_with(monkeypatch, ERPSYNC_TRUSTED_PROXIES="1")
    assert configured["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    secure, response = answer(configured["SECURE_PROXY_SSL_HEADER"], "https")
    assert secure and response.status_code == 200
    # The proxy's plain-http requests are still sent to https.
    secure, response = answer(configured["SECURE_PROXY_SSL_HEADER"], "http")
    assert not secure and response.status_code == 301


def test_a_bad_value_stops_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImproperlyConfigured, match="ERPSYNC_TRUSTED_PROXIES='yes'"):
        settings_with(monkeypatch, ERPSYNC_TRUSTED_PROXIES="yes")


def test_docker_compose_runs_the_app_behind_its_tls_proxy() -> None:
    """The stack publishes gunicorn on loopback only, for the TLS proxy in front: every app service trusts it."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("migrate", "web", "worker", "beat"):
        value = services[name]["environment"]["ERPSYNC_TRUSTED_PROXIES"]
        assert re.sub(r"^\$\{ERPSYNC_TRUSTED_PROXIES:-(.*)\}$", r"\1", value) == "1", name  # 1 unless .env says
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])
