"""/api/v1/: connections, links, runs, the sync log and failed records, and imports.

Each route checks what the page with the same action checks (the licence or the admin right, the connection's
visibility, ``may_connect``), a write also the token's scope, and hands the work to the same service the page
calls: there is no business logic here."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import Field, NinjaAPI, Query, Router, Status
from ninja import Schema as NinjaSchema

from connections import filtersets, importing, jobs, linking, services
from connections.choices import LinkStatus, RunKind
from connections.models import ErpConnection, ErpImport, Link, SyncRun
from connections.models import ImportRow as ImportRowModel
from connections.permissions import can_manage_erp_sync, may_connect, may_create_in_erp
from connectors.client import ConnectorError
from crm.models import Company, Contact, Project

from . import schemas as s
from .base import (
    ApiError,
    BearerToken,
    Error,
    connections_for,
    install_handlers,
    not_found,
    require_admin,
    require_licence,
    require_write,
)

RECORD_MODELS: dict[str, type[Model]] = {"company": Company, "contact": Contact, "project": Project}
ERRORS: dict[int, Any] = {400: Error, 401: Error, 403: Error, 404: Error, 409: Error, 429: Error, 502: Error}

api = NinjaAPI(
    title="erpsync API",
    version="1",
    description="Automate ERP sync: connections, links, runs, the sync log, failed records and imports. "
    "Authenticate with a personal API token: `Authorization: Bearer <token>` (see docs/api.md).",
    auth=BearerToken(),
    urls_namespace="api",
    docs_url=None,  # the docs page is the app's own, for logged-in users (api/urls.py)
)
install_handlers(api)


def language() -> str:
    return get_language() or "en"


class Paging(NinjaSchema):
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(50, ge=1, le=200)


def page_of(queryset: QuerySet[Any], page: int, page_size: int) -> tuple[dict[str, int], list[Any]]:
    if page < 1 or not 1 <= page_size <= 200:
        raise ApiError(400, "invalid", _("page must be 1 or more, and page_size from 1 to 200."))
    start = (page - 1) * page_size
    return {"count": queryset.count(), "page": page, "page_size": page_size}, list(queryset[start : start + page_size])


# Shapes


def run_out(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "connection": run.connection_id,
        "link": run.link_id,
        "kind": run.kind,
        "kind_text": run.get_kind_display(),
        "status": run.status,
        "status_text": run.get_status_display(),
        "progress": run.progress,
        "total": run.total,
        "done": run.done,
        "changed": run.changed,
        "failed": run.failed,
        "error": run.error,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def link_out(link: Link) -> dict[str, Any]:
    record = link.crm_record
    return {
        "id": link.pk,
        "connection": link.connection_id,
        "actor_type": link.actor_type,
        "erp_key": link.erp_key,
        "record": {"kind": linking.record_kind(record), "id": record.pk, "name": str(record)},
        "status": link.status,
        "status_text": link.get_status_display(),
        "last_error": link.last_error,
        "last_synced_at": link.last_synced_at,
        "dismissed_at": link.dismissed_at,
    }


def connection_out(request: HttpRequest, connection: ErpConnection) -> dict[str, Any]:
    admin = can_manage_erp_sync(request.user)
    return {
        "id": connection.pk,
        "name": connection.name,
        "description": connection.description,
        "connector": str(connection.connector),
        "is_active": connection.is_active,
        "actor_types": list(
            connection.actor_types.filter(sync_enabled=True).values_list("actor_type", flat=True).order_by("pk")
        ),
        "last_sync_at": connection.last_sync_at,
        "may_connect": may_connect(request.user, connection),
        "may_create": may_create_in_erp(request.user, connection),
        "activation_problems": services.activation_problems(connection) if admin else None,
    }


def import_out(erp_import: ErpImport) -> dict[str, Any]:
    return {
        "id": erp_import.pk,
        "connection": erp_import.connection_id,
        "actor_type": erp_import.actor_type,
        "everything": erp_import.everything,
        "phase": erp_import.phase,
        "summary": importing.summary(erp_import),
        "preview_run": run_out(erp_import.preview_run) if erp_import.preview_run else None,
        "import_run": run_out(erp_import.import_run) if erp_import.import_run else None,
        "created_at": erp_import.created_at,
    }


# Connections

connections_router = Router(tags=["connections"])


def visible_connection(request: HttpRequest, pk: int, *, admin: bool = False) -> ErpConnection:
    if admin:
        require_admin(request)
    else:
        require_licence(request)
    connection = connections_for(request, as_admin=True).filter(pk=pk).first()
    if connection is None:
        raise not_found()
    return connection


@connections_router.get("/", response={200: list[s.Connection], **ERRORS}, url_name="connections")
def list_connections(request: HttpRequest) -> Any:
    """The connections you may see: those shared with you; every one for an ERP sync administrator."""
    require_licence(request)
    visible = connections_for(request, as_admin=True).select_related("connector").order_by("name", "pk")
    return [connection_out(request, connection) for connection in visible]


@connections_router.get("/{int:connection_id}/", response={200: s.Connection, **ERRORS}, url_name="connection")
def get_connection(request: HttpRequest, connection_id: int) -> Any:
    return connection_out(request, visible_connection(request, connection_id))


def set_active(request: HttpRequest, connection_id: int, active: bool) -> Any:
    connection = visible_connection(request, connection_id, admin=True)
    require_write(request)
    try:
        services.set_active(connection, active, request.user)
    except services.ActivationRefused as refusal:
        raise ApiError(
            409,
            "activation_refused",
            _("%(name)s was not activated: %(why)s") % {"name": connection, "why": str(refusal)},
            problems=refusal.problems,
        ) from refusal
    return connection_out(request, connection)


@connections_router.post(
    "/{int:connection_id}/activate/", response={200: s.Connection, **ERRORS}, url_name="connection-activate"
)
def activate(request: HttpRequest, connection_id: int) -> Any:
    """Activate the connection; refused (409, with every reason in ``problems``) while anything stops it."""
    return set_active(request, connection_id, True)


@connections_router.post(
    "/{int:connection_id}/deactivate/", response={200: s.Connection, **ERRORS}, url_name="connection-deactivate"
)
def deactivate(request: HttpRequest, connection_id: int) -> Any:
    """Deactivate the connection: nothing syncs through it until it is activated again."""
    return set_active(request, connection_id, False)


def bulk(request: HttpRequest, connection_id: int, kind: str, body: s.BulkRun) -> Any:
    connection = visible_connection(request, connection_id, admin=True)
    require_write(request)
    try:
        run = jobs.queue_bulk(connection, kind, request.user, keep_non_blank=body.keep_non_blank)
    except (jobs.SyncRefused, jobs.AlreadyRunning) as refusal:
        raise ApiError(409, "refused", str(refusal)) from refusal
    return Status(202, {"run": run_out(run), "created": True})


@connections_router.post(
    "/{int:connection_id}/sync-all/", response={202: s.RunStarted, **ERRORS}, url_name="connection-sync-all"
)
def sync_all(request: HttpRequest, connection_id: int, body: s.BulkRun) -> Any:
    """Sync all: every link of the connection, both ways by the mapping's directions."""
    return bulk(request, connection_id, RunKind.SYNC_ALL, body)


