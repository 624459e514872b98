"""Settings and maintenance → Quote/Sync → Import from ERP: search, preview (the plan), import, result."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from . import importing, jobs, linking
from .choices import ImportAction, ImportOutcome, MatchKind
from .models import ErpConnection, ErpImport, ImportRow, Link
from .views import AdminRequired

PAGE_SIZE = 50


def _connections() -> Any:
    return ErpConnection.objects.filter(is_active=True, last_test_ok=True).select_related("connector")


class ImportStartView(AdminRequired, View):
    """Pick a connection and an actor type, search the ERP, and ask for a preview of the rows chosen (or of all)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        connections = list(_connections())
        context: dict[str, Any] = {
            "section": "settings", "connections": connections, "automatic": importing.automatic_sync_refusal(),
            "imports": ErpImport.objects.select_related("connection", "preview_run", "import_run", "created_by")[:10],
        }  # fmt: skip
        connection = next((c for c in connections if str(c.pk) == request.GET.get("connection")), None)
        if connection is None:
            return render(request, "connections/import_start.html", context)
        types = importing.eligible_actor_types(connection)
        actor_type = request.GET.get("actor_type") or ""
        if actor_type not in types:
            if actor_type:  # a link from before the mapping changed
                messages.warning(request, _("%(type)s cannot be imported from %(name)s: its sync is off, or no "
                                            "field is mapped or searchable.") % {"type": actor_type, "name": connection})  # fmt: skip
            actor_type = types[0] if types else ""
        context.update(connection=connection, actor_types=types, actor_type=actor_type)
        if not actor_type:
            return render(request, "connections/import_start.html", context)
        rows, problem = linking.criteria(connection, actor_type, request.GET if request.GET.get("run") else None,
                                         self.language)  # fmt: skip
        context.update(rows=rows, problem=problem)
        if not request.GET.get("run"):
            return render(request, "connections/import_start.html", context)
        restrictions = linking.restrictions_from(rows)
        if any(row.error for row in rows) or not restrictions:
            context["error"] = "" if restrictions else _("Fill in at least one criterion, or import every actor.")
            return render(request, "connections/import_start.html", context, status=400)
        context["result"] = linking.search_erp(connection, actor_type, restrictions, self.language)
        context["description"] = describe(rows)
        return render(request, "connections/import_start.html", context)

    def post(self, request: HttpRequest) -> HttpResponse:
        raw = request.POST.get("connection", "")
        connection = get_object_or_404(_connections(), pk=int(raw) if raw.isdigit() else 0)
        everything = request.POST.get("scope") == "all"
        try:
            erp_import = importing.start_preview(
                connection, request.POST.get("actor_type", ""), keys=request.POST.getlist("key"),
                everything=everything, description=request.POST.get("description", ""), user=request.user,
                language=self.language,
            )  # fmt: skip
        except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
            query = urlencode({"connection": connection.pk, "actor_type": request.POST.get("actor_type", "")})
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
            parts.append(f"{row.field.label} {linking.operator_label(row.operator)} {value}")
    return "; ".join(parts)


class ImportDetailView(AdminRequired, View):
    """One import: its progress while the preview or the import runs, the plan to review, then the result."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        erp_import = _import(pk)
        phase = erp_import.phase
        context: dict[str, Any] = {"section": "settings", "erp_import": erp_import, "phase": phase,
                                   "summary": importing.summary(erp_import), "run": erp_import.current_run}  # fmt: skip
        if phase in ("ready", "finished"):
            context.update(self._rows(request, erp_import, phase))
        return render(request, "connections/import_detail.html", context)

    def _rows(self, request: HttpRequest, erp_import: ErpImport, phase: str) -> dict[str, Any]:
        rows = erp_import.rows.all()
        if phase == "ready":
            shown = request.GET.get("kind", "")
            if shown == "undecided":
                rows = importing.undecided(erp_import)
            elif shown in MatchKind.values:
                rows = rows.filter(kind=shown)
        else:
            shown = request.GET.get("outcome", "")
            if shown in ImportOutcome.values:
                rows = rows.filter(outcome=shown)
        page = Paginator(rows.order_by("level", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
        items = list(page.object_list)
        filter_name = "kind" if phase == "ready" else "outcome"
        return {"page": page, "shown": shown, "query": urlencode({filter_name: shown}) if shown else "",
                "items": _items(erp_import, items, phase)}  # fmt: skip


def _import(pk: int) -> ErpImport:
    return get_object_or_404(
        ErpImport.objects.select_related("connection__connector", "preview_run", "import_run", "created_by"), pk=pk
    )


def _items(erp_import: ErpImport, rows: list[ImportRow], phase: str) -> list[dict[str, Any]]:
    """What the table shows for each row: in the plan, the field changes; in the result, the CRM record."""
    changes = importing.field_changes(erp_import, rows) if phase == "ready" else {}
    records: dict[tuple[str, str], Any] = {}
    if phase == "finished":
        links = Link.objects.filter(connection=erp_import.connection, erp_key__in=[r.erp_key for r in rows])
        records = {(link.actor_type, link.erp_key): link.crm_record
                   for link in links.select_related("company", "contact", "project")}  # fmt: skip
    return [{"row": row, "changes": changes.get(row.pk, []), "record": records.get((row.actor_type, row.erp_key)),
             "choices": _choices(row)} for row in rows]  # fmt: skip


def _choices(row: ImportRow) -> list[tuple[str, str, bool]]:
    """The decision select's options: (value, label, chosen). A link option is "link:<record id>"."""
    options = [("", _("Decide…"), not row.action)] if row.kind == MatchKind.AMBIGUOUS else []
    for candidate in row.candidates:
        if candidate["linked_to"]:
            continue
        label = _("Link to %(name)s (%(score)s: %(reasons)s)") % {
            "name": candidate["name"], "score": candidate["score"], "reasons": ", ".join(candidate["reasons"])}  # fmt: skip
        options.append((f"link:{candidate['id']}", label,
                        row.action == ImportAction.LINK and row.target_id == candidate["id"]))  # fmt: skip
    options.append((ImportAction.CREATE, _("Create a new record"), row.action == ImportAction.CREATE))
    options.append((ImportAction.SKIP, _("Skip"), row.action == ImportAction.SKIP))
    return options


