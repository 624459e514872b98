"""Connecting a CRM record to an ERP actor from the ERP tab.

Simple and advanced search, the values that differ between the record and a chosen actor, linking with
the user's choice per field, and creating the actor in the ERP. The user's choices are applied by the
engine, not here: the new link's baseline is seeded so that the first sync sees the side the user
rejected as the one that changed (docs/sync-semantics.md, "Connecting a record").
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, cast

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from connectors import protocol as p
from connectors.client import ConnectionClient, ConnectorClient, ConnectorError
from crm.models import Contact
from crm.validators import clean_value

from . import display, shown
from .choices import Direction
from .filters import operator_label
from .mapping import CRM_MODEL, default_fields
from .models import ErpConnection, ErpField, FieldDefault, Link, SyncSettings
from .services import LinkRefused, Problem, check_linkable, explain, interactive_client, link_record, read_lists
from .sync.values import FieldError, converters_for, mapped_fields

Side = Literal["crm", "erp"]
SEARCH_LIMIT = 25


def record_kind(record: Any) -> str:
    return Link.attribute_for(record)


def actor_types_for(connection: ErpConnection, record: Any) -> list[str]:
    """The actor types this connection syncs that this kind of record can be linked to, in protocol order."""
    types = [t for t, model in CRM_MODEL.items() if model is type(record)]
    enabled = set(
        connection.actor_types.filter(actor_type__in=types, sync_enabled=True).values_list("actor_type", flat=True)
    )
    return [t for t in types if t in enabled]


def parent_link(connection: ErpConnection, record: Any) -> Link | None:
    """A contact's persons live under its company's ERP actor; None when the company is not linked."""
    if isinstance(record, Contact) and record.company_id:
        return Link.objects.filter(connection=connection, company_id=record.company_id).first()
    return None


def _client(connection: ErpConnection, language: str) -> tuple[ConnectorClient, ConnectionClient]:
    # Someone is waiting for the answer: the interactive timeouts apply, not a worker's.
    connector = connection.connector
    client = interactive_client(
        connector.url, connector.secret, language, key_id=connector.key_id, capabilities=connector.capability_set
    )
    return client, client.connection(str(connection.guid), connection.config_values)


def _text(value: Any, list_texts: dict[str, str] | None = None, erp_field: ErpField | None = None) -> str:
    """A value as people read it (``connections.display``): by the ERP field's type when it is known."""
    if erp_field is None:
        return display.format_value(value, None, list_texts)
    return erp_field.format(value, list_texts)


LIST_TEXTS_SECONDS = 300  # list item texts rarely change: a renamed item shows its new text within 5 minutes


def list_texts(conn: ConnectionClient, connection: ErpConnection, list_name: str, language: str) -> dict[str, str]:
    """Every item text of a list (one GetList), kept in the cache for LIST_TEXTS_SECONDS."""
    key = f"erpsync:list-texts:{connection.pk}:{connection.updated_at.timestamp()}:{list_name}:{language}"
    texts = cache.get(key)
    if texts is None:
        texts = {item.key: item.text_in(language) for item in conn.get_list(list_name)}
        cache.set(key, texts, LIST_TEXTS_SECONDS)
    return cast(dict[str, str], texts)


def _field_texts(
    conn: ConnectionClient,
    connection: ErpConnection,
    fields: list[ErpField],
    values: list[dict[str, Any]],
    language: str,
) -> dict[str, dict[str, str]]:
    """The item texts of the list fields that hold a value among ``values``, by field key."""
    return {
        f.key: list_texts(conn, connection, f.list_name, language)
        for f in fields
        if f.type == p.FieldType.LIST and f.list_name and any(v.get(f.key) not in (None, "") for v in values)
    }


# Search


@dataclass
class Found:
    actor_type: str
    key: str
    values: list[str]
    linked: Any = None  # the CRM record the actor is already linked to


@dataclass
class SearchResult:
    columns: list[str] = field(default_factory=list)
    rows: list[Found] = field(default_factory=list)
    problem: Problem | None = None
    truncated: bool = False  # the ERP found more than it returned


def search_columns(connection: ErpConnection, actor_type: str) -> list[ErpField]:
    """The "Show in search" fields in rank order; the first three fields when none is chosen."""
    fields = connection.erp_fields.filter(actor_type=actor_type, missing_in_erp=False)
    return list(fields.filter(show_in_search=True)) or list(fields[:3])


