"""Settings and maintenance → Quote/Sync: the Sync tab (connectors and connections), sync settings, workers."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from connectors.models import SyncConnector

from .. import mapping, services
from ..forms import AutomaticSyncForm, PriorityMoveForm
from ..models import SyncSettings
from .base import HtmxHttpRequest, QuoteSyncTabView


class SyncTab(QuoteSyncTabView):
    tab = "sync"
    template_name = "connections/quote_sync_sync.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["connectors"] = SyncConnector.objects.all()
        context["connections"] = self.connections().select_related("connector")
        context["deleted_connections"] = [
            (connection, services.purge_due(connection))
            for connection in services.deleted_connections().order_by("-deleted_at")
        ]
        return context


class SyncSettingsTab(QuoteSyncTabView):
    """Sync priority (the order that decides conflicts, the CRM being one entry) and automatic sync."""

    tab = "settings"
    template_name = "connections/quote_sync_settings.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = mapping.priority_entries()
        context["settings_row"] = SyncSettings.load()
        return context

    def post(self, request: HtmxHttpRequest) -> HttpResponse:
        if AutomaticSyncForm.is_submitted(request.POST):
            return self.save_automatic(request)
        form = PriorityMoveForm(request.POST)
        form.is_valid()  # every field is optional: a bad entry is refused by the move itself
        try:
            mapping.move_priority(form.cleaned_data["entry"], form.up, request.user)
        except mapping.MappingInvalid as invalid:
            messages.error(request, str(invalid))
        if request.htmx:
            return render(request, "connections/_priority.html", {"entries": mapping.priority_entries()})
        return redirect("connections:sync-settings")

    def save_automatic(self, request: HtmxHttpRequest) -> HttpResponse:
        form = AutomaticSyncForm(request.POST, instance=SyncSettings.load())
        if not form.is_valid():
            for message in form.errors.values():
                messages.error(request, str(message[0]))
            return redirect("connections:sync-settings")
        services.save_automatic_sync(
            form.cleaned_data["automatic_sync"], form.cleaned_data["interval_minutes"], request.user
        )
        messages.success(request, _("Saved. Workers apply it within a minute; nothing needs a restart."))
        return redirect("connections:sync-settings")


class WorkersTab(QuoteSyncTabView):
    tab = "workers"
    template_name = "connections/quote_sync_workers.html"
