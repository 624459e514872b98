"""Typed readers for settings taken from the environment.

Every reader raises :class:`ConfigError` naming the variable and what it accepts, so a bad
value stops start-up with a message an operator can act on instead of a traceback deep in
Django.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
# A host name or IPv4 address, or "*." and a domain, or an IPv6 address in brackets; each with an optional port.
HOST_ENTRY = re.compile(r"^(?:(?:\*\.)?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$")


class ConfigError(Exception):
    """An environment variable holds a value the application cannot use."""

    def __init__(self, name: str, value: str, allowed: str) -> None:
        self.name = name
        shown = value if len(value) <= 60 else value[:57] + "..."
        super().__init__(f"{name}={shown!r} is not valid: {allowed}.")


class Env:
    """Reads typed values from a mapping of environment variables (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return None if value is None else value.strip()

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None or raw == "" else raw

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        word = raw.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(name, raw, "use one of 1/true/yes/on or 0/false/no/off")

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None or raw == "":
            return default
        bounds = _describe_bounds(minimum, maximum)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, raw, f"expected a whole number{bounds}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(name, raw, f"expected a whole number{bounds}")
        return value

    def items(self, name: str, default: Sequence[str]) -> list[str]:
        raw = self._raw(name)
        if raw is None:
            return list(default)
        return [item.strip() for item in raw.split(",") if item.strip()]

    def hosts(self, name: str, default: Sequence[str]) -> list[str]:
        """Host names, each optionally with a port (``host:8001``, ``[::1]:8001``) or ``*.`` for the names under it."""
        hosts = [item.lower() for item in self.items(name, default)]
        for host in hosts:
            if not HOST_ENTRY.match(host):
                raise ConfigError(
                    name,
                    host,
                    "give host names or host:port separated by commas, e.g. erp.example.com, "
                    "*.example.com, 10.0.0.5:8001 or [::1]:8001 (no scheme, no path)",
                )
        return hosts

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        raw = self._raw(name)
        if raw is None or raw == "":
            return default
        if raw not in choices:
            raise ConfigError(name, raw, "use one of " + ", ".join(choices))
        return raw

    def database(self, name: str, default: str) -> dict[str, Any]:
        raw = self.text(name, default)
        scheme = urlsplit(raw).scheme
        allowed = "a URL such as postgres://user@host:5432/dbname or sqlite:///path/to/file.sqlite3"
        if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
            raise ConfigError(name, raw, allowed)
        try:
            config: dict[str, Any] = dict(dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True))
        except ValueError as e:
            raise ConfigError(name, raw, allowed) from e
        if scheme == "sqlite" and config["NAME"] in ("", ":memory:"):
            raise ConfigError(name, raw, "a SQLite database must be a file, e.g. sqlite:///var/erpsync.sqlite3")
        return config

    def broker(self, name: str, default: str) -> str:
        raw = self.text(name, default)
        scheme = urlsplit(raw).scheme
        if scheme not in {"redis", "rediss", "sqla+sqlite", "sqla+postgresql"}:
            raise ConfigError(
                name, raw, "use redis://host:6379/0 or the embedded sqla+sqlite:///path/to/broker.sqlite3"
            )
        return raw

    def networks(self, name: str, default: Sequence[str]) -> list[str]:
        """IP networks in CIDR notation (``10.0.0.0/8``, ``::1/128``); a bare address stands for itself alone."""
        networks = []
        for item in self.items(name, default):
            try:
                networks.append(str(ipaddress.ip_network(item, strict=True)))
            except ValueError:
                try:
                    hint = f" ({item} has host bits set: did you mean {ipaddress.ip_network(item, strict=False)}?)"
                except ValueError:
                    hint = ""
                raise ConfigError(
                    name,
                    item,
                    f"give IP addresses or networks separated by commas, e.g. 10.0.0.0/8, 192.168.1.5, ::1/128{hint}",
                ) from None
        return networks

    def secret(self, name: str, *, min_length: int) -> str:
        """A shared secret such as a bearer token: empty when unset, else at least ``min_length`` characters."""
        raw = self.text(name, "")
        if raw and len(raw) < min_length:
            raise ConfigError(
                name, "(hidden)", f"use at least {min_length} characters, e.g. a random 32-byte hex string"
            )
        return raw

    def http_url(self, name: str) -> str:
        """An http or https address with a host (``https://crm.example.com``), without a trailing slash; empty when
        unset."""
        raw = self.text(name, "")
        parts = urlsplit(raw)
        if raw and (parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment):
            raise ConfigError(name, raw, "use an http or https address such as https://crm.example.com")
        return raw.rstrip("/")

    def fernet_keys(self, name: str, default: Sequence[str]) -> list[str]:
        keys = self.items(name, default)
        if not keys:
            raise ConfigError(name, "", "give one or more Fernet keys separated by commas, newest first")
        for key in keys:
            try:
                Fernet(key.encode())
            except ValueError:
                raise ConfigError(
                    name, "(hidden)", "each key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
                ) from None
        return keys


def _describe_bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""
