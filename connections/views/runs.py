"""A run's page (what it did, its progress while it runs) and undoing a run, one record or one field of it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from .. import shown
from ..choices import ACTIVE_RUN_STATUSES, UNDOABLE_RUN_KINDS, LogOutcome, RunKind, RunStatus
from ..forms import UndoScopeForm
from ..jobs import AlreadyRunning, SyncRefused
from ..models import ErpConnection, Link, SyncRun
from ..sync import undo
from .base import AdminRequired, HtmxHttpRequest, paginate

LOG_PAGE_SIZE = 50


class RunViewBase(AdminRequired, View):
    def run(self, pk: int, run_pk: int) -> tuple[ErpConnection, SyncRun]:
        connection = get_object_or_404(self.connections(), pk=pk)
        runs = connection.runs.select_related(
            "connection", "undoes", "undo_link__company", "undo_link__contact", "undo_link__project"
        )
        return connection, get_object_or_404(runs, pk=run_pk)


class RunDetailView(RunViewBase):
    """One run: kind, status, counts and the fields it wrote, skipped or failed; while it runs, the page follows
    it. An ended run that wrote fields can be undone from here, whole, per record or per field."""

    def get(self, request: HtmxHttpRequest, pk: int, run_pk: int) -> HttpResponse:
        connection, run = self.run(pk, run_pk)
        log = run.log.select_related("link__company", "link__contact", "link__project").order_by("link_id", "pk")
        page = paginate(request, log, LOG_PAGE_SIZE)
        page.object_list = shown.describe_log(page.object_list)
        undos = list(run.undos.exclude(status=RunStatus.FAILED).order_by("pk"))
        scopes = {u.undo_scope for u in undos}
        undoable = run.kind in UNDOABLE_RUN_KINDS and run.status not in ACTIVE_RUN_STATUSES and "" not in scopes
        for entry in page.object_list:
            entry.undo_record = entry.undo_field = False
            if not undoable or entry.outcome != LogOutcome.WRITTEN or entry.link is None or not entry.field_key:
                continue
            if entry.direction not in undo.WRITES or undo.scope_of(entry.link) in scopes:
                continue
            entry.undo_record = True
            entry.undo_field = undo.scope_of(entry.link, entry.field_key) not in scopes
        context = {
            "connection": connection,
            "run": run,
            "page": page,
            "active": run.status in ACTIVE_RUN_STATUSES,
            "undos": undos,
            "whole_undo": next((u for u in undos if u.undo_scope == ""), None),
            "can_undo": undoable and not undo.plan(run).empty,
            "not_reverted": run.log.filter(outcome=LogOutcome.SKIPPED).count() if run.kind == RunKind.UNDO else 0,
            "section": "settings",
        }
        return render(request, "connections/run_detail.html", context)


class RunUndoView(RunViewBase):
    """Undo a run, one record of it or one field of one record: a confirmation saying what would be put back on
    each side, then the undo run, whose page the user lands on."""

    def scope(self, run: SyncRun, data: Any) -> tuple[Link | None, str]:
        form = UndoScopeForm(data)
        if not form.is_valid():
            raise ScopeError(" ".join(str(e) for errors in form.errors.values() for e in errors))
        link_pk, field_key = form.cleaned_data["link"], form.cleaned_data["field"]
        if not link_pk:
            return None, ""
        link = Link.objects.filter(pk=link_pk, connection=run.connection).first()
        if link is None:
            raise ScopeError(_("That record is no longer linked in this connection."))
        return link, field_key

    def get(self, request: HtmxHttpRequest, pk: int, run_pk: int) -> HttpResponse:
        connection, run = self.run(pk, run_pk)
        try:
            link, field_key = self.scope(run, request.GET)
        except ScopeError as error:
            messages.error(request, str(error))
            return redirect("connections:run-detail", pk=pk, run_pk=run_pk)
        context = {
            "connection": connection,
            "run": run,
            "link": link,
            "field_key": field_key,
            "plan": undo.plan(run, link, field_key),
            "refusal": undo.refusal(run, link, field_key),
            "section": "settings",
        }
        return render(request, "connections/run_undo_confirm.html", context)

    def post(self, request: HtmxHttpRequest, pk: int, run_pk: int) -> HttpResponse:
        _connection, run = self.run(pk, run_pk)
        try:
            link, field_key = self.scope(run, request.POST)
            started = undo.queue_undo(run, request.user, link, field_key)
        except (ScopeError, SyncRefused, AlreadyRunning) as error:
            messages.error(request, str(error))
            return redirect("connections:run-detail", pk=pk, run_pk=run_pk)
        messages.success(request, _("Undo of run #%(run)s is queued.") % {"run": run.pk})
        return redirect("connections:run-detail", pk=pk, run_pk=started.pk)


class ScopeError(Exception):
    pass
