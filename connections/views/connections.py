"""ERP connections: define and edit one (its configuration screen comes from the connector), test it, read its
actor types and fields again, activate it, run its bulk jobs, delete it."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django_htmx.http import HttpResponseClientRedirect

from connectors import protocol as p
from connectors.client import ConnectorError
from connectors.models import SyncConnector

from .. import conflicts, display, jobs, mapping, services
from ..choices import ACTIVE_RUN_STATUSES, DriftState, RunKind
from ..forms import (
    ActivationForm,
    ActorTypesForm,
    BaseGrantFormSet,
    BulkRunForm,
    ConfigForm,
    ConnectionAutomaticSyncForm,
    ConnectionForm,
    ConnectorChoiceForm,
    GrantFormSet,
    RunTestForm,
    principal_choices,
)
from ..models import ErpConnection, SyncSettings
from ..sync import reconcile
from .base import AdminRequired, HtmxHttpRequest
from .connectors import back_to_sync_tab


class ConfigSection:
    """The connector-defined configuration part of the connection form, with what it took to build it."""

    def __init__(
        self,
        connector: SyncConnector,
        screen: services.ConfigScreen,
        form: ConfigForm,
        locked: bool,
        notes: dict[str, services.ListNote] | None = None,
    ) -> None:
        self.connector, self.fields, self.form, self.locked = connector, screen.fields, form, locked
        self.problem = screen.problem
        self.dependent = screen.dependent if screen.problem is None else {}
        self.notes = notes or {}
        # A test token that still matches the values shown, when the form comes back with errors elsewhere (a
        # name taken, say): the test need not be run again.
        self.passed_token = ""
        self.outcome: services.TestOutcome | None = None  # a test run by the form's own button (no JavaScript)

    def keep_passed_test(self, token: str, connection: ErpConnection) -> None:
        if token and not self.locked and self.form.is_valid():
            values = self.form.wire_values(stored=stored_secrets(connection))
            if services.test_token_matches(token, self.connector, values):
                self.passed_token = token

    @classmethod
    def load(
        cls, connector: SyncConnector, connection: ErpConnection, language: str, data: Any = None
    ) -> ConfigSection:
        screen = services.config_screen(connector, connection, language)
        same_connector = connection.pk is not None or (connection.connector_id == connector.pk)
        initial = ConfigForm.initial_from(screen.fields, connection.config) if same_connector else {}

        def form(list_items: dict[str, list[p.ListItem]]) -> ConfigForm:
            return ConfigForm(
                data,
                initial=initial,
                fields=screen.fields,
                list_items=list_items,
                stored_secrets=set(connection.secrets) if connection.pk else set(),
                locked=connection.is_active,
            )

        notes: dict[str, services.ListNote] = {}
        list_items = screen.list_items
        if screen.dependent and screen.problem is None:
            # Lists that depend on other values (config_list_values) are read with the values entered so far.
            if data is not None:
                entered = form(list_items)
                entered.full_clean()  # the values that are valid so far; the lists' own values are not needed
                values = entered.wire_values(stored=stored_secrets(connection))
            elif same_connector and connection.pk:
                values = connection.config_values()
            else:
                values = {info.key: info.default for info in screen.fields if info.type != p.FieldType.LABEL}
            dependent_items, notes = services.dependent_lists(connector, screen, values, language)
            list_items = {**list_items, **dependent_items}
        section = form(list_items)
        for key in notes:
            if key in section.fields:
                section.fields[key].widget.attrs["aria-describedby"] = f"config-list-note-{key}"
        return cls(connector, screen, section, connection.is_active, notes)

    def dependent_field(self, key: str) -> dict[str, Any]:
        """What the template shows for a list that depends on other values: the field, what it depends on, and
        why it has no items (if it has none)."""
        return {"field": self.form[key], "depends_on": self.dependent[key], "note": self.notes.get(key)}

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The configuration fields in order, each a bound field, with ``dependent`` set for those lists."""
        return [
            self.dependent_field(bound.name) | {"dependent": True}
            if bound.name in self.dependent
            else {"field": bound, "dependent": False}
            for bound in self.form
        ]


