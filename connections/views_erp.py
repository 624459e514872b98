"""End-user endpoints of ERP sync: Sync now for one link, and a run's progress (polled by the ERP tab)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.models import Company, Contact, Project

from . import services
from .models import Link, SyncRun
from .permissions import may_connect, visible_connections


def _run_json(run: SyncRun) -> dict[str, object]:
    return {
        "run": run.pk,
        "kind": run.kind,
        "status": run.status,
        "status_text": run.get_status_display(),
        "progress": run.progress,
        "done": run.done,
        "total": run.total,
        "changed": run.changed,
        "failed": run.failed,
        "error": run.error,
        "url": reverse("erp:run", args=[run.pk]),
    }


@login_required
@require_POST
def sync_now(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue Sync now for a link the user may see; answers the run (a new one, or the one already queued)."""
    link = get_object_or_404(Link.objects.select_related("connection"), pk=pk)
    if not visible_connections(request.user).filter(pk=link.connection_id).exists():
        raise Http404
    try:
        run, created = services.start_sync_now(link, request.user)
    except services.SyncRefused as refusal:
        if _html(request):
            return render(request, "connections/_sync_progress.html", {"error": str(refusal)})
        return JsonResponse({"error": str(refusal)}, status=409)
    if _html(request):
        return render(request, "connections/_sync_progress.html", {"run": run})
    return JsonResponse({**_run_json(run), "created": created}, status=202 if created else 200)


@login_required
@require_GET
def run_status(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(SyncRun, pk=pk)
    if not visible_connections(request.user).filter(pk=run.connection_id).exists():
        raise Http404
    if _html(request):
        changes = run.log.filter(outcome="written") if run.status not in ("queued", "running") else []
        return render(request, "connections/_sync_progress.html", {"run": run, "changes": changes})
    return JsonResponse(_run_json(run))


def _html(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


RECORD_MODELS = {"company": Company, "contact": Contact, "project": Project}


@login_required
@require_POST
def disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove only the link; nothing is deleted in the ERP. Needs the connect right on the connection."""
    link = get_object_or_404(Link.objects.select_related("connection", "company", "contact", "project"), pk=pk)
    if not visible_connections(request.user).filter(pk=link.connection_id).exists():
        raise Http404
    if not may_connect(request.user, link.connection):
        raise PermissionDenied
    record = link.crm_record
    services.unlink(link, request.user)
    messages.success(
        request, _("Disconnected %(record)s from %(connection)s.") % {"record": record, "connection": link.connection}
    )
    return redirect(_tab_url(record))


@login_required
def connect(request: HttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
    """GET: search the ERP for actors to link this record to. POST: link the chosen actor and sync it now."""
    connection = get_object_or_404(visible_connections(request.user).filter(is_active=True), pk=connection_pk)
    model = RECORD_MODELS.get(request.GET.get("kind") or request.POST.get("kind") or "")
    if model is None:
        raise Http404
    record = get_object_or_404(model, pk=record_pk)
    if not may_connect(request.user, connection):
        raise PermissionDenied
    if request.method == "POST":
        try:
            link = services.link_record(
                connection, request.POST.get("actor_type", ""), request.POST.get("key", ""), record, request.user
            )
        except services.LinkRefused as refusal:
            messages.error(request, str(refusal))
            return redirect(_tab_url(record))
        try:
            services.start_sync_now(link, request.user)
        except services.SyncRefused as refusal:
            messages.warning(request, str(refusal))
        messages.success(request, _("Linked %(record)s to %(type)s %(key)s; syncing now.") % {
            "record": record, "type": link.actor_type, "key": link.erp_key})  # fmt: skip
        return redirect(_tab_url(record))
    return render(request, "connections/_erp_search.html", services.search_for_link(connection, record, request.GET.get("q", ""),
                                                                                    getattr(request, "LANGUAGE_CODE", "en")))  # fmt: skip


def _tab_url(record: Any) -> str:
    return reverse(f"crm:{record._meta.model_name}-tab", args=[record.pk, "erp"])
