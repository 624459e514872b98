"""Who may do what in ERP sync. Object-level rules for connections come with the connections themselves."""

from __future__ import annotations

from typing import Any

MANAGE_ERP_SYNC = "connections.manage_erp_sync"
USE_ERP_SYNC = "connections.use_erp_sync"


def can_manage_erp_sync(user: Any) -> bool:
    """Admins of the Sync tab: connectors, connections, mappings, imports."""
    return user.is_authenticated and user.has_perm(MANAGE_ERP_SYNC)


def has_erp_licence(user: Any) -> bool:
    """End users who may see ERP tabs."""
    return user.is_authenticated and user.has_perm(USE_ERP_SYNC)
