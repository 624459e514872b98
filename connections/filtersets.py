"""How the connections pages filter their lists: the sync log (page and CSV) and the rows of an import."""

from __future__ import annotations

from typing import Any

import django_filters  # type: ignore[import-untyped]  # no type hints shipped
from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from . import importing
from .choices import Direction, ImportOutcome, LogOutcome, MatchKind, PlanOutcome
from .models import ErpImport, ImportRow, PlanRow, SyncLogEntry, SyncRun


class WholeNumberFilter(django_filters.NumberFilter):
    """A number filter for ids: anything but a whole number is ignored, as a filter that is not filled in."""

    field_class = forms.IntegerField


class SyncLogFilter(django_filters.FilterSet):
    """The sync log's filters: job, record (a name or ERP key contains), field (ERP or CRM key), direction, outcome.

    A value that is not one of the choices, or a job that is not a number, is ignored: the page lists everything
    else as if it had not been given."""

    run = WholeNumberFilter(field_name="run_id")
    record = django_filters.CharFilter(method="filter_record")
    field = django_filters.CharFilter(method="filter_field")
    direction = django_filters.ChoiceFilter(choices=Direction.choices)
    outcome = django_filters.ChoiceFilter(choices=LogOutcome.choices)

    class Meta:
        model = SyncLogEntry
        fields = ["run", "record", "field", "direction", "outcome"]

    def filter_record(self, queryset: QuerySet[SyncLogEntry], name: str, value: str) -> QuerySet[SyncLogEntry]:
        return queryset.filter(
            Q(erp_key__icontains=value)
            | Q(link__company__name__icontains=value)
            | Q(link__contact__last_name__icontains=value)
            | Q(link__project__name__icontains=value)
        )

    def filter_field(self, queryset: QuerySet[SyncLogEntry], name: str, value: str) -> QuerySet[SyncLogEntry]:
        return queryset.filter(Q(field_key__iexact=value) | Q(crm_field__iexact=value))


def sync_log(connection_id: int, data: Any) -> SyncLogFilter:
    """A connection's sync log filtered by ``data`` (the page's query string), newest first."""
    entries = SyncLogEntry.objects.filter(connection_id=connection_id).order_by("-at", "-pk")
    return SyncLogFilter(data, queryset=entries)


class PlanRowsFilter(django_filters.FilterSet):
    """The rows of a plan under review, by what the import found, or those still waiting for a decision."""

    UNDECIDED = "undecided"

    kind = django_filters.ChoiceFilter(choices=[(UNDECIDED, _("Undecided")), *MatchKind.choices], method="filter_kind")

    class Meta:
        model = ImportRow
        fields = ["kind"]

    def __init__(self, *args: Any, erp_import: ErpImport, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.erp_import = erp_import

    def filter_kind(self, queryset: QuerySet[ImportRow], name: str, value: str) -> QuerySet[ImportRow]:
        if value == self.UNDECIDED:
            return queryset & importing.undecided(self.erp_import)
        return queryset.filter(kind=value)


class ResultRowsFilter(django_filters.FilterSet):
    """The rows of a finished import, by outcome."""

    outcome = django_filters.ChoiceFilter(choices=ImportOutcome.choices)

    class Meta:
        model = ImportRow
        fields = ["outcome"]


def import_rows(erp_import: ErpImport, phase: str, data: Any) -> PlanRowsFilter | ResultRowsFilter:
    """The import's rows as its page lists them in ``phase`` ("ready": the plan, else the result)."""
    rows = erp_import.rows.order_by("level", "pk")
    if phase == "ready":
        return PlanRowsFilter(data, queryset=rows, erp_import=erp_import)
    return ResultRowsFilter(data, queryset=rows)


class BulkPlanRowsFilter(django_filters.FilterSet):
    """The rows of a plan of bulk work (``connections.sync.plan``): which side changes, the field (of those in the
    plan), the record (its name or ERP key contains), and once carried out what became of each field. A value
    that is not one of the choices is ignored."""

    direction = django_filters.ChoiceFilter(
        choices=[(Direction.ERP_TO_CRM, _("To the CRM")), (Direction.CRM_TO_ERP, _("To the ERP"))]
    )
    field = django_filters.ChoiceFilter(field_name="field_key", choices=[])
    record = django_filters.CharFilter(method="filter_record")
    outcome = django_filters.ChoiceFilter(choices=[c for c in PlanOutcome.choices if c[0]])

    class Meta:
        model = PlanRow
        fields = ["direction", "field", "record", "outcome"]

    def __init__(self, *args: Any, fields: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["field"].extra["choices"] = fields

    def filter_record(self, queryset: QuerySet[PlanRow], name: str, value: str) -> QuerySet[PlanRow]:
        return queryset.filter(Q(record_name__icontains=value) | Q(erp_key__icontains=value))


def plan_rows(plan: SyncRun, data: Any, fields: list[tuple[str, str]]) -> BulkPlanRowsFilter:
    """A plan's rows filtered by ``data`` (the page's query string), record by record. ``fields``: the plan's
    fields (key, label) the field filter offers."""
    rows = plan.plan_rows.order_by("record_name", "link_id", "field_key", "pk")
    return BulkPlanRowsFilter(data, queryset=rows, fields=fields)
