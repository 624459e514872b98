"""Where Sync Connectors may be: ERPSYNC_CONNECTOR_HOSTS, checked when a connector is saved and before every call.

Clients for connectors are made with ``refusal=url_problem``, so a URL stored before the list changed is refused
with a message (ConnectorNotAllowed) instead of being called. The URL is read with httpx's parser, the one the client connects
with, so the host checked is the host called.
"""

from __future__ import annotations

import re

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name (ASCII, as IDNA sends it), an IPv4 address, or an IPv6 address (httpx gives it without brackets).
VALID_HOST = re.compile(r"^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|[0-9a-f:.]+)$")


def url_problem(url: str) -> str | None:
    """Why the CRM may not call a connector at ``url``, in words for the admin; None when it may."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return _("Use an http:// or https:// address.")
    if parsed.scheme not in DEFAULT_PORTS or not parsed.raw_host:
        return _("Use an http:// or https:// address.")
    if parsed.userinfo:
        return _("Leave the user name and password out of the address: the shared secret is what the connector checks.")
    allowed: list[str] = settings.ERPSYNC_CONNECTOR_HOSTS
    if not allowed:
        return None
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    if VALID_HOST.match(host) and any(_matches(entry, host, port) for entry in allowed):
        return None
    shown = f"[{host}]" if ":" in host else host
    return _("%(host)s is not an allowed host for Sync Connectors. Allowed: %(hosts)s (ERPSYNC_CONNECTOR_HOSTS).") % {
        "host": f"{shown}:{parsed.port}" if parsed.port else shown,
        "hosts": ", ".join(allowed),
    }


def _matches(entry: str, host: str, port: int) -> bool:
    """``erp.example.com`` (any port), ``erp.example.com:8001``, ``*.example.com`` (names under it), ``[::1]:8001``."""
    name, wanted_port = split_entry(entry)
    if wanted_port is not None and wanted_port != port:
        return False
    if name.startswith("*."):
        return host.endswith(name[1:])
    return host == name


def split_entry(entry: str) -> tuple[str, int | None]:
    """An entry of ERPSYNC_CONNECTOR_HOSTS as (host, port or None)."""
    if entry.startswith("["):
        name, _bracket, rest = entry[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, colon, port = entry.partition(":")
    return name, int(port) if colon else None
