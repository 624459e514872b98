"""End-user endpoints of ERP sync: Sync now for one link, and a run's progress (polled by the ERP tab)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import services
from .models import Link, SyncRun
from .permissions import visible_connections


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
def sync_now(request: HttpRequest, pk: int) -> JsonResponse:
    """Queue Sync now for a link the user may see; answers the run (a new one, or the one already queued)."""
    link = get_object_or_404(Link.objects.select_related("connection"), pk=pk)
    if not visible_connections(request.user).filter(pk=link.connection_id).exists():
        raise Http404
    try:
        run, created = services.start_sync_now(link, request.user)
    except services.SyncRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=409)
    return JsonResponse({**_run_json(run), "created": created}, status=202 if created else 200)


@login_required
@require_GET
def run_status(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(SyncRun, pk=pk)
    if not visible_connections(request.user).filter(pk=run.connection_id).exists():
        raise Http404
    return JsonResponse(_run_json(run))
