"""Sync Connectors on the Sync tab: add, edit, check and delete. Saving and checking prove the connector answers."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from connectors.models import SyncConnector

from .. import services
from ..forms import SyncConnectorForm
from ..models import AuditEntry
from .base import AdminRequired, HtmxHttpRequest


def back_to_sync_tab() -> HttpResponseRedirect:
    return redirect("connections:sync")


class ConnectorFormView(AdminRequired, View):
    """Add or edit a Sync Connector. Saving proves that the URL answers the protocol with the secret."""

    def get(self, request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
        connector = self.connector(pk)
        return self.render_form(SyncConnectorForm(instance=connector), connector)

    def post(self, request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
        connector = self.connector(pk)
        form = SyncConnectorForm(request.POST, instance=connector)
        if not form.is_valid():
            return self.render_form(form, connector)
        candidate = form.save(commit=False)
        try:
            problem = services.save_checked_connector(
                candidate,
                form.cleaned_data["secret"] or None,
                request.user,
                save_unreachable=form.cleaned_data["save_unreachable"],
                language=self.language,
            )
        except services.ConnectorRefused as refusal:
            form.add_error(None, refusal.problem.message)
            if refusal.may_save_anyway:
                form.offer_save_unreachable()
            return self.render_form(form, connector, refusal.problem)
        if problem:
            messages.warning(
                request,
                _("Saved %(name)s, but it does not answer yet: %(why)s") % {"name": candidate, "why": problem.message},
            )
        else:
            messages.success(request, _("Saved %(name)s; it answers as a Sync Connector.") % {"name": candidate})
        return back_to_sync_tab()

    @staticmethod
    def connector(pk: int | None) -> SyncConnector:
        return get_object_or_404(SyncConnector, pk=pk) if pk else SyncConnector()

    def render_form(
        self, form: SyncConnectorForm, connector: SyncConnector, problem: services.Problem | None = None
    ) -> HttpResponse:
        audit = AuditEntry.objects.filter(connector=connector).select_related("user")[:50] if connector.pk else []
        context = {"form": form, "connector": connector, "problem": problem, "audit": audit, "section": "settings"}
        return render(self.request, "connections/connector_form.html", context)


class ConnectorCheckView(AdminRequired, View):
    """*Check*: does the connector still answer? The result shows in the status column."""

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=pk)
        problem = services.recheck_connector(connector, self.language)
        if problem:
            messages.error(request, _("%(name)s: %(why)s") % {"name": connector, "why": problem.message})
        else:
            messages.success(request, _("%(name)s answers as a Sync Connector.") % {"name": connector})
        return back_to_sync_tab()


class ConnectorDeleteView(AdminRequired, View):
    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=pk)
        used_by = list(self.connections().filter(connector=connector).values_list("name", flat=True))
        return render(
            request,
            "connections/connector_confirm_delete.html",
            {"connector": connector, "used_by": used_by, "section": "settings"},
        )

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        connector = get_object_or_404(SyncConnector, pk=pk)
        try:
            services.delete_connector(connector, request.user)
        except services.StillInUse as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(request, _("Deleted %(name)s.") % {"name": connector})
        return back_to_sync_tab()
