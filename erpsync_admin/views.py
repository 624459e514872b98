"""Pages of the shell: home, Settings and maintenance."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from connections.permissions import can_manage_erp_sync


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send users to the first page they may use."""
    user = request.user
    for perm, target in (
        ("crm.view_company", "crm:company-list"),
        ("crm.view_contact", "crm:contact-list"),
        ("crm.view_project", "crm:project-list"),
    ):
        if user.has_perm(perm):
            return redirect(target)
    if can_manage_erp_sync(user):
        return redirect("settings")
    return render(request, "no_access.html", status=403)


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    if not (can_manage_erp_sync(request.user) or request.user.is_superuser):
        raise PermissionDenied
    return render(request, "settings_index.html", {"section": "settings"})