def search(
    connection: ErpConnection,
    record: Any,
    actor_types: list[str],
    language: str,
    *,
    text: str = "",
    restrictions: list[p.Restriction] | None = None,
) -> SearchResult:
    """Simple search (SearchActors, or SearchActorByParent for a contact's persons) or, with
    ``restrictions``, advanced search (SearchActorsAdvanced, restricted to the parent for persons).

    The actor types are searched at once, each in a thread of its own, so that the search takes as long as the
    slowest type rather than the sum of them all; their rows come in the order of ``actor_types``. The threads only
    call the connector (the search, then GetList for list values whose texts are not in the cache); the database
    is read in this thread, before and after, for a worker thread would open a database connection of its own. On
    a connector error, the rows of the types before the failing one are kept with the problem, as when the types
    were searched one after another."""
    result = SearchResult()
    parent = parent_link(connection, record)
    if isinstance(record, Contact) and parent is None:
        result.problem = Problem("parent", _("Link the contact's company first; its persons are searched under it."))
        return result
    if not actor_types:
        return result
    columns = {actor_type: search_columns(connection, actor_type) for actor_type in actor_types}
    under = (p.ActorType(parent.actor_type), parent.erp_key) if parent is not None else None
    client, conn = _client(connection, language)
    try:
        # httpx's client may be used from several threads at once; each call signs a request of its own.
        with ThreadPoolExecutor(max_workers=len(actor_types), thread_name_prefix="erp-search") as pool:
            answers = [
                pool.submit(_search_type, conn, connection, t, columns[t], text, restrictions, under, language)
                for t in actor_types
            ]
        for actor_type, answer in zip(actor_types, answers, strict=True):
            found, texts = answer.result()  # a call's ConnectorError is raised here, in the order of the types
            result.columns = [f.display_label for f in columns[actor_type]]
            result.rows += _found(connection, actor_type, columns[actor_type], found.actors, texts)
    except ConnectorError as error:
        result.problem = explain(error, language)
    finally:
        client.close()
    return result


def _search_type(
    conn: ConnectionClient,
    connection: ErpConnection,
    actor_type: str,
    columns: list[ErpField],
    text: str,
    restrictions: list[p.Restriction] | None,
    under: tuple[p.ActorType, str] | None,
    language: str,
) -> tuple[p.SearchData, dict[str, dict[str, str]]]:
    """One actor type's search, and the item texts of the list values among its columns (GetList, unless in the
    cache). Only connector calls: it runs in a worker thread, which must not use the database."""
    kind, keys = p.ActorType(actor_type), [f.key for f in columns]
    if restrictions is not None:
        criteria = list(restrictions)
        if under is not None:
            criteria += [
                p.Restriction(field_key=p.PARENT_KEY, operator="equals", values=[under[1]]),
                p.Restriction(field_key=p.PARENT_ACTOR_TYPE, operator="equals", values=[under[0].value]),
            ]
        found = conn.search_advanced(kind, criteria, keys, limit=SEARCH_LIMIT)
    elif under is not None:
        found = conn.search_by_parent(kind, under[0], under[1], text, keys, limit=SEARCH_LIMIT)
    else:
        found = conn.search(kind, text, keys, limit=SEARCH_LIMIT)
    return found, _field_texts(conn, connection, columns, [a.values for a in found.actors], language)


def _found(
    connection: ErpConnection,
    actor_type: str,
    columns: list[ErpField],
    actors: list[p.Actor],
    texts: dict[str, dict[str, str]],
) -> list[Found]:
    """Search results as rows: the columns' values as text (``texts``: the item texts of list fields, by field
    key), and the CRM record each actor is linked to."""
    taken = {
        link.erp_key: link.crm_record
        for link in Link.objects.filter(
            connection=connection, actor_type=actor_type, erp_key__in=[a.key for a in actors]
        ).select_related("company", "contact", "project")
    }
    return [
        Found(
            actor_type,
            actor.key or "",
            [_text(actor.values.get(f.key), texts.get(f.key), f) for f in columns],
            taken.get(actor.key or ""),
        )
        for actor in actors
    ]


