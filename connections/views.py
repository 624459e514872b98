"""Settings and maintenance → Quote/Sync: the Sync tab with its connectors and connections."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from connectors import protocol as p
from connectors.client import ConnectorError
from connectors.models import SyncConnector

from . import jobs, mapping, services
from .choices import AuditAction, RunKind
from .forms import BaseGrantFormSet, ConfigForm, ConnectionForm, GrantFormSet, SyncConnectorForm, principal_choices
from .models import AuditEntry, ErpConnection, SyncSettings, WorkerHeartbeat, heartbeat_stale_after
from .permissions import MANAGE_ERP_SYNC


class AdminRequired(LoginRequiredMixin, PermissionRequiredMixin):
    permission_required = MANAGE_ERP_SYNC
    request: HttpRequest

    @property
    def language(self) -> str:
        return getattr(self.request, "LANGUAGE_CODE", "en")


class QuoteSyncTabView(AdminRequired, TemplateView):
    """One tab of the Quote/Sync settings page."""

    tab: str

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(section="settings", active_tab=self.tab, workers=list(WorkerHeartbeat.objects.all()[:20]))
        context["alive_workers"] = [w for w in context["workers"] if w.is_alive]
        context["stale_seconds"] = int(heartbeat_stale_after().total_seconds())
        return context


class SyncTab(QuoteSyncTabView):
    tab = "sync"
    template_name = "connections/quote_sync_sync.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["connectors"] = SyncConnector.objects.all()
        context["connections"] = ErpConnection.objects.select_related("connector")
        return context


class SyncSettingsTab(QuoteSyncTabView):
    """Sync priority (the order that decides conflicts, the CRM being one entry) and automatic sync."""

    tab = "settings"
    template_name = "connections/quote_sync_settings.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = mapping.priority_entries()
        context["settings_row"] = SyncSettings.load()
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.POST.get("action") == "automatic":
            return self._save_automatic(request)
        try:
            mapping.move_priority(request.POST.get("entry", ""), request.POST.get("move") == "up", request.user)
        except mapping.MappingInvalid as invalid:
            messages.error(request, str(invalid))
        if getattr(request, "htmx", False):
            return render(request, "connections/_priority.html", {"entries": mapping.priority_entries()})
        return redirect("connections:sync-settings")

    def _save_automatic(self, request: HttpRequest) -> HttpResponse:
        raw = request.POST.get("interval_minutes", "").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= 1440:
            messages.error(request, _("The interval must be a whole number of minutes from 1 to 1440."))
            return redirect("connections:sync-settings")
        with transaction.atomic():
            row = SyncSettings.objects.select_for_update().get_or_create(pk=1)[0]
            row.automatic_sync = request.POST.get("automatic_sync") == "on"
            row.interval_minutes = int(raw)
            row.save(update_fields=["automatic_sync", "interval_minutes", "updated_at"])
            services.audit(request.user, AuditAction.CHANGED, None,
                           _("automatic sync %(state)s, every %(minutes)s minutes") % {
                               "state": _("on") if row.automatic_sync else _("off"), "minutes": row.interval_minutes})  # fmt: skip
        messages.success(request, _("Saved. Workers apply it within a minute; nothing needs a restart."))
        return redirect("connections:sync-settings")


class ConnectionBulkRunView(AdminRequired, View):
    """Sync all, or Resync from CRM, for one connection: queues a job; progress shows on the connection page."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection.objects.select_related("connector"), pk=pk)
        kind = RunKind.RESYNC if request.POST.get("kind") == RunKind.RESYNC else RunKind.SYNC_ALL
        try:
            jobs.queue_bulk(connection, kind, request.user, keep_non_blank=request.POST.get("keep_non_blank") == "on")
        except (services.SyncRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(
                request, _("%(kind)s of %(name)s is queued.") % {"kind": RunKind(kind).label, "name": connection}
            )
        return redirect(connection)


class WorkersTab(QuoteSyncTabView):
    tab = "workers"
    template_name = "connections/quote_sync_workers.html"


def back_to_sync_tab() -> HttpResponseRedirect:
    return redirect("connections:sync")


# Sync Connectors


class ConnectorFormView(AdminRequired, View):
    """Add or edit a Sync Connector. Saving proves that the URL answers the protocol with the secret."""

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        connector = self._connector(pk)
        return self._render(SyncConnectorForm(instance=connector), connector)

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        connector = self._connector(pk)
        form = SyncConnectorForm(request.POST, instance=connector)
        if not form.is_valid():
            return self._render(form, connector)
        secret = form.cleaned_data["secret"] or (connector.secret if connector.pk else "")
        candidate = form.save(commit=False)
        try:
            services.probe_connector(candidate.url, secret, self.language)
            problem = None
        except ConnectorError as error:
            problem = services.explain(error, self.language)
        if problem is not None:
            may_save_anyway = problem.kind in ("unreachable", "timeout")
            if not (may_save_anyway and form.cleaned_data["save_unreachable"]):
                form.add_error(None, problem.message)
                if may_save_anyway:
                    form.offer_save_unreachable()
                return self._render(form, connector, problem)
        candidate.last_checked_at = timezone.now()
        candidate.last_check_ok = problem is None
        candidate.last_check_message = problem.message if problem else ""
        services.save_connector(candidate, form.cleaned_data["secret"] or None, request.user)
        if problem:
            messages.warning(
                request,
                _("Saved %(name)s, but it does not answer yet: %(why)s") % {"name": candidate, "why": problem.message},
            )
        else:
            messages.success(request, _("Saved %(name)s; it answers as a Sync Connector.") % {"name": candidate})
        return back_to_sync_tab()

    def _connector(self, pk: int | None) -> SyncConnector:
        return get_object_or_404(SyncConnector, pk=pk) if pk else SyncConnector()

    def _render(self, form: SyncConnectorForm, connector: SyncConnector, problem: Any = None) -> HttpResponse:
        return render(
            self.request,
            "connections/connector_form.html",
            {
                "form": form,
                "connector": connector,
                "problem": problem,
                "audit": AuditEntry.objects.filter(connector=connector).select_related("user")[:50]
                if connector.pk
                else [],
                "section": "settings",
            },
        )


class ConnectorCheckView(AdminRequired, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=pk)
        try:
            services.probe_connector(connector.url, connector.secret, self.language)
            problem = None
        except ConnectorError as error:
            problem = services.explain(error, self.language)
        SyncConnector.objects.filter(pk=pk).update(
            last_checked_at=timezone.now(),
            last_check_ok=problem is None,
            last_check_message=problem.message if problem else "",
        )
        if problem:
            messages.error(request, _("%(name)s: %(why)s") % {"name": connector, "why": problem.message})
        else:
            messages.success(request, _("%(name)s answers as a Sync Connector.") % {"name": connector})
        return back_to_sync_tab()


class ConnectorDeleteView(AdminRequired, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=pk)
        users = list(ErpConnection.objects.filter(connector=connector).values_list("name", flat=True))
        return render(request, "connections/connector_confirm_delete.html",
                      {"connector": connector, "used_by": users, "section": "settings"})  # fmt: skip

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=pk)
        try:
            services.delete_connector(connector, request.user)
        except services.StillInUse as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(request, _("Deleted %(name)s.") % {"name": connector})
        return back_to_sync_tab()


