"""Who may read monitoring detail: the settings that say so, and the rules that apply them."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from erpsync_admin.env import ConfigError, Env
from monitoring.permissions import MetricsAccess, address_allowed, bearer_token_matches, metrics_access

from ..conftest import ROOT
from .conftest import TOKEN


def test_networks_are_read_as_cidr_and_a_bare_address_stands_for_itself() -> None:
    env = Env({"NETS": " 10.0.0.0/8, 192.168.1.5 ,::1, 2001:db8::/32 "})
    assert env.networks("NETS", []) == ["10.0.0.0/8", "192.168.1.5/32", "::1/128", "2001:db8::/32"]
    assert Env({}).networks("NETS", ["127.0.0.0/8"]) == ["127.0.0.0/8"]
    assert Env({"NETS": ""}).networks("NETS", ["127.0.0.0/8"]) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("10.0.0.1/8", r"10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8\?"),
        ("office", "give IP addresses or networks separated by commas"),
        ("10.0.0.0/33", "give IP addresses or networks"),
    ],
)
def test_a_bad_network_names_the_variable_and_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        Env({"NETS": raw}).networks("NETS", [])
    assert str(error.value).startswith(f"NETS={raw!r} is not valid")


def test_a_short_metrics_token_is_refused_without_being_shown() -> None:
    assert Env({}).secret("TOKEN", min_length=16) == ""
    assert Env({"TOKEN": TOKEN}).secret("TOKEN", min_length=16) == TOKEN
    with pytest.raises(ConfigError, match="at least 16 characters") as error:
        Env({"TOKEN": "hunter2"}).secret("TOKEN", min_length=16)
    assert "hunter2" not in str(error.value)


def test_a_bad_monitoring_network_stops_start_up_with_one_line() -> None:
    environ = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ERPSYNC_FERNET_KEYS"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**environ, "DEBUG": "1", "ERPSYNC_MONITORING_NETWORKS": "10.0.0.0/8, prometheus"},
        timeout=60,
    )
    assert result.returncode != 0
    assert "ERPSYNC_MONITORING_NETWORKS='prometheus' is not valid" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),  # an IPv4 client of a server listening on [::]
        ("fd00::7", True),
        ("11.0.0.1", False),
        ("fe80::1", False),
        ("", False),
        ("not-an-address", False),
    ],
)
def test_an_address_is_allowed_only_inside_a_listed_network(address: str, allowed: bool) -> None:
    assert address_allowed(address, ["10.0.0.0/8", "fd00::/8"]) is allowed


def test_nothing_is_allowed_by_an_empty_list() -> None:
    assert not address_allowed("127.0.0.1", [])


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Basic {TOKEN}", False),
        ("Bearer", False),
        (None, False),
    ],
)
def test_the_token_must_be_sent_whole_as_a_bearer_token(header: str | None, matches: bool) -> None:
    assert bearer_token_matches(header, TOKEN) is matches


def test_no_header_matches_an_unset_token() -> None:
    assert not bearer_token_matches("Bearer ", "")


def test_metrics_are_off_until_a_token_or_a_network_is_set(settings: Any) -> None:
    settings.ERPSYNC_MONITORING_NETWORKS, settings.ERPSYNC_METRICS_TOKEN = [], ""
    assert metrics_access("127.0.0.1", f"Bearer {TOKEN}") is MetricsAccess.DISABLED
    settings.ERPSYNC_METRICS_TOKEN = TOKEN
    assert metrics_access("127.0.0.1", None) is MetricsAccess.FORBIDDEN
    assert metrics_access("127.0.0.1", f"Bearer {TOKEN}") is MetricsAccess.ALLOWED
    settings.ERPSYNC_METRICS_TOKEN, settings.ERPSYNC_MONITORING_NETWORKS = "", ["127.0.0.1/32"]
    assert metrics_access("127.0.0.1", None) is MetricsAccess.ALLOWED
    assert metrics_access("127.0.0.2", f"Bearer {TOKEN}") is MetricsAccess.FORBIDDEN
