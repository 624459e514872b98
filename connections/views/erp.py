"""End-user endpoints of the ERP tab: Sync now for one link and a run's progress (polled by the tab), Disconnect,
connecting a record to an ERP actor (search, compare, link) and Create in ERP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django_htmx.http import HttpResponseClientRedirect

from connectors import protocol as p
from connectors.client import ConnectorError
from crm.models import Company, Contact, Project

from .. import erp_tab, jobs, linking, services, shown
from ..choices import ACTIVE_RUN_STATUSES
from ..forms import (
    ActorTypeForm,
    CardRecordForm,
    ConfigForm,
    ConnectChoiceForm,
    CriteriaForm,
    ErpSearchForm,
    RecordKindForm,
)
from ..models import ErpConnection, Link, SyncRun
from ..permissions import may_connect, may_create_in_erp
from .base import HtmxHttpRequest, Language

RECORD_MODELS: dict[str, type[Model]] = {"company": Company, "contact": Contact, "project": Project}


def run_json(run: SyncRun) -> dict[str, object]:
    """A run as the ERP tab's script reads it."""
    return {
        "run": run.pk,
        "kind": run.kind,
        "status": run.status,
        "status_text": run.get_status_display(),
        "progress": run.progress,
        "done": run.done,
        "total": run.total,
        "changed": run.changed,
        "failed": run.failed,
        "error": run.error,
        "url": reverse("erp:run", args=[run.pk]),
    }


def tab_url(record: Any) -> str:
    return reverse(f"crm:{record._meta.model_name}-tab", args=[record.pk, "erp"])


def wants_page(request: HtmxHttpRequest) -> bool:
    """A form sent by a browser without JavaScript: it is answered with the ERP tab again, not JSON."""
    return not request.htmx and "text/html" in request.headers.get("Accept", "")


def after_action(
    request: HtmxHttpRequest,
    record: Any,
    connection_pk: int,
    level: str,
    text: str,
    status: int = 200,
    following: SyncRun | None = None,
) -> HttpResponse:
    """The answer to an action on a card: for htmx, the whole card as it is now, saying what was done (and
    following ``following``, the run the action queued, until its poll finds it ended); for a browser without
    JavaScript, the ERP tab with the same words as a message."""
    if request.htmx:
        card = erp_tab.card_response(
            request, record, connection_pk, notice=(level, text), status=status, following=following
        )
        if card is not None:
            return card
    messages.add_message(request, getattr(messages, level.upper()), text)
    url = tab_url(record)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def visible_link(user: Any, pk: int) -> Link:
    """The link ``pk`` of a connection ``user`` may see, with its connection and record; 404 otherwise."""
    visible = ErpConnection.objects.visible_to(user)
    links = Link.objects.filter(connection__in=visible).select_related("connection", "company", "contact", "project")
    return get_object_or_404(links, pk=pk)


class SyncNowView(LoginRequiredMixin, View):
    """Queue Sync now for a link the user may see; answers the run (a new one, or the one already queued): for htmx
    the whole card, which shows the run's progress and polls it; for a browser without JavaScript the ERP tab; else
    JSON (202 for a new run, 200 for the one already queued, 409 refused)."""

    http_method_names = ["post"]

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        link = visible_link(request.user, pk)
        try:
            run, created = services.start_sync_now(link, request.user)
        except jobs.SyncRefused as refusal:
            if request.htmx or wants_page(request):
                return after_action(request, link.crm_record, link.connection_id, "error", str(refusal))
            return JsonResponse({"error": str(refusal)}, status=409)
        if request.htmx:
            # The card follows the run, and its poll tells how it went, even when a worker has ended it already.
            card = erp_tab.card_response(request, link.crm_record, link.connection_id, following=run)
            if card is not None:
                return card
            return render(request, "connections/_sync_progress.html", {"run": run})
        if wants_page(request):
            return after_action(request, link.crm_record, link.connection_id, "info", _("Syncing now."))
        return JsonResponse({**run_json(run), "created": created}, status=202 if created else 200)