def stored_secrets(connection: ErpConnection) -> dict[str, p.Value]:
    """The connection's saved password values: an empty password field keeps them."""
    values = connection.config_values() if connection.pk else {}
    return {key: values[key] for key in connection.secrets}


def chosen_connector(connection: ErpConnection, chosen: SyncConnector | None) -> SyncConnector:
    """A saved connection's connector; for a new one, the connector chosen in the form (or named in the URL), else
    the one added last: the admin who has just added a connector goes on to define a connection for it."""
    if connection.pk:
        return connection.connector
    if chosen is not None:
        return chosen
    latest = SyncConnector.objects.order_by("-created_at", "-pk").first()
    assert latest is not None
    return latest


class ConnectionFormView(AdminRequired, View):
    """Define a new ERP connection, or edit one. OK needs a passed test of exactly the values saved."""

    def get(self, request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
        connection = self.connection(pk)
        if connection is None:
            return back_to_sync_tab()
        grants = [
            {
                "principal": f"{'g' if hasattr(g.principal, 'user_set') else 'u'}:{g.principal.pk}",
                "can_connect": g.can_connect,
                "can_create": g.can_create,
            }
            for g in (services.current_grants(connection) if connection.pk else [])
        ]
        form = ConnectionForm(instance=connection)
        grant_forms = GrantFormSet(initial=grants, prefix="grant", form_kwargs={"choices": principal_choices()})
        connector = chosen_connector(connection, ConnectorChoiceForm(request.GET).chosen())
        config = ConfigSection.load(connector, connection, self.language)
        return self.render_form(connection, form, grant_forms, config)

    def post(self, request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
        connection = self.connection(pk)
        if connection is None:
            return back_to_sync_tab()
        form = ConnectionForm(request.POST, instance=connection)
        grant_forms = GrantFormSet(request.POST, prefix="grant", form_kwargs={"choices": principal_choices()})
        forms_valid = form.is_valid() and grant_forms.is_valid()
        connector = chosen_connector(connection, form.cleaned_data.get("connector"))
        config = ConfigSection.load(connector, connection, self.language, data=request.POST)
        if RunTestForm(request.POST).wanted():
            # *Test ERP connection* pressed in a browser without JavaScript: the form again, with the outcome.
            config.outcome = test_outcome(config, connection, request.user, self.language)
            return self.render_form(connection, form, grant_forms, config)
        # With the connector down, a saved connection can still be renamed or shared; a new one cannot be made.
        if (config.problem and connection.pk is None) or not config.form.is_valid() or not forms_valid:
            return self.render_form(connection, form, grant_forms, config)
        values: dict[str, p.Value] | None = None
        if not connection.is_active:
            submitted = config.form.wire_values(stored=stored_secrets(connection))
            if connection.pk is None or submitted != connection.config_values():
                if not services.test_token_matches(form.cleaned_data["test_token"], connector, submitted):
                    config.form.add_error(None, _("Test the ERP connection with these values before pressing OK."))
                    return self.render_form(connection, form, grant_forms, config)
                values = submitted
        instance = form.save(commit=False)
        try:
            services.save_connection(
                instance,
                fields=config.fields,
                values=values,
                grants=cast(BaseGrantFormSet, grant_forms).grants(),
                user=request.user,
                language=self.language,
            )
        except services.ConnectorCallFailed as failure:
            config.form.add_error(None, f"{failure.step}: {failure.problem.message}")
            if connection.pk is None:
                instance.pk = None
                instance._state.adding = True
            return self.render_form(connection, form, grant_forms, config)
        messages.success(request, _("Saved the ERP connection %(name)s.") % {"name": instance})
        if pk:
            return redirect(instance)
        # A new connection: back to the list, which shows it (as the help pages have it).
        return HttpResponseClientRedirect(reverse("connections:sync")) if request.htmx else back_to_sync_tab()

    def connection(self, pk: int | None) -> ErpConnection | None:
        if pk:
            return get_object_or_404(self.connections().select_related("connector"), pk=pk)
        if not SyncConnector.objects.exists():
            messages.error(self.request, _("Add a Sync Connector before defining an ERP connection."))
            return None
        return ErpConnection()

    def render_form(
        self, connection: ErpConnection, form: ConnectionForm, grant_forms: Any, config: ConfigSection
    ) -> HttpResponse:
        if self.request.method == "POST":
            config.keep_passed_test(str(form["test_token"].value() or ""), connection)
        context = {
            "connection": connection,
            "form": form,
            "grant_forms": grant_forms,
            "config": config,
            "principals": principals(),
            "section": "settings",
        }
        if cast(HtmxHttpRequest, self.request).htmx and connection.pk is None:
            # *Define new ERP connection* is a dialog over the Sync tab: opened with the dialog, answered with the
            # form again (errors and all) inside it.
            if self.request.method == "GET":
                return render(self.request, "connections/_connection_dialog.html", context)
            return render(self.request, "connections/_connection_form.html", {**context, "in_dialog": True})
        return render(self.request, "connections/connection_form.html", context)


def principals() -> list[tuple[str, str, str]]:
    """What the grant picker offers: (value, name, "User" or "Group"), groups first."""
    kinds = {"g": _("Group"), "u": _("User")}
    return [(value, label, kinds[value[0]]) for _title, options in principal_choices() for value, label in options]


class ConfigFieldsPartial(AdminRequired, View):
    """htmx: the configuration fields of the connector chosen in the drop-down (new connections)."""

    def get(self, request: HtmxHttpRequest) -> HttpResponse:
        connector = ConnectorChoiceForm(request.GET).chosen()
        if connector is None:
            raise Http404
        config = ConfigSection.load(connector, ErpConnection(), self.language)
        return render(request, "connections/_config_fields.html", {"config": config, "connection": ErpConnection()})


class ConfigListPartial(AdminRequired, View):
    """htmx: one configuration list that depends on other values (config_list_values), read again with the values
    in the form right now, when one of them changed. POST, so that a password typed is in no address or log; the
    answer holds the list only, never a value typed."""

    def post(self, request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk) if pk else ErpConnection()
        connector = connection.connector if connection.pk else ConnectorChoiceForm(request.POST).chosen()
        if connector is None:
            raise Http404
        config = ConfigSection.load(connector, connection, self.language, data=request.POST)
        key = request.POST.get("config_list_field", "")
        if key not in config.dependent:
            raise Http404
        context = {**config.dependent_field(key), "connection": connection, "quiet": True}
        return render(request, "connections/_config_list_field.html", context)


def test_outcome(config: ConfigSection, connection: ErpConnection, user: Any, language: str) -> services.TestOutcome:
    """TestConfigData with the configuration values in the form right now, saved or not."""
    if config.problem:
        return services.TestOutcome(False, "error", config.problem.message, config.problem.technical)
    if not config.form.is_valid():
        return services.TestOutcome(False, "error", _("Fill in the marked fields first."))
    values = config.form.wire_values(stored=stored_secrets(connection))
    return services.test_config(config.connector, values, user, language, connection=connection)


class ConnectionTestView(AdminRequired, View):
    """htmx: TestConfigData with the values in the form right now, saved or not."""

    def post(self, request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk) if pk else ErpConnection()
        connector = connection.connector if connection.pk else ConnectorChoiceForm(request.POST).chosen()
        if connector is None:
            raise Http404
        config = ConfigSection.load(connector, connection, self.language, data=request.POST)
        outcome = test_outcome(config, connection, request.user, self.language)
        return render(request, "connections/_test_result.html", {"outcome": outcome, "config": config})


def automatic_state(connection: ErpConnection) -> dict[str, Any]:
    """What the connection page says of its automatic sync: whether it runs, how often, and when next."""
    settings_row = SyncSettings.load()
    return {
        "master_on": settings_row.automatic_sync,
        "interval": int(jobs.automatic_interval(connection, settings_row).total_seconds() // 60),
        "global_interval": settings_row.interval_minutes,
        "due_at": jobs.automatic_due_at(connection, settings_row),
    }


class ConnectionDetail(AdminRequired, View):
    """A connection's page: its configuration (secrets masked), actor types, grants, what stops activation,
    its audit and its latest jobs."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections().select_related("connector", "created_by"), pk=pk)
        fields = [p.FieldInfo.model_validate(f) for f in connection.config_fields]
        shown = [
            (
                display.pick(info.labels, info.label),
                "••••••••"
                if info.key in connection.secrets
                else display.format_value(connection.config.get(info.key), info.type),
            )
            for info in fields
            if info.type != p.FieldType.LABEL
        ]
        actor_types = list(connection.actor_types.all())
        for actor_type in actor_types:
            actor_type.crm_object = mapping.CRM_OBJECT_NAME[mapping.CRM_MODEL[actor_type.actor_type]]  # type: ignore[attr-defined]
        context = {
            "connection": connection,
            "config_shown": shown,
            "actor_types": actor_types,
            "erp_fields": connection.erp_fields.all(),
            "grants": services.current_grants(connection),
            "problems": services.activation_problems(connection),
            "audit": connection.audit_entries.select_related("user")[:50],
            "runs": connection.runs.select_related("link__company", "link__contact", "link__project")[:20],
            "automatic": automatic_state(connection),
            "reconciliation": reconciliation_state(connection),
            "failed_count": services.failed_records(connection).count(),
            "held_count": conflicts.open_count(connection),
            "section": "settings",
        }
        return render(request, "connections/connection_detail.html", context)


def reconciliation_state(connection: ErpConnection) -> dict[str, Any]:
    """The connection's health as reconciliation left it: each drift state's count (kept up to date by syncs since),
    the last reconciliation run, and the hour of the night it runs at."""
    # A reconciliation or a sync of the drifted records queued or running: the section follows it. Read before
    # the counts: a run that ends between the two reads then leaves the section following it (its next look
    # shows the final counts), never showing counts from before the run's end as if they were final.
    running = connection.runs.filter(
        kind__in=[RunKind.RECONCILE, RunKind.SYNC_DRIFTED], status__in=ACTIVE_RUN_STATUSES
    ).first()
    counts = reconcile.summary(connection)
    return {
        "states": [(state, state.label, counts[state]) for state in reconcile.STATES],
        "checked": sum(counts.values()),
        "drifted": counts[DriftState.DRIFTED],
        "last": reconcile.last_reconciliation(connection),
        "running": running,
        "hour": settings.ERPSYNC_RECONCILE_HOUR,
    }


class ConnectionReconcileView(AdminRequired, View):
    """Reconcile the connection every night, or not."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        services.save_reconcile_nightly(connection, request.POST.get("reconcile_nightly") == "on", request.user)
        messages.success(request, _("Saved. Workers apply it within a minute; nothing needs a restart."))
        return redirect(connection)


class ConnectionActorTypesView(AdminRequired, View):
    """Which actor types sync."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        form = ActorTypesForm(request.POST)
        form.is_valid()  # the one field is optional
        if services.set_synced_actor_types(connection, set(form.cleaned_data["sync"]), request.user):
            messages.success(request, _("Saved which actor types sync."))
        return redirect(connection)


class ConnectionTestSavedView(AdminRequired, View):
    """TestConnection for the saved connection; activation needs a pass."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk)
        outcome = services.test_saved_connection(connection, request.user, self.language)
        (messages.success if outcome.passed else messages.error)(request, outcome.message)
        return redirect(connection)


class ConnectionRefreshView(AdminRequired, View):
    """*Refresh from connector*: read the actor types and fields again, and name the fields gone."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk)
        try:
            missing = services.refresh_from_connector(connection, request.user, self.language)
        except services.ConnectorCallFailed as failure:
            messages.error(request, str(failure))
        except ConnectorError as error:
            messages.error(request, services.explain(error, self.language).message)
        else:
            if missing:
                messages.warning(
                    request, _("The connector no longer has these fields: %(fields)s") % {"fields": ", ".join(missing)}
                )
            else:
                messages.success(request, _("Read the actor types and fields from the connector again."))
        return redirect(connection)


class ConnectionActiveView(AdminRequired, View):
    """Activate or deactivate; back to the Sync tab or the connection. Deactivating a live connection is
    confirmed on a page of its own first; a refused activation lands on the connection's page, which lists
    every reason once, under one message."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        form = ActivationForm(request.POST)
        form.is_valid()  # every field is optional and anything is read as "deactivate" / "no page" / "not confirmed"
        active = form.cleaned_data["active"]
        target = form.cleaned_data["next"]
        if target not in (reverse("connections:sync"), connection.get_absolute_url()):
            target = connection.get_absolute_url()
        if not active and connection.is_active and not form.cleaned_data["confirm"]:
            context = {"connection": connection, "next": target, "section": "settings"}
            return render(request, "connections/connection_confirm_deactivate.html", context)
        try:
            services.set_active(connection, active, request.user)
        except services.ActivationRefused:
            messages.error(
                request,
                _("%(name)s was not activated: put right what is listed under “Before it can be activated”.")
                % {"name": connection},
            )
            return redirect(connection)
        messages.success(
            request, (_("%(name)s is active.") if active else _("%(name)s is inactive.")) % {"name": connection}
        )
        return redirect(target)


class ConnectionBulkRunView(AdminRequired, View):
    """Sync all, or Resync from CRM, for one connection: queues a job; progress shows on the connection page."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections().select_related("connector"), pk=pk)
        form = BulkRunForm(request.POST)
        form.is_valid()  # both fields are optional: anything but "resync" is Sync all
        kind = form.cleaned_data["kind"]
        try:
            if kind == RunKind.RECONCILE:
                reconcile.queue_reconcile(connection, request.user)
            elif kind == RunKind.SYNC_DRIFTED:
                reconcile.queue_sync_drifted(connection, request.user)
            else:
                jobs.queue_bulk(connection, kind, request.user, keep_non_blank=form.cleaned_data["keep_non_blank"])
        except (jobs.SyncRefused, jobs.AlreadyRunning) as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(
                request, _("%(kind)s of %(name)s is queued.") % {"kind": RunKind(kind).label, "name": connection}
            )
        return redirect(connection)


class ConnectionAutomaticSyncView(AdminRequired, View):
    """Pause or resume a connection's automatic sync, and set its interval."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        form = ConnectionAutomaticSyncForm(request.POST, instance=ErpConnection.objects.get(pk=pk))
        if not form.is_valid():
            for errors in form.errors.values():
                messages.error(request, str(errors[0]))
            return redirect(connection)
        services.save_connection_automatic_sync(
            connection,
            form.cleaned_data["automatic_sync"],
            form.cleaned_data["automatic_interval_minutes"],
            request.user,
        )
        messages.success(request, _("Saved. Workers apply it within a minute; nothing needs a restart."))
        return redirect(connection)


class ConnectionDeleteView(AdminRequired, View):
    """Delete (softly): the page says what the connection holds and that it can be restored until it is purged."""

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        context = {
            "connection": connection,
            "held": services.held_by(connection),
            "days": settings.ERPSYNC_DELETED_CONNECTION_DAYS,
            "section": "settings",
        }
        return render(request, "connections/connection_confirm_delete.html", context)

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        services.delete_connection(connection, request.user)
        messages.success(
            request,
            _("Deleted the ERP connection %(name)s. It can be restored from Deleted connections below.")
            % {"name": connection},
        )
        return back_to_sync_tab()


class ConnectionRestoreView(AdminRequired, View):
    """Restore a deleted connection (the Sync tab's *Deleted connections*): it comes back inactive."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        deleted = get_object_or_404(services.deleted_connections(), pk=pk)
        old_name = deleted.name
        try:
            restored = services.restore_connection(deleted, request.user)
        except services.RestoreRefused as refused:
            messages.error(request, str(refused))
            return back_to_sync_tab()
        except ErpConnection.DoesNotExist:  # restored, or purged, by someone else meanwhile
            raise Http404 from None
        if restored.name != old_name:
            messages.warning(
                request,
                _(
                    "Restored %(old)s as %(name)s: another ERP connection has its name. It is inactive; activate it "
                    "when it should sync again."
                )
                % {"old": old_name, "name": restored.name},
            )
        else:
            messages.success(
                request,
                _("Restored the ERP connection %(name)s. It is inactive; activate it when it should sync again.")
                % {"name": restored.name},
            )
        return redirect(restored)
