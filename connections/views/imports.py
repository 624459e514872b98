"""Settings and maintenance → Quote/Sync → Import from ERP: search, preview (the plan), import, result."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django_htmx.http import HttpResponseClientRefresh, trigger_client_event

from .. import filters, filtersets, importing, jobs, linking
from ..choices import ImportAction, MatchKind
from ..forms import CriteriaForm, ImportActionForm, ImportPreviewForm, ImportRowForm, ImportSearchForm
from ..models import ErpConnectionQuerySet, ErpImport, ImportRow, Link
from .base import AdminRequired, HtmxHttpRequest, paginate

ROWS_PAGE_SIZE = 50
PLAN_CHANGED = "import-plan-changed"  # the event the plan's counts listen for (_import_actions.html)


class ImportPage(AdminRequired, View):
    def importable(self) -> ErpConnectionQuerySet:
        """The connections an import can read from: active, and passed their last test."""
        return self.connections().filter(is_active=True, last_test_ok=True).select_related("connector")

    def erp_import(self, pk: int) -> ErpImport:
        imports = ErpImport.objects.filter(connection__in=self.connections())
        return get_object_or_404(
            imports.select_related("connection__connector", "preview_run", "import_run", "created_by"), pk=pk
        )


class ImportStartView(ImportPage):
    """Pick a connection and an actor type, search the ERP, and ask for a preview of the rows chosen (or of all)."""

    def get(self, request: HtmxHttpRequest) -> HttpResponse:
        connections = self.importable()
        context: dict[str, Any] = {
            "section": "settings",
            "connections": list(connections),
            "automatic": "",
            "imports": ErpImport.objects.filter(connection__in=self.connections()).select_related(
                "connection", "preview_run", "import_run", "created_by"
            )[:10],
        }
        search = ImportSearchForm(request.GET, connections=connections)
        search.is_valid()  # a connection that cannot be imported from is as none chosen
        connection = search.cleaned_data.get("connection")
        if connection is None:
            return render(request, "connections/import_start.html", context)
        types = importing.eligible_actor_types(connection)
        actor_type = search.cleaned_data["actor_type"]
        if actor_type not in types:
            if actor_type:  # a link from before the mapping changed
                messages.warning(
                    request,
                    _(
                        "%(type)s cannot be imported from %(name)s: its sync is off, or no "
                        "field is mapped or searchable."
                    )
                    % {"type": actor_type, "name": connection},
                )
            actor_type = types[0] if types else ""
        context.update(
            connection=connection,
            actor_types=types,
            actor_type=actor_type,
            automatic=importing.automatic_sync_refusal(connection),
        )
        if not actor_type:
            return render(request, "connections/import_start.html", context)
        rows, problem = linking.criteria(connection, actor_type, None, self.language)
        context.update(rows=rows, problem=problem)
        if not search.cleaned_data["run"]:
            return render(request, "connections/import_start.html", context)
        criteria = CriteriaForm(
            request.GET, rows=rows, empty_message=_("Fill in at least one criterion, or import every actor.")
        )
        if not criteria.is_valid():
            context["error"] = criteria.error_message
            return render(request, "connections/import_start.html", context, status=400)
        context["result"] = linking.search_erp(connection, actor_type, criteria.restrictions, self.language)
        context["description"] = describe(rows)
        return render(request, "connections/import_start.html", context)

    def post(self, request: HtmxHttpRequest) -> HttpResponse:
        form = ImportPreviewForm(request.POST, connections=self.importable())
        if not form.is_valid():
            raise Http404
        connection, actor_type = form.cleaned_data["connection"], form.cleaned_data["actor_type"]
        try:
            erp_import = importing.start_preview(
                connection,
                actor_type,
                keys=form.cleaned_data["key"],
                everything=form.everything,
                description=form.cleaned_data["description"],
                user=request.user,
                language=self.language,
            )
        except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
            query = urlencode({"connection": connection.pk, "actor_type": actor_type})
            return redirect(f"{request.path}?{query}")
        return redirect(erp_import)


def describe(rows: list[linking.Criterion]) -> str:
    """The search as words, for the list of imports: "Name contains bygg; Country is one of SE"."""
    parts = []
    for row in rows:
        if row.value or row.chosen:
            value = ", ".join(row.chosen) if row.chosen else row.value
            if row.operator == "between":
                value = f"{row.value} – {row.value2}"
            parts.append(f"{row.field.label} {filters.operator_label(row.operator)} {value}")
    return "; ".join(parts)


class ImportDetailView(ImportPage):
    """One import: its progress while the preview or the import runs, the plan to review, then the result."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        erp_import = self.erp_import(pk)
        phase = erp_import.phase
        context: dict[str, Any] = {
            "section": "settings",
            "erp_import": erp_import,
            "phase": phase,
            "summary": importing.summary(erp_import),
            "run": erp_import.current_run,
        }
        if phase in ("ready", "finished"):
            rows = filtersets.import_rows(erp_import, phase, request.GET)
            page = paginate(request, rows.qs, ROWS_PAGE_SIZE)
            shown = rows.form.cleaned_data.get("kind" if phase == "ready" else "outcome") or ""
            context.update(page=page, shown=shown, items=table_items(erp_import, list(page), phase))
        return render(request, "connections/import_detail.html", context)