# ERP connections


class ConnectionFormView(AdminRequired, View):
    """Define a new ERP connection, or edit one. OK needs a passed test of exactly the values saved."""

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        connection = self._connection(pk)
        if connection is None:
            return back_to_sync_tab()
        grants = [
            {"principal": f"{'g' if hasattr(g.principal, 'user_set') else 'u'}:{g.principal.pk}",
             "can_connect": g.can_connect, "can_create": g.can_create}
            for g in services.current_grants(connection)
        ] if connection.pk else []  # fmt: skip
        form = ConnectionForm(instance=connection)
        grant_forms = GrantFormSet(initial=grants, prefix="grant", form_kwargs={"choices": principal_choices()})
        return self._render(connection, form, grant_forms, None)

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        connection = self._connection(pk)
        if connection is None:
            return back_to_sync_tab()
        form = ConnectionForm(request.POST, instance=connection)
        grant_forms = GrantFormSet(request.POST, prefix="grant", form_kwargs={"choices": principal_choices()})
        connector = self._selected_connector(connection, request.POST.get("connector"))
        config = ConfigSection.load(connector, connection, self.language, data=request.POST)
        forms_valid = form.is_valid() and grant_forms.is_valid()
        # With the connector down, a saved connection can still be renamed or shared; a new one cannot be made.
        if (config.problem and connection.pk is None) or not config.form.is_valid() or not forms_valid:
            return self._render(connection, form, grant_forms, config)
        values: dict[str, p.Value] | None = None
        if not connection.is_active:
            submitted = config.form.wire_values(stored=self._stored_secrets(connection))
            if connection.pk is None or submitted != connection.config_values():
                if not services.test_token_matches(request.POST.get("test_token", ""), connector, submitted):
                    config.form.add_error(None, _("Test the ERP connection with these values before pressing OK."))
                    return self._render(connection, form, grant_forms, config)
                values = submitted
        instance = form.save(commit=False)
        try:
            services.save_connection(
                instance, fields=config.fields, values=values, grants=cast(BaseGrantFormSet, grant_forms).grants(), user=request.user,
                language=self.language,
            )  # fmt: skip
        except services.ConnectorCallFailed as failure:
            config.form.add_error(None, f"{failure.step}: {failure.problem.message}")
            if connection.pk is None:
                instance.pk = None
                instance._state.adding = True
            return self._render(connection, form, grant_forms, config)
        messages.success(request, _("Saved the ERP connection %(name)s.") % {"name": instance})
        return redirect(instance)

    def _connection(self, pk: int | None) -> ErpConnection | None:
        if pk:
            return get_object_or_404(ErpConnection.objects.select_related("connector"), pk=pk)
        if not SyncConnector.objects.exists():
            messages.error(self.request, _("Add a Sync Connector before defining an ERP connection."))
            return None
        return ErpConnection()

    def _selected_connector(self, connection: ErpConnection, chosen: str | None) -> SyncConnector:
        if connection.pk:
            return connection.connector
        if chosen and chosen.isdigit():
            found = SyncConnector.objects.filter(pk=int(chosen)).first()
            if found:
                return found
        first = SyncConnector.objects.first()
        assert first is not None
        return first

    @staticmethod
    def _stored_secrets(connection: ErpConnection) -> dict[str, p.Value]:
        values = connection.config_values() if connection.pk else {}
        return {key: values[key] for key in connection.secrets}

    def _render(
        self, connection: ErpConnection, form: Any, grant_forms: Any, config: ConfigSection | None
    ) -> HttpResponse:
        connector = self._selected_connector(
            connection, self.request.GET.get("connector") or self.request.POST.get("connector")
        )
        config = config or ConfigSection.load(connector, connection, self.language)
        return render(
            self.request,
            "connections/connection_form.html",
            {
                "connection": connection,
                "form": form,
                "grant_forms": grant_forms,
                "config": config,
                "section": "settings",
            },
        )


