"""Domain actions of the connections app: connectors, connections, tests, activation, sync settings, failed records."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import Group
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Field, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_
from guardian.shortcuts import assign_perm

from connectors import hosts
from connectors import protocol as p
from connectors.client import (
    ConnectorClient,
    ConnectorError,
    ConnectorNotAllowed,
    ConnectorRejected,
    ConnectorTimeout,
    ConnectorUnreachable,
    GatewayError,
    ProtocolError,
    Timeouts,
    UnknownConnection,
)
from connectors.models import SyncConnector
from core import crypto

from . import display, filters, said, shown
from .audit import audit
from .choices import ACTIVE_RUN_STATUSES, AuditAction, Direction, LinkStatus, RunKind, RunStatus, Visibility
from .jobs import SyncRefused, send, sync_refusal
from .mapping import CRM_MODEL, auto_map, default_direction, mapped_list_fields, match_list_items, next_priority
from .models import (
    ErpActorType,
    ErpConnection,
    ErpField,
    ErpImport,
    Link,
    ListMapping,
    SyncChunk,
    SyncLogEntry,
    SyncRun,
    SyncSettings,
    WorkerHeartbeat,
)

TEST_TOKEN_SALT = "erpsync.connections.config-test"  # noqa: S105  (a signing salt)
TEST_TOKEN_MAX_AGE = 3600


@transaction.atomic
def record_worker_heartbeat(hostname: str) -> WorkerHeartbeat:
    """Note that the worker on ``hostname`` is running jobs now."""
    heartbeat, created = WorkerHeartbeat.objects.select_for_update().get_or_create(
        hostname=hostname[:200], defaults={"last_seen": timezone.now(), "jobs_run": 1}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=heartbeat.pk).update(last_seen=timezone.now(), jobs_run=F("jobs_run") + 1)
        heartbeat.refresh_from_db()
    return heartbeat


# Talking to a connector from an admin page


@dataclass(frozen=True)
class Problem:
    """Why a call to a connector failed, in words for the admin, plus the connector's own details."""

    kind: str  # unreachable, timeout, not_a_connector, wrong_secret, rejected
    message: str
    technical: str = ""


def explain(error: ConnectorError, language: str = "en") -> Problem:
    if isinstance(error, ConnectorNotAllowed):
        with translation.override(language):  # the ERP tab calls from other threads, in the default language
            return Problem("not_allowed", error.refusal(error.url) or error.message, "")
    if isinstance(error, ConnectorUnreachable):
        return Problem(
            "unreachable",
            _("Nothing answers at this address. Check the URL and that the connector is running."),
            str(error),
        )
    if isinstance(error, ConnectorTimeout):
        return Problem("timeout", _("The connector did not answer in time."), str(error))
    if isinstance(error, GatewayError):
        return Problem(
            "unavailable",
            _("The connector's address answers, but the connector behind it is unavailable. Try again in a moment."),
            str(error),
        )
    if isinstance(error, ProtocolError):
        return Problem(
            "not_a_connector", _("Something answers at this address, but not as a Sync Connector does."), str(error)
        )
    if isinstance(error, ConnectorRejected) and error.error_code == p.ErrorCode.UNAUTHORIZED:
        return Problem("wrong_secret", _("The connector refused the shared secret."), str(error))
    assert isinstance(error, ConnectorRejected)
    return Problem(
        "rejected", error.user_text(language) or error.error_code.value, error.envelope.technical_explanation
    )


def interactive_client(
    url: str,
    secret: str,
    language: str = "en",
    *,
    capabilities: frozenset[str] = frozenset(),
    key_id: str = "",
    notify_url: str = "",
) -> ConnectorClient:
    """A client for calls made while someone waits for a page: ERPSYNC_CONNECTOR_TIMEOUT bounds each call.

    Its calls are refused, with the reason, when ERPSYNC_CONNECTOR_HOSTS does not allow ``url``."""
    limit = float(settings.ERPSYNC_CONNECTOR_TIMEOUT)
    timeouts = Timeouts(connect=min(3.0, limit), read=limit, total=limit)
    return ConnectorClient(
        url,
        secret,
        timeouts=timeouts,
        language=language,
        refusal=hosts.url_problem,
        address_refusal=hosts.address_problem,
        capabilities=capabilities,
        key_id=key_id,
        notify_url=notify_url,
    )


def read_lists(
    connection: ErpConnection, names: set[str], language: str = "en"
) -> tuple[dict[str, list[p.ListItem]], Problem | None]:
    """The items of the connection's lists (GetList each) for a form someone waits for; on failure none, and why."""
    if not names:
        return {}, None
    try:
        with interactive_client(
            connection.connector.url, connection.connector.secret, language, key_id=connection.connector.key_id
        ) as client:
            conn = client.connection(str(connection.guid), connection.config_values)
            return {name: conn.get_list(name) for name in sorted(names)}, None
    except ConnectorError as error:
        return {}, explain(error, language)


def probe_connector(url: str, secret: str, language: str = "en") -> list[p.FieldInfo]:
    """GetConfigData: proves that a connector answers at ``url`` and accepts ``secret``."""
    with interactive_client(url, secret, language) as client:
        return client.get_config_data().data.fields


@dataclass(frozen=True)
class ConfigScreen:
    """The configuration a connector asks for (GetConfigData), the items of its lists, and why it could not be
    read, if it could not."""

    fields: list[p.FieldInfo]
    list_items: dict[str, list[p.ListItem]]
    problem: Problem | None = None
    # v1.1, capability config_list_values: the list fields read with the values entered so far, by field key,
    # with the keys of the fields they depend on. Their items are not in ``list_items``: see dependent_lists().
    dependent: dict[str, list[str]] = dataclass_field(default_factory=dict)


