"""A connection's sync filter per actor type: the CRM list items a record must have, and conditions on the ERP's
searchable fields (advanced search's form), which every sync and import applies."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from connectors import protocol as p
from crm.models import ListItem

from .. import filters, linking, services, shown
from ..models import ErpActorType, ErpConnection
from .base import AdminRequired, HtmxHttpRequest


def stored_criteria(row: ErpActorType) -> QueryDict:
    """The stored ERP conditions as the criteria form posts them, so the form shows them."""
    data = QueryDict(mutable=True)
    for restriction in row.erp_filter:
        key, values = restriction["field_key"], restriction["values"]
        data[f"op-{key}"] = restriction["operator"]
        if restriction["operator"] in ("one_of", "not_one_of"):
            data.setlist(f"v-{key}", [str(v) for v in values])
            continue
        shown_values = ["yes" if v is True else "no" if v is False else "" if v is None else str(v) for v in values]
        data[f"v-{key}"] = shown_values[0]
        if len(shown_values) > 1:
            data[f"v2-{key}"] = shown_values[1]
    return data


class CrmCondition:
    """One CRM list field of the filter: its items (those offered, and any chosen since hidden) and the chosen."""

    def __init__(self, field: Any, chosen: list[int]) -> None:
        self.name = field.name
        self.label = str(field.verbose_name).capitalize()
        model: type[ListItem] = field.related_model
        self.items = list(model._default_manager.filter(hidden=False) | model._default_manager.filter(pk__in=chosen))
        self.chosen = chosen
        self.error = ""


class SyncFilterView(AdminRequired, View):
    def setup_filter(self, pk: int, actor_type: str) -> tuple[ErpConnection, ErpActorType]:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk)
        row = get_object_or_404(ErpActorType, connection=connection, actor_type=actor_type)
        return connection, row

    def get(self, request: HtmxHttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, row = self.setup_filter(pk, actor_type)
        crm = [CrmCondition(f, list(row.crm_filter.get(f.name, []))) for f in filters.crm_filter_fields(actor_type)]
        rows, problem = linking.criteria(connection, actor_type, stored_criteria(row), self.language)
        return self.render_page(request, connection, row, crm, rows, problem)

    def post(self, request: HtmxHttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, row = self.setup_filter(pk, actor_type)
        crm = []
        chosen: dict[str, list[int]] = {}
        for f in filters.crm_filter_fields(actor_type):
            raw = [v for v in request.POST.getlist(f"crm-{f.name}") if v]
            condition = CrmCondition(f, [int(v) for v in raw if v.isdigit()])
            offered = {item.pk for item in condition.items}
            if any(not v.isdigit() or int(v) not in offered for v in raw):
                condition.error = _("Choose items from the list.")
            chosen[f.name] = condition.chosen
            crm.append(condition)
        rows, problem = linking.criteria(connection, actor_type, request.POST, self.language)
        restrictions = linking.restrictions_from(rows)
        if problem is not None and any(r.field.type == p.FieldType.LIST for r in rows):
            for criterion in rows:
                if criterion.field.type == p.FieldType.LIST and criterion.chosen:
                    criterion.error = _("The ERP's list could not be read; try again when it answers.")
        if any(c.error for c in crm) or any(r.error for r in rows):
            messages.error(request, _("The sync filter was not saved: correct the conditions marked below."))
            return self.render_page(request, connection, row, crm, rows, problem, status=400)
        services.save_sync_filter(connection, actor_type, chosen, restrictions, request.user)
        messages.success(
            request,
            _("Saved the sync filter of %(type)s. The next syncs apply it; records outside it are left as they are.")
            % {"type": shown.actor_type_name(connection, actor_type)},
        )
        return redirect("connections:sync-filter", pk=connection.pk, actor_type=actor_type)

    def render_page(
        self,
        request: HtmxHttpRequest,
        connection: ErpConnection,
        row: ErpActorType,
        crm: list[CrmCondition],
        rows: list[linking.Criterion],
        problem: Any,
        status: int = 200,
    ) -> HttpResponse:
        context = {
            "connection": connection,
            "actor_type": row,
            "crm": crm,
            "rows": rows,
            "problem": problem,
            "conditions": filters.describe_filter(
                connection, row.actor_type, filters.SyncFilter.of(connection, row.actor_type)
            ),
            "section": "settings",
        }
        return render(request, "connections/sync_filter.html", context, status=status)