def search_erp(
    connection: ErpConnection,
    actor_type: str,
    restrictions: list[p.Restriction],
    language: str,
    limit: int = p.MAX_SEARCH_LIMIT,
) -> SearchResult:
    """Advanced search for any actors of a type (Import from ERP), not only those a record may link to."""
    result = SearchResult()
    client, conn = _client(connection, language)
    try:
        columns = search_columns(connection, actor_type)
        found = conn.search_advanced(p.ActorType(actor_type), restrictions, [f.key for f in columns], limit=limit)
        result.columns = [f.display_label for f in columns]
        texts = _field_texts(conn, connection, columns, [a.values for a in found.actors], language)
        result.rows = _found(connection, actor_type, columns, found.actors, texts)
        result.truncated = found.truncated
    except ConnectorError as error:
        result.problem = explain(error, language)
    finally:
        client.close()
    return result


@dataclass
class Criterion:
    """One searchable field in the advanced search form, with the operators of its type."""

    field: ErpField
    operators: tuple[str, ...]
    items: list[p.ListItem] = dataclasses.field(default_factory=list)
    operator: str = ""
    value: str = ""
    value2: str = ""
    chosen: list[str] = dataclasses.field(default_factory=list)  # the items picked, for a list field
    error: str = ""

    @property
    def operator_choices(self) -> list[tuple[str, str]]:
        return [(op, operator_label(op)) for op in self.operators]

    @property
    def widget(self) -> str:
        """How the value is entered: an HTML input type, or "yesno" / "list" for a select."""
        return {
            p.FieldType.INTEGER: "number",
            p.FieldType.DOUBLE: "number",
            p.FieldType.DATE: "date",
            p.FieldType.DATETIME: "datetime-local",
            p.FieldType.CHECKBOX: "yesno",
            p.FieldType.LIST: "list",
        }.get(p.FieldType(self.field.type), "text")

    @property
    def has_range(self) -> bool:
        return "between" in self.operators


def criteria(
    connection: ErpConnection, actor_type: str, data: Any, language: str
) -> tuple[list[Criterion], Problem | None]:
    """The advanced search form for ``actor_type``: every searchable field, filled from ``data`` (GET)."""
    fields = [
        f
        for f in connection.erp_fields.filter(actor_type=actor_type, searchable=True, missing_in_erp=False)
        if p.OPERATORS.get(p.FieldType(f.type))
    ]
    problem = None
    items, problem = read_lists(
        connection, {f.list_name for f in fields if f.type == p.FieldType.LIST and f.list_name}, language
    )
    rows = []
    for erp_field in fields:
        operators = p.OPERATORS[p.FieldType(erp_field.type)]
        first = "contains" if "contains" in operators else operators[0]
        row = Criterion(erp_field, operators, items.get(erp_field.list_name, []), operator=first)
        if data:
            row.operator = data.get(f"op-{erp_field.key}", first)
            row.chosen = [v for v in data.getlist(f"v-{erp_field.key}") if v]
            row.value = "" if erp_field.type == p.FieldType.LIST else data.get(f"v-{erp_field.key}", "").strip()
            row.value2 = data.get(f"v2-{erp_field.key}", "").strip()
        rows.append(row)
    return rows, problem


def _typed(erp_field: ErpField, raw: str) -> p.Value:
    kind = p.FieldType(erp_field.type)
    if kind == p.FieldType.INTEGER:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(_("Enter a whole number.")) from None
    if kind == p.FieldType.DOUBLE:
        try:
            return float(raw.replace(",", ".").replace(" ", ""))
        except ValueError:
            raise ValueError(_("Enter a number.")) from None
    if kind == p.FieldType.DECIMAL:
        try:
            number = p.parse_decimal(raw.replace(",", ".").replace(" ", "").replace("\u00a0", ""))
        except ValueError:
            raise ValueError(_("Enter a number.")) from None
        places = erp_field.decimal_places
        if places is not None and max(0, -int(number.as_tuple().exponent)) > places:
            raise ValueError(_("Enter at most %(places)s decimal places.") % {"places": places})
        return p.decimal_value(number)
    if kind == p.FieldType.DATE:
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            raise ValueError(_("Enter a date as YYYY-MM-DD.")) from None
    if kind == p.FieldType.DATETIME:
        try:
            return datetime.fromisoformat(raw).isoformat()
        except ValueError:
            raise ValueError(_("Enter a date and time.")) from None
    if kind == p.FieldType.CHECKBOX:
        if raw not in ("yes", "no"):
            raise ValueError(_("Choose yes or no."))
        return raw == "yes"
    return raw


