"""Settings and maintenance → Quote/Sync → Alerts: channels, thresholds, recipients per connection, a test alert
and the incident history. ERP sync administrators only, like every Quote/Sync tab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from connections.models import AuditEntry, ErpConnection
from connections.views.base import AdminRequired, QuoteSyncTabView

from . import describe, services
from .forms import AlertSettingsForm, ConnectionAlertsForm
from .models import AlertSettings, ConnectionAlertSettings, Delivery, Incident

INCIDENTS_PER_PAGE = 25


@dataclass
class IncidentRow:
    """An incident as the history shows it, worded in the reader's language."""

    incident: Incident
    title: str
    details: list[str]
    deliveries: list[Delivery]


class AlertsTab(QuoteSyncTabView):
    tab = "alerts"
    template_name = "alerts/alerts.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        alert_settings = AlertSettings.current()
        context.setdefault("form", AlertSettingsForm(instance=alert_settings))
        own = {row.connection_id: row for row in ConnectionAlertSettings.objects.all()}
        context["connections"] = [
            (connection, own.get(connection.pk)) for connection in self.connections().select_related("connector")
        ]
        context["default_threshold"] = alert_settings.failed_records_threshold
        state = self.request.GET.get("state", "")
        incidents = Incident.objects.prefetch_related("deliveries")
        if state == "open":
            incidents = incidents.filter(resolved_at=None)
        elif state == "resolved":
            incidents = incidents.exclude(resolved_at=None)
        page = Paginator(incidents, INCIDENTS_PER_PAGE).get_page(self.request.GET.get("page"))
        context.update(
            state=state,
            page=page,
            rows=[IncidentRow(i, describe.title(i), describe.details(i), list(i.deliveries.all())) for i in page],
            open_count=Incident.objects.filter(resolved_at=None).count(),
            audit=AuditEntry.objects.filter(subject=services.AUDIT_SUBJECT).select_related("user")[:20],
        )
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AlertSettingsForm(request.POST, instance=AlertSettings.current())
        if not form.is_valid():
            messages.error(request, _("Nothing was saved; correct the fields marked below."))
            return self.render_to_response(self.get_context_data(form=form), status=400)
        changes = services.save_alert_settings(form.values(), form.webhook_change(), request.user)
        if changes:
            messages.success(request, _("Saved. The next evaluation, within a minute, uses it."))
        else:
            messages.info(request, _("Nothing changed."))
        return redirect("alerts:settings")


class ConnectionAlertsView(AdminRequired, View):
    """Who also hears of one connection's incidents, and its own failed-records threshold."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        row = ConnectionAlertSettings.objects.filter(connection=connection).first()
        return self._render(connection, ConnectionAlertsForm(instance=row))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = get_object_or_404(self.connections(), pk=pk)
        row = ConnectionAlertSettings.objects.filter(connection=connection).first()
        form = ConnectionAlertsForm(request.POST, instance=row)
        if not form.is_valid():
            return self._render(connection, form, status=400)
        changes = services.save_connection_alerts(
            connection, form.cleaned_data["recipients"], form.cleaned_data["failed_records_threshold"], request.user
        )
        if changes:
            messages.success(request, _("Saved the alert settings of %(name)s.") % {"name": connection})
        return redirect("alerts:settings")

    def _render(self, connection: ErpConnection, form: ConnectionAlertsForm, status: int = 200) -> HttpResponse:
        context = {
            "connection": connection,
            "form": form,
            "default_threshold": AlertSettings.current().failed_records_threshold,
            "section": "settings",
        }
        return render(self.request, "alerts/connection_alerts.html", context, status=status)


class TestAlertView(AdminRequired, View):
    """Send a test alert now to every configured address and the webhook, and say how each went."""

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            results = services.send_test_alert(request.user)
        except services.NothingToSend as nothing:
            messages.warning(request, str(nothing))
            return redirect("alerts:settings")
        for result in results:
            (messages.success if result.ok else messages.error)(request, result.message)
        return redirect("alerts:settings")
