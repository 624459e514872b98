"""Domain actions of the connections app: connectors, connections, tests, activation, audit."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Field
from django.utils import timezone, translation
from django.utils.translation import gettext as _
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
)
from connectors.models import SyncConnector
from crm.models import Contact
from erpsync_admin import crypto

from .choices import ACTIVE_RUN_STATUSES, AuditAction, Direction, RunKind, Visibility
from .mapping import CRM_MODEL, auto_map, next_priority
from .models import AuditEntry, ErpActorType, ErpConnection, ErpField, Link, SyncRun, WorkerHeartbeat

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


def audit(user: Any, action: AuditAction, subject: Any, detail: str = "") -> None:
    """Record who did what. ``detail`` names what changed, never values of secrets."""
    AuditEntry.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        connector=subject if isinstance(subject, SyncConnector) else None,
        connection=subject if isinstance(subject, ErpConnection) else None,
        subject=str(subject)[:200] if subject is not None else _("Sync settings"),
        action=action,
        detail=detail[:2000],
    )


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


def interactive_client(url: str, secret: str, language: str = "en") -> ConnectorClient:
    """A client for calls made while someone waits for a page: ERPSYNC_CONNECTOR_TIMEOUT bounds each call.

    Its calls are refused, with the reason, when ERPSYNC_CONNECTOR_HOSTS does not allow ``url``."""
    limit = float(settings.ERPSYNC_CONNECTOR_TIMEOUT)
    timeouts = Timeouts(connect=min(3.0, limit), read=limit, total=limit)
    return ConnectorClient(url, secret, timeouts=timeouts, language=language, refusal=hosts.url_problem)


def read_lists(connection: ErpConnection, names: set[str], language: str = "en") -> tuple[dict[str, list[p.ListItem]], Problem | None]:  # fmt: skip
    """The items of the connection's lists (GetList each) for a form someone waits for; on failure none, and why."""
    if not names:
        return {}, None
    try:
        with interactive_client(connection.connector.url, connection.connector.secret, language) as client:
            conn = client.connection(str(connection.guid), connection.config_values)
            return {name: conn.get_list(name) for name in sorted(names)}, None
    except ConnectorError as error:
        return {}, explain(error, language)


def probe_connector(url: str, secret: str, language: str = "en") -> list[p.FieldInfo]:
    """GetConfigData: proves that a connector answers at ``url`` and accepts ``secret``."""
    with interactive_client(url, secret, language) as client:
        return client.get_config_data().data.fields


# Connectors


@transaction.atomic
def save_connector(connector: SyncConnector, secret: str | None, user: Any) -> SyncConnector:
    """Create or update a connector; ``secret`` None keeps the stored one."""
    created = connector.pk is None
    if secret:
        connector.set_secret(secret)
    connector.save()
    audit(user, AuditAction.CREATED if created else AuditAction.CHANGED, connector,
          "" if created else _("name, URL or shared secret"))  # fmt: skip
    return connector


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


def test_config(connector: SyncConnector, values: dict[str, p.Value], user: Any, language: str = "en") -> TestOutcome:
    """TestConfigData with unsaved values. A pass yields a token that saving these exact values requires."""
    try:
        with interactive_client(connector.url, connector.secret, language) as client:
            result = client.test_config_data(values)
    except ConnectorError as error:
        problem = explain(error, language)
        return TestOutcome(False, "error", problem.message, problem.technical)
    envelope = result.envelope
    message = envelope.user_explanation.get(language) or envelope.user_explanation.get("en") or ""
    token = signing.dumps({"digest": config_digest(connector, values)}, salt=TEST_TOKEN_SALT)
    return TestOutcome(True, envelope.state.value, message, envelope.technical_explanation, token)


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
        with interactive_client(connection.connector.url, connection.connector.secret, language) as client:
            conn = client.connection(str(connection.guid), connection.config_values)
            _call(_("Saving the connection at the connector"), conn.save, language)
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
    actor_types = _call(_("Reading the supported actor types"), conn.supported_actor_types, language)
    seen: set[tuple[str, str]] = set()
    for actor_type in actor_types:
        ErpActorType.objects.get_or_create(connection=connection, actor_type=actor_type.value)
        fields = _call(
            _("Reading the %(type)s fields") % {"type": actor_type.value},
            lambda t=actor_type: conn.actor_type_fields(t),
            language,
        )
        searchable = set(_call(_("Reading the searchable %(type)s fields") % {"type": actor_type.value},
                               lambda t=actor_type: conn.searchable_fields(t), language))  # fmt: skip
        for rank, f in enumerate(fields):
            seen.add((actor_type.value, f.key))
            meta = {"label": f.label, "description": f.description, "type": f.type.value, "list_name": f.list_name or "",
                    "default": f.default, "max_length": f.max_length, "access": f.access.value,
                    "searchable": f.key in searchable, "missing_in_erp": False}  # fmt: skip
            field, created = ErpField.objects.get_or_create(
                connection=connection, actor_type=actor_type.value, key=f.key, defaults={**meta, "rank": rank}
            )
            if created:
                crm_key = auto_map(actor_type.value, f.key, f.type.value)
                if crm_key:
                    field.crm_field, field.auto_mapped = crm_key, True
                    field.save(update_fields=["crm_field", "auto_mapped"])
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
    return missing


