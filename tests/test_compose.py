"""docker-compose.yml describes a stack whose commands are real entry points of this project.

No Docker engine runs here, so the file is checked the way the engine would read it.
"""

from __future__ import annotations

import importlib
from typing import Any

import yaml
from django.core.management import get_commands

from erpsync_admin.celery import app
from erpsync_admin.env import Env

from .conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def check_entry_point(command: list[str]) -> None:
    program, *args = command
    if program == "gunicorn":
        module, attribute = args[0].split(":")
        assert callable(getattr(importlib.import_module(module), attribute)), args[0]
    elif program == "celery":
        assert args[0] == "-A"
        assert importlib.import_module(args[1]).celery_app is app
        assert args[2] in {"worker", "beat", "inspect"}, args[2]
    elif program == "python" and args[0] == "-m":
        assert callable(importlib.import_module(f"{args[1]}.__main__").main), args[1]
    elif program == "python":
        assert args[0] == "manage.py" and (ROOT / "manage.py").exists()
        assert args[1] in get_commands(), f"manage.py has no command {args[1]!r}"
    else:
        raise AssertionError(f"unknown entry point {program!r}")


def test_the_stack_has_every_service_the_app_needs() -> None:
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "demo"} <= set(SERVICES)


def test_every_app_service_command_names_a_real_entry_point() -> None:
    for name in ("migrate", "web", "worker", "beat", "demo"):
        check_entry_point(SERVICES[name]["command"])


def test_app_services_run_on_postgres_and_redis_in_production_mode() -> None:
    for name in ("migrate", "web", "worker", "beat"):
        env = SERVICES[name]["environment"]
        assert env["DEBUG"] == "0"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
        assert "?" in env["SECRET_KEY"] and "?" in env["ERPSYNC_FERNET_KEYS"]  # refuses to start unset


def test_services_wait_for_healthy_dependencies_and_have_health_checks() -> None:
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in SERVICES[name], name
    assert SERVICES["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/health/" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def test_the_image_copies_every_project_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("erpsync_admin", "connectors", "connections", "crm", "templates", "static", "locale"):
        assert f"COPY {package} {package}" in dockerfile, package


def test_the_demo_connector_gets_its_secret_and_keeps_its_own_data() -> None:
    demo = SERVICES["demo"]
    assert "?" in demo["environment"]["ERPSYNC_CONNECTOR_SECRET"]
    assert "DATABASE_URL" not in demo["environment"]  # its own store, never the CRM's database
    assert any(volume.endswith(":/data") for volume in demo["volumes"])


def test_the_optional_tryton_services_start_a_real_tryton_and_the_connector() -> None:
    tryton, connector = SERVICES["tryton"], SERVICES["tryton-connector"]
    assert tryton["profiles"] == ["tryton"] == connector["profiles"]  # only with --profile tryton
    script = " ".join(tryton["command"])
    assert "trytond-admin -d erp" in script and "exec trytond -d erp" in script and "party_relationship" in script
    assert "?" in tryton["environment"]["TRYTON_ADMIN_PASSWORD"]
    check_entry_point(connector["command"])
    assert "?" in connector["environment"]["ERPSYNC_CONNECTOR_SECRET"]
    assert "DATABASE_URL" not in connector["environment"]


def test_app_services_allow_the_stacks_own_connectors_and_no_other_internal_host() -> None:
    """The Demo ERP and the Tryton connector have private addresses on the compose network: named, so allowed."""
    for name in ("web", "worker", "beat"):
        value = SERVICES[name]["environment"]["ERPSYNC_CONNECTOR_HOSTS"]
        default = value.removeprefix("${ERPSYNC_CONNECTOR_HOSTS:-").removesuffix("}")
        hosts = Env({"ERPSYNC_CONNECTOR_HOSTS": default}).hosts("ERPSYNC_CONNECTOR_HOSTS", [])
        assert hosts == ["demo:8001", "tryton-connector:8002"], name
