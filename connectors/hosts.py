"""Where Sync Connectors may be: ERPSYNC_CONNECTOR_HOSTS, checked when a connector is saved and before every call.

Clients for connectors are made with ``refusal=url_problem``, so a URL stored before the list changed is refused
with a message (ConnectorNotAllowed) instead of being called. The URL is read with httpx's parser, the one the client connects
with, so the host checked is the host called.

Internal addresses (loopback, link-local, private networks, cloud metadata services) are refused unless the list
names the host: otherwise whoever may register a connector could have the server send requests into its own
network. Clients are made with ``address_refusal=address_problem``, which the client asks for every address it
is about to connect to, after resolving the name itself, so a name that resolves differently the second time
(DNS rebinding) gains nothing. :func:`resolution_problem` asks the same of every address a name resolves to now,
so that a connector form can say so before saving.
"""

from __future__ import annotations

import ipaddress
import re
import socket

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


# Cloud metadata services on addresses that are not otherwise internal (Alibaba's sits in the shared range, which
# is_global already refuses, Azure's wire server on a public address), and AWS's IPv6 one for clarity.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64), which is what is really reached.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_internal(address: str) -> bool:
    """Whether ``address`` (an IP address, as a socket gives it) is loopback, link-local, private, reserved,
    multicast or a cloud metadata service: anything but an ordinary address on the internet."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 zone ("%eth0") is not part of the address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (
            ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        )
        if embedded is not None:
            return is_internal(str(embedded))
    return ip in METADATA_ADDRESSES or ip.is_multicast or not ip.is_global


def named_in_list(host: str, port: int) -> bool:
    """Whether an entry of ERPSYNC_CONNECTOR_HOSTS names ``host`` (as the URL gives it) on ``port``."""
    host = host.lower().rstrip(".")
    return any(_matches(entry, host, port) for entry in settings.ERPSYNC_CONNECTOR_HOSTS)


def address_problem(host: str, port: int, address: str) -> str | None:
    """Why the CRM may not connect to ``address``, which ``host`` resolved to; None when it may.

    Asked by the client for the very address it connects to. An internal address is allowed only for a host the
    list names: the administrator of the server decided so, not whoever registered the connector."""
    if not is_internal(address) or named_in_list(host, port):
        return None
    shown = f"[{host}]" if ":" in host else host
    return _(
        "%(host)s is at %(address)s, an internal address (loopback, link-local, private or cloud metadata). "
        "Sync Connectors may be at such addresses only when ERPSYNC_CONNECTOR_HOSTS names their host."
    ) % {"host": f"{shown}:{port}", "address": address}


def resolution_problem(url: str) -> str | None:
    """Why the CRM would refuse to connect to ``url``'s host as it resolves now; None when it would connect, or
    when the name does not resolve (the connection then fails on its own, with its own message)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in DEFAULT_PORTS or not parsed.raw_host:
        return None
    host = parsed.raw_host.decode("ascii")  # as the client connects: IDNA, an IPv6 address without brackets
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for *_rest, sockaddr in found:
        problem = address_problem(host, port, str(sockaddr[0]))
        if problem:
            return problem
    return None


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