@transaction.atomic
def refresh_from_connector(connection: ErpConnection, user: Any, language: str = "en") -> list[str]:
    """Read the connector's actor types and fields again; returns the fields it no longer has."""
    with interactive_client(connection.connector.url, connection.connector.secret, language) as client:
        conn = client.connection(str(connection.guid), connection.config_values)
        missing = _read_metadata(connection, conn, language)
    audit(
        user,
        AuditAction.REFRESHED,
        connection,
        _("missing in ERP: %(fields)s") % {"fields": ", ".join(missing)} if missing else "",
    )
    return missing


def test_saved_connection(connection: ErpConnection, user: Any, language: str = "en") -> TestOutcome:
    """TestConnection for a saved connection; the result is kept on it (activation needs a pass)."""
    try:
        with interactive_client(connection.connector.url, connection.connector.secret, language) as client:
            result = client.connection(str(connection.guid), connection.config_values).test()
        outcome = TestOutcome(True, result.envelope.state.value,
                              result.envelope.user_explanation.get(language) or _("The test passed."))  # fmt: skip
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
        _("passed") if outcome.passed else _("failed: %(why)s") % {"why": outcome.message},
    )
    return outcome


def activation_problems(connection: ErpConnection) -> list[str]:
    """Every reason the connection cannot be activated now (empty when it can)."""
    problems = []
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
    for field in fields:
        label = {"type": field.actor_type, "key": field.key, "label": field.label}
        if field.missing_in_erp and field.crm_field:
            problems.append(_("%(type)s field %(key)s is mapped but missing in the ERP: unmap it.") % label)
            continue
        if field.actor_type not in enabled or field.missing_in_erp:
            continue
        if field.crm_field and not field.direction:
            problems.append(
                _("%(type)s field %(label)s is mapped to %(crm)s but has no direction.")
                % {**label, "crm": field.crm_field}
            )
        if field.access == p.FieldAccess.MANDATORY:
            from_crm = field.crm_field and field.direction in (Direction.CRM_TO_ERP, Direction.BOTH)
            default = defaults.get((field.actor_type, field.key))
            has_default = default is not None and (default.value not in (None, "") or default.ask_user)
            if not from_crm and not has_default:
                problems.append(
                    _("Mandatory %(type)s field %(label)s is neither synced from the CRM nor given a default.") % label
                )
    duplicates = (
        connection.list_mappings.exclude(crm_item_id=None).values("actor_type", "field_key", "crm_item_id")
        .annotate(n=Count("pk")).filter(n__gt=1)
    )  # fmt: skip
    for row in duplicates:
        problems.append(
            _("%(type)s field %(key)s maps one CRM list item to several ERP items.")
            % {"type": row["actor_type"], "key": row["field_key"]}
        )
    return problems


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


def delete_connection(connection: ErpConnection, user: Any, language: str = "en") -> str:
    """Delete a connection in the CRM, and tell the connector (which may be gone: that does not stop it)."""
    warning = ""
    try:
        with interactive_client(connection.connector.url, connection.connector.secret, language) as client:
            client.connection(str(connection.guid), dict).delete()
    except ConnectorError as error:
        warning = explain(error, language).message
    with transaction.atomic():
        audit(
            user,
            AuditAction.DELETED,
            connection,
            _("the connector was not told: %(why)s") % {"why": warning} if warning else "",
        )
        connection.delete()
    return warning


def principals_for_choices() -> tuple[list[Group], list[AbstractBaseUser]]:
    from django.contrib.auth import get_user_model

    return list(Group.objects.order_by("name")), list(
        get_user_model().objects.filter(is_active=True).order_by("username")
    )


# Links and sync jobs


class LinkRefused(Exception):
    """Why a link cannot be made; ``linked`` is the CRM record the actor is already linked to, if that is why."""

    def __init__(self, message: str, linked: Any = None) -> None:
        super().__init__(message)
        self.linked = linked


def check_linkable(connection: ErpConnection, actor_type: str, erp_key: str, record: Any) -> None:
    """Raise LinkRefused unless the record and the actor are both still unlinked in ``connection``."""
    model = CRM_MODEL.get(actor_type)
    if model is None or not isinstance(record, model):
        raise LinkRefused(_("A %(type)s actor cannot be linked to this kind of CRM record.") % {"type": actor_type})
    attribute = Link.attribute_for(record)
    taken = Link.objects.filter(connection=connection, actor_type=actor_type, erp_key=erp_key).first()
    if taken is not None:
        raise LinkRefused(
            _("%(type)s %(key)s is already linked to %(record)s.")
            % {"type": actor_type, "key": erp_key, "record": taken.crm_record},
            linked=taken.crm_record,
        )
    if Link.objects.filter(connection=connection, **{attribute: record}).exists():
        raise LinkRefused(
            _("%(record)s is already linked in %(connection)s.") % {"record": record, "connection": connection}
        )


