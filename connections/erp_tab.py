"""The ERP tab on Company, Contact and Project pages: one section (a card) per active connection the user may see.

Everything the database knows is read first, in a fixed number of queries; then each connection's live
values are fetched from its connector in parallel, each bounded by ERPSYNC_ERP_TAB_TIMEOUT, so a slow or
dead connector costs the page at most that long and the other sections still show.

A card is one template (``connections/_erp_card.html``) and has one state (``Section.state``), from which its
badge, its banner and its actions follow. Every action on a card (link, Create in ERP, Sync now, the run ending,
Disconnect, relink) answers the whole card again, rendered from the database and the connector as they are now,
together with the sync history; nothing on the card is patched in the browser.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Max, Model
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from django_htmx.http import reswap, retarget

from connectors import hosts
from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorError, Timeouts
from crm import tabs
from crm.models import Company, Contact, Project

from . import conflicts, filters, services, shown
from .choices import ACTIVE_RUN_STATUSES, LinkStatus, LogOutcome, RunStatus
from .linking import list_texts
from .mapping import CRM_MODEL
from .models import ErpConnection, ErpField, Link, SyncLogEntry, SyncRun
from .permissions import connectable, has_erp_licence


@dataclass
class Section:
    """What the tab shows for one connection."""

    connection: ErpConnection
    link: Link | None
    shown: list[ErpField] = field(default_factory=list)  # "Show in ERP tab" fields, in rank order
    synced: list[ErpField] = field(default_factory=list)
    live: list[tuple[str, str]] = field(default_factory=list)  # label and value, as the reader reads them
    last_synced: list[tuple[str, str]] = field(default_factory=list)
    values: dict[str, Any] | None = None  # the live values as the connector answered them
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    problem: services.Problem | None = None
    may_connect: bool = False
    may_create: bool = False
    run: SyncRun | None = None  # the link's latest run (Sync now), running or finished
    finished_now: bool = False  # the card is answered because ``run`` just ended: it says how it went
    # The card answers a Sync now just queued: it follows ``run`` until its poll finds it ended, however fast a
    # worker is, so the outcome is always told by the poll and never lost to a race.
    following: bool = False
    changes: list[SyncLogEntry] = field(default_factory=list)  # what that run wrote
    notice: tuple[str, str] | None = None  # (level, text): what the action that answered this card did
    outside: str = ""  # why the record does not sync: the sync filter's condition it does not meet
    conflicts: list[Any] = field(default_factory=list)  # the link's held conflicts (connections.conflicts)

    @property
    def state(self) -> str:
        """The one state the card shows: its badge, its banner and its actions agree with it.

        ``unlinked``; ``syncing`` while a run is queued or running; the link's tombstone (``erp_deleted``,
        ``erp_merged``, ``erp_archived``); ``failed`` when the last sync met an error (or the last run failed
        after the last sync); ``missing`` when the actor is gone; ``never`` before the first sync; else ``ok``."""
        link, run = self.link, self.run
        if link is None:
            return "unlinked"
        if run is not None and (self.following or run.status in ACTIVE_RUN_STATUSES):
            return "syncing"
        if link.is_marked:
            return str(link.status)
        if link.status == LinkStatus.ERP_MISSING:
            return "missing"
        if link.status == LinkStatus.FAILED or self.run_failed:
            return "failed"
        return "ok" if link.last_synced_at else "never"

    @property
    def run_failed(self) -> bool:
        """The link's latest run failed after the link last synced (the connector could not be reached, say)."""
        run, link = self.run, self.link
        if run is None or link is None or run.status not in (RunStatus.FAILED, RunStatus.PARTIALLY_FAILED):
            return False
        return link.last_synced_at is None or (run.finished_at is not None and run.finished_at > link.last_synced_at)

    @property
    def error(self) -> str:
        """The failure the banner of a failed card explains."""
        if self.state != "failed":
            return ""
        assert self.link is not None
        if self.link.status == LinkStatus.FAILED and self.link.last_error:
            return self.link.error_shown
        return (self.run.error_shown if self.run is not None else "") or self.link.error_shown


