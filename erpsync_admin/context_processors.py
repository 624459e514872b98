"""Template context shared by every page: the navigator."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from connections.permissions import can_manage_erp_sync


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = [
        ("company", "crm:company-list", _("Companies"), user.has_perm("crm.view_company")),
        ("contact", "crm:contact-list", _("Contacts"), user.has_perm("crm.view_contact")),
        ("project", "crm:project-list", _("Projects"), user.has_perm("crm.view_project")),
        ("settings", "settings", _("Settings and maintenance"), can_manage_erp_sync(user) or user.is_superuser),
    ]
    return {"navigator": [(key, url, label) for key, url, label, allowed in items if allowed]}
