"""Held conflicts: resolving one from the record's ERP tab, and the per-connection queue of those still held."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from .. import conflicts
from ..forms import ResolveConflictForm
from ..models import HeldConflict, SyncRun
from ..permissions import may_sync_now
from .base import AdminRequired, HtmxHttpRequest, paginate
from .erp import after_action, visible_link

QUEUE_PAGE_SIZE = 25


def _resolve(request: HtmxHttpRequest, conflict: HeldConflict) -> tuple[str, str, SyncRun | None]:
    """Resolve as the form asks: (level, what was done or why not, the Sync now run it queued)."""
    form = ResolveConflictForm(request.POST)
    if not form.is_valid():
        return "error", str(next(iter(form.errors.values()))[0]), None
    try:
        text, run = conflicts.resolve(conflict, form.cleaned_data["choice"], form.cleaned_data["value"], request.user)
    except conflicts.ConflictRefused as refusal:
        return "error", str(refusal), None
    return ("success" if run is not None else "warning"), text, run


class ResolveConflictView(LoginRequiredMixin, View):
    """Resolve one held conflict of a link from the record's ERP tab; needs the right to Sync now the link's
    connection. Answers the whole card (htmx), or the ERP tab with a message."""

    http_method_names = ["post"]

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        link = visible_link(request.user, pk)
        if not may_sync_now(request.user, link.connection):
            raise PermissionDenied
        given = request.POST.get("conflict", "")
        # Not a number (a hand-made request): no such conflict, answered like one resolved meanwhile.
        conflict = HeldConflict.objects.filter(link=link, pk=int(given)).first() if given.isdigit() else None
        record = link.crm_record
        if conflict is None:
            text = conflicts.gone_text()
            return after_action(request, record, link.connection_id, "error", text, status=400)
        level, text, run = _resolve(request, conflict)
        status = 400 if level == "error" else 200
        return after_action(request, record, link.connection_id, level, text, status=status, following=run)


class HeldConflictsView(AdminRequired, View):
    """The connection's held conflicts, oldest first, each with both values and when each side changed, and the
    three ways to resolve it."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        page = paginate(request, conflicts.open_conflicts(connection), QUEUE_PAGE_SIZE)
        page.object_list = conflicts.describe(list(page.object_list))
        context = {"connection": connection, "page": page, "section": "settings"}
        return render(request, "connections/held_conflicts.html", context)

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        conflict = conflicts.open_conflicts(connection).filter(pk=request.POST.get("conflict") or 0).first()
        if conflict is None:
            messages.error(request, conflicts.gone_text())
        else:
            level, text, _run = _resolve(request, conflict)
            messages.add_message(request, getattr(messages, level.upper()), text)
        url = reverse("connections:held-conflicts", args=[pk])
        page = request.POST.get("page", "")
        return redirect(f"{url}?page={page}" if page.isdigit() else url)
