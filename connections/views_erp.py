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
from django_htmx.http import HttpResponseClientRedirect

from connectors.client import ConnectorError
from crm.models import Company, Contact, Project

from . import linking, services
from .forms import ConfigForm
from .models import ErpConnection, Link, SyncRun
from .permissions import may_connect, may_create_in_erp, visible_connections


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


def _target(request: HttpRequest, connection_pk: int, record_pk: int, right: Any) -> tuple[ErpConnection, Any]:
    """The active connection (visible to the user) and the CRM record an ERP tab action is about."""
    connection = get_object_or_404(
        visible_connections(request.user).filter(is_active=True).select_related("connector"), pk=connection_pk
    )
    model = RECORD_MODELS.get(request.GET.get("kind") or request.POST.get("kind") or "")
    if model is None:
        raise Http404
    if not request.user.has_perm(f"crm.view_{model._meta.model_name}"):
        raise PermissionDenied
    record = get_object_or_404(model, pk=record_pk)
    if not right(request.user, connection):
        raise PermissionDenied
    return connection, record


def _language(request: HttpRequest) -> str:
    return getattr(request, "LANGUAGE_CODE", "en")


def _done(request: HttpRequest, record: Any) -> HttpResponse:
    """After linking: back to the tab, which now shows the linked section (a full page load for htmx too)."""
    url = _tab_url(record)
    return HttpResponseClientRedirect(url) if _html(request) else redirect(url)


def _linked(request: HttpRequest, link: Link, record: Any, text: str) -> HttpResponse:
    try:
        services.start_sync_now(link, request.user)
    except services.SyncRefused as refusal:
        messages.warning(request, str(refusal))
    messages.success(request, text)
    return _done(request, record)


@login_required
def connect(request: HttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
    """GET: search the ERP (simple, or advanced with ``advanced=1``). POST without ``confirm``: the values that
    differ between the record and the chosen actor. POST with ``confirm``: link with the user's choices."""
    connection, record = _target(request, connection_pk, record_pk, may_connect)
    language = _language(request)
    base = {"connection": connection, "record": record, "kind": linking.record_kind(record),
            "may_create": may_create_in_erp(request.user, connection)}  # fmt: skip
    if request.method == "POST":
        actor_type, key = request.POST.get("actor_type", ""), request.POST.get("key", "")
        try:
            if request.POST.get("confirm"):
                choices = {name.removeprefix("choice-"): str(request.POST.get(name, ""))
                           for name in request.POST if name.startswith("choice-")}  # fmt: skip
                link = linking.connect(connection, actor_type, key, record, request.user, choices, language)
                return _linked(request, link, record, _("Linked %(record)s to %(type)s %(key)s; syncing now.") % {
                    "record": record, "type": link.actor_type, "key": link.erp_key})  # fmt: skip
            comparison = linking.compare(connection, actor_type, key, record, language)
        except services.LinkRefused as refusal:
            return render(request, "connections/_erp_refused.html", {**base, "message": str(refusal),
                                                                      "linked": refusal.linked}, status=409)  # fmt: skip
        except ConnectorError as error:
            return render(request, "connections/_erp_refused.html", {**base, "problem": services.explain(error, language)},
                          status=502)  # fmt: skip
        return render(request, "connections/_erp_compare.html", {**base, "comparison": comparison,
                                                                  "actor_type": actor_type, "key": key})  # fmt: skip
    types = linking.actor_types_for(connection, record)
    if not types:
        return render(request, "connections/_erp_search.html", {**base, "result": linking.SearchResult(
            problem=services.Problem("none", _("%(name)s does not sync this kind of record.") % {"name": connection}))})  # fmt: skip
    if request.GET.get("advanced"):
        actor_type = request.GET.get("actor_type") or types[0]
        if actor_type not in types:
            raise Http404
        rows, problem = linking.criteria(connection, actor_type, request.GET, language)
        restrictions = linking.restrictions_from(rows)
        context = {**base, "rows": rows, "actor_type": actor_type, "actor_types": types, "problem": problem}
        if not request.GET.get("run"):
            return render(request, "connections/_erp_advanced.html", context)
        if any(row.error for row in rows) or not restrictions:
            context["error"] = "" if restrictions else _("Fill in at least one criterion.")
            return render(request, "connections/_erp_advanced.html", context, status=400)
        result = linking.search(connection, record, [actor_type], language, restrictions=restrictions)
        return render(request, "connections/_erp_advanced.html", {**context, "result": result})
    result = linking.search(connection, record, types, language, text=request.GET.get("q", "").strip())
    return render(request, "connections/_erp_search.html", {**base, "result": result})


@login_required
def create(request: HttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
    """Create in ERP: GET shows what will be sent and asks for the prompted values; POST creates and links."""
    connection, record = _target(request, connection_pk, record_pk, may_create_in_erp)
    language = _language(request)
    types = linking.actor_types_for(connection, record)
    actor_type = request.POST.get("actor_type") or request.GET.get("actor_type") or (types[0] if types else "")
    base = {"connection": connection, "record": record, "kind": linking.record_kind(record), "actor_types": types,
            "actor_type": actor_type}  # fmt: skip
    try:
        plan = linking.creation_plan(connection, actor_type, record)
    except services.LinkRefused as refusal:
        return render(request, "connections/_erp_refused.html", {**base, "message": str(refusal)}, status=409)
    form, problem = _prompt_form(connection, plan, request.POST if request.method == "POST" else None, language)
    context = {**base, "plan": plan, "form": form, "problem": problem}
    if request.method != "POST":
        return render(request, "connections/_erp_create.html", context)
    if not form.is_valid():
        return render(request, "connections/_erp_create.html", context, status=400)
    try:
        link = linking.create_in_erp(connection, plan, record, form.wire_values(), request.user, language)
    except services.LinkRefused as refusal:
        return render(request, "connections/_erp_refused.html", {**base, "message": str(refusal)}, status=409)
    except ConnectorError as error:
        context["problem"] = services.explain(error, language)
        return render(request, "connections/_erp_create.html", context, status=502)
    return _linked(request, link, record, _("Created %(type)s %(key)s in %(connection)s and linked %(record)s to it.") % {
        "type": link.actor_type, "key": link.erp_key, "connection": connection, "record": record})  # fmt: skip


def _prompt_form(connection: ErpConnection, plan: linking.CreationPlan, data: Any, language: str) -> tuple[ConfigForm, Any]:  # fmt: skip
    """The prompted values as a form, one widget per field type; list fields need their items from the ERP."""
    items, problem = services.read_lists(
        connection, {pr.info.list_name for pr in plan.prompts if pr.info.list_name}, language
    )
    infos = [prompt.info for prompt in plan.prompts]
    initial = ConfigForm.initial_from(infos, {prompt.field.key: prompt.initial for prompt in plan.prompts})
    return ConfigForm(data, fields=infos, list_items=items, initial=initial, prefix="ask"), problem


def _tab_url(record: Any) -> str:
    return reverse(f"crm:{record._meta.model_name}-tab", args=[record.pk, "erp"])