@transaction.atomic
def link_record(connection: ErpConnection, actor_type: str, erp_key: str, record: Any, user: Any,
                baseline: dict[str, Any] | None = None) -> Link:  # fmt: skip
    """Join a CRM record to an ERP actor. The database refuses a second link for either side.

    ``baseline`` seeds what the first sync compares with (see ``connections.linking``); without it, the
    first sync settles differing values by the sync priority."""
    check_linkable(connection, actor_type, erp_key, record)
    attribute = Link.attribute_for(record)
    try:
        with transaction.atomic():
            link = Link.objects.create(connection=connection, actor_type=actor_type, erp_key=erp_key,
                                       baseline=baseline or {}, **{attribute: record})  # fmt: skip
    except IntegrityError:
        raise LinkRefused(_("Someone linked it at the same moment; reload the page.")) from None
    if user is not None:
        audit(user, AuditAction.CHANGED, connection, _("linked %(record)s to %(type)s %(key)s") % {
            "record": record, "type": actor_type, "key": erp_key})  # fmt: skip
    return link


class SyncRefused(Exception):
    pass


def sync_refusal(connection: ErpConnection) -> str:
    """Why jobs cannot run for the connection now, or ''. Checked when queued and again in the worker."""
    if not connection.is_active:
        return _("%(name)s is not active.") % {"name": connection}
    if not connection.last_test_ok:
        return _("%(name)s has not passed its last test.") % {"name": connection}
    return ""


def start_sync_now(link: Link, user: Any) -> tuple[SyncRun, bool]:
    """Queue Sync now for one link; if a run for it is already queued or running, that run is answered instead."""
    refusal = sync_refusal(link.connection)
    if refusal:
        raise SyncRefused(refusal)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(connection=link.connection, link=link, kind=RunKind.SYNC_NOW, total=1,
                                         created_by=user if getattr(user, "is_authenticated", False) else None)  # fmt: skip
            transaction.on_commit(lambda: _send_run(run.pk))
    except IntegrityError:
        existing = SyncRun.objects.filter(link=link, status__in=ACTIVE_RUN_STATUSES).first()
        if existing is None:  # it finished between the insert and this read
            return start_sync_now(link, user)
        return existing, False
    return run, True


def _send_run(run_id: int) -> None:
    from .jobs import send

    send([run_id])


@transaction.atomic
def unlink(link: Link, user: Any) -> None:
    """Remove a link; the ERP actor and the CRM record stay as they are."""
    audit(user, AuditAction.CHANGED, link.connection, _("disconnected %(record)s from %(type)s %(key)s") % {
        "record": link.crm_record, "type": link.actor_type, "key": link.erp_key})  # fmt: skip
    link.delete()


def search_for_link(connection: ErpConnection, record: Any, text: str, language: str = "en") -> dict[str, Any]:
    """Simple search in the ERP for actors this record may be linked to; a contact's persons are searched
    under its company's linked actor. Columns are the "Show in search" fields in rank order."""
    from .mapping import CRM_MODEL

    types = [t for t, model in CRM_MODEL.items() if model is type(record)]
    enabled = list(
        connection.actor_types.filter(actor_type__in=types, sync_enabled=True).values_list("actor_type", flat=True)
    )
    context: dict[str, Any] = {"connection": connection, "record": record, "rows": [], "columns": [], "problem": None,
                               "kind": record._meta.model_name}  # fmt: skip
    if not enabled:
        context["problem"] = Problem("none", _("%(name)s does not sync this kind of record.") % {"name": connection})
        return context
    parent = None
    if isinstance(record, Contact):
        parent = Link.objects.filter(connection=connection, company=record.company).first()
        if parent is None:
            context["problem"] = Problem(
                "parent", _("Link the contact's company first; persons are searched under it.")
            )
            return context
    # Someone is waiting for this answer: the interactive timeouts apply, not a worker's.
    client = interactive_client(connection.connector.url, connection.connector.secret, language)
    conn = client.connection(str(connection.guid), connection.config_values)
    try:
        for actor_type in enabled:
            columns = list(
                connection.erp_fields.filter(actor_type=actor_type, show_in_search=True, missing_in_erp=False)
            )
            if not columns:
                columns = list(connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False)[:3])
            keys = [f.key for f in columns]
            if parent is not None:
                found = conn.search_by_parent(
                    p.ActorType(actor_type), p.ActorType(parent.actor_type), parent.erp_key, text, keys, limit=25
                )
            else:
                found = conn.search(p.ActorType(actor_type), text, keys, limit=25)
            taken = dict(Link.objects.filter(connection=connection, actor_type=actor_type,
                                             erp_key__in=[a.key for a in found.actors]).values_list("erp_key", "pk"))  # fmt: skip
            context["columns"] = [f.label for f in columns]
            context["rows"] += [
                (actor_type, actor.key, [actor.values.get(k) for k in keys], actor.key in taken)
                for actor in found.actors
            ]
    except ConnectorError as error:
        context["problem"] = explain(error, language)
    finally:
        client.close()
    return context