def config_screen(connector: SyncConnector, connection: ErpConnection, language: str = "en") -> ConfigScreen:
    """The connector's configuration screen for ``connection``. With the connector down, a saved connection's
    fields as last saved and its saved list values, so that an unchanged configuration still validates.

    The lists that depend on other values (a connector naming config_list_values) are left to dependent_lists(),
    which reads them with the values entered so far."""
    list_items: dict[str, list[p.ListItem]] = {}
    dependent: dict[str, list[str]] = {}
    try:
        with interactive_client(connector.url, connector.secret, language, key_id=connector.key_id) as client:
            fields = client.get_config_data().data.fields
            for info in fields:
                if info.type == p.FieldType.LIST and info.depends_on and reads_with_values(connector):
                    dependent[info.key] = list(info.depends_on)
                elif info.type == p.FieldType.LIST and info.list_name and info.list_name not in list_items:
                    list_items[info.list_name] = client.get_config_list(info.list_name)
        return ConfigScreen(fields, list_items, dependent=dependent)
    except ConnectorError as error:
        fields = [p.FieldInfo.model_validate(f) for f in connection.config_fields] if connection.pk else []
        for info in fields:
            saved = connection.config.get(info.key)
            if info.type == p.FieldType.LIST and info.list_name and saved is not None:
                list_items.setdefault(info.list_name, []).append(p.ListItem(key=str(saved), text=str(saved)))
        return ConfigScreen(fields, list_items, explain(error, language))


def reads_with_values(connector: SyncConnector) -> bool:
    """The connector's configuration lists may depend on the values entered so far (config_list_values)."""
    return connector.supports(p.Capability.CONFIG_LIST_VALUES)


def and_list(words: list[str]) -> str:
    """ "A", "A and B", "A, B and C", in the active language."""
    if len(words) < 2:
        return "".join(words)
    return _("%(first)s and %(last)s") % {"first": ", ".join(words[:-1]), "last": words[-1]}


@dataclass(frozen=True)
class ListNote:
    """Why a configuration list shows no items: ``waiting`` for values still to be entered, or ``error``, the
    connector's own explanation (the values entered do not work yet)."""

    kind: str
    message: str
    technical: str = ""


def dependent_lists(
    connector: SyncConnector, screen: ConfigScreen, values: dict[str, p.Value], language: str = "en"
) -> tuple[dict[str, list[p.ListItem]], dict[str, ListNote]]:
    """The items of the lists that depend on other values, read with ``values`` (the configuration entered so far,
    passwords included: they go to the connector and nowhere else), and a note for each list that has none.

    A list is read once every field it depends on has a value; until then its note says which to fill in."""
    items: dict[str, list[p.ListItem]] = {}
    notes: dict[str, ListNote] = {}
    by_key = {info.key: info for info in screen.fields}
    wanted: list[p.FieldInfo] = []
    for key, depends_on in screen.dependent.items():
        empty = [by_key[k].label if k in by_key else k for k in depends_on if p.is_empty(values.get(k))]
        if empty:
            notes[key] = ListNote(
                "waiting", _("Fill in %(fields)s to choose from this list.") % {"fields": and_list(empty)}
            )
        else:
            wanted.append(by_key[key])
    if not wanted:
        return items, notes
    try:
        with interactive_client(
            connector.url,
            connector.secret,
            language,
            capabilities=connector.capability_set,
            key_id=connector.key_id,
        ) as client:
            for info in wanted:
                try:
                    items[info.list_name or ""] = client.get_config_list(info.list_name or "", values)
                except ConnectorRejected as rejected:
                    problem = explain(rejected, language)
                    notes[info.key] = ListNote("error", problem.message, problem.technical)
                else:
                    if not items[info.list_name or ""]:
                        notes[info.key] = ListNote("waiting", _("The connector has nothing to choose from yet."))
    except ConnectorError as error:
        problem = explain(error, language)
        for info in wanted:
            notes.setdefault(info.key, ListNote("error", problem.message, problem.technical))
    return items, notes


# Connectors


@transaction.atomic
def save_connector(connector: SyncConnector, secret: str | None, user: Any) -> SyncConnector:
    """Create or update a connector; ``secret`` None keeps the stored one."""
    created = connector.pk is None
    if secret:
        connector.set_secret(secret)
    connector.save()
    audit(
        user,
        AuditAction.CREATED if created else AuditAction.CHANGED,
        connector,
        "" if created else said.msg(N_("name, URL or shared secret")),
    )
    return connector


@dataclass(frozen=True)
class ConnectorCheck:
    """What checking a Sync Connector found: why it does not answer (None when it does), and the protocol
    version and capabilities its health answer names."""

    problem: Problem | None
    health: p.Health | None = None


def check_connector(url: str, secret: str, language: str = "en") -> Problem | None:
    """None when a Sync Connector answers at ``url`` and accepts ``secret``; otherwise why not."""
    return inspect_connector(url, secret, language).problem


def inspect_connector(url: str, secret: str, language: str = "en", key_id: str = "") -> ConnectorCheck:
    """GetConfigData proves that the connector answers and accepts ``secret`` (named ``key_id``, if it has one);
    its health answer then says which protocol version and capabilities it speaks."""
    try:
        with interactive_client(url, secret, language, key_id=key_id) as client:
            client.get_config_data()
            return ConnectorCheck(None, client.health())
    except ConnectorError as error:
        return ConnectorCheck(explain(error, language))


# A connector that nothing answers for yet may be saved when the admin says so; one that answers wrongly may not.
NOT_ANSWERING_YET = ("unreachable", "timeout")