@connections_router.post(
    "/{int:connection_id}/resync/", response={202: s.RunStarted, **ERRORS}, url_name="connection-resync"
)
def resync(request: HttpRequest, connection_id: int, body: s.BulkRun) -> Any:
    """Resync from CRM: every link, the CRM's values written to the ERP."""
    return bulk(request, connection_id, RunKind.RESYNC, body)


class LogFilter(Paging):
    run: s.Id | None = None
    record: str = ""
    field: str = ""
    direction: str = ""
    outcome: str = ""


@connections_router.get("/{int:connection_id}/log/", response={200: s.LogPage, **ERRORS}, url_name="sync-log")
def sync_log(request: HttpRequest, connection_id: int, filters: Query[LogFilter]) -> Any:
    """The sync log, newest first, filtered as on its page (an unknown direction or outcome is ignored)."""
    connection = visible_connection(request, connection_id, admin=True)
    data = {key: value for key, value in filters.dict().items() if key not in ("page", "page_size") and value}
    log = filtersets.sync_log(connection.pk, data).qs
    meta, entries = page_of(log, filters.page, filters.page_size)
    results = [
        {
            "id": e.pk,
            "at": e.at,
            "run": e.run_id,
            "link": e.link_id,
            "actor_type": e.actor_type,
            "erp_key": e.erp_key,
            "field_key": e.field_key,
            "crm_field": e.crm_field,
            "direction": e.direction,
            "outcome": e.outcome,
            "old": e.old,
            "new": e.new,
            "reason": e.reason,
        }
        for e in entries
    ]
    return {**meta, "results": results}


