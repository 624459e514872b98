"""What the engine did: the sync log of a connection, and its failed records with Retry and Dismiss; both as CSV."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from django.contrib import messages
from django.db import models
from django.db.models import TextField
from django.db.models.functions import Cast
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views import View

from crm.models import Company, Contact, Project

from .. import export, filtersets, said, services, shown
from ..choices import Direction, LinkStatus, LogOutcome, RunKind
from ..forms import FailedRecordsForm
from .base import AdminRequired, HtmxHttpRequest, paginate

EXPORT_CHUNK = 2000  # rows fetched from the database at a time while a CSV is sent
LOG_PAGE_SIZE = 50


class SyncLogView(AdminRequired, View):
    """Every field the engine wrote, skipped or failed, newest first, filtered by run, record, field, direction, outcome."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        log = filtersets.sync_log(connection.pk, request.GET)
        entries = log.qs.select_related("run", "link__company", "link__contact", "link__project")
        page = paginate(request, entries, LOG_PAGE_SIZE)
        page.object_list = shown.describe_log(page.object_list)
        context = {
            "connection": connection,
            "filterset": log,
            "page": page,
            "section": "settings",
            "directions": Direction.choices,
            "outcomes": LogOutcome.choices,
        }
        return render(request, "connections/sync_log.html", context)


class SyncLogExportView(AdminRequired, View):
    """The sync log as the page filters it, every matching row (not one page), as a CSV download."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponseBase:
        connection = get_object_or_404(self.connections(), pk=pk)
        # The values as the JSON text stored, not decoded: decoding two values per row was a fifth of the time.
        entries = (
            filtersets.sync_log(connection.pk, request.GET)
            .qs.annotate(old_json=Cast("old", TextField()), new_json=Cast("new", TextField()))
            .values_list(
                "at",
                "run_id",
                "run__kind",
                "link__company__name",
                "link__company__department",
                "link__contact__first_name",
                "link__contact__middle_name",
                "link__contact__last_name",
                "link__project__name",
                "actor_type",
                "erp_key",
                "field_key",
                "crm_field",
                "direction",
                "outcome",
                "old_json",
                "new_json",
                "reason",
                "reason_said",
            )
        )
        # Labels are looked up now, in the user's language: the rows are written after this view has returned.
        kinds, directions, outcomes = labels(RunKind), labels(Direction), labels(LogOutcome)
        zone, language = timezone.get_current_timezone(), translation.get_language()
        header = [
            _("When"),
            _("Job"),
            _("Kind of job"),
            _("Record"),
            _("Actor type"),
            _("ERP key"),
            _("ERP field"),
            _("CRM field"),
            _("Direction"),
            _("Outcome"),
            _("Old value"),
            _("New value"),
            _("Why"),
        ]

        def rows() -> Iterator[list[Any]]:
            for (
                at,
                run_id,
                kind,
                company,
                department,
                first,
                middle,
                last,
                project,
                actor_type,
                erp_key,
                field_key,
                crm_field,
                direction,
                outcome,
                old,
                new,
                reason,
                reason_said,
            ) in entries.iterator(chunk_size=EXPORT_CHUNK):
                record = record_name(company, department, (first, middle, last), project)
                yield [
                    export.local_time(at, zone),
                    run_id,
                    kinds.get(kind, kind),
                    record,
                    actor_type,
                    erp_key,
                    field_key,
                    crm_field,
                    directions.get(direction, direction),
                    outcomes.get(outcome, outcome),
                    cell(old),
                    cell(new),
                    said.shown(reason, reason_said, language),
                ]

        # Translators: the start of a downloaded file's name: lower case, words joined by hyphens.
        name = export.filename(_("sync-log"), connection.name, f"connection-{connection.pk}")
        return export.streaming_csv(name, header, rows(), export.delimiter_for(translation.get_language() or "en"))


class FailedRecordsView(AdminRequired, View):
    """Records whose last sync failed, grouped by error: Retry one or all, or Dismiss with a reason."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        failed = list(services.failed_records(connection).order_by("last_error", "pk"))
        # Grouped by the error as stored (the form's filter); each group's heading in the reader's language.
        groups = []
        for error, grouped in groupby(failed, key=lambda link: link.last_error):
            links = list(grouped)
            groups.append((error, links[0].error_shown, links))
        groups.sort(key=lambda group: -len(group[1]))
        context = {"connection": connection, "groups": groups, "count": len(failed), "section": "settings"}
        return render(request, "connections/failed_records.html", context)

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        form = FailedRecordsForm(request.POST)
        if not form.is_valid():
            for message in form.errors.values():
                messages.error(request, str(message[0]))
            return redirect("connections:failed-records", pk=pk)
        links = list(form.chosen(services.failed_records(connection)))
        if form.cleaned_data["action"] == "dismiss":
            dismissed = services.dismiss_failures(connection, links, form.cleaned_data["reason"], request.user)
            messages.success(request, _("Dismissed %(n)s records.") % {"n": dismissed})
            return redirect("connections:failed-records", pk=pk)
        queued, refusal = services.retry_failures(links, request.user)
        if refusal:
            messages.error(request, refusal)
        if queued:
            messages.success(request, _("Queued %(n)s records to be synced again.") % {"n": queued})
        return redirect("connections:failed-records", pk=pk)