class ImportRowView(AdminRequired, View):
    """One decision on one row of a plan (htmx): tick or untick it, or choose what Import does with it."""

    def post(self, request: HttpRequest, pk: int, row_pk: int) -> HttpResponse:
        erp_import = _import(pk)
        row = get_object_or_404(erp_import.rows, pk=row_pk)
        row.erp_import = erp_import
        choice = request.POST.get("action")
        action, target = choice, None
        if choice and choice.startswith("link:"):
            action, raw = ImportAction.LINK, choice.removeprefix("link:")
            target = int(raw) if raw.isdigit() else None
        included = None
        if "included" in request.POST:
            included = request.POST.get("included") == "on"
        error = ""
        status = 200
        try:
            importing.decide(row, included=included, action=action, target=target)
        except importing.ImportRefused as refusal:
            error, status = str(refusal), 400
            row.refresh_from_db()
        item = _items(erp_import, [row], "ready")[0]
        response = render(request, "connections/_import_row.html",
                          {"item": item, "erp_import": erp_import, "phase": "ready", "error": error}, status=status)  # fmt: skip
        response["HX-Trigger"] = "import-plan-changed"
        return response


class ImportCountsView(AdminRequired, View):
    """The plan's counts and the Import button, refreshed after each decision (htmx)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        erp_import = _import(pk)
        return render(request, "connections/_import_actions.html", {
            "erp_import": erp_import, "summary": importing.summary(erp_import), "phase": erp_import.phase})  # fmt: skip


class ImportActionView(AdminRequired, View):
    """Bulk decisions on the plan, Import, Retry of the failed rows, and a new preview of the same selection."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        erp_import = _import(pk)
        action = request.POST.get("action", "")
        try:
            if action == "import":
                importing.start_import(erp_import, request.user)
                messages.success(request, _("The import is queued."))
            elif action == "retry":
                importing.start_import(erp_import, request.user, retry=True)
                messages.success(request, _("The failed rows are queued to be imported again."))
            elif action == "prepare_again":
                again = importing.prepare_again(erp_import, request.user, self.language)
                return redirect(again)
            elif action in ("include", "exclude", ImportAction.CREATE, ImportAction.SKIP):
                kind = request.POST.get("kind", "")
                changed = importing.decide_all(erp_import, action, kind)
                messages.success(request, _("%(n)s rows changed.") % {"n": changed})
                if kind in MatchKind.values:  # back to the rows that were shown
                    return redirect(f"{erp_import.get_absolute_url()}?{urlencode({'kind': kind})}")
            else:
                messages.error(request, _("Unknown action."))
        except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
        return redirect(erp_import)


class ImportProgressView(AdminRequired, View):
    """The progress bar of the preview or the import (htmx polls it); reloads the page when the job is done."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        erp_import = _import(pk)
        phase = erp_import.phase
        response = render(request, "connections/_import_progress.html",
                          {"erp_import": erp_import, "phase": phase, "run": erp_import.current_run})  # fmt: skip
        if phase not in ("preparing", "importing"):
            response["HX-Refresh"] = "true"
        return response