@connections_router.get("/{int:connection_id}/failed/", response={200: s.LinkPage, **ERRORS}, url_name="failed")
def failed(request: HttpRequest, connection_id: int, paging: Query[Paging]) -> Any:
    """Records whose last sync failed or whose ERP actor is gone, unless dismissed; by error."""
    connection = visible_connection(request, connection_id, admin=True)
    meta, links = page_of(
        services.failed_records(connection).order_by("last_error", "pk"), paging.page, paging.page_size
    )
    return {**meta, "results": [link_out(link) for link in links]}


def chosen_failures(connection: ErpConnection, choice: s.FailedChoice) -> list[Link]:
    failures = services.failed_records(connection)
    if choice.all:
        return list(failures)
    if not choice.links:
        raise ApiError(400, "nothing_chosen", _("Name the failed links in links, or send all: true."))
    found = list(failures.filter(pk__in=choice.links))
    if len(found) != len(set(choice.links)):
        raise ApiError(404, "not_found", _("Some of these links are not failed records of this connection."))
    return found


@connections_router.post(
    "/{int:connection_id}/failed/retry/", response={202: s.Counted, **ERRORS}, url_name="failed-retry"
)
def retry_failed(request: HttpRequest, connection_id: int, body: s.FailedChoice) -> Any:
    """Retry: Sync now for each chosen failed record."""
    connection = visible_connection(request, connection_id, admin=True)
    require_write(request)
    links = chosen_failures(connection, body)
    queued, refusal = services.retry_failures(links, request.user)
    if refusal and not queued:
        raise ApiError(409, "refused", refusal)
    message = _("Queued %(n)s records to be synced again.") % {"n": queued}
    return Status(202, {"count": queued, "message": f"{message} {refusal}".strip()})


@connections_router.post(
    "/{int:connection_id}/failed/dismiss/", response={200: s.Counted, **ERRORS}, url_name="failed-dismiss"
)
def dismiss_failed(request: HttpRequest, connection_id: int, body: s.Dismissal) -> Any:
    """Dismiss: hide the chosen failures, with why, until their error changes."""
    connection = visible_connection(request, connection_id, admin=True)
    require_write(request)
    if not body.reason.strip():
        raise ApiError(400, "invalid", _("Say why the failures are dismissed."))
    links = chosen_failures(connection, body)
    count = services.dismiss_failures(connection, links, body.reason.strip(), request.user)
    return {"count": count, "message": _("Dismissed %(n)s records.") % {"n": count}}


# Links

links_router = Router(tags=["links"])


def visible_links(request: HttpRequest) -> QuerySet[Link]:
    require_licence(request)
    links = Link.objects.filter(connection__in=connections_for(request)).select_related(
        "connection", "company", "contact", "project"
    )
    for kind, model in RECORD_MODELS.items():
        if not request.user.has_perm(f"crm.view_{model._meta.model_name}"):
            links = links.filter(**{f"{kind}__isnull": True})
    return links


def visible_link(request: HttpRequest, pk: int) -> Link:
    link = visible_links(request).filter(pk=pk).first()
    if link is None:
        raise not_found()
    return link


class LinkFilter(Paging):
    connection: s.Id | None = None
    company: s.Id | None = None
    contact: s.Id | None = None
    project: s.Id | None = None
    status: LinkStatus | None = None