def table_items(erp_import: ErpImport, rows: list[ImportRow], phase: str) -> list[dict[str, Any]]:
    """What the table shows for each row: in the plan, the field changes; in the result, the CRM record."""
    changes = importing.field_changes(erp_import, rows) if phase == "ready" else {}
    records: dict[tuple[str, str], Any] = {}
    if phase == "finished":
        links = Link.objects.filter(connection=erp_import.connection, erp_key__in=[r.erp_key for r in rows])
        records = {
            (link.actor_type, link.erp_key): link.crm_record
            for link in links.select_related("company", "contact", "project")
        }
    return [
        {
            "row": row,
            "changes": changes.get(row.pk, []),
            "record": records.get((row.actor_type, row.erp_key)),
            "choices": decision_choices(row),
        }
        for row in rows
    ]


def decision_choices(row: ImportRow) -> list[tuple[str, str, bool]]:
    """The decision select's options: (value, label, chosen). A link option is "link:<record id>"."""
    options = [("", _("Decide…"), not row.action)] if row.kind == MatchKind.AMBIGUOUS else []
    for candidate in row.candidates:
        if candidate["linked_to"]:
            continue
        label = _("Link to %(name)s (%(score)s: %(reasons)s)") % {
            "name": candidate["name"],
            "score": candidate["score"],
            "reasons": ", ".join(candidate["reasons"]),
        }
        options.append(
            (f"link:{candidate['id']}", label, row.action == ImportAction.LINK and row.target_id == candidate["id"])
        )
    options.append((ImportAction.CREATE, _("Create a new record"), row.action == ImportAction.CREATE))
    options.append((ImportAction.SKIP, _("Skip"), row.action == ImportAction.SKIP))
    return options


class ImportRowView(ImportPage):
    """One decision on one row of a plan (htmx): tick or untick it, or choose what Import does with it."""

    def post(self, request: HtmxHttpRequest, pk: int, row_pk: int) -> HttpResponse:
        erp_import = self.erp_import(pk)
        row = get_object_or_404(erp_import.rows, pk=row_pk)
        row.erp_import = erp_import
        form = ImportRowForm(request.POST)
        form.is_valid()  # both fields are optional; a decision that cannot work is refused by the plan
        error, status = "", 200
        try:
            importing.decide(
                row,
                included=form.cleaned_data["included"],
                action=form.cleaned_data["action"],
                target=form.cleaned_data["target"],
            )
        except importing.ImportRefused as refusal:
            error, status = str(refusal), 400
            row.refresh_from_db()
        item = table_items(erp_import, [row], "ready")[0]
        response = render(
            request,
            "connections/_import_row.html",
            {"item": item, "erp_import": erp_import, "phase": "ready", "error": error},
            status=status,
        )
        return trigger_client_event(response, PLAN_CHANGED)


class ImportCountsView(ImportPage):
    """The plan's counts and the Import button, refreshed after each decision (htmx)."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        erp_import = self.erp_import(pk)
        return render(
            request,
            "connections/_import_actions.html",
            {"erp_import": erp_import, "summary": importing.summary(erp_import), "phase": erp_import.phase},
        )


class ImportActionView(ImportPage):
    """Bulk decisions on the plan, Import, Retry of the failed rows, and a new preview of the same selection."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        erp_import = self.erp_import(pk)
        form = ImportActionForm(request.POST)
        form.is_valid()  # both fields are optional: an unknown action is said to be one
        action, kind = form.cleaned_data["action"], form.cleaned_data["kind"]
        try:
            if action == "import":
                importing.start_import(erp_import, request.user)
                messages.success(request, _("The import is queued."))
            elif action == "retry":
                importing.start_import(erp_import, request.user, retry=True)
                messages.success(request, _("The failed rows are queued to be imported again."))
            elif action == "prepare_again":
                return redirect(importing.prepare_again(erp_import, request.user, self.language))
            elif action in ("include", "exclude", ImportAction.CREATE, ImportAction.SKIP):
                changed = importing.decide_all(erp_import, action, kind)
                messages.success(request, _("%(n)s rows changed.") % {"n": changed})
                if kind in MatchKind.values:  # back to the rows that were shown
                    return redirect(f"{erp_import.get_absolute_url()}?{urlencode({'kind': kind})}")
            else:
                messages.error(request, _("Unknown action."))
        except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
        return redirect(erp_import)


class ImportProgressView(ImportPage):
    """The progress bar of the preview or the import (htmx polls it); reloads the page when the job is done."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        erp_import = self.erp_import(pk)
        phase = erp_import.phase
        context = {"erp_import": erp_import, "phase": phase, "run": erp_import.current_run}
        if phase not in ("preparing", "importing"):
            return HttpResponseClientRefresh()
        return render(request, "connections/_import_progress.html", context)
