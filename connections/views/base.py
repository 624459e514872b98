"""What every page of the connections app shares: who may open it, the request it gets, and the Quote/Sync tabs."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.paginator import Page, Paginator
from django.http import HttpRequest
from django.views.generic import TemplateView
from django_htmx.middleware import HtmxDetails

from ..models import ErpConnection, ErpConnectionQuerySet, WorkerHeartbeat, heartbeat_stale_after
from ..permissions import MANAGE_ERP_SYNC


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it: ``request.htmx`` says whether htmx sent it, and how."""

    htmx: HtmxDetails


class Language:
    """The language of the request: connectors answer in it (labels, messages)."""

    request: HttpRequest

    @property
    def language(self) -> str:
        return getattr(self.request, "LANGUAGE_CODE", "en")


class AdminRequired(LoginRequiredMixin, PermissionRequiredMixin, Language):
    """The Quote/Sync pages: ERP sync administrators only."""

    permission_required = MANAGE_ERP_SYNC

    def connections(self) -> ErpConnectionQuerySet:
        """The connections the admin may see (every one), to look a connection up from: anything else is a 404."""
        return ErpConnection.objects.visible_to(self.request.user, as_admin=True)


class QuoteSyncTabView(AdminRequired, TemplateView):
    """One tab of the Quote/Sync settings page."""

    tab: str

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(section="settings", active_tab=self.tab, workers=list(WorkerHeartbeat.objects.all()[:20]))
        context["alive_workers"] = [w for w in context["workers"] if w.is_alive]
        context["stale_seconds"] = int(heartbeat_stale_after().total_seconds())
        return context


def paginate(request: HttpRequest, items: Any, per_page: int) -> Page:
    """The page of ``items`` the query string asks for (``page``; the last for a number past it, the first for
    anything else). Templates link the pages with includes/_pagination.html, which keeps the other parameters."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))
