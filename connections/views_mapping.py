"""Field mapping pages of a connection: fields and directions, rank, list mapping, default values."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from connectors import protocol as p
from connectors.client import ConnectorError

from . import mapping, services
from .choices import Direction
from .forms import ConfigForm, to_wire
from .models import ErpConnection, FieldDefault, ListMapping
from .views import AdminRequired


def _connection_and_type(pk: int, actor_type: str) -> tuple[ErpConnection, Any]:
    connection = get_object_or_404(ErpConnection.objects.select_related("connector"), pk=pk)
    actor = connection.actor_types.filter(actor_type=actor_type).first()
    if actor is None:
        raise Http404(_("The connector does not offer this actor type."))
    return connection, actor


def _rows(connection: ErpConnection, actor_type: str, errors: dict[str, str] | None = None,
          submitted: dict[str, mapping.FieldRow] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for field in connection.erp_fields.filter(actor_type=actor_type):
        chosen = submitted.get(field.key) if submitted else None
        crm = chosen.crm_field if chosen else field.crm_field
        problems = mapping.direction_problems(actor_type, field.type, field.access, crm) if crm else {}
        rows.append({
            "field": field,
            "crm_field": crm,
            "direction": chosen.direction if chosen else field.direction,
            "show_in_search": chosen.show_in_search if chosen else field.show_in_search,
            "show_in_tab": chosen.show_in_tab if chosen else field.show_in_tab,
            "crm_choices": mapping.crm_field_choices(actor_type, field.type),
            "directions": [(value, label, problems.get(value, "")) for value, label in Direction.choices],
            "is_list": field.type == p.FieldType.LIST and bool(crm) and mapping.crm_list_model(actor_type, crm) is not None,
            "error": (errors or {}).get(field.key, ""),
        })  # fmt: skip
    return rows


class FieldMappingView(AdminRequired, View):
    def get(self, request: HttpRequest, pk: int, actor_type: str | None = None) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        if actor_type is None:
            first = connection.actor_types.first()
            if first is None:
                messages.error(request, _("The connector has not named any actor types yet. Refresh from connector."))
                return redirect(connection)
            return redirect("connections:mapping", pk=pk, actor_type=first.actor_type)
        connection, actor = _connection_and_type(pk, actor_type)
        return self._render(connection, actor, _rows(connection, actor_type))

    def post(self, request: HttpRequest, pk: int, actor_type: str | None = None) -> HttpResponse:
        connection, actor = _connection_and_type(pk, actor_type or "")
        rows = [
            mapping.FieldRow(
                key=field.key,
                crm_field=request.POST.get(f"crm-{field.key}", ""),
                direction=request.POST.get(f"dir-{field.key}", ""),
                show_in_search=f"search-{field.key}" in request.POST,
                show_in_tab=f"tab-{field.key}" in request.POST,
            )
            for field in connection.erp_fields.filter(actor_type=actor.actor_type)
        ]
        try:
            changes = mapping.save_field_mapping(
                connection, actor.actor_type, "sync_enabled" in request.POST, rows, request.user
            )
        except mapping.MappingInvalid as invalid:
            messages.error(request, _("Nothing was saved: correct the marked rows."))
            actor.sync_enabled = "sync_enabled" in request.POST
            submitted = {row.key: row for row in rows}
            return self._render(
                connection, actor, _rows(connection, actor.actor_type, invalid.errors, submitted), status=400
            )
        if changes:
            messages.success(
                request,
                _("Saved the %(type)s field mapping; it applies from the next sync.") % {"type": actor.actor_type},
            )
        return redirect("connections:mapping", pk=pk, actor_type=actor.actor_type)

    def _render(
        self, connection: ErpConnection, actor: Any, rows: list[dict[str, Any]], status: int = 200
    ) -> HttpResponse:
        crm_model = mapping.CRM_MODEL[actor.actor_type]
        context = {
            "connection": connection,
            "actor": actor,
            "actor_types": connection.actor_types.all(),
            "crm_object": mapping.CRM_OBJECT_NAME[crm_model],
            "rows": rows,
            "ranked": connection.erp_fields.filter(actor_type=actor.actor_type),
            "problems": services.activation_problems(connection),
            "section": "settings",
        }
        return render(self.request, "connections/mapping.html", context, status=status)


class FieldRankView(AdminRequired, View):
    """htmx: move a field up or down; saved at once; answers the reordered list."""

    def post(self, request: HttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = _connection_and_type(pk, actor_type)
        try:
            mapping.move_field(
                connection, actor.actor_type, request.POST.get("key", ""), request.POST.get("move") == "up"
            )
        except mapping.MappingInvalid as invalid:
            raise Http404(str(invalid)) from None
        ranked = connection.erp_fields.filter(actor_type=actor.actor_type)
        if getattr(request, "htmx", False):
            return render(
                request, "connections/_rank.html", {"connection": connection, "actor": actor, "ranked": ranked}
            )
        return redirect("connections:mapping", pk=pk, actor_type=actor.actor_type)


class ListMappingView(AdminRequired, View):
    def get(self, request: HttpRequest, pk: int, actor_type: str, key: str) -> HttpResponse:
        connection, actor, field, erp_items, crm_items, problem = self._load(pk, actor_type, key)
        saved = {
            m.erp_key: m.crm_item_id
            for m in ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key=key)
        }
        return self._render(connection, actor, field, erp_items, crm_items, saved, {}, problem)

    def post(self, request: HttpRequest, pk: int, actor_type: str, key: str) -> HttpResponse:
        connection, actor, field, erp_items, crm_items, problem = self._load(pk, actor_type, key)
        chosen: dict[str, int | None] = {}
        for erp_key, _text in erp_items:
            raw = request.POST.get(f"item-{erp_key}", "")
            chosen[erp_key] = int(raw) if raw.isdigit() else None
        if "match" in request.POST:
            suggestions = mapping.suggest_list_matches(erp_items, crm_items)
            merged = {k: chosen.get(k) or suggestions.get(k) for k, _t in erp_items}
            messages.info(
                request, _("Matched %(n)s items by name. Check them and press Save.") % {"n": len(suggestions)}
            )
            return self._render(connection, actor, field, erp_items, crm_items, merged, {}, problem)
        try:
            mapping.save_list_mapping(connection, actor.actor_type, key, erp_items, chosen, request.user)
        except mapping.MappingInvalid as invalid:
            messages.error(request, _("Nothing was saved: each CRM item may stand for one ERP item."))
            return self._render(
                connection, actor, field, erp_items, crm_items, chosen, invalid.errors, problem, status=400
            )
        messages.success(request, _("Saved the list mapping of %(field)s.") % {"field": field.label})
        return redirect("connections:mapping", pk=pk, actor_type=actor.actor_type)

    def _load(self, pk: int, actor_type: str, key: str) -> tuple[Any, ...]:
        connection, actor = _connection_and_type(pk, actor_type)
        field = get_object_or_404(connection.erp_fields, actor_type=actor_type, key=key)
        model = mapping.crm_list_model(actor_type, field.crm_field) if field.crm_field else None
        if model is None:
            raise Http404(_("This field is not mapped to a CRM list."))
        problem = None
        erp_items: list[tuple[str, str]] = []
        try:
            with services.interactive_client(
                connection.connector.url, connection.connector.secret, self.language
            ) as client:
                items = client.connection(str(connection.guid), connection.config_values).get_list(field.list_name)
            erp_items = [(item.key, item.text) for item in items]
        except ConnectorError as error:
            problem = services.explain(error, self.language)
            erp_items = [
                (m.erp_key, m.erp_text)
                for m in ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key=key)
            ]
        crm_items = list(model._default_manager.all())
        return connection, actor, field, erp_items, crm_items, problem

    def _render(self, connection: Any, actor: Any, field: Any, erp_items: list[tuple[str, str]], crm_items: list[Any],
                chosen: dict[str, Any], errors: dict[str, str], problem: Any, status: int = 200) -> HttpResponse:  # fmt: skip
        counts: dict[Any, int] = {}
        for value in chosen.values():
            if value:
                counts[value] = counts.get(value, 0) + 1
        rows = [{"key": k, "text": t, "chosen": chosen.get(k), "duplicate": bool(chosen.get(k)) and counts.get(chosen.get(k), 0) > 1,
                 "error": errors.get(k, "")} for k, t in erp_items]  # fmt: skip
        context = {"connection": connection, "actor": actor, "field": field, "rows": rows, "crm_items": crm_items,
                   "problem": problem, "section": "settings"}  # fmt: skip
        return render(self.request, "connections/list_mapping.html", context, status=status)


class DefaultValuesView(AdminRequired, View):
    def get(self, request: HttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = _connection_and_type(pk, actor_type)
        return self._render(connection, actor, self._forms(connection, actor.actor_type, None), {})

    def post(self, request: HttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = _connection_and_type(pk, actor_type)
        forms = self._forms(connection, actor.actor_type, request.POST)
        values: dict[str, tuple[Any, bool, bool]] = {}
        valid = True
        for field, form in forms:
            if not form.is_valid():
                valid = False
                continue
            value = to_wire(form.cleaned_data.get(field.key))
            values[field.key] = (value, f"ask-{field.key}" in request.POST,
                                 f"mandatory-{field.key}" in request.POST or field.access == p.FieldAccess.MANDATORY)  # fmt: skip
        errors: dict[str, str] = {}
        if valid:
            try:
                mapping.save_defaults(connection, actor.actor_type, values, request.user)
            except mapping.MappingInvalid as invalid:
                errors = invalid.errors
            else:
                messages.success(
                    request, _("Saved the default values for new %(type)s actors.") % {"type": actor.actor_type}
                )
                return redirect("connections:mapping-defaults", pk=pk, actor_type=actor.actor_type)
        messages.error(request, _("Nothing was saved: correct the marked fields."))
        return self._render(connection, actor, forms, errors, status=400)

    def _forms(self, connection: ErpConnection, actor_type: str, data: Any) -> list[tuple[Any, ConfigForm]]:
        saved = {d.field_key: d for d in FieldDefault.objects.filter(connection=connection, actor_type=actor_type)}
        fields = mapping.default_fields(connection, actor_type)
        names = {f.list_name for f in fields if f.type == p.FieldType.LIST and f.list_name}
        list_items, problem = services.read_lists(connection, names, self.language)
        if problem is not None:
            messages.warning(self.request, problem.message)
        forms = []
        for field in fields:
            info = p.FieldInfo(key=field.key, label=field.label, description=field.description, type=p.FieldType(field.type),
                               list_name=field.list_name or None, max_length=field.max_length)  # fmt: skip
            default = saved.get(field.key)
            initial = ConfigForm.initial_from([info], {field.key: default.value} if default else {})
            form = ConfigForm(
                data, fields=[info], list_items=list_items, initial=initial, prefix=f"default-{field.key}"
            )
            form.saved = default  # type: ignore[attr-defined]
            forms.append((field, form))
        return forms

    def _render(
        self, connection: Any, actor: Any, forms: list[Any], errors: dict[str, str], status: int = 200
    ) -> HttpResponse:
        rows = [{"field": field, "form": form, "saved": form.saved, "error": errors.get(field.key, ""),
                 "forced": field.access == p.FieldAccess.MANDATORY} for field, form in forms]  # fmt: skip
        context = {"connection": connection, "actor": actor, "rows": rows, "actor_types": connection.actor_types.all(),
                   "section": "settings"}  # fmt: skip
        return render(self.request, "connections/defaults.html", context, status=status)
