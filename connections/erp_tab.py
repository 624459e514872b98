"""The ERP tab on Company, Contact and Project pages: one section per active connection the user may see.

Everything the database knows is read first, in a fixed number of queries; then each connection's live
values are fetched from its connector in parallel, each bounded by ERPSYNC_ERP_TAB_TIMEOUT, so a slow or
dead connector costs the page at most that long and the other sections still show.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from connectors import hosts
from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorError, Timeouts
from crm import tabs
from crm.models import Company, Contact, Project

from . import services
from .linking import list_texts
from .mapping import CRM_MODEL
from .models import ErpConnection, ErpField, Link
from .permissions import connectable, has_erp_licence, visible_connections


@dataclass
class Section:
    """What the tab shows for one connection."""

    connection: ErpConnection
    link: Link | None
    shown: list[ErpField] = field(default_factory=list)  # "Show in ERP tab" fields, in rank order
    synced: list[ErpField] = field(default_factory=list)
    live: list[tuple[str, Any]] = field(default_factory=list)
    problem: services.Problem | None = None
    may_connect: bool = False
    may_create: bool = False


def active_connections(request: HttpRequest) -> list[ErpConnection]:
    return list(
        visible_connections(request.user).filter(is_active=True).select_related("connector").order_by("priority", "pk")
    )


def is_visible(request: HttpRequest, record: Model) -> bool:
    """Only licensed users with at least one active connection they may see get the tab."""
    return has_erp_licence(request.user) and visible_connections(request.user).filter(is_active=True).exists()


def build_sections(request: HttpRequest, record: Model) -> list[Section]:
    connections = active_connections(request)
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
        sections.append(Section(
            connection=connection, link=link,
            shown=[f for f in mine if f.show_in_tab], synced=[f for f in mine if f.crm_field and f.direction],
            may_connect=connection.pk in rights, may_create=connection.pk in creates,
        ))  # fmt: skip
    _fetch_live(sections, getattr(request, "LANGUAGE_CODE", "en"))
    return sections


# Clients for the tab, shared within the process so their connections stay open between page views.
_tab_clients: dict[tuple[str, str, str, float], ConnectorClient] = {}
_tab_clients_lock = threading.Lock()


def _tab_client(url: str, secret: str, language: str, limit: float) -> ConnectorClient:
    identity = (url, hashlib.sha256(secret.encode()).hexdigest(), language, limit)
    with _tab_clients_lock:
        client = _tab_clients.get(identity)
        if client is None:
            for stale in [key for key in _tab_clients if key[0] == url and key[2:] == identity[2:]]:
                _tab_clients.pop(stale).close()
            timeouts = Timeouts(connect=min(1.0, limit), read=limit, total=limit)
            # A URL ERPSYNC_CONNECTOR_HOSTS does not allow (any more) is not called.
            client = _tab_clients[identity] = ConnectorClient(
                url, secret, language=language, timeouts=timeouts, refusal=hosts.url_problem
            )
        return client


def _fetch_live(sections: list[Section], language: str) -> None:
    """GetActors (and the texts of list values) for every linked section, all connections at once."""
    limit = float(settings.ERPSYNC_ERP_TAB_TIMEOUT)
    jobs = [(s, s.connection.connector.url, s.connection.connector.secret, s.connection.config_values())
            for s in sections if s.link is not None and s.shown]  # fmt: skip

    def fetch(job: tuple[Section, str, str, dict[str, Any]]) -> None:
        section, url, secret, config = job
        assert section.link is not None
        try:
            conn = _tab_client(url, secret, language, limit).connection(str(section.connection.guid), lambda: config)
            actors = conn.get_actors(
                p.ActorType(section.link.actor_type), [section.link.erp_key], [f.key for f in section.shown]
            )
            if not actors.actors:
                section.problem = services.Problem("missing", str(_("The ERP actor no longer exists.")))
                return
            values = actors.actors[0].values
            texts = {
                f.key: list_texts(conn, section.connection, f.list_name, language)
                for f in section.shown
                if f.type == p.FieldType.LIST and f.list_name and values.get(f.key) not in (None, "")
            }
            section.live = [
                (f.label, texts.get(f.key, {}).get(str(values.get(f.key)), values.get(f.key))) for f in section.shown
            ]
        except ConnectorError as error:
            section.problem = services.explain(error, language)

    if jobs:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            list(pool.map(fetch, jobs))


def tab_view(request: HttpRequest, record: Model) -> HttpResponse:
    from .views_log import log_for_record

    sections = build_sections(request, record)
    history = list(log_for_record(record, limit=30))
    context = {"record": record, "sections": sections, "history": history}
    return HttpResponse(render_to_string("connections/erp_tab.html", context, request=request))


def register() -> None:
    tabs.register_tab(tabs.RecordTab(slug="erp", label=_("ERP"), view=tab_view, is_visible=is_visible, weight=10),
                      Company, Contact, Project)  # fmt: skip