@links_router.get("/", response={200: s.LinkPage, **ERRORS}, url_name="links")
def list_links(request: HttpRequest, filters: Query[LinkFilter]) -> Any:
    """Links of the connections you may see; by record (company, contact or project id), connection or status."""
    links = visible_links(request)
    for name in ("connection", "company", "contact", "project", "status"):
        value = getattr(filters, name)
        if value is not None:
            links = links.filter(**{f"{name}_id" if name != "status" else name: value})
    meta, page = page_of(links.order_by("pk"), filters.page, filters.page_size)
    return {**meta, "results": [link_out(link) for link in page]}


@links_router.post("/", response={201: s.LinkCreated, **ERRORS}, url_name="link-create")
def connect(request: HttpRequest, body: s.LinkCreate) -> Any:
    """Connect a CRM record to an ERP actor by its key, as the ERP tab's Connect does: for each value that differs,
    the side named in ``choices`` wins, else the one the tab preselects. The new link is synced now unless ``sync``
    is false."""
    require_licence(request)
    require_write(request)
    connection = connections_for(request).filter(pk=body.connection, is_active=True).first()
    if connection is None:
        raise ApiError(404, "not_found", _("There is no such active connection, or you may not see it."))
    model = RECORD_MODELS[body.record_kind]
    if not request.user.has_perm(f"crm.view_{model._meta.model_name}"):
        raise ApiError(403, "forbidden", _("You may not see this kind of record."))
    record = model._default_manager.filter(pk=body.record_id).first()
    if record is None:
        raise not_found()
    if not may_connect(request.user, connection):
        raise ApiError(
            403, "may_not_connect", _("You may not connect records through %(name)s.") % {"name": connection}
        )
    try:
        link = linking.connect(
            connection, body.actor_type, body.erp_key, record, request.user, dict(body.choices), language()
        )
    except services.LinkRefused as refusal:
        raise ApiError(409, "link_refused", str(refusal)) from refusal
    except ConnectorError as error:
        raise ApiError(502, "connector_error", services.explain(error, language()).message) from error
    text = _("Linked %(record)s to %(type)s %(key)s.") % {
        "record": record,
        "type": link.actor_type,
        "key": link.erp_key,
    }
    run = None
    if body.sync:
        try:
            run, _created = services.start_sync_now(link, request.user)
        except jobs.SyncRefused as refusal:
            text = f"{text} {refusal}"
    return Status(201, {"link": link_out(link), "run": run_out(run) if run else None, "message": text})


@links_router.get("/{int:link_id}/", response={200: s.Link, **ERRORS}, url_name="link")
def get_link(request: HttpRequest, link_id: int) -> Any:
    return link_out(visible_link(request, link_id))


@links_router.delete("/{int:link_id}/", response={204: None, **ERRORS}, url_name="link-delete")
def disconnect(request: HttpRequest, link_id: int) -> Any:
    """Disconnect: remove only the link; nothing is deleted in the ERP or the CRM."""
    link = visible_link(request, link_id)
    require_write(request)
    if not may_connect(request.user, link.connection):
        raise ApiError(
            403, "may_not_connect", _("You may not disconnect records of %(name)s.") % {"name": link.connection}
        )
    services.unlink(link, request.user)
    return Status(204, None)


@links_router.post(
    "/{int:link_id}/sync/", response={200: s.RunStarted, 202: s.RunStarted, **ERRORS}, url_name="link-sync"
)
def sync_now(request: HttpRequest, link_id: int) -> Any:
    """Sync now: 202 with a new run, 200 with the run already queued or running for this link."""
    link = visible_link(request, link_id)
    require_write(request)
    try:
        run, created = services.start_sync_now(link, request.user)
    except jobs.SyncRefused as refusal:
        raise ApiError(409, "refused", str(refusal)) from refusal
    return Status(202 if created else 200, {"run": run_out(run), "created": created})


# Runs

runs_router = Router(tags=["runs"])


@runs_router.get("/{int:run_id}/", response={200: s.Run, **ERRORS}, url_name="run")
def get_run(request: HttpRequest, run_id: int) -> Any:
    """A run's status and progress, of a connection you may see."""
    require_licence(request)
    visible = connections_for(request, as_admin=True)
    run = SyncRun.objects.filter(connection__in=visible).filter(pk=run_id).first()
    if run is None:
        raise not_found()
    return run_out(run)


# Imports

imports_router = Router(tags=["imports"])


