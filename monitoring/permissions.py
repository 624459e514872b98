"""Who may read monitoring detail: logged-in admins, clients on ERPSYNC_MONITORING_NETWORKS, and (for metrics)
scrapers holding ERPSYNC_METRICS_TOKEN.

The rules work on plain strings (an address, an Authorization header) so that the Django views and the Celery
worker's own metrics server apply the very same ones.
"""

from __future__ import annotations

import enum
import functools
import hmac
import ipaddress
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from connections.permissions import can_manage_erp_sync

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsAccess(enum.Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # 403: metrics are on, but this client may not read them
    DISABLED = "disabled"  # 404: neither a token nor a network is configured


@functools.lru_cache(maxsize=8)
def _parsed(networks: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network) for network in networks)


def address_allowed(address: str | None, networks: Sequence[str]) -> bool:
    """Whether ``address`` (the direct peer, REMOTE_ADDR) is inside one of ``networks``.

    X-Forwarded-For is not read: anyone can send it. Behind a proxy the peer is the proxy, so use the token.
    """
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a server listening on [::] sees IPv4 clients as ::ffff:a.b.c.d
    return any(ip in network for network in _parsed(tuple(networks)) if network.version == ip.version)


def bearer_token_matches(authorization: str | None, token: str) -> bool:
    """Whether the Authorization header carries ``Bearer <token>``, compared in constant time."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_access(address: str | None, authorization: str | None) -> MetricsAccess:
    """Whether a client may read metrics, from its address and its Authorization header."""
    token: str = settings.ERPSYNC_METRICS_TOKEN
    networks: list[str] = settings.ERPSYNC_MONITORING_NETWORKS
    if not token and not networks:
        return MetricsAccess.DISABLED
    if bearer_token_matches(authorization, token) or address_allowed(address, networks):
        return MetricsAccess.ALLOWED
    return MetricsAccess.FORBIDDEN


def may_see_health_detail(user: Any, address: str | None, authorization: str | None) -> bool:
    """ERP sync admins (superusers included), allow-listed clients and holders of the metrics token see each
    check; anyone else only the status."""
    return (
        can_manage_erp_sync(user)
        or address_allowed(address, settings.ERPSYNC_MONITORING_NETWORKS)
        or bearer_token_matches(authorization, settings.ERPSYNC_METRICS_TOKEN)
    )


def forbidden_text() -> str:
    """Why a metrics client was refused, and what would let it in."""
    return _(
        "Send the metrics token (Authorization: Bearer …) or scrape from a network in ERPSYNC_MONITORING_NETWORKS."
    )