class ConfigSection:
    """The connector-defined configuration part of the connection form, with what it took to build it."""

    def __init__(self, connector: SyncConnector, fields: list[p.FieldInfo], form: ConfigForm, problem: Any,
                 locked: bool) -> None:  # fmt: skip
        self.connector, self.fields, self.form, self.problem, self.locked = connector, fields, form, problem, locked

    @classmethod
    def load(
        cls, connector: SyncConnector, connection: ErpConnection, language: str, data: Any = None
    ) -> ConfigSection:
        problem = None
        list_items: dict[str, list[p.ListItem]] = {}
        try:
            with services.interactive_client(connector.url, connector.secret, language) as client:
                fields = client.get_config_data().data.fields
                for info in fields:
                    if info.type == p.FieldType.LIST and info.list_name and info.list_name not in list_items:
                        list_items[info.list_name] = client.get_config_list(info.list_name)
        except ConnectorError as error:
            problem = services.explain(error, language)
            fields = [p.FieldInfo.model_validate(f) for f in connection.config_fields] if connection.pk else []
            # Offer the saved list values, so that an unchanged configuration still validates.
            for info in fields:
                saved = connection.config.get(info.key)
                if info.type == p.FieldType.LIST and info.list_name and saved is not None:
                    list_items.setdefault(info.list_name, []).append(p.ListItem(key=str(saved), text=str(saved)))
        same_connector = connection.pk is not None or (connection.connector_id == connector.pk)
        initial = ConfigForm.initial_from(fields, connection.config) if same_connector else {}
        locked = connection.is_active
        form = ConfigForm(data, initial=initial, fields=fields, list_items=list_items,
                          stored_secrets=set(connection.secrets) if connection.pk else set(), locked=locked)  # fmt: skip
        return cls(connector, fields, form, problem, locked)