def admin_import(request: HttpRequest, pk: int) -> ErpImport:
    require_admin(request)
    erp_import = (
        ErpImport.objects.filter(connection__in=connections_for(request, as_admin=True))
        .select_related("connection__connector", "preview_run", "import_run")
        .filter(pk=pk)
        .first()
    )
    if erp_import is None:
        raise not_found()
    return erp_import


@imports_router.post("/", response={202: s.Import, **ERRORS}, url_name="imports")
def start_preview(request: HttpRequest, body: s.ImportCreate) -> Any:
    """Start the preview of an import: the plan of what Import would do with the chosen actors (``keys``) or with
    every actor of the type (``everything``)."""
    require_admin(request)
    require_write(request)
    importable = connections_for(request, as_admin=True).filter(is_active=True, last_test_ok=True)
    connection = importable.select_related("connector").filter(pk=body.connection).first()
    if connection is None:
        raise ApiError(404, "not_found", _("There is no such active, tested connection to import from."))
    try:
        erp_import = importing.start_preview(
            connection,
            body.actor_type,
            keys=body.keys,
            everything=body.everything,
            description=body.description,
            user=request.user,
            language=language(),
        )
    except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
        raise ApiError(409, "refused", str(refusal)) from refusal
    return Status(202, import_out(erp_import))


@imports_router.get("/{int:import_id}/", response={200: s.Import, **ERRORS}, url_name="import")
def get_import(request: HttpRequest, import_id: int) -> Any:
    """An import's phase (preparing, ready, importing, finished, failed), counts and runs."""
    return import_out(admin_import(request, import_id))


class RowFilter(Paging):
    kind: str = ""
    outcome: str = ""


@imports_router.get("/{int:import_id}/rows/", response={200: s.ImportRowPage, **ERRORS}, url_name="import-rows")
def import_rows(request: HttpRequest, import_id: int, filters: Query[RowFilter]) -> Any:
    """The plan's rows (filter ``kind``, or ``undecided``) while it is ready; the result's (``outcome``) after."""
    erp_import = admin_import(request, import_id)
    data = {key: value for key, value in (("kind", filters.kind), ("outcome", filters.outcome)) if value}
    rows = filtersets.import_rows(erp_import, erp_import.phase, data).qs
    meta, page = page_of(rows, filters.page, filters.page_size)
    fields = [name for name in s.ImportRow.model_fields]
    return {
        **meta,
        "results": [{name: getattr(row, name if name != "id" else "pk") for name in fields} for row in page],
    }


@imports_router.post(
    "/{int:import_id}/rows/{int:row_id}/", response={200: s.ImportRow, **ERRORS}, url_name="import-row"
)
def decide(request: HttpRequest, import_id: int, row_id: int, body: s.Decision) -> Any:
    """A decision on one row of a ready plan: include it or not, and create, link (to ``target``) or skip."""
    erp_import = admin_import(request, import_id)
    require_write(request)
    row = ImportRowModel.objects.filter(erp_import=erp_import, pk=row_id).first()
    if row is None:
        raise not_found()
    row.erp_import = erp_import
    try:
        importing.decide(row, included=body.included, action=body.action, target=body.target)
    except importing.ImportRefused as refusal:
        raise ApiError(409, "refused", str(refusal)) from refusal
    return {name: getattr(row, name if name != "id" else "pk") for name in s.ImportRow.model_fields}


@imports_router.post("/{int:import_id}/import/", response={202: s.Import, **ERRORS}, url_name="import-start")
def start_import(request: HttpRequest, import_id: int, body: s.ImportStart) -> Any:
    """Import the plan (or, with ``retry``, its failed rows again)."""
    erp_import = admin_import(request, import_id)
    require_write(request)
    try:
        importing.start_import(erp_import, request.user, retry=body.retry)
    except (importing.ImportRefused, jobs.AlreadyRunning) as refusal:
        raise ApiError(409, "refused", str(refusal)) from refusal
    erp_import.refresh_from_db()
    return Status(202, import_out(erp_import))


api.add_router("/connections", connections_router)
api.add_router("/links", links_router)
api.add_router("/runs", runs_router)
api.add_router("/imports", imports_router)