class ConnectorRefused(Exception):
    """The connector cannot be saved: it does not answer as a Sync Connector with this secret."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.message)

    @property
    def may_save_anyway(self) -> bool:
        """Nothing answers yet: it may be saved if the admin ticks "Save it anyway"."""
        return self.problem.kind in NOT_ANSWERING_YET


def _check_result(check: ConnectorCheck) -> dict[str, Any]:
    result: dict[str, Any] = {
        "last_checked_at": timezone.now(),
        "last_check_ok": check.problem is None,
        "last_check_message": check.problem.message if check.problem else "",
    }
    if check.health is not None:  # a connector that does not answer keeps what it last said of itself
        result["protocol_version"] = check.health.protocol
        result["capabilities"] = sorted(check.health.capabilities)
    return result


def save_checked_connector(
    connector: SyncConnector, secret: str | None, user: Any, *, save_unreachable: bool = False, language: str = "en"
) -> Problem | None:
    """Check a new or changed connector with the URL and secret given (``secret`` None: the stored one), then
    save it with the check's result. Returns why it does not answer yet, when it was saved all the same.

    Raises ConnectorRefused unless it answers, or nothing answers yet and ``save_unreachable`` says save anyway."""
    stored = not secret and connector.pk is not None
    check = inspect_connector(
        connector.url,
        secret or (connector.secret if stored else ""),
        language,
        connector.key_id if stored else "",
    )
    problem = check.problem
    if problem is not None and not (problem.kind in NOT_ANSWERING_YET and save_unreachable):
        raise ConnectorRefused(problem)
    for name, value in _check_result(check).items():
        setattr(connector, name, value)
    save_connector(connector, secret, user)
    return problem


def recheck_connector(connector: SyncConnector, language: str = "en") -> Problem | None:
    """Check a saved connector again (the Sync tab's *Check*) and keep the result; None when it answers."""
    check = inspect_connector(connector.url, connector.secret, language, connector.key_id)
    SyncConnector.objects.filter(pk=connector.pk).update(**_check_result(check))
    return check.problem


class StillInUse(Exception):
    pass


@transaction.atomic
def delete_connector(connector: SyncConnector, user: Any) -> None:
    """Soft-delete a connector; refused while a connection uses it."""
    names = list(ErpConnection.objects.filter(connector=connector).values_list("name", flat=True))
    if names:
        raise StillInUse(
            _("%(connector)s is used by these ERP connections: %(names)s. Delete them first.")
            % {"connector": connector, "names": ", ".join(names)}
        )
    connector.deleted_at = timezone.now()
    connector.save(update_fields=["deleted_at", "updated_at"])
    audit(user, AuditAction.DELETED, connector)


# Configuration values and the test that must pass before saving


def split_secrets(fields: list[p.FieldInfo], values: dict[str, p.Value]) -> tuple[dict[str, p.Value], dict[str, str]]:
    secret_keys = {f.key for f in fields if f.type == p.FieldType.PASSWORD}
    plain = {k: v for k, v in values.items() if k not in secret_keys}
    secret = {k: str(v) for k, v in values.items() if k in secret_keys and v not in (None, "")}
    return plain, secret


def config_digest(connector: SyncConnector, values: dict[str, p.Value]) -> str:
    """A keyed digest of exactly what was tested: it reveals nothing about the values, secrets included."""
    canonical = json.dumps({"connector": connector.pk, "url": connector.url, "config": values}, sort_keys=True)
    return hmac.new(settings.SECRET_KEY.encode(), canonical.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False
    passed: bool
    state: str
    message: str
    technical: str = ""
    token: str = ""


def test_config(
    connector: SyncConnector,
    values: dict[str, p.Value],
    user: Any,
    language: str = "en",
    connection: ErpConnection | None = None,
) -> TestOutcome:
    """TestConfigData with unsaved values. A pass yields a token that saving these exact values requires.

    Testing new values for a saved ``connection`` is recorded in its audit, passed or failed."""
    try:
        with interactive_client(connector.url, connector.secret, language, key_id=connector.key_id) as client:
            result = client.test_config_data(values)
    except ConnectorError as error:
        problem = explain(error, language)
        outcome = TestOutcome(False, "error", problem.message, problem.technical)
    else:
        envelope = result.envelope
        message = envelope.user_explanation.get(language) or envelope.user_explanation.get("en") or ""
        token = signing.dumps({"digest": config_digest(connector, values)}, salt=TEST_TOKEN_SALT)
        outcome = TestOutcome(True, envelope.state.value, message, envelope.technical_explanation, token)
    if connection is not None and connection.pk:
        audit(
            user,
            AuditAction.TESTED,
            connection,
            said.msg(N_("new values passed"))
            if outcome.passed
            else said.msg(N_("new values failed: %(why)s"), why=outcome.message),
        )
    return outcome


def test_token_matches(token: str, connector: SyncConnector, values: dict[str, p.Value]) -> bool:
    try:
        data = signing.loads(token, salt=TEST_TOKEN_SALT, max_age=TEST_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return False
    return hmac.compare_digest(str(data.get("digest", "")), config_digest(connector, values))


# Connections


class ConnectorCallFailed(Exception):
    def __init__(self, step: str, problem: Problem) -> None:
        self.step, self.problem = step, problem
        super().__init__(f"{step}: {problem.message}")


@dataclass(frozen=True)
class Grant:
    principal: Any  # a User or a Group
    can_connect: bool
    can_create: bool


def set_grants(connection: ErpConnection, grants: list[Grant]) -> None:
    """Replace who may see and use the connection (django-guardian object permissions)."""
    connection.erpconnectionuserobjectpermission_set.all().delete()
    connection.erpconnectiongroupobjectpermission_set.all().delete()
    if connection.visibility != Visibility.SPECIFIED:
        return
    for grant in grants:
        assign_perm("connections.view_erpconnection", grant.principal, connection)
        if grant.can_connect:
            assign_perm("connections.connect_erpconnection", grant.principal, connection)
        if grant.can_create:
            assign_perm("connections.create_in_erp_erpconnection", grant.principal, connection)


def current_grants(connection: ErpConnection) -> list[Grant]:
    """The grants of a connection with specified visibility: groups first, then users, by name."""
    perms: dict[Any, set[str]] = {}
    for user_perm in connection.erpconnectionuserobjectpermission_set.select_related("user", "permission"):
        perms.setdefault(user_perm.user, set()).add(user_perm.permission.codename)
    for group_perm in connection.erpconnectiongroupobjectpermission_set.select_related("group", "permission"):
        perms.setdefault(group_perm.group, set()).add(group_perm.permission.codename)
    ordered = sorted(perms.items(), key=lambda item: (not isinstance(item[0], Group), str(item[0]).casefold()))
    return [
        Grant(principal, "connect_erpconnection" in codes, "create_in_erp_erpconnection" in codes)
        for principal, codes in ordered
    ]


def _call(step: str, call: Any, language: str) -> Any:
    try:
        return call()
    except ConnectorError as error:
        raise ConnectorCallFailed(step, explain(error, language)) from error


@transaction.atomic
def save_connection(
    connection: ErpConnection,
    *,
    fields: list[p.FieldInfo],
    values: dict[str, p.Value] | None,
    grants: list[Grant],
    user: Any,
    language: str = "en",
) -> ErpConnection:
    """Create or update a connection. ``values`` (the tested configuration) is None when unchanged.

    A new connection is saved at the connector (SaveConnection), tested (TestConnection), and its actor
    types and fields are read and auto-mapped. Any failure leaves nothing saved in the CRM.
    """
    created = connection.pk is None
    changed = [] if created else _changed_fields(connection)
    if values is not None:
        plain, secret = split_secrets(fields, values)
        connection.config = plain
        connection.secrets = {key: crypto.encrypt(value) for key, value in secret.items()}
        connection.config_fields = [f.model_dump(mode="json") for f in fields]
        connection.last_test_at, connection.last_test_ok = timezone.now(), True
        connection.last_test_message = ""
        if not created:
            changed.append(_("configuration"))
    if created:
        connection.created_by = user if getattr(user, "is_authenticated", False) else None
        connection.priority = next_priority()
    connection.save()
    set_grants(connection, grants)
    if created or values is not None:
        connector = connection.connector
        with interactive_client(
            connector.url,
            connector.secret,
            language,
            key_id=connector.key_id,
            capabilities=connector.capability_set,
            notify_url=connector.notify_url,
        ) as client:
            conn = client.connection(str(connection.guid), connection.config_values)
            _call(_("Saving the connection at the connector"), conn.save, language)
            connection.notify_url_sent = conn.notify_url
            ErpConnection.objects.filter(pk=connection.pk).update(notify_url_sent=conn.notify_url)
            _call(_("Testing the saved connection"), conn.test, language)
            _read_metadata(connection, conn, language)
    audit(user, AuditAction.CREATED if created else AuditAction.CHANGED, connection, ", ".join(changed))
    return connection


def _changed_fields(connection: ErpConnection) -> list[str]:
    before = ErpConnection.objects.get(pk=connection.pk)
    return [
        str(cast(Field, ErpConnection._meta.get_field(name)).verbose_name)
        for name in ("name", "description", "visibility", "everyone_can_connect", "everyone_can_create")
        if getattr(before, name) != getattr(connection, name)
    ]


def _read_metadata(connection: ErpConnection, conn: Any, language: str) -> list[str]:
    """Read actor types, fields and searchable fields; store them; flag fields the connector dropped."""
    answer = _call(_("Reading the supported actor types"), conn.actor_types_data, language)
    actor_types, type_labels = answer.actor_types, answer.labels or {}
    seen: set[tuple[str, str]] = set()
    for actor_type in actor_types:
        ErpActorType.objects.update_or_create(
            connection=connection, actor_type=actor_type.value, defaults={"labels": type_labels.get(actor_type) or {}}
        )
        fields = _call(
            _("Reading the %(type)s fields")
            % {"type": display.actor_type_word(actor_type, type_labels.get(actor_type))},
            lambda t=actor_type: conn.actor_type_fields(t),
            language,
        )
        searchable = set(
            _call(
                _("Reading the searchable %(type)s fields")
                % {"type": display.actor_type_word(actor_type, type_labels.get(actor_type))},
                lambda t=actor_type: conn.searchable_fields(t),
                language,
            )
        )
        for rank, f in enumerate(fields):
            seen.add((actor_type.value, f.key))
            meta = {
                "label": f.label,
                "description": f.description,
                "type": f.type.value,
                "list_name": f.list_name or "",
                "default": f.default,
                "max_length": f.max_length,
                "decimal_places": f.decimal_places,
                "access": f.access.value,
                "searchable": f.key in searchable,
                "missing_in_erp": False,
                "labels": f.labels or {},
                "descriptions": f.descriptions or {},
                "suggested_direction": f.suggested_direction.value if f.suggested_direction else "",
            }
            field, created = ErpField.objects.get_or_create(
                connection=connection, actor_type=actor_type.value, key=f.key, defaults={**meta, "rank": rank}
            )
            if created:
                crm_key = auto_map(actor_type.value, f.key, f.type.value)
                if crm_key:
                    field.crm_field, field.auto_mapped = crm_key, True
                    # The connector's suggestion, or ERP → CRM for a read-only field; else the admin decides.
                    field.direction = default_direction(actor_type.value, f.type.value, f.access.value, crm_key, meta)
                    field.save(update_fields=["crm_field", "auto_mapped", "direction"])
            else:
                ErpField.objects.filter(pk=field.pk).update(**meta)
    missing = []
    for field in ErpField.objects.filter(connection=connection, missing_in_erp=False):
        if (field.actor_type, field.key) not in seen:
            field.missing_in_erp = True
            field.save(update_fields=["missing_in_erp"])
            missing.append(f"{field.actor_type}.{field.key}")
    ErpActorType.objects.filter(connection=connection).exclude(actor_type__in=[t.value for t in actor_types]).update(
        sync_enabled=False
    )
    _match_lists(connection, conn, language)
    return missing


def _match_lists(connection: ErpConnection, conn: Any, language: str) -> int:
    """Read the ERP list of every mapped list field (GetList, once a list) and match its new or unmapped items
    to CRM items by code, then by name. Returns how many items were matched."""
    lists: dict[str, list[tuple[str, str]]] = {}
    labels: dict[str, dict[str, dict[str, str]]] = {}
    matched = 0
    for field in mapped_list_fields(connection):
        if field.list_name not in lists:
            items = _call(
                _("Reading the list %(list)s") % {"list": field.list_name},
                lambda name=field.list_name: conn.get_list(name),
                language,
            )
            lists[field.list_name] = [(item.key, item.text) for item in items]
            labels[field.list_name] = {item.key: item.labels for item in items if item.labels}
        matched += match_list_items(connection, field, lists[field.list_name], labels[field.list_name])
    return matched


def match_lists(connection: ErpConnection, language: str = "en") -> Problem | None:
    """Match the items of every mapped list field now (after a list field was mapped); on failure, why."""
    try:
        with interactive_client(
            connection.connector.url, connection.connector.secret, language, key_id=connection.connector.key_id
        ) as client:
            _match_lists(connection, client.connection(str(connection.guid), connection.config_values), language)
    except ConnectorCallFailed as failure:
        return failure.problem
    except ConnectorError as error:
        return explain(error, language)
    return None


@transaction.atomic
def refresh_from_connector(connection: ErpConnection, user: Any, language: str = "en") -> list[str]:
    """Read the connector's actor types and fields again; returns the fields it no longer has."""
    with interactive_client(
        connection.connector.url, connection.connector.secret, language, key_id=connection.connector.key_id
    ) as client:
        conn = client.connection(str(connection.guid), connection.config_values)
        missing = _read_metadata(connection, conn, language)
    audit(
        user,
        AuditAction.REFRESHED,
        connection,
        said.msg(N_("missing in ERP: %(fields)s"), fields=", ".join(missing)) if missing else "",
    )
    return missing


def test_saved_connection(connection: ErpConnection, user: Any, language: str = "en") -> TestOutcome:
    """TestConnection for a saved connection; the result is kept on it (activation needs a pass)."""
    try:
        with interactive_client(
            connection.connector.url, connection.connector.secret, language, key_id=connection.connector.key_id
        ) as client:
            result = client.connection(str(connection.guid), connection.config_values).test()
        outcome = TestOutcome(
            True, result.envelope.state.value, result.envelope.user_explanation.get(language) or _("The test passed.")
        )
    except ConnectorError as error:
        problem = explain(error, language)
        outcome = TestOutcome(False, "error", problem.message, problem.technical)
    ErpConnection.objects.filter(pk=connection.pk).update(
        last_test_at=timezone.now(),
        last_test_ok=outcome.passed,
        last_test_message="" if outcome.passed else outcome.message,
    )
    connection.refresh_from_db()
    audit(
        user,
        AuditAction.TESTED,
        connection,
        said.msg(N_("passed")) if outcome.passed else said.msg(N_("failed: %(why)s"), why=outcome.message),
    )
    return outcome


class ActivationProblem(str):
    """A reason a connection cannot be activated, with the page where it is put right (``url``, or none) and the
    words of the link there (``link_text``; the list mapping's when empty)."""

    url = ""
    link_text = ""

    @classmethod
    def at(cls, text: str, url: str, link_text: str = "") -> ActivationProblem:
        problem = cls(text)
        problem.url, problem.link_text = url, link_text
        return problem


def names_in_sentence(names: list[str]) -> str:
    """Field names in a sentence: "A", "A and B", "A, B and C" (in the reader's language)."""
    if len(names) < 2:
        return "".join(names)
    return _("%(names)s and %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


def _mapping_url(connection: ErpConnection, actor_type: str) -> str:
    return reverse("connections:mapping", args=[connection.pk, actor_type])


LIST_PROBLEM_NAMES = 5  # unmapped items named in a problem; the rest are counted


def unmapped_list_items(connection: ErpConnection, field: ErpField) -> list[str]:
    """The CRM items of a mapped list field that the CRM's records use but no ERP item stands for: each would
    fail the sync of its record (the sync compares every mapped field, whichever way it syncs)."""
    model = CRM_MODEL[field.actor_type]
    column = f"{model.field_keys[field.crm_field]}_id"
    mapped = ListMapping.objects.filter(
        connection=connection, actor_type=field.actor_type, field_key=field.key, crm_item_id__isnull=False
    ).values("crm_item_id")
    used = (
        model._default_manager.exclude(**{f"{column}__isnull": True})
        .exclude(**{f"{column}__in": mapped})
        .values_list(column, flat=True)
        .distinct()
    )
    related = model._meta.get_field(column.removesuffix("_id")).related_model
    return [str(item) for item in related._default_manager.filter(pk__in=list(used))]  # type: ignore[union-attr]


def list_problems(connection: ErpConnection, enabled: list[str]) -> list[ActivationProblem]:
    """One problem per mapped list field of a synced actor type whose CRM items in use lack an ERP item."""
    problems = []
    for field in mapped_list_fields(connection):
        if field.actor_type not in enabled or not field.direction:
            continue
        unmapped = unmapped_list_items(connection, field)
        if not unmapped:
            continue
        named = ", ".join(unmapped[:LIST_PROBLEM_NAMES])
        if len(unmapped) > LIST_PROBLEM_NAMES:
            named = _("%(names)s and %(count)s more") % {"names": named, "count": len(unmapped) - LIST_PROBLEM_NAMES}
        model = CRM_MODEL[field.actor_type]
        text = _(
            "%(type)s field %(label)s: no ERP item is mapped to %(items)s, used on %(records)s in the CRM; "
            "their sync would fail. Map them in the list mapping."
        ) % {
            "type": shown.actor_type_word(connection, field.actor_type),
            "label": field.display_label,
            "items": named,
            "records": str(model._meta.verbose_name_plural),
        }
        url = reverse("connections:mapping-list", args=[connection.pk, field.actor_type, field.key])
        problems.append(ActivationProblem.at(text, url))
    return problems


def activation_problems(connection: ErpConnection) -> list[str]:
    """Every reason the connection cannot be activated now (empty when it can)."""
    problems: list[str] = []
    if connection.last_test_ok is None:
        problems.append(_("The connection has never been tested."))
    elif not connection.last_test_ok:
        problems.append(
            _("The last test failed: %(why)s") % {"why": connection.last_test_message or _("see the connection")}
        )
    enabled = list(connection.actor_types.filter(sync_enabled=True).values_list("actor_type", flat=True))
    if not enabled:
        problems.append(_("No actor type is enabled for sync."))
    fields = list(connection.erp_fields.all())
    defaults = {(d.actor_type, d.field_key): d for d in connection.field_defaults.all()}
    # The same reason for several fields of an actor type is said once, naming them all, with where to put it right.
    missing: dict[str, list[ErpField]] = defaultdict(list)
    undecided: dict[str, list[ErpField]] = defaultdict(list)
    mandatory: dict[str, list[ErpField]] = defaultdict(list)
    for field in fields:
        if field.missing_in_erp and field.crm_field:
            missing[field.actor_type].append(field)
            continue
        if field.actor_type not in enabled or field.missing_in_erp:
            continue
        if field.crm_field and not field.direction:
            undecided[field.actor_type].append(field)
        if field.access == p.FieldAccess.MANDATORY:
            from_crm = field.crm_field and field.direction in (Direction.CRM_TO_ERP, Direction.BOTH)
            default = defaults.get((field.actor_type, field.key))
            has_default = default is not None and (default.value not in (None, "") or default.ask_user)
            if not from_crm and not has_default:
                mandatory[field.actor_type].append(field)
    for actor_type, group in missing.items():
        words = {
            "type": shown.actor_type_word(connection, actor_type),
            "key": names_in_sentence([f.key for f in group]),
        }
        if len(group) == 1:
            text = _("%(type)s field %(key)s is mapped but missing in the ERP: unmap it.") % words
        else:
            text = _("%(type)s fields %(key)s are mapped but missing in the ERP: unmap them.") % words
        problems.append(ActivationProblem.at(text, _mapping_url(connection, actor_type), _("Open the field mapping")))
    for actor_type, group in undecided.items():
        words = {
            "type": shown.actor_type_word(connection, actor_type),
            "label": names_in_sentence([f.display_label for f in group]),
            "crm": group[0].crm_field,
        }
        if len(group) == 1:
            text = _("%(type)s field %(label)s is mapped to %(crm)s but has no direction.") % words
        else:
            text = _("%(type)s fields %(label)s are mapped but have no direction.") % words
        problems.append(ActivationProblem.at(text, _mapping_url(connection, actor_type), _("Open the field mapping")))
    for actor_type, group in mandatory.items():
        words = {
            "type": shown.actor_type_word(connection, actor_type),
            "label": names_in_sentence([f.display_label for f in group]),
        }
        if len(group) == 1:
            text = _("Mandatory %(type)s field %(label)s is neither synced from the CRM nor given a default.") % words
        else:
            text = _("Mandatory %(type)s fields %(label)s are neither synced from the CRM nor given a default.") % words
        url = reverse("connections:mapping-defaults", args=[connection.pk, actor_type])
        problems.append(ActivationProblem.at(text, url, _("Open the default values")))
    duplicates = (
        connection.list_mappings.exclude(crm_item_id=None)
        .values("actor_type", "field_key", "crm_item_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    for row in duplicates:
        problems.append(
            _("%(type)s field %(key)s maps one CRM list item to several ERP items.")
            % {"type": shown.actor_type_word(connection, row["actor_type"]), "key": row["field_key"]}
        )
    problems.extend(list_problems(connection, enabled))
    return problems


@transaction.atomic
def set_synced_actor_types(connection: ErpConnection, enabled: set[str], user: Any) -> list[str]:
    """Turn sync on for the actor types in ``enabled`` and off for the others; returns what changed, audited."""
    changed = []
    for actor_type in connection.actor_types.all():
        want = actor_type.actor_type in enabled
        if actor_type.sync_enabled != want:
            actor_type.sync_enabled = want
            actor_type.save(update_fields=["sync_enabled"])
            changed.append(f"{actor_type.actor_type}: {_('on') if want else _('off')}")
    if changed:
        audit(user, AuditAction.CHANGED, connection, _("sync of %(types)s") % {"types": ", ".join(changed)})
    return changed


class ActivationRefused(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@transaction.atomic
def set_active(connection: ErpConnection, active: bool, user: Any) -> None:
    locked = ErpConnection.objects.select_for_update().get(pk=connection.pk)
    if active:
        problems = activation_problems(locked)
        if problems:
            raise ActivationRefused(problems)
    if locked.is_active != active:
        locked.is_active = active
        locked.save(update_fields=["is_active", "updated_at"])
        audit(user, AuditAction.ACTIVATED if active else AuditAction.DEACTIVATED, locked)
    connection.is_active = active


@dataclass(frozen=True)
class HeldByConnection:
    """What a connection holds that its deletion keeps (and its purge deletes): shown before deleting it."""

    links: int
    log_entries: int
    imports: int


def held_by(connection: ErpConnection) -> HeldByConnection:
    return HeldByConnection(
        links=Link.objects.filter(connection=connection).count(),
        log_entries=SyncLogEntry.objects.filter(connection=connection).count(),
        imports=ErpImport.objects.filter(connection=connection).count(),
    )


def purge_due(connection: ErpConnection) -> datetime | None:
    """When a deleted connection is purged (None: never, ERPSYNC_DELETED_CONNECTION_DAYS is 0)."""
    days = settings.ERPSYNC_DELETED_CONNECTION_DAYS
    if connection.deleted_at is None or days == 0:
        return None
    return connection.deleted_at + timedelta(days=days)


@transaction.atomic
def delete_connection(connection: ErpConnection, user: Any) -> int:
    """Delete a connection, softly: it is deactivated and hidden, keeps its links, log and imports, and can be
    restored until it is purged. Its queued and running runs are ended (a worker holding one writes nothing more:
    its next batch finds the run no longer running). The connector is told only at the purge, so a restored
    connection still works. Returns how many runs were stopped."""
    locked = ErpConnection.objects.select_for_update().get(pk=connection.pk)
    now = timezone.now()
    locked.deleted_at = now
    locked.deleted_by = user if getattr(user, "is_authenticated", False) else None
    locked.is_active = False
    locked.save(update_fields=["deleted_at", "deleted_by", "is_active", "updated_at"])
    reason = _("%(name)s was deleted.") % {"name": locked}
    runs = SyncRun.objects.filter(connection=locked, status__in=ACTIVE_RUN_STATUSES)
    SyncChunk.objects.filter(run__in=runs, status__in=ACTIVE_RUN_STATUSES).update(
        status=RunStatus.FAILED, error=reason, finished_at=now, lease_expires_at=None
    )
    stopped = runs.update(status=RunStatus.FAILED, error=reason, finished_at=now, lease_expires_at=None, again=False)
    held = held_by(locked)
    audit(
        user,
        AuditAction.DELETED,
        locked,
        said.msg(
            N_("kept: %(links)s links, %(log)s sync log entries; %(runs)s runs stopped"),
            links=held.links,
            log=held.log_entries,
            runs=stopped,
        ),
    )
    connection.deleted_at, connection.is_active = locked.deleted_at, False
    return stopped


def restored_name(name: str) -> str:
    """The name a restored connection gets: its own, or, when a connection in use has taken it meanwhile, the name
    with "(restored)" and, if that is taken too, a number."""
    taken = {n.lower() for n in ErpConnection.objects.values_list("name", flat=True)}
    if name.lower() not in taken:
        return name
    suffix = _("restored")
    for number in range(1, 1000):
        tail = f" ({suffix})" if number == 1 else f" ({suffix} {number})"
        candidate = name[: 100 - len(tail)] + tail
        if candidate.lower() not in taken:
            return candidate
    raise ValueError("no free name")  # pragma: no cover  (a thousand connections of one name)


class RestoreRefused(Exception):
    pass


@transaction.atomic
def restore_connection(connection: ErpConnection, user: Any) -> ErpConnection:
    """Bring a deleted connection back, inactive, with its links, log and mapping as they were. Its name is kept
    unless a connection in use took it meanwhile (see ``restored_name``). Automatic sync catches up from the
    feed cursors, which deletion did not move, once it is activated again."""
    locked = ErpConnection.all_objects.select_for_update().get(pk=connection.pk, deleted_at__isnull=False)
    if locked.connector.deleted_at is not None:
        raise RestoreRefused(
            _("%(name)s cannot be restored: its Sync Connector %(connector)s was deleted.")
            % {"name": locked, "connector": locked.connector}
        )
    old_name = locked.name
    locked.name = restored_name(old_name)
    locked.deleted_at = None
    locked.deleted_by = None
    locked.is_active = False
    locked.save(update_fields=["name", "deleted_at", "deleted_by", "is_active", "updated_at"])
    renamed = said.msg(N_("renamed from %(old)s: the name is in use"), old=old_name)
    audit(user, AuditAction.RESTORED, locked, "" if locked.name == old_name else renamed)
    return locked


def deleted_connections() -> QuerySet[ErpConnection]:
    return ErpConnection.all_objects.filter(deleted_at__isnull=False).select_related("connector", "deleted_by")


def purge_connection(connection: ErpConnection, user: Any = None, language: str = "en") -> str:
    """Delete a deleted connection for good, with its links, sync log, runs and imports, and tell the connector to
    forget it (one that cannot be reached does not stop the purge: the reason is audited and returned)."""
    warning = ""
    try:
        with interactive_client(
            connection.connector.url, connection.connector.secret, language, key_id=connection.connector.key_id
        ) as client:
            client.connection(str(connection.guid), dict).delete()
    except UnknownConnection:
        pass  # a v1 connector that had already forgotten it: what DeleteConnection asks for (v1.1: it answers ok)
    except ConnectorError as error:
        warning = explain(error, language).message
    # The log first, in batches, so no transaction holds a big connection's history at once.
    while True:
        with transaction.atomic():
            ids = list(SyncLogEntry.objects.filter(connection=connection).values_list("pk", flat=True)[:5000])
            SyncLogEntry.objects.filter(pk__in=ids).delete()
        if len(ids) < 5000:
            break
    with transaction.atomic():
        held = held_by(connection)
        detail = [said.msg(N_("with %(links)s links and %(imports)s imports"), links=held.links, imports=held.imports)]
        if warning:
            detail.append(said.msg(N_("the connector was not told: %(why)s"), why=warning))
        audit(user, AuditAction.PURGED, connection, said.lines(detail, "; "))
        ErpConnection.all_objects.filter(pk=connection.pk, deleted_at__isnull=False).delete()
    return warning


def purge_deleted_connections(now: datetime | None = None) -> list[str]:
    """Purge the connections deleted more than ERPSYNC_DELETED_CONNECTION_DAYS ago (0: never). Returns their names.
    Run hourly by beat with the sync log's retention."""
    days = settings.ERPSYNC_DELETED_CONNECTION_DAYS
    if days == 0:
        return []
    cutoff = (now or timezone.now()) - timedelta(days=days)
    purged = []
    for connection in deleted_connections().filter(deleted_at__lt=cutoff).order_by("deleted_at"):
        purge_connection(connection, None, settings.LANGUAGE_CODE)
        purged.append(connection.name)
    return purged


class LinkRefused(Exception):
    """Why a link cannot be made; ``linked`` is the CRM record the actor is already linked to, if that is why."""

    def __init__(self, message: str, linked: Any = None) -> None:
        super().__init__(message)
        self.linked = linked


def check_linkable(connection: ErpConnection, actor_type: str, erp_key: str, record: Any) -> None:
    """Raise LinkRefused unless the record and the actor are both still unlinked in ``connection``."""
    model = CRM_MODEL.get(actor_type)
    if model is None or not isinstance(record, model):
        raise LinkRefused(
            _("A %(type)s actor cannot be linked to this kind of CRM record.")
            % {"type": shown.actor_type_word(connection, actor_type)}
        )
    attribute = Link.attribute_for(record)
    taken = Link.objects.filter(connection=connection, actor_type=actor_type, erp_key=erp_key).first()
    if taken is not None:
        raise LinkRefused(
            _("%(type)s %(key)s is already linked to %(record)s.")
            % {"type": shown.actor_type_name(connection, actor_type), "key": erp_key, "record": taken.crm_record},
            linked=taken.crm_record,
        )
    if Link.objects.filter(connection=connection, **{attribute: record}).exists():
        raise LinkRefused(
            _("%(record)s is already linked in %(connection)s.") % {"record": record, "connection": connection}
        )


@transaction.atomic
def link_record(
    connection: ErpConnection,
    actor_type: str,
    erp_key: str,
    record: Any,
    user: Any,
    baseline: dict[str, Any] | None = None,
) -> Link:
    """Join a CRM record to an ERP actor. The database refuses a second link for either side.

    ``baseline`` seeds what the first sync compares with (see ``connections.linking``); without it, the
    first sync settles differing values by the sync priority."""
    check_linkable(connection, actor_type, erp_key, record)
    attribute = Link.attribute_for(record)
    try:
        with transaction.atomic():
            link = Link.objects.create(
                connection=connection,
                actor_type=actor_type,
                erp_key=erp_key,
                baseline=baseline or {},
                **{attribute: record},
            )
    except IntegrityError:
        raise LinkRefused(_("Someone linked it at the same moment; reload the page.")) from None
    if user is not None:
        audit(
            user,
            AuditAction.CHANGED,
            connection,
            said.msg(N_("linked %(record)s to %(type)s %(key)s"), record=str(record), type=actor_type, key=erp_key),
        )
    return link


def start_sync_now(link: Link, user: Any) -> tuple[SyncRun, bool]:
    """Queue Sync now for one link; if a run for it is already queued or running, that run is answered instead."""
    refusal = sync_refusal(link.connection)
    if refusal:
        raise SyncRefused(refusal)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                connection=link.connection,
                link=link,
                kind=RunKind.SYNC_NOW,
                total=1,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
            transaction.on_commit(lambda: _send_run(run.pk))
    except IntegrityError:
        existing = SyncRun.objects.filter(link=link, status__in=ACTIVE_RUN_STATUSES).first()
        if existing is None:  # it finished between the insert and this read
            return start_sync_now(link, user)
        return existing, False
    return run, True


def _send_run(run_id: int) -> None:
    send([run_id])


@transaction.atomic
def relink_to_survivor(link: Link, user: Any) -> Link:
    """Replace a link whose ERP actor was merged into another (protocol v1.1 tombstones) by a link to the surviving
    actor, keeping the baseline: values changed on either side since the last sync are seen as changes.
    Raises LinkRefused when the link is not merged, or the survivor cannot be linked (already linked elsewhere)."""
    link = Link.objects.select_for_update().get(pk=link.pk)
    if link.status != LinkStatus.ERP_MERGED or not link.merged_into:
        raise LinkRefused(_("The ERP actor was not merged into another; there is nothing to link to."))
    record, baseline = link.crm_record, dict(link.baseline)
    unlink(link, user)
    return link_record(link.connection, link.actor_type, link.merged_into, record, user, baseline=baseline)


def unlink(link: Link, user: Any) -> None:
    """Remove a link; the ERP actor and the CRM record stay as they are."""
    audit(
        user,
        AuditAction.CHANGED,
        link.connection,
        said.msg(
            N_("disconnected %(record)s from %(type)s %(key)s"),
            record=str(link.crm_record),
            type=link.actor_type,
            key=link.erp_key,
        ),
    )
    link.delete()


# Sync settings


@transaction.atomic
def save_automatic_sync(automatic_sync: bool, interval_minutes: int, user: Any) -> SyncSettings:
    """Turn automatic sync on or off and set how often it runs; workers read it every minute, so no restart."""
    row = SyncSettings.objects.select_for_update().get_or_create(pk=1)[0]
    row.automatic_sync = automatic_sync
    row.interval_minutes = interval_minutes
    row.save(update_fields=["automatic_sync", "interval_minutes", "updated_at"])
    audit(
        user,
        AuditAction.CHANGED,
        None,
        said.msg(
            N_("automatic sync %(state)s, every %(minutes)s minutes"),
            state=said.msg(N_("on") if row.automatic_sync else N_("off")),
            minutes=row.interval_minutes,
        ),
    )
    return row


@transaction.atomic
def save_connection_automatic_sync(
    connection: ErpConnection, automatic_sync: bool, interval_minutes: int | None, user: Any
) -> None:
    """Pause or resume automatic sync of one connection and set its interval (None: Sync settings'). Pausing moves
    no feed cursor: resumed, the next run reads the changes made meanwhile."""
    locked = ErpConnection.objects.select_for_update().get(pk=connection.pk)
    if (locked.automatic_sync, locked.automatic_interval_minutes) == (automatic_sync, interval_minutes):
        return
    locked.automatic_sync = automatic_sync
    locked.automatic_interval_minutes = interval_minutes
    locked.save(update_fields=["automatic_sync", "automatic_interval_minutes", "updated_at"])
    every = (
        said.msg(N_("every %(minutes)s minutes"), minutes=interval_minutes)
        if interval_minutes
        else said.msg(N_("at the interval of Sync settings"))
    )
    state = said.msg(N_("on") if automatic_sync else N_("paused"))
    audit(
        user, AuditAction.CHANGED, locked, said.msg(N_("automatic sync %(state)s, %(every)s"), state=state, every=every)
    )
    connection.automatic_sync, connection.automatic_interval_minutes = automatic_sync, interval_minutes


@transaction.atomic
def save_reconcile_nightly(connection: ErpConnection, nightly: bool, user: Any) -> None:
    """Reconcile the connection every night (at ERPSYNC_RECONCILE_HOUR), or only when asked; audited."""
    locked = ErpConnection.objects.select_for_update().get(pk=connection.pk)
    if locked.reconcile_nightly == nightly:
        return
    locked.reconcile_nightly = nightly
    locked.save(update_fields=["reconcile_nightly", "updated_at"])
    audit(
        user,
        AuditAction.CHANGED,
        locked,
        said.msg(N_("reconciliation every night: %(state)s"), state=said.msg(N_("on") if nightly else N_("off"))),
    )
    connection.reconcile_nightly = nightly


@transaction.atomic
def save_sync_filter(
    connection: ErpConnection, actor_type: str, crm: dict[str, list[int]], erp: list[p.Restriction], user: Any
) -> None:
    """Keep the sync filter of one actor type (``connections.filters``); the next runs apply it. Audited with every
    condition in words, or as removed."""
    row = ErpActorType.objects.select_for_update().get(connection=connection, actor_type=actor_type)
    crm = {name: sorted(set(ids)) for name, ids in crm.items() if ids}
    erp_json = [r.model_dump(mode="json") for r in erp]
    if (row.crm_filter, row.erp_filter) == (crm, erp_json):
        return
    row.crm_filter, row.erp_filter = crm, erp_json
    row.save(update_fields=["crm_filter", "erp_filter"])
    conditions = filters.describe_filter(connection, actor_type, filters.SyncFilter.of(connection, actor_type))
    audit(
        user,
        AuditAction.CHANGED,
        connection,
        _("sync filter of %(type)s: %(conditions)s")
        % {"type": shown.actor_type_name(connection, actor_type), "conditions": "; ".join(conditions)}
        if conditions
        else _("sync filter of %(type)s removed: every record syncs")
        % {"type": shown.actor_type_name(connection, actor_type)},
    )


# Failed records


def failed_records(connection: ErpConnection) -> QuerySet[Link]:
    """The connection's links whose last sync failed or whose ERP actor is gone, unless dismissed."""
    return connection.links.filter(
        status__in=[LinkStatus.FAILED, LinkStatus.ERP_MISSING], dismissed_at__isnull=True
    ).select_related("company", "contact", "project")


@transaction.atomic
def dismiss_failures(connection: ErpConnection, links: list[Link], reason: str, user: Any) -> int:
    """Hide these failures, with why, until their error changes; returns how many."""
    Link.objects.filter(pk__in=[link.pk for link in links]).update(
        dismissed_at=timezone.now(), dismissed_reason=reason[:500]
    )
    audit(
        user,
        AuditAction.CHANGED,
        connection,
        said.msg(N_("dismissed %(n)s failed records: %(reason)s"), n=len(links), reason=reason),
    )
    return len(links)


def retry_failures(links: list[Link], user: Any) -> tuple[int, str]:
    """Queue Sync now for each link. Returns how many were queued, and why the rest were not: a refusal is about
    the connection, so the first one stops the others."""
    queued = 0
    for link in links:
        try:
            start_sync_now(link, user)
        except SyncRefused as refusal:
            return queued, str(refusal)
        queued += 1
    return queued, ""