class ConfigFieldsPartial(AdminRequired, View):
    """htmx: the configuration fields of the connector chosen in the drop-down (new connections)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=request.GET.get("connector") or 0)
        config = ConfigSection.load(connector, ErpConnection(), self.language)
        return render(request, "connections/_config_fields.html", {"config": config, "connection": ErpConnection()})


class ConnectionTestView(AdminRequired, View):
    """htmx: TestConfigData with the values in the form right now, saved or not."""

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk) if pk else ErpConnection()
        chosen = request.POST.get("connector")
        connector = connection.connector if connection.pk else get_object_or_404(SyncConnector, pk=chosen or 0)
        config = ConfigSection.load(connector, connection, self.language, data=request.POST)
        if config.problem:
            outcome = services.TestOutcome(False, "error", config.problem.message, config.problem.technical)
        elif not config.form.is_valid():
            outcome = services.TestOutcome(False, "error", _("Fill in the marked fields first."))
        else:
            values = config.form.wire_values(stored=ConnectionFormView._stored_secrets(connection))
            outcome = services.test_config(connector, values, request.user, self.language)
            if connection.pk:
                services.audit(request.user, AuditAction.TESTED, connection,
                               _("new values passed") if outcome.passed else _("new values failed: %(why)s") % {"why": outcome.message})  # fmt: skip
        return render(request, "connections/_test_result.html", {"outcome": outcome, "config": config})


class ConnectionDetail(AdminRequired, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection.objects.select_related("connector", "created_by"), pk=pk)
        fields = [p.FieldInfo.model_validate(f) for f in connection.config_fields]
        shown = []
        for info in fields:
            if info.type == p.FieldType.LABEL:
                continue
            value = "••••••••" if info.key in connection.secrets else connection.config.get(info.key)
            shown.append((info.label, value))
        erp_fields = connection.erp_fields.all()
        context = {
            "connection": connection,
            "config_shown": shown,
            "actor_types": connection.actor_types.all(),
            "erp_fields": erp_fields,
            "grants": services.current_grants(connection),
            "problems": services.activation_problems(connection),
            "audit": connection.audit_entries.select_related("user")[:50],
            "runs": connection.runs.select_related("link__company", "link__contact", "link__project")[:20],
            "section": "settings",
        }
        return render(request, "connections/connection_detail.html", context)


class ConnectionActorTypesView(AdminRequired, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        enabled = set(request.POST.getlist("sync"))
        changed = []
        for actor_type in connection.actor_types.all():
            want = actor_type.actor_type in enabled
            if actor_type.sync_enabled != want:
                actor_type.sync_enabled = want
                actor_type.save(update_fields=["sync_enabled"])
                changed.append(f"{actor_type.actor_type}: {_('on') if want else _('off')}")
        if changed:
            services.audit(
                request.user, AuditAction.CHANGED, connection, _("sync of %(types)s") % {"types": ", ".join(changed)}
            )
            messages.success(request, _("Saved which actor types sync."))
        return redirect(connection)


class ConnectionTestSavedView(AdminRequired, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection.objects.select_related("connector"), pk=pk)
        outcome = services.test_saved_connection(connection, request.user, self.language)
        (messages.success if outcome.passed else messages.error)(request, outcome.message)
        return redirect(connection)


class ConnectionRefreshView(AdminRequired, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection.objects.select_related("connector"), pk=pk)
        try:
            missing = services.refresh_from_connector(connection, request.user, self.language)
        except (services.ConnectorCallFailed, ConnectorError) as failure:
            message = (
                str(failure)
                if isinstance(failure, services.ConnectorCallFailed)
                else services.explain(failure, self.language).message
            )
            messages.error(request, message)
        else:
            if missing:
                messages.warning(
                    request, _("The connector no longer has these fields: %(fields)s") % {"fields": ", ".join(missing)}
                )
            else:
                messages.success(request, _("Read the actor types and fields from the connector again."))
        return redirect(connection)


class ConnectionActiveView(AdminRequired, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        active = request.POST.get("active") == "1"
        try:
            services.set_active(connection, active, request.user)
        except services.ActivationRefused as refusal:
            messages.error(request, _("%(name)s cannot be activated:") % {"name": connection})
            for problem in refusal.problems:
                messages.error(request, problem)
        else:
            messages.success(
                request, (_("%(name)s is active.") if active else _("%(name)s is inactive.")) % {"name": connection}
            )
        target = request.POST.get("next", "")
        return redirect(
            target if target in (reverse("connections:sync"), connection.get_absolute_url()) else connection
        )


class ConnectionDeleteView(AdminRequired, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection, pk=pk)
        return render(
            request, "connections/connection_confirm_delete.html", {"connection": connection, "section": "settings"}
        )

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(ErpConnection.objects.select_related("connector"), pk=pk)
        name = str(connection)
        warning = services.delete_connection(connection, request.user, self.language)
        messages.success(request, _("Deleted the ERP connection %(name)s.") % {"name": name})
        if warning:
            messages.warning(request, _("The connector could not be told: %(why)s") % {"why": warning})
        return back_to_sync_tab()
