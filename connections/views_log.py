"""What the engine did: the sync log of a connection, and its failed records with Retry and Dismiss."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from . import services
from .choices import Direction, LinkStatus, LogOutcome
from .models import ErpConnection, Link, SyncLogEntry
from .views import AdminRequired


class SyncLogView(AdminRequired, View):
    """Every field the engine wrote, skipped or failed, newest first, filtered by run, record, field, direction, outcome."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        entries = SyncLogEntry.objects.filter(connection=connection).select_related(
            "run", "link__company", "link__contact", "link__project"
        )
        filters = {
            name: request.GET.get(name, "").strip() for name in ("run", "record", "field", "direction", "outcome")
        }
        if filters["run"].isdigit():
            entries = entries.filter(run_id=int(filters["run"]))
        if filters["record"]:
            word = filters["record"]
            entries = entries.filter(
                Q(erp_key__icontains=word) | Q(link__company__name__icontains=word)
                | Q(link__contact__last_name__icontains=word) | Q(link__project__name__icontains=word)
            )  # fmt: skip
        if filters["field"]:
            entries = entries.filter(Q(field_key__iexact=filters["field"]) | Q(crm_field__iexact=filters["field"]))
        if filters["direction"] in Direction.values:
            entries = entries.filter(direction=filters["direction"])
        if filters["outcome"] in LogOutcome.values:
            entries = entries.filter(outcome=filters["outcome"])
        page = Paginator(entries, 50).get_page(request.GET.get("page"))
        query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
        context = {"connection": connection, "page": page, "filters": filters, "query": query, "section": "settings",
                   "directions": Direction.choices, "outcomes": LogOutcome.choices}  # fmt: skip
        return render(request, "connections/sync_log.html", context)


class FailedRecordsView(AdminRequired, View):
    """Records whose last sync failed, grouped by error: Retry one or all, or Dismiss with a reason."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        failed = list(_failed(connection).order_by("last_error", "pk"))
        groups = [(error, list(links)) for error, links in groupby(failed, key=lambda link: link.last_error)]
        groups.sort(key=lambda group: -len(group[1]))
        context = {"connection": connection, "groups": groups, "count": len(failed), "section": "settings"}
        return render(request, "connections/failed_records.html", context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        chosen = _failed(connection)
        if request.POST.get("link", "").isdigit():
            chosen = chosen.filter(pk=int(request.POST["link"]))
        elif request.POST.get("error"):
            chosen = chosen.filter(last_error=request.POST["error"])
        links = list(chosen)
        if request.POST.get("action") == "dismiss":
            reason = request.POST.get("reason", "").strip()
            if not reason:
                messages.error(request, _("Say why the failure can be dismissed."))
                return redirect("connections:failed-records", pk=pk)
            Link.objects.filter(pk__in=[link.pk for link in links]).update(
                dismissed_at=timezone.now(), dismissed_reason=reason[:500]
            )
            services.audit(request.user, services.AuditAction.CHANGED, connection,
                           _("dismissed %(n)s failed records: %(reason)s") % {"n": len(links), "reason": reason})  # fmt: skip
            messages.success(request, _("Dismissed %(n)s records.") % {"n": len(links)})
            return redirect("connections:failed-records", pk=pk)
        queued = 0
        for link in links:
            try:
                services.start_sync_now(link, request.user)
                queued += 1
            except services.SyncRefused as refusal:
                messages.error(request, str(refusal))
                break
        if queued:
            messages.success(request, _("Queued %(n)s records to be synced again.") % {"n": queued})
        return redirect("connections:failed-records", pk=pk)


def _failed(connection: ErpConnection) -> Any:
    return (
        connection.links.filter(status__in=[LinkStatus.FAILED, LinkStatus.ERP_MISSING], dismissed_at__isnull=True)
        .select_related("company", "contact", "project")
    )  # fmt: skip


def log_for_record(record: Any, limit: int = 50) -> Any:
    """The sync log of one CRM record across its links (for the record's ERP tab)."""
    attribute = type(record).__name__.lower()
    return SyncLogEntry.objects.filter(**{f"link__{attribute}": record}).select_related("run", "connection")[:limit]
