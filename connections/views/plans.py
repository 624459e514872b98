"""A plan before bulk work (``connections.sync.plan``): made from the connection's page, reviewed like an import's
preview (counts, filters, per-field detail), then approved (run as planned) or discarded."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django_htmx.http import HttpResponseClientRefresh

from .. import filtersets, jobs, shown
from ..choices import PlanOutcome, RunKind
from ..forms import BulkRunForm, PlanActionForm
from ..models import PlanRow, SyncRun
from ..sync import plan as plans
from .base import AdminRequired, HtmxHttpRequest, paginate

ROWS_PAGE_SIZE = 50
CHANGED_SHOWN = 200  # the fields changed since the plan listed after its run


def plan_url(plan: SyncRun) -> str:
    return reverse("connections:plan", args=[plan.pk])


class PlanPage(AdminRequired, View):
    def plan(self, pk: int) -> SyncRun:
        found = SyncRun.objects.filter(kind=RunKind.PLAN, connection__in=self.connections())
        return get_object_or_404(found.select_related("connection__connector", "created_by"), pk=pk)


class ConnectionPlanView(AdminRequired, View):
    """ "Plan first" beside Sync all and Resync from CRM: queues the plan and opens its page."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk)
        form = BulkRunForm(request.POST)
        form.is_valid()  # both fields are optional: anything but "resync" is Sync all
        try:
            made = plans.queue_plan(
                connection, form.cleaned_data["kind"], request.user, keep_non_blank=form.cleaned_data["keep_non_blank"]
            )
        except (jobs.SyncRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
            return redirect(connection)
        return redirect(plan_url(made))


def described(plan: SyncRun, rows: list[PlanRow]) -> list[PlanRow]:
    """Each row's field label and values as the reader reads them (as the sync log shows them), and for a field
    changed since the plan, the values the rule found then."""
    for row in rows:
        row.connection_id = plan.connection_id  # type: ignore[attr-defined]  # what describe_log reads
    shown.describe_log(rows)
    now = [
        SimpleNamespace(
            connection_id=plan.connection_id,
            actor_type=r.actor_type,
            field_key=r.field_key,
            old=r.now_old,
            new=r.now_new,
        )
        for r in rows
    ]
    shown.describe_log(now)
    for row, current in zip(rows, now, strict=True):
        row.now_old_text, row.now_new_text = current.old_text, current.new_text  # type: ignore[attr-defined]
    return rows


def field_choices(plan: SyncRun) -> list[tuple[str, str]]:
    """The fields in the plan, (key, label in the reader's language), for the field filter."""
    found = plan.plan_rows.values_list("actor_type", "field_key").distinct().order_by("field_key")
    fields = [
        SimpleNamespace(connection_id=plan.connection_id, actor_type=t, field_key=k, old=None, new=None)
        for t, k in found
    ]
    labels: dict[str, str] = {}
    for field in shown.describe_log(fields):
        labels.setdefault(field.field_key, field.field_label)
    return sorted(labels.items(), key=lambda item: str(item[1]).lower())


class PlanDetailView(PlanPage):
    """The plan: progress while it is made; then its totals, filters and rows, with Approve and run and Discard;
    once run, what became of each field and the fields that changed since the plan."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        plan = self.plan(pk)
        phase = plans.phase(plan)
        context: dict[str, Any] = {
            "section": "settings",
            "plan": plan,
            "connection": plan.connection,
            "phase": phase,
            "planned_kind": RunKind(plan.planned_kind).label if plan.planned_kind else "",
            "execution": plans.execution_of(plan),
            "max_age": settings.ERPSYNC_PLAN_MAX_AGE_HOURS,
        }
        if phase not in ("computing", "failed"):
            fields = field_choices(plan)
            rows = filtersets.plan_rows(plan, request.GET, fields)
            page = paginate(request, rows.qs.select_related(None), ROWS_PAGE_SIZE)
            changed = list(plan.plan_rows.filter(outcome=PlanOutcome.CHANGED).order_by("record_name", "pk"))
            context.update(
                totals=plans.totals(plan),
                fields=fields,
                filters=rows.form,
                directions=rows.filters["direction"].extra["choices"],
                outcomes=rows.filters["outcome"].extra["choices"],
                filtered=any(request.GET.get(name) for name in ("direction", "field", "record", "outcome")),
                page=page,
                rows=described(plan, list(page)),
                changed=described(plan, changed[:CHANGED_SHOWN]),
                refusal=plans.approval_refusal(plan) if phase == "ready" else "",
            )
        return render(request, "connections/plan_detail.html", context)


class PlanProgressView(PlanPage):
    """The progress bar while the plan is made or carried out (htmx polls it); reloads the page when it is done."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        plan = self.plan(pk)
        phase = plans.phase(plan)
        if phase not in ("computing", "running"):
            return HttpResponseClientRefresh()
        run = plan if phase == "computing" else plans.execution_of(plan)
        return render(request, "connections/_plan_progress.html", {"plan": plan, "phase": phase, "run": run})


class PlanActionView(PlanPage):
    """Approve and run, Discard, or Plan again (the same bulk work, planned anew)."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        plan = self.plan(pk)
        form = PlanActionForm(request.POST)
        form.is_valid()
        action = form.cleaned_data["action"]
        try:
            if action == "approve":
                run = plans.approve(plan, request.user)
                messages.success(
                    request,
                    _("%(kind)s of %(name)s is queued: it carries out this plan.")
                    % {"kind": run.get_kind_display(), "name": plan.connection},
                )
            elif action == "discard":
                connection = plan.connection
                plans.discard(plan)
                messages.success(request, _("The plan is discarded."))
                return redirect(connection)
            elif action == "again":
                made = plans.queue_plan(
                    plan.connection, plan.planned_kind, request.user, keep_non_blank=plan.keep_non_blank
                )
                return redirect(plan_url(made))
            else:
                messages.error(request, _("Unknown action."))
        except (jobs.SyncRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
        return redirect(plan_url(plan))
