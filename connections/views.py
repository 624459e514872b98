"""Settings and maintenance → Quote/Sync."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.views.generic import TemplateView

from connectors.models import SyncConnector

from .models import WorkerHeartbeat, heartbeat_stale_after
from .permissions import MANAGE_ERP_SYNC


class QuoteSyncTabView(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    """One tab of the Quote/Sync settings page."""

    permission_required = MANAGE_ERP_SYNC
    tab: str

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(section="settings", active_tab=self.tab, workers=list(WorkerHeartbeat.objects.all()[:20]))
        context["alive_workers"] = [w for w in context["workers"] if w.is_alive]
        context["stale_seconds"] = int(heartbeat_stale_after().total_seconds())
        return context


class SyncTab(QuoteSyncTabView):
    tab = "sync"
    template_name = "connections/quote_sync_sync.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["connectors"] = SyncConnector.objects.all()
        return context


class WorkersTab(QuoteSyncTabView):
    tab = "workers"
    template_name = "connections/quote_sync_workers.html"