class RunStatusView(LoginRequiredMixin, View):
    """A run's progress, of a connection the user may see: for htmx the progress partial while it runs, and once it
    has finished the whole card of its link (state, values, what was written, history); else JSON."""

    http_method_names = ["get"]

    def get(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        visible = ErpConnection.objects.visible_to(request.user)
        runs = SyncRun.objects.filter(connection__in=visible).select_related(
            "link__company", "link__contact", "link__project"
        )
        run = get_object_or_404(runs, pk=pk)
        if request.htmx:
            record = run.link.crm_record if run.link is not None else self.polling_record(request)
            if run.status in ACTIVE_RUN_STATUSES:
                # The record goes with the next poll too, so that the card is drawn whatever run it follows.
                return render(request, "connections/_sync_progress.html", {"run": run, "record": record})
            if record is not None:
                card = erp_tab.card_response(request, record, run.connection_id, finished=run)
                if card is not None:
                    return card
            changes = shown.describe_log(run.log.filter(outcome="written"))
            return render(request, "connections/_sync_progress.html", {"run": run, "changes": changes})
        return JsonResponse(run_json(run))

    @staticmethod
    def polling_record(request: HtmxHttpRequest) -> Any:
        """The record of the card that polls, named in the query string; None if not named or not the user's to see."""
        form = CardRecordForm(request.GET)
        if not form.is_valid():
            return None
        model = RECORD_MODELS[form.cleaned_data["kind"]]
        if not request.user.has_perm(f"crm.view_{model._meta.model_name}"):
            return None
        return model._default_manager.filter(pk=form.cleaned_data["record"]).first()


class DisconnectView(LoginRequiredMixin, View):
    """Remove only the link; nothing is deleted in the ERP. Needs the connect right on the connection."""

    http_method_names = ["post"]

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        link = visible_link(request.user, pk)
        if not may_connect(request.user, link.connection):
            raise PermissionDenied
        record = link.crm_record
        services.unlink(link, request.user)
        text = _("Disconnected %(record)s from %(connection)s.") % {"record": record, "connection": link.connection}
        return after_action(request, record, link.connection_id, "success", text)


class RelinkView(LoginRequiredMixin, View):
    """Link the record of a link whose ERP actor was merged into another to the surviving actor, in one step: the
    link is replaced through the linking service (its checks apply) and synced now. Needs the connect right."""

    http_method_names = ["post"]

    def post(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        link = visible_link(request.user, pk)
        if not may_connect(request.user, link.connection):
            raise PermissionDenied
        record = link.crm_record
        try:
            new = services.relink_to_survivor(link, request.user)
        except services.LinkRefused as refusal:
            return after_action(request, record, link.connection_id, "error", str(refusal))
        text = _("Linked %(record)s to %(type)s %(key)s; syncing now.") % {
            "record": record,
            "type": new.actor_type,
            "key": new.erp_key,
        }
        return sync_linked(request, new, record, text)


def sync_linked(request: HtmxHttpRequest, link: Link, record: Any, text: str) -> HttpResponse:
    """After linking: sync the new link now, and answer its card (progress showing), or the tab without htmx."""
    try:
        run, _created = services.start_sync_now(link, request.user)
    except jobs.SyncRefused as refusal:
        return after_action(request, record, link.connection_id, "warning", f"{text} {refusal}")
    # The card follows the run, however fast a worker ends it: a card drawn as the run ends would say "never".
    return after_action(request, record, link.connection_id, "success", text, following=run)


class ErpTabAction(LoginRequiredMixin, Language, View):
    """An action of the ERP tab on one CRM record through one active connection the user may see and has
    ``right`` in; the kind of record rides in the query string (links) or the form (posts)."""

    right: Callable[[Any, ErpConnection], bool]
    connection: ErpConnection
    record: Any

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # Anonymous users go on to LoginRequiredMixin, which sends them to log in before anything is looked up.
        if request.user.is_authenticated:
            self.connection, self.record = self.target(request, kwargs["connection_pk"], kwargs["record_pk"])
        return super().dispatch(request, *args, **kwargs)

    def target(self, request: HtmxHttpRequest, connection_pk: int, record_pk: int) -> tuple[ErpConnection, Any]:
        active = ErpConnection.objects.visible_to(request.user).filter(is_active=True).select_related("connector")
        connection = get_object_or_404(active, pk=connection_pk)
        kind = RecordKindForm(request.GET if request.GET.get("kind") else request.POST)
        if not kind.is_valid():
            raise Http404
        model = RECORD_MODELS[kind.cleaned_data["kind"]]
        if not request.user.has_perm(f"crm.view_{model._meta.model_name}"):
            raise PermissionDenied
        record = get_object_or_404(model, pk=record_pk)
        if not type(self).right(request.user, connection):
            raise PermissionDenied
        return connection, record

    def base_context(self) -> dict[str, Any]:
        return {"connection": self.connection, "record": self.record, "kind": linking.record_kind(self.record)}

    def linked(self, request: HtmxHttpRequest, link: Link, text: str) -> HttpResponse:
        """After linking: sync the new link now; the card is answered whole, linked and syncing."""
        return sync_linked(request, link, self.record, text)

    def refused(self, context: dict[str, Any], status: int) -> HttpResponse:
        return render(self.request, "connections/_erp_refused.html", context, status=status)


class ConnectView(ErpTabAction):
    """Connect a record: GET searches the ERP (by name, or advanced with ``advanced=1``); POST without
    ``confirm`` shows the values that differ between the record and the chosen actor; POST with ``confirm``
    links with the user's choice per value."""

    right = staticmethod(may_connect)

    def base_context(self) -> dict[str, Any]:
        return {**super().base_context(), "may_create": may_create_in_erp(self.request.user, self.connection)}

    def get(self, request: HtmxHttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
        types = linking.actor_types_for(self.connection, self.record)
        if not types:
            problem = services.Problem(
                "none", _("%(name)s does not sync this kind of record.") % {"name": self.connection}
            )
            context = {**self.base_context(), "result": linking.SearchResult(problem=problem)}
            return render(request, "connections/_erp_search.html", context)
        search = ErpSearchForm(request.GET)
        search.is_valid()  # every field is optional
        if search.cleaned_data["advanced"]:
            return self.advanced_search(search, types)
        text = search.cleaned_data["q"]
        result = linking.search(self.connection, self.record, types, self.language, text=text)
        return render(request, "connections/_erp_search.html", {**self.base_context(), "result": result})

    def advanced_search(self, search: ErpSearchForm, types: list[str]) -> HttpResponse:
        """The advanced search form for one actor type; with ``run``, its result."""
        actor_type = search.cleaned_data["actor_type"] or types[0]
        if actor_type not in types:
            raise Http404
        rows, problem = linking.criteria(self.connection, actor_type, None, self.language)
        context = {**self.base_context(), "rows": rows, "actor_type": actor_type, "actor_types": types}
        context["problem"] = problem
        if not search.cleaned_data["run"]:
            return render(self.request, "connections/_erp_advanced.html", context)
        criteria = CriteriaForm(self.request.GET, rows=rows, empty_message=_("Fill in at least one criterion."))
        if not criteria.is_valid():
            context["error"] = criteria.error_message
            return render(self.request, "connections/_erp_advanced.html", context, status=400)
        result = linking.search(
            self.connection, self.record, [actor_type], self.language, restrictions=criteria.restrictions
        )
        return render(self.request, "connections/_erp_advanced.html", {**context, "result": result})

    def post(self, request: HtmxHttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
        form = ConnectChoiceForm(request.POST)
        form.is_valid()  # every field is optional: an actor that is not there is refused by the linking
        actor_type, key = form.cleaned_data["actor_type"], form.cleaned_data["key"]
        try:
            if form.cleaned_data["confirm"]:
                return self.confirm(request, actor_type, key, form.choices())
            comparison = linking.compare(self.connection, actor_type, key, self.record, self.language)
        except services.LinkRefused as refusal:
            return self.refused({**self.base_context(), "message": str(refusal), "linked": refusal.linked}, 409)
        except ConnectorError as error:
            return self.refused({**self.base_context(), "problem": services.explain(error, self.language)}, 502)
        context = {**self.base_context(), "comparison": comparison, "actor_type": actor_type, "key": key}
        return render(request, "connections/_erp_compare.html", context)

    def confirm(self, request: HtmxHttpRequest, actor_type: str, key: str, choices: dict[str, str]) -> HttpResponse:
        """Link the record to the actor, each differing value taken from the side the user chose."""
        link = linking.connect(self.connection, actor_type, key, self.record, self.request.user, choices, self.language)
        text = _("Linked %(record)s to %(type)s %(key)s; syncing now.") % {
            "record": self.record,
            "type": shown.actor_type_word(self.connection, link.actor_type),
            "key": link.erp_key,
        }
        return self.linked(request, link, text)


class CreateView(ErpTabAction):
    """Create in ERP: GET shows what will be sent and asks for the prompted values; POST creates and links."""

    right = staticmethod(may_create_in_erp)

    def get(self, request: HtmxHttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
        return self.create(request, ActorTypeForm(request.GET), None)

    def post(self, request: HtmxHttpRequest, connection_pk: int, record_pk: int) -> HttpResponse:
        return self.create(request, ActorTypeForm(request.POST), request.POST)

    def create(self, request: HtmxHttpRequest, chosen: ActorTypeForm, data: Any) -> HttpResponse:
        types = linking.actor_types_for(self.connection, self.record)
        chosen.is_valid()  # the one field is optional
        actor_type = chosen.cleaned_data["actor_type"] or (types[0] if types else "")
        base = {**self.base_context(), "actor_types": types, "actor_type": actor_type}
        try:
            plan = linking.creation_plan(self.connection, actor_type, self.record)
        except services.LinkRefused as refusal:
            return self.refused({**base, "message": str(refusal)}, 409)
        form, problem = self.prompt_form(plan, data)
        context = {**base, "plan": plan, "form": form, "problem": problem}
        if data is None:
            return render(request, "connections/_erp_create.html", context)
        if not form.is_valid():
            return render(request, "connections/_erp_create.html", context, status=400)
        attempt = self.attempt_key(actor_type)
        if attempt not in request.session:
            request.session[attempt] = str(uuid.uuid4())
            # Saved now: a failed attempt answers 502, and Django saves no session with an answer of 500 or more.
            request.session.save()
        try:
            link = linking.create_in_erp(
                self.connection,
                plan,
                self.record,
                form.wire_values(),
                request.user,
                self.language,
                idempotency_key=request.session[attempt],
            )
        except services.LinkRefused as refusal:
            return self.refused({**base, "message": str(refusal)}, 409)
        except ConnectorError as error:
            context["problem"] = services.explain(error, self.language)
            # Whether pressing Create again is safe when the answer was lost: the ERP knows the attempt by its key.
            context["retry_safe"] = not error.permanent and self.connection.connector.supports(
                p.Capability.IDEMPOTENT_CREATE
            )
            return render(request, "connections/_erp_create.html", context, status=502)
        request.session.pop(attempt, None)  # the next Create in ERP of this record is another one
        text = _("Created %(type)s %(key)s in %(connection)s and linked %(record)s to it.") % {
            "type": shown.actor_type_word(self.connection, link.actor_type),
            "key": link.erp_key,
            "connection": self.connection,
            "record": self.record,
        }
        return self.linked(request, link, text)

    def attempt_key(self, actor_type: str) -> str:
        """The session key under which this Create in ERP keeps its idempotency key until it has linked the record:
        every attempt (a retry after a timeout, say) sends the same one, so the ERP makes the actor once."""
        kind = linking.record_kind(self.record)
        return f"erp-create:{self.connection.guid}:{actor_type}:{kind}:{self.record.pk}"

    def prompt_form(self, plan: linking.CreationPlan, data: Any) -> tuple[ConfigForm, services.Problem | None]:
        """The prompted values as a form, one widget per field type; list fields need their items from the ERP."""
        names = {prompt.info.list_name for prompt in plan.prompts if prompt.info.list_name}
        items, problem = services.read_lists(self.connection, names, self.language)
        infos = [prompt.info for prompt in plan.prompts]
        initial = ConfigForm.initial_from(infos, {prompt.field.key: prompt.initial for prompt in plan.prompts})
        return ConfigForm(data, fields=infos, list_items=items, initial=initial, prefix="ask"), problem