def active_connections(request: HttpRequest) -> list[ErpConnection]:
    return list(
        ErpConnection.objects.visible_to(request.user)
        .filter(is_active=True)
        .select_related("connector")
        .order_by("priority", "pk")
    )


def is_visible(request: HttpRequest, record: Model) -> bool:
    """Only licensed users with at least one active connection they may see get the tab."""
    return (
        has_erp_licence(request.user) and ErpConnection.objects.visible_to(request.user).filter(is_active=True).exists()
    )


def build_sections(request: HttpRequest, record: Model, only: int | None = None) -> list[Section]:
    """The cards of ``record``'s tab; with ``only``, the card of that connection alone (none when the user may not
    see it, or it is not active)."""
    connections = active_connections(request)
    if only is not None:
        connections = [connection for connection in connections if connection.pk == only]
    actor_types = {t for t, model in CRM_MODEL.items() if model is type(record)}
    fields = ErpField.objects.filter(connection__in=connections, actor_type__in=actor_types, missing_in_erp=False)
    by_connection: dict[int, list[ErpField]] = {}
    for erp_field in fields.order_by("connection_id", "rank", "pk"):
        by_connection.setdefault(erp_field.connection_id, []).append(erp_field)
    links = {
        link.connection_id: link
        for link in Link.objects.filter(connection__in=connections, **{Link.attribute_for(record): record})
    }
    rights = connectable(request.user, connections)
    creates = connectable(request.user, connections, "create")
    sections = []
    for connection in connections:
        link = links.get(connection.pk)
        mine = [f for f in by_connection.get(connection.pk, []) if link is None or f.actor_type == link.actor_type]
        sections.append(
            Section(
                connection=connection,
                link=link,
                shown=[f for f in mine if f.show_in_tab],
                synced=[f for f in mine if f.crm_field and f.direction],
                may_connect=connection.pk in rights,
                may_create=connection.pk in creates,
            )
        )
    _latest_runs(sections)
    held = conflicts.for_links([s.link for s in sections if s.link is not None])
    for section in sections:
        if section.link is not None:
            section.conflicts = held.get(section.link.pk, [])
    _fetch_live(sections, getattr(request, "LANGUAGE_CODE", "en"))
    # Labels and values are formatted here, in the request's thread: its language and time zone are active.
    texts = shown.item_texts(
        (s.connection.pk, f.actor_type, f.key) for s in sections for f in s.synced if f.type == p.FieldType.LIST
    )
    for section in sections:
        if section.values is not None:
            section.live = [
                (f.display_label, f.format(section.values.get(f.key), section.texts.get(f.key))) for f in section.shown
            ]
        if section.link is not None and section.link.outside_filter:
            section.outside = filters.outside_reason(
                section.connection, section.link.actor_type, section.link.outside_filter
            )
        if section.link is not None:
            baseline = section.link.baseline
            section.last_synced = [
                (
                    f.display_label,
                    f.format(baseline.get(f.key), texts.get((section.connection.pk, f.actor_type, f.key))),
                )
                for f in section.synced
            ]
    return sections


def _latest_runs(sections: list[Section]) -> None:
    """Each linked card's latest run, in two queries: a run still going shows its progress (and polls)."""
    links = [section.link.pk for section in sections if section.link is not None]
    if not links:
        return
    latest = SyncRun.objects.filter(link__in=links).values("link").annotate(last=Max("pk")).values("last")
    runs = {run.link_id: run for run in SyncRun.objects.filter(pk__in=latest)}
    for section in sections:
        if section.link is not None:
            section.run = runs.get(section.link.pk)


# Clients for the tab, shared within the process so their connections stay open between page views.
_tab_clients: dict[tuple[str, str, str, float, str], ConnectorClient] = {}
_tab_clients_lock = threading.Lock()


