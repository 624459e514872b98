"""Field mapping pages of a connection: fields and directions, rank, list mapping, default values."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View

from connectors import protocol as p
from connectors.client import ConnectorError

from .. import mapping, services
from ..choices import Direction
from ..forms import (
    ConfigForm,
    DefaultFlagsForm,
    FieldMappingForm,
    FieldRankForm,
    ListMappingForm,
    UndecidedDirectionsForm,
    to_wire,
)
from ..models import ErpActorType, ErpConnection, ErpField, FieldDefault, ListMapping
from .base import AdminRequired, HtmxHttpRequest


class ActorTypePage(AdminRequired, View):
    """A page about one actor type of one connection."""

    def connection_and_type(self, pk: int, actor_type: str) -> tuple[ErpConnection, ErpActorType]:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk)
        actor = connection.actor_types.filter(actor_type=actor_type).first()
        if actor is None:
            raise Http404(_("The connector does not offer this actor type."))
        return connection, actor


def mapping_rows(
    connection: ErpConnection,
    actor_type: str,
    errors: dict[str, str] | None = None,
    submitted: dict[str, mapping.FieldRow] | None = None,
) -> list[dict[str, Any]]:
    """The mapping table's rows: as saved, or as submitted with each row's error."""
    rows = []
    for field in connection.erp_fields.filter(actor_type=actor_type):
        chosen = submitted.get(field.key) if submitted else None
        crm = chosen.crm_field if chosen else field.crm_field
        choices = mapping.crm_field_choices(actor_type, field.type)
        # A submitted CRM field that does not exist is reported by the row's error, not looked up.
        known = bool(crm) and crm in dict(choices)
        problems = mapping.direction_problems(actor_type, field.type, field.access, crm) if known else {}
        rows.append(
            {
                "field": field,
                "crm_field": crm,
                "direction": chosen.direction if chosen else field.direction,
                "show_in_search": chosen.show_in_search if chosen else field.show_in_search,
                "show_in_tab": chosen.show_in_tab if chosen else field.show_in_tab,
                "hold_conflicts": chosen.hold_conflicts if chosen else field.hold_conflicts,
                "can_hold": bool(crm) and (chosen.direction if chosen else field.direction) == Direction.BOTH,
                "crm_choices": choices,
                "directions": [(value, label, problems.get(value, "")) for value, label in Direction.choices],
                "is_list": field.type == p.FieldType.LIST
                and known
                and mapping.crm_list_model(actor_type, crm) is not None,
                "error": (errors or {}).get(field.key, ""),
            }
        )
    return rows


PLAN_EFFECT = "plan_effect"  # after a save that changed how linked records sync: offer "Plan the effect"


def mapped_as(connection: ErpConnection, actor_type: str) -> dict[str, tuple[str, str]]:
    """How each field of the actor type syncs: its CRM field and direction (a change affects linked records)."""
    fields = connection.erp_fields.filter(actor_type=actor_type).values_list("key", "crm_field", "direction")
    return {key: (crm_field, direction) for key, crm_field, direction in fields}


class FieldMappingView(ActorTypePage):
    """One tab per actor type: which CRM field each ERP field maps to, which way, and where it shows."""

    def get(self, request: HtmxHttpRequest, pk: int, actor_type: str | None = None) -> HttpResponse:
        if actor_type is None:
            connection = get_object_or_404(self.connections(), pk=pk)
            first = connection.actor_types.first()
            if first is None:
                messages.error(request, _("The connector has not named any actor types yet. Refresh from connector."))
                return redirect(connection)
            return redirect("connections:mapping", pk=pk, actor_type=first.actor_type)
        connection, actor = self.connection_and_type(pk, actor_type)
        return self.render_page(connection, actor, mapping_rows(connection, actor_type))

    def post(self, request: HtmxHttpRequest, pk: int, actor_type: str | None = None) -> HttpResponse:
        connection, actor = self.connection_and_type(pk, actor_type or "")
        form = FieldMappingForm(
            request.POST, erp_fields=list(connection.erp_fields.filter(actor_type=actor.actor_type))
        )
        form.is_valid()  # every field is optional; the mapping rules are checked as it is saved
        rows = form.rows()
        before = mapped_as(connection, actor.actor_type)
        try:
            changes = mapping.save_field_mapping(
                connection, actor.actor_type, form.cleaned_data["sync_enabled"], rows, request.user
            )
        except mapping.MappingInvalid as invalid:
            messages.error(request, _("Nothing was saved: correct the marked rows."))
            actor.sync_enabled = form.cleaned_data["sync_enabled"]
            submitted = {row.key: row for row in rows}
            table = mapping_rows(connection, actor.actor_type, invalid.errors, submitted)
            return self.render_page(connection, actor, table, status=400)
        if changes:
            messages.success(
                request,
                _("Saved the %(type)s field mapping; it applies from the next sync.") % {"type": actor.display_word},
            )
            # A list field mapped just now gets its ERP items matched to CRM items (by code, then name).
            if any(f.actor_type == actor.actor_type for f in mapping.mapped_list_fields(connection)):
                problem = services.match_lists(connection, self.language)
                if problem is not None:
                    messages.warning(
                        request,
                        _("The list items could not be matched now: %(why)s") % {"why": problem.message},
                    )
        target = reverse("connections:mapping", kwargs={"pk": pk, "actor_type": actor.actor_type})
        if (
            mapped_as(connection, actor.actor_type) != before
            and connection.links.filter(actor_type=actor.actor_type).exists()
        ):
            return redirect(f"{target}?{PLAN_EFFECT}=1")  # the page offers to plan the effect on linked records
        return redirect(target)

    def render_page(
        self, connection: ErpConnection, actor: ErpActorType, rows: list[dict[str, Any]], status: int = 200
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
            "undecided": mapping.undecided_fields(connection, actor.actor_type),
            "direction_choices": Direction.choices,
            "tab_disabled_reason": _(
                "This field syncs, so the ERP tab shows its synced value; it cannot also be shown live. "
                "Choose no CRM field or no direction to show it live."
            ),
            "hold_disabled_reason": mapping.HOLD_ONLY_BOTH_WAYS,
            "section": "settings",
        }
        if self.request.GET.get(PLAN_EFFECT) and connection.is_active:
            context["linked"] = connection.links.filter(actor_type=actor.actor_type).count()
        return render(self.request, "connections/mapping.html", context, status=status)


class UndecidedDirectionsView(ActorTypePage):
    """One direction for every mapped field of the actor type that has none yet; fields it cannot work for keep
    none, and the admin is told which and why."""

    def post(self, request: HtmxHttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = self.connection_and_type(pk, actor_type)
        form = UndecidedDirectionsForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Nothing was changed: choose a direction."))
            return redirect("connections:mapping", pk=pk, actor_type=actor.actor_type)
        outcome = mapping.set_undecided_directions(
            connection, actor.actor_type, form.cleaned_data["direction"], request.user
        )
        if outcome.changed:
            messages.success(
                request,
                ngettext(
                    "Set the direction of %(n)s field; it applies from the next sync.",
                    "Set the direction of %(n)s fields; they apply from the next sync.",
                    len(outcome.changed),
                )
                % {"n": len(outcome.changed)},
            )
        for label, why in outcome.refused:
            messages.warning(request, _("%(field)s keeps no direction: %(why)s") % {"field": label, "why": why})
        if not outcome.changed and not outcome.refused:
            messages.info(request, _("Every mapped field already has a direction."))
        return redirect("connections:mapping", pk=pk, actor_type=actor.actor_type)


class FieldRankView(ActorTypePage):
    """htmx: move a field up or down; saved at once; answers the reordered list."""

    def post(self, request: HtmxHttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = self.connection_and_type(pk, actor_type)
        form = FieldRankForm(request.POST)
        form.is_valid()  # both fields are optional: a key the connection does not have is refused by the move
        try:
            mapping.move_field(connection, actor.actor_type, form.cleaned_data["key"], form.up)
        except mapping.MappingInvalid as invalid:
            raise Http404(str(invalid)) from None
        ranked = connection.erp_fields.filter(actor_type=actor.actor_type)
        if request.htmx:
            return render(
                request, "connections/_rank.html", {"connection": connection, "actor": actor, "ranked": ranked}
            )
        return redirect("connections:mapping", pk=pk, actor_type=actor.actor_type)


class ListMappingView(ActorTypePage):
    """Which CRM list item stands for each item of an ERP list field; *Match by name* suggests pairs."""

    def get(self, request: HtmxHttpRequest, pk: int, actor_type: str, key: str) -> HttpResponse:
        page = self.load(pk, actor_type, key)
        saved = {
            m.erp_key: m.crm_item_id
            for m in ListMapping.objects.filter(connection=page["connection"], actor_type=actor_type, field_key=key)
        }
        return self.render_page(page, saved, {})

    def post(self, request: HtmxHttpRequest, pk: int, actor_type: str, key: str) -> HttpResponse:
        page = self.load(pk, actor_type, key)
        connection, actor, erp_items = page["connection"], page["actor"], page["erp_items"]
        form = ListMappingForm(request.POST, erp_items=erp_items)
        form.is_valid()  # every field is optional: anything but a CRM item's id means "not mapped"
        chosen = form.chosen()
        if form.cleaned_data["match"]:
            suggestions = mapping.suggest_list_matches(erp_items, page["crm_items"])
            merged = {k: chosen.get(k) or suggestions.get(k) for k, _t in erp_items}
            messages.info(
                request, _("Matched %(n)s items by name. Check them and press Save.") % {"n": len(suggestions)}
            )
            return self.render_page(page, merged, {})
        saved = ListMapping.objects.filter(
            connection=connection, actor_type=actor.actor_type, field_key=key, crm_item_id__isnull=False
        )
        before = set(saved.values_list("erp_key", "crm_item_id"))
        try:
            mapping.save_list_mapping(connection, actor.actor_type, key, erp_items, chosen, request.user)
        except mapping.MappingInvalid as invalid:
            messages.error(request, _("Nothing was saved: each CRM item may stand for one ERP item."))
            return self.render_page(page, chosen, invalid.errors, status=400)
        messages.success(request, _("Saved the list mapping of %(field)s.") % {"field": page["field"].display_label})
        target = reverse("connections:mapping", kwargs={"pk": pk, "actor_type": actor.actor_type})
        field = page["field"]
        if (
            set(saved.values_list("erp_key", "crm_item_id")) != before
            and field.crm_field
            and field.direction
            and connection.links.filter(actor_type=actor.actor_type).exists()
        ):
            # Another CRM item for an ERP item changes what linked records sync to: offer to plan the effect.
            return redirect(f"{target}?{PLAN_EFFECT}=1")
        return redirect(target)

    def load(self, pk: int, actor_type: str, key: str) -> dict[str, Any]:
        """The connection, actor type and field, the ERP list's items (the saved ones with the connector down,
        and why), and the CRM list's items."""
        connection, actor = self.connection_and_type(pk, actor_type)
        field = get_object_or_404(connection.erp_fields, actor_type=actor_type, key=key)
        model = mapping.crm_list_model(actor_type, field.crm_field) if field.crm_field else None
        if model is None:
            raise Http404(_("This field is not mapped to a CRM list."))
        problem = None
        try:
            with services.interactive_client(
                connection.connector.url,
                connection.connector.secret,
                self.language,
                key_id=connection.connector.key_id,
            ) as client:
                items = client.connection(str(connection.guid), connection.config_values).get_list(field.list_name)
            erp_items = [(item.key, item.text_in(self.language)) for item in items]
        except ConnectorError as error:
            problem = services.explain(error, self.language)
            erp_items = [
                (m.erp_key, m.erp_text)
                for m in ListMapping.objects.filter(connection=connection, actor_type=actor_type, field_key=key)
            ]
        crm_items = list(model._default_manager.all())
        return {
            "connection": connection,
            "actor": actor,
            "field": field,
            "erp_items": erp_items,
            "crm_items": crm_items,
            "problem": problem,
        }

    def render_page(
        self, page: dict[str, Any], chosen: dict[str, Any], errors: dict[str, str], status: int = 200
    ) -> HttpResponse:
        counts: dict[Any, int] = {}
        for value in chosen.values():
            if value:
                counts[value] = counts.get(value, 0) + 1
        rows = [
            {
                "key": k,
                "text": t,
                "chosen": chosen.get(k),
                "duplicate": bool(chosen.get(k)) and counts.get(chosen.get(k), 0) > 1,
                "error": errors.get(k, ""),
            }
            for k, t in page["erp_items"]
        ]
        context = {
            "connection": page["connection"],
            "actor": page["actor"],
            "field": page["field"],
            "rows": rows,
            "crm_items": page["crm_items"],
            "problem": page["problem"],
            "section": "settings",
        }
        return render(self.request, "connections/list_mapping.html", context, status=status)