class FailedRecordsExportView(AdminRequired, View):
    """The failed records page as a CSV download: one row per record, by error."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponseBase:
        connection = get_object_or_404(self.connections(), pk=pk)
        links = (
            services.failed_records(connection)
            .order_by("last_error", "pk")
            .values_list(
                "last_error",
                "last_error_said",
                "company__name",
                "company__department",
                "contact__first_name",
                "contact__middle_name",
                "contact__last_name",
                "project__name",
                "actor_type",
                "erp_key",
                "status",
                "last_synced_at",
            )
        )
        statuses, zone = labels(LinkStatus), timezone.get_current_timezone()
        language = translation.get_language()
        kinds = {
            "company": str(Company._meta.verbose_name),
            "contact": str(Contact._meta.verbose_name),
            "project": str(Project._meta.verbose_name),
        }
        header = [
            _("Error"),
            _("Record"),
            _("Kind of record"),
            _("Actor type"),
            _("ERP key"),
            _("Status"),
            _("Last synced"),
        ]
        unknown = _("Unknown error")

        def rows() -> Iterator[list[Any]]:
            for (
                error,
                error_said,
                company,
                department,
                first,
                middle,
                last,
                project,
                actor_type,
                erp_key,
                status,
                synced_at,
            ) in links.iterator(chunk_size=EXPORT_CHUNK):
                kind = "company" if company is not None else "contact" if last is not None else "project"
                yield [
                    said.shown(error, error_said, language) or unknown,
                    record_name(company, department, (first, middle, last), project),
                    kinds[kind],
                    actor_type,
                    erp_key,
                    statuses.get(status, status),
                    export.local_time(synced_at, zone),
                ]

        # Translators: the start of a downloaded file's name: lower case, words joined by hyphens.
        name = export.filename(_("failed-records"), connection.name, f"connection-{connection.pk}")
        return export.streaming_csv(name, header, rows(), export.delimiter_for(translation.get_language() or "en"))


def labels(choices: type[models.TextChoices]) -> dict[str, str]:
    return {value: str(label) for value, label in choices.choices}


def record_name(
    company: str | None, department: str | None, person: tuple[str | None, ...], project: str | None
) -> str:
    """The CRM record's name as the pages show it (``str()`` of the company, contact or project)."""
    if company is not None:
        return f"{company} – {department}" if department else company
    if project is not None:
        return project
    return " ".join(part for part in person if part)


def cell(stored: str | None) -> str:
    """A logged value, given as its stored JSON text, as one cell: text as it is, anything else (a number,
    true/false, a list) as JSON; no value is empty."""
    if stored is None:
        return ""
    if "\\" not in stored:
        # The common case, decoded without a parser: text loses its quotes, anything else is already JSON.
        return stored[1:-1] if stored[:1] == '"' else stored
    # Something escaped: SQLite stores letters outside ASCII as \u escapes; quotes and backslashes are escaped too.
    value = json.loads(stored)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