def restrictions_from(rows: list[Criterion]) -> list[p.Restriction]:
    """Typed restrictions from the filled-in criteria; a row's ``error`` is set when its value is not valid."""
    restrictions = []
    for row in rows:
        if not row.value and not row.chosen:
            continue
        if row.operator not in row.operators:
            row.error = _("Choose one of the operators offered.")
            continue
        try:
            if p.FieldType(row.field.type) == p.FieldType.LIST:
                keys = {item.key for item in row.items}
                values: list[p.Value] = list(row.chosen)
                if keys and any(v not in keys for v in row.chosen):
                    raise ValueError(_("Choose items from the list."))
            elif row.operator == "between":
                if not row.value2:
                    raise ValueError(_("Enter both ends of the range."))
                values = [_typed(row.field, row.value), _typed(row.field, row.value2)]
            else:
                values = [_typed(row.field, row.value)]
        except ValueError as error:
            row.error = str(error)
            continue
        restrictions.append(p.Restriction(field_key=row.field.key, operator=row.operator, values=values))
    return restrictions


# The values that differ

# Fields that tell one company from another (VAT or organisation number, city): when the chosen actor has another
# value there than the record, it may be another company of the same name. By the CRM field they are mapped to,
# or by the ERP field's key where the CRM has no field of its own (an organisation number).
IDENTIFYING_CRM_FIELDS = frozenset({"VATNO", "POSTALCITY", "STREETCITY"})
IDENTIFYING_ERP_KEYS = frozenset(
    {"VATNO", "ORGNR", "ORGNO", "ORG_NO", "ORG_NUMBER", "ORGANISATION_NUMBER", "ORGANIZATION_NUMBER"}
)


def identifies(erp_field: ErpField) -> bool:
    return erp_field.crm_field in IDENTIFYING_CRM_FIELDS or erp_field.key.upper() in IDENTIFYING_ERP_KEYS


@dataclass
class Difference:
    """A mapped field whose CRM and ERP values differ, and which side wins unless the user says otherwise."""

    field: ErpField
    crm: Any  # both canonical (connections.sync.values)
    erp: Any
    crm_text: str
    erp_text: str
    choice: Side
    fixed: bool  # the field syncs one way only: that side wins, there is nothing to choose
    identifying: bool = False  # an identifying field with a value on both sides: maybe not the same company

    @property
    def input_name(self) -> str:
        return f"choice-{self.field.key}"

    @property
    def why_fixed(self) -> str:
        """Why there is nothing to choose, in the reader's language; empty when the user chooses."""
        if not self.fixed:
            return ""
        if self.field.access == p.FieldAccess.READ_ONLY:
            return str(_("Read-only in the ERP: the ERP's value is kept and copied to the CRM."))
        if self.field.direction == Direction.ERP_TO_CRM:
            return str(_("Syncs from the ERP only: the field mapping's direction is ERP → CRM."))
        return str(_("Syncs to the ERP only: the field mapping's direction is CRM → ERP."))


@dataclass
class Comparison:
    actor: p.Actor
    differences: list[Difference]
    agreeing: dict[str, Any]  # field key → the value both sides have
    problems: list[str]

    @property
    def suspicious(self) -> list[Difference]:
        """The identifying fields on which the record and the actor differ: the actor may be another company."""
        return [difference for difference in self.differences if difference.identifying]

    @property
    def suspicious_labels(self) -> str:
        return ", ".join(difference.field.display_label for difference in self.suspicious)


