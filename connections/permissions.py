"""Who may do what in ERP sync: the licence and admin permissions, and each connection's visibility grants."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .choices import Visibility

if TYPE_CHECKING:
    from .models import ErpConnection

MANAGE_ERP_SYNC = "connections.manage_erp_sync"
USE_ERP_SYNC = "connections.use_erp_sync"


def can_manage_erp_sync(user: Any) -> bool:
    """Admins of the Sync tab: connectors, connections, mappings, imports."""
    return bool(user.is_authenticated and user.has_perm(MANAGE_ERP_SYNC))


def has_erp_licence(user: Any) -> bool:
    """End users who may see ERP tabs."""
    return bool(user.is_authenticated and user.has_perm(USE_ERP_SYNC))


def visible_connections(user: Any) -> QuerySet[ErpConnection]:
    """The connections a licensed user may see: those for everyone, and those granted to them or their groups."""
    from .models import ErpConnection

    if not has_erp_licence(user):
        return ErpConnection.objects.none()
    granted = get_objects_for_user(
        user,
        "connections.view_erpconnection",
        klass=ErpConnection.objects.filter(visibility=Visibility.SPECIFIED),
        accept_global_perms=False,
    )
    return ErpConnection.objects.filter(Q(visibility=Visibility.EVERYONE) | Q(pk__in=granted.values("pk")))


def _right(user: Any, connection: ErpConnection, everyone_flag: bool, codename: str) -> bool:
    if not visible_connections(user).filter(pk=connection.pk).exists():
        return False
    if connection.visibility == Visibility.EVERYONE:
        return everyone_flag
    return bool(user.has_perm(f"connections.{codename}", connection))


def may_connect(user: Any, connection: ErpConnection) -> bool:
    """May link and unlink CRM records to ERP actors through ``connection``."""
    return _right(user, connection, connection.everyone_can_connect, "connect_erpconnection")


def may_create_in_erp(user: Any, connection: ErpConnection) -> bool:
    """May create new ERP actors through ``connection``."""
    return _right(user, connection, connection.everyone_can_create, "create_in_erp_erpconnection")


def connectable(user: Any, connections: list[ErpConnection], right: str = "connect") -> set[int]:
    """Which of these (visible) connections the user has ``right`` in ("connect": link and disconnect
    records; "create": create ERP actors), in one query."""
    from .models import ErpConnection

    flag, codename = {"connect": ("everyone_can_connect", "connect_erpconnection"),
                      "create": ("everyone_can_create", "create_in_erp_erpconnection")}[right]  # fmt: skip
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
