"""Who may do what in ERP sync: the licence and admin permissions, and each connection's visibility grants."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from .choices import Visibility
from .models import MANAGE_ERP_SYNC, USE_ERP_SYNC, ErpConnection

__all__ = [
    "MANAGE_ERP_SYNC",
    "USE_ERP_SYNC",
    "can_manage_erp_sync",
    "connectable",
    "has_erp_licence",
    "may_connect",
    "may_create_in_erp",
    "may_sync_now",
    "visible_connections",
]


def can_manage_erp_sync(user: Any) -> bool:
    """Admins of the Sync tab: connectors, connections, mappings, imports."""
    return bool(user.is_authenticated and user.has_perm(MANAGE_ERP_SYNC))


def has_erp_licence(user: Any) -> bool:
    """End users who may see ERP tabs."""
    return bool(user.is_authenticated and user.has_perm(USE_ERP_SYNC))


def visible_connections(user: Any) -> QuerySet[ErpConnection]:
    """The connections a licensed user may see: those for everyone, and those granted to them or their groups.

    The rule itself is ``ErpConnection.objects.visible_to``, so that a list can start from it at its call site."""
    return ErpConnection.objects.visible_to(user)


def _right(user: Any, connection: ErpConnection, everyone_flag: bool, codename: str) -> bool:
    if not ErpConnection.objects.visible_to(user).filter(pk=connection.pk).exists():
        return False
    if connection.visibility == Visibility.EVERYONE:
        return everyone_flag
    return bool(user.has_perm(f"connections.{codename}", connection))


def may_sync_now(user: Any, connection: ErpConnection) -> bool:
    """May sync links of ``connection`` now (and resolve its held conflicts, which syncs them): an end user who may
    see it, or an ERP sync administrator."""
    return ErpConnection.objects.visible_to(user).filter(pk=connection.pk).exists() or can_manage_erp_sync(user)


def may_connect(user: Any, connection: ErpConnection) -> bool:
    """May link and unlink CRM records to ERP actors through ``connection``."""
    return _right(user, connection, connection.everyone_can_connect, "connect_erpconnection")


def may_create_in_erp(user: Any, connection: ErpConnection) -> bool:
    """May create new ERP actors through ``connection``."""
    return _right(user, connection, connection.everyone_can_create, "create_in_erp_erpconnection")


def connectable(user: Any, connections: list[ErpConnection], right: str = "connect") -> set[int]:
    """Which of these (visible) connections the user has ``right`` in ("connect": link and disconnect
    records; "create": create ERP actors), in one query."""
    flag, codename = {
        "connect": ("everyone_can_connect", "connect_erpconnection"),
        "create": ("everyone_can_create", "create_in_erp_erpconnection"),
    }[right]
    allowed = {c.pk for c in connections if c.visibility == Visibility.EVERYONE and getattr(c, flag)}
    specified = [c.pk for c in connections if c.visibility == Visibility.SPECIFIED]
    if specified:
        granted = get_objects_for_user(
            user,
            f"connections.{codename}",
            klass=ErpConnection.objects.filter(pk__in=specified),
            accept_global_perms=False,
        )
        allowed.update(granted.values_list("pk", flat=True))
    return allowed