def compare(connection: ErpConnection, actor_type: str, erp_key: str, record: Any, language: str) -> Comparison:
    """GetActors for the chosen actor and compare every mapped field with the CRM record."""
    if actor_type not in actor_types_for(connection, record):
        raise LinkRefused(
            _("A %(type)s actor cannot be linked to this kind of CRM record.")
            % {"type": shown.actor_type_word(connection, actor_type)}
        )
    check_linkable(connection, actor_type, erp_key, record)
    mapped = mapped_fields(connection, actor_type)
    converters = converters_for(connection, actor_type, mapped)
    client, conn = _client(connection, language)
    try:
        found = conn.get_actors(p.ActorType(actor_type), [erp_key], [f.key for f in mapped])
        if not found.actors:
            raise LinkRefused(
                _("%(type)s %(key)s no longer exists in the ERP.")
                % {"type": shown.actor_type_name(connection, actor_type), "key": erp_key}
            )
        actor = found.actors[0]
        texts = _field_texts(conn, connection, mapped, [actor.values], language)
    finally:
        client.close()
    crm_first = SyncSettings.load().crm_priority < connection.priority
    differences, agreeing, problems = [], {}, []
    for erp_field in mapped:
        converter = converters[erp_field.key]
        try:
            crm_value = converter.from_crm(record)
            erp_value = converter.from_erp(actor.values.get(erp_field.key))
        except FieldError as error:
            problems.append(f"{erp_field.display_label}: {error}")
            continue
        if crm_value == erp_value:
            agreeing[erp_field.key] = crm_value
            continue
        if erp_field.direction == Direction.ERP_TO_CRM:
            choice: Side = "erp"
        elif erp_field.direction == Direction.CRM_TO_ERP:
            choice = "crm"
        elif crm_value is None or erp_value is None:
            choice = "erp" if crm_value is None else "crm"  # a value beats a blank
        else:
            choice = "crm" if crm_first else "erp"
        crm_text = (
            str(getattr(record, converter.attribute) or "—")
            if converter.crm_type == p.FieldType.LIST
            else _text(crm_value, None, erp_field)
        )
        differences.append(
            Difference(
                erp_field,
                crm_value,
                erp_value,
                crm_text,
                _text(erp_value, texts.get(erp_field.key), erp_field),
                choice,
                fixed=erp_field.direction != Direction.BOTH,
                identifying=identifies(erp_field) and crm_value is not None and erp_value is not None,
            )
        )
    return Comparison(actor, differences, agreeing, problems)


def seeded_baseline(comparison: Comparison, choices: dict[str, str]) -> dict[str, Any]:
    """The baseline that makes the first sync apply the choices: the rejected side's value.

    The engine sees the side that differs from the baseline as changed, and copies it over the other:
    choosing the CRM value stores the ERP value as the baseline, so the CRM value is sent to the ERP, and
    the other way round. Fields both sides agree on get their common value."""
    baseline = dict(comparison.agreeing)
    for difference in comparison.differences:
        choice = difference.choice if difference.fixed else choices.get(difference.field.key, difference.choice)
        baseline[difference.field.key] = difference.erp if choice == "crm" else difference.crm
    return baseline


def connect(
    connection: ErpConnection,
    actor_type: str,
    erp_key: str,
    record: Any,
    user: Any,
    choices: dict[str, str],
    language: str,
) -> Link:
    """Link the record to the actor with the user's choice per differing field. The values are compared
    again now, so a change made since the dialog was shown is judged by the sync rule, not overwritten."""
    bad = {key: side for key, side in choices.items() if side not in ("crm", "erp")}
    if bad:
        raise LinkRefused(_("Choose the CRM or the ERP value for every field."))
    comparison = compare(connection, actor_type, erp_key, record, language)
    return link_record(connection, actor_type, erp_key, record, user, baseline=seeded_baseline(comparison, choices))


# Create in ERP


@dataclass
class Prompt:
    """A value the user is asked for before the actor is created."""

    field: ErpField
    info: p.FieldInfo
    initial: Any


@dataclass
class CreationPlan:
    actor_type: str
    sent: list[tuple[ErpField, Any, str]]  # mapped CRM values sent: field, protocol value, text
    defaults: list[tuple[ErpField, Any]]  # default values sent without asking
    prompts: list[Prompt]
    problems: list[str]
    baseline: dict[str, Any]
    parent: Link | None = None