def _tab_client(url: str, secret: str, language: str, limit: float, key_id: str = "") -> ConnectorClient:
    identity = (url, hashlib.sha256(secret.encode()).hexdigest(), language, limit, key_id)
    with _tab_clients_lock:
        client = _tab_clients.get(identity)
        if client is None:
            for stale in [key for key in _tab_clients if key[0] == url and key[2:4] == identity[2:4]]:
                _tab_clients.pop(stale).close()
            timeouts = Timeouts(connect=min(1.0, limit), read=limit, total=limit)
            # A URL ERPSYNC_CONNECTOR_HOSTS does not allow (any more) is not called.
            client = _tab_clients[identity] = ConnectorClient(
                url,
                secret,
                language=language,
                timeouts=timeouts,
                refusal=hosts.url_problem,
                address_refusal=hosts.address_problem,
                key_id=key_id,
            )
        return client


def _fetch_live(sections: list[Section], language: str) -> None:
    """GetActors (and the texts of list values) for every linked section, all connections at once."""
    limit = float(settings.ERPSYNC_ERP_TAB_TIMEOUT)
    jobs = [
        (
            s,
            s.connection.connector.url,
            s.connection.connector.secret,
            s.connection.config_values(),
            s.connection.connector.key_id,
        )
        for s in sections
        if s.link is not None and s.shown and not s.link.is_marked  # a marked link's actor is gone: not asked for
    ]

    def fetch(job: tuple[Section, str, str, dict[str, Any], str]) -> None:
        section, url, secret, config, key_id = job
        assert section.link is not None
        try:
            conn = _tab_client(url, secret, language, limit, key_id).connection(
                str(section.connection.guid), lambda: config
            )
            actors = conn.get_actors(
                p.ActorType(section.link.actor_type), [section.link.erp_key], [f.key for f in section.shown]
            )
            if not actors.actors:
                section.problem = services.Problem("missing", str(_("The ERP actor no longer exists.")))
                return
            values = actors.actors[0].values
            section.texts = {
                f.key: list_texts(conn, section.connection, f.list_name, language)
                for f in section.shown
                if f.type == p.FieldType.LIST and f.list_name and values.get(f.key) not in (None, "")
            }
            section.values = values
        except ConnectorError as error:
            section.problem = services.explain(error, language)

    if jobs:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            list(pool.map(fetch, jobs))


def history_of(record: Model) -> list[Any]:
    """The record's sync history as people read it: our words and values in the reader's language."""
    return shown.describe_log(SyncLogEntry.objects.for_record(record)[:30])


def tab_view(request: HttpRequest, record: Model) -> HttpResponse:
    sections = build_sections(request, record)
    context = {"record": record, "sections": sections, "history": history_of(record)}
    return HttpResponse(render_to_string("connections/erp_tab.html", context, request=request))


def card_id(connection_pk: int) -> str:
    return f"erp-card-{connection_pk}"


def card_response(
    request: HttpRequest,
    record: Model,
    connection_pk: int,
    *,
    finished: SyncRun | None = None,
    following: SyncRun | None = None,
    notice: tuple[str, str] | None = None,
    status: int = 200,
) -> HttpResponse | None:
    """The whole card of one connection on ``record``'s tab as it is now, with the sync history (swapped out of
    band), for htmx to put in place of the card, whatever element asked. ``finished``: the run that just ended,
    whose outcome the card then tells; ``notice``: what the action did. None when the user may no longer see the
    card (the connection was deactivated, say)."""
    sections = build_sections(request, record, only=connection_pk)
    if not sections:
        return None
    section = sections[0]
    section.notice = notice
    if following is not None and section.run is not None and section.run.pk == following.pk:
        section.following = True
    if finished is not None and section.run is not None and section.run.pk == finished.pk:
        section.finished_now = True
        section.changes = shown.describe_log(finished.log.filter(outcome=LogOutcome.WRITTEN))
    context = {"record": record, "section": section, "history": history_of(record), "swap_history": True}
    response = HttpResponse(render_to_string("connections/_erp_card.html", context, request=request), status=status)
    return reswap(retarget(response, f"#{card_id(connection_pk)}"), "outerHTML")


def register() -> None:
    tabs.register_tab(
        tabs.RecordTab(slug="erp", label=_("ERP"), view=tab_view, is_visible=is_visible, weight=10),
        Company,
        Contact,
        Project,
    )