class DefaultValuesView(ActorTypePage):
    """Default values for new ERP actors of one type (Create in ERP), typed like the connector's own screen."""

    def get(self, request: HtmxHttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = self.connection_and_type(pk, actor_type)
        return self.render_page(connection, actor, self.value_forms(connection, actor.actor_type, None), {})

    def post(self, request: HtmxHttpRequest, pk: int, actor_type: str) -> HttpResponse:
        connection, actor = self.connection_and_type(pk, actor_type)
        forms = self.value_forms(connection, actor.actor_type, request.POST)
        flags = DefaultFlagsForm(request.POST, erp_fields=[field for field, _form in forms])
        flags.is_valid()  # check boxes only
        values: dict[str, tuple[Any, bool, bool]] = {}
        valid = True
        for field, form in forms:
            if not form.is_valid():
                valid = False
                continue
            values[field.key] = (to_wire(form.cleaned_data.get(field.key)), *flags.flags(field))
        errors: dict[str, str] = {}
        if valid:
            try:
                mapping.save_defaults(connection, actor.actor_type, values, request.user)
            except mapping.MappingInvalid as invalid:
                errors = invalid.errors
            else:
                messages.success(
                    request, _("Saved the default values for new %(type)s actors.") % {"type": actor.display_word}
                )
                return redirect("connections:mapping-defaults", pk=pk, actor_type=actor.actor_type)
        messages.error(request, _("Nothing was saved: correct the marked fields."))
        return self.render_page(connection, actor, forms, errors, status=400)

    def value_forms(self, connection: ErpConnection, actor_type: str, data: Any) -> list[tuple[ErpField, ConfigForm]]:
        """One form per field that may have a default, with the value saved; list fields need the ERP's items."""
        saved = {d.field_key: d for d in FieldDefault.objects.filter(connection=connection, actor_type=actor_type)}
        fields = mapping.default_fields(connection, actor_type)
        names = {f.list_name for f in fields if f.type == p.FieldType.LIST and f.list_name}
        list_items, problem = services.read_lists(connection, names, self.language)
        if problem is not None:
            messages.warning(self.request, problem.message)
        forms = []
        for field in fields:
            info = field.field_info()
            default = saved.get(field.key)
            initial = ConfigForm.initial_from([info], {field.key: default.value} if default else {})
            form = ConfigForm(
                data, fields=[info], list_items=list_items, initial=initial, prefix=f"default-{field.key}"
            )
            form.saved = default  # type: ignore[attr-defined]
            forms.append((field, form))
        return forms

    def render_page(
        self,
        connection: ErpConnection,
        actor: ErpActorType,
        forms: list[tuple[ErpField, ConfigForm]],
        errors: dict[str, str],
        status: int = 200,
    ) -> HttpResponse:
        rows = [
            {
                "field": field,
                "form": form,
                "saved": form.saved,  # type: ignore[attr-defined]
                "error": errors.get(field.key, ""),
                "forced": field.access == p.FieldAccess.MANDATORY,
            }
            for field, form in forms
        ]
        context = {
            "connection": connection,
            "actor": actor,
            "rows": rows,
            "actor_types": connection.actor_types.all(),
            "section": "settings",
        }
        return render(self.request, "connections/defaults.html", context, status=status)