def creation_plan(connection: ErpConnection, actor_type: str, record: Any) -> CreationPlan:
    """What CreateActor will send: mapped CRM values, the admin's default values, and what to ask the user.

    The user is asked for the defaults marked "ask the user" and for every mandatory field that nothing
    else fills; a prompt for a field that is also mapped starts from the CRM value."""
    if actor_type not in actor_types_for(connection, record):
        raise LinkRefused(
            _("%(name)s cannot create a %(type)s for this kind of record.")
            % {"name": connection, "type": shown.actor_type_word(connection, actor_type)}
        )
    parent = parent_link(connection, record)
    if isinstance(record, Contact) and parent is None:
        raise LinkRefused(_("Link the contact's company first; the person is created under it."))
    mapped = mapped_fields(connection, actor_type)
    converters = converters_for(connection, actor_type, mapped)
    sent, problems, crm_values, baseline = [], [], {}, {}
    for erp_field in mapped:
        try:
            canonical = converters[erp_field.key].from_crm(record)
            crm_values[erp_field.key] = canonical
            # The first sync then sees ERP-made values (a customer number, say) as changes in the ERP.
            baseline[erp_field.key] = canonical
            if erp_field.direction in (Direction.CRM_TO_ERP, Direction.BOTH) and canonical is not None:
                sent.append(
                    (erp_field, converters[erp_field.key].to_erp_value(canonical), _text(canonical, None, erp_field))
                )
        except FieldError as error:
            problems.append(f"{erp_field.display_label}: {error}")
    saved = {d.field_key: d for d in FieldDefault.objects.filter(connection=connection, actor_type=actor_type)}
    sent_keys = {f.key for f, _value, _text_ in sent}
    defaults, prompts = [], []
    for erp_field in default_fields(connection, actor_type) + [
        f for f in mapped if f.key not in sent_keys and f.direction != Direction.ERP_TO_CRM
    ]:
        default = saved.get(erp_field.key)
        mandatory = erp_field.access == p.FieldAccess.MANDATORY or bool(default and default.mandatory)
        value = default.value if default else None
        if (default and default.ask_user) or (mandatory and value in (None, "")):
            info = erp_field.field_info(p.FieldAccess.MANDATORY if mandatory else p.FieldAccess.NORMAL)
            initial = crm_values.get(erp_field.key)
            prompts.append(Prompt(erp_field, info, value if initial is None else initial))
        elif value not in (None, ""):
            defaults.append((erp_field, value))
    return CreationPlan(actor_type, sent, defaults, prompts, problems, baseline, parent)


@transaction.atomic
def create_in_erp(
    connection: ErpConnection,
    plan: CreationPlan,
    record: Any,
    answers: dict[str, p.Value],
    user: Any,
    language: str,
    idempotency_key: str | None = None,
) -> Link:
    """CreateActor with the plan's values and the user's answers, then store the link with the new key.

    The record's row is locked first, so two users pressing Create at once cannot make two ERP actors.
    ``idempotency_key`` (sent to connectors that name ``idempotent_create``) is the same for every attempt of one
    Create in ERP: an attempt whose answer was lost after the ERP created the actor is then retried without
    making a second one."""
    type(record)._default_manager.select_for_update().filter(pk=record.pk).first()
    attribute = record_kind(record)
    if Link.objects.filter(connection=connection, **{attribute: record}).exists():
        raise LinkRefused(
            _("%(record)s is already linked in %(connection)s.") % {"record": record, "connection": connection}
        )
    values: dict[str, p.Value] = {f.key: v for f, v in plan.defaults}
    values.update({f.key: v for f, v, _t in plan.sent})
    values.update({k: v for k, v in answers.items() if v is not None})
    actor = p.Actor(
        actor_type=p.ActorType(plan.actor_type),
        values=values,
        parent_actor_type=p.ActorType(plan.parent.actor_type) if plan.parent else None,
        parent_key=plan.parent.erp_key if plan.parent else None,
    )
    client, conn = _client(connection, language)
    try:
        created = conn.create_actor(actor, idempotency_key)
    finally:
        client.close()
    # The answer is checked as any value the CRM stores; the values the ERP filled in arrive by the Sync now
    # that follows, through the sync's own checks.
    try:
        key = clean_value(Link._meta.get_field("erp_key"), created.key or "")
    except ValidationError as error:
        raise LinkRefused(
            _("%(erp)s created the actor but answered a key the CRM cannot store (%(why)s); nothing was linked.")
            % {"erp": connection, "why": " ".join(error.messages)}
        ) from None
    return link_record(connection, plan.actor_type, key, record, user, baseline=plan.baseline)
