"""Every input of the connections pages arrives through a form here: the Sync tab (connectors, connections,
visibility grants, the connector-defined configuration), sync settings, field mapping, failed records, the ERP
tab's search and linking, and Import from ERP."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.conf import settings as guardian_settings

from connectors import hosts
from connectors import protocol as p
from connectors.models import SyncConnector

from . import display
from .choices import Direction, ImportAction, RunKind
from .linking import Criterion, restrictions_from
from .mapping import FieldRow
from .models import ErpConnection, ErpField, HeldConflict, Link, SyncSettings
from .services import Grant

SECRET_PLACEHOLDER = "••••••••"  # noqa: S105  (what a stored secret shows as)


class SyncConnectorForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("Where the connector listens, e.g. http://127.0.0.1:8001"),
    )
    secret = forms.CharField(
        label=_("Shared secret"),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        min_length=16,
        max_length=500,
        help_text=_(
            "The secret the connector was started with; at least 16 characters. The connector's administrator sets "
            "it when starting the connector; Demo ERP says where it is when it starts (var/demo-connector.secret "
            "with make run)."
        ),
    )
    save_unreachable = forms.BooleanField(
        label=_("Save it anyway; I will start the connector later"), required=False, widget=forms.HiddenInput
    )

    class Meta:
        model = SyncConnector
        fields = ["name", "url", "max_parallel_parts"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left empty, it is the default (or what the connector had).
        self.fields["max_parallel_parts"].required = False
        if self.instance.pk:
            self.fields["secret"].required = False
            self.fields["secret"].widget.attrs["placeholder"] = SECRET_PLACEHOLDER
            self.fields["secret"].help_text = _("Leave empty to keep the stored secret.")

    def clean_max_parallel_parts(self) -> int:
        value = self.cleaned_data.get("max_parallel_parts")
        if value is None:
            return self.instance.max_parallel_parts if self.instance.pk else 4
        return int(value)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = SyncConnector.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("A Sync Connector with this name already exists."))
        return name

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].rstrip("/")
        # http(s), no user name or password, a host ERPSYNC_CONNECTOR_HOSTS allows, and no internal address unless
        # the list names the host (checked again at every connection, against the address connected to).
        problem = hosts.url_problem(url) or hosts.resolution_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def offer_save_unreachable(self) -> None:
        self.fields["save_unreachable"].widget = forms.CheckboxInput()


class ConnectionForm(forms.ModelForm):
    # The token a passed "Test ERP connection" gave for exactly these configuration values (see services).
    test_token = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = ErpConnection
        fields = ["name", "connector", "description", "visibility", "everyone_can_connect", "everyone_can_create"]
        widgets = {"visibility": forms.RadioSelect, "description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        connector = cast(forms.ModelChoiceField, self.fields["connector"])
        connector.queryset = SyncConnector.objects.all()
        connector.empty_label = None
        if self.instance.pk:
            # The connector of a saved connection cannot change: the connector holds its configuration.
            self.fields["connector"].disabled = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if ErpConnection.objects.filter(name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("An ERP connection with this name already exists."))
        return name


class RunTestForm(forms.Form):
    """*Test ERP connection* pressed as the connection form's own submit button (a browser without JavaScript)."""

    run_test = forms.BooleanField(required=False)

    def wanted(self) -> bool:
        return self.is_valid() and self.cleaned_data["run_test"]


class ConnectorChoiceForm(forms.Form):
    """The Sync Connector a new connection is defined with, as the connection form's drop-down sends it."""

    connector = forms.ModelChoiceField(queryset=SyncConnector.objects.all(), required=False)

    def chosen(self) -> SyncConnector | None:
        return self.cleaned_data.get("connector") if self.is_valid() else None


def offered_users() -> QuerySet[Any]:
    """The users an admin may pick (to grant a connection to): active people, never django-guardian's anonymous
    user, which stands for visitors who are not logged in."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(username=guardian_settings.ANONYMOUS_USER_NAME)
        .order_by("username")
    )


def principal_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    groups = [(f"g:{g.pk}", str(g)) for g in Group.objects.order_by("name")]
    users = [(f"u:{u.pk}", f"{u.get_full_name() or u.username} ({u.username})") for u in offered_users()]
    return [(str(_("Groups")), groups), (str(_("Users")), users)]


class GrantForm(forms.Form):
    principal = forms.ChoiceField(label=_("User or group"), required=False)
    can_connect = forms.BooleanField(label=_("May connect/disconnect"), required=False)
    can_create = forms.BooleanField(label=_("May create in ERP"), required=False)

    def __init__(self, *args: Any, choices: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["principal"]).choices = [("", "—"), *(choices or [])]
        self.names = {value: str(label) for _group, options in choices or [] for value, label in options}

    def principal_label(self) -> str:
        """The name of the user or group this row grants to, as the picker lists it ("" for an empty row)."""
        return self.names.get(str(self["principal"].value() or ""), "")

    def principal_object(self) -> Any:
        value = self.cleaned_data.get("principal") or ""
        kind, _sep, pk = value.partition(":")
        model = Group if kind == "g" else get_user_model()
        return model.objects.get(pk=pk)


class BaseGrantFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        seen = set()
        for form in self.forms:
            value = form.cleaned_data.get("principal") if hasattr(form, "cleaned_data") else None
            if value and not form.cleaned_data.get("DELETE"):
                if value in seen:
                    raise forms.ValidationError(_("Each user or group may be listed once."))
                seen.add(value)

    def grants(self) -> list[Any]:
        return [
            Grant(form.principal_object(), form.cleaned_data["can_connect"], form.cleaned_data["can_create"])
            for form in self.forms
            if form.cleaned_data.get("principal") and not form.cleaned_data.get("DELETE")
        ]


# One extra row: without JavaScript it offers a drop-down to add one user or group per save; the picker adds rows.
GrantFormSet = forms.formset_factory(GrantForm, formset=BaseGrantFormSet, extra=1, can_delete=True, max_num=200)


class LocalNumberField(forms.FloatField):
    """A decimal number typed and shown in the reader's format, as the page beside the form shows it ("50 000,00"
    in Swedish); the protocol's form ("50000.0") is taken too."""

    widget = forms.TextInput
    whole = False

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        attrs.pop("step", None)
        attrs["inputmode"] = "numeric" if self.whole else "decimal"
        return attrs

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return display.format_number(value, decimals=not self.whole)
        return value

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        number = float(value) if isinstance(value, int | float) else display.parse_number(str(value))
        if number is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if self.whole:
            if not number.is_integer():
                raise forms.ValidationError(_("Enter a whole number."), code="invalid")
            return int(number)
        return number


class LocalWholeNumberField(LocalNumberField):
    whole = True
    default_error_messages = {"invalid": _("Enter a whole number.")}


class ConfigForm(forms.Form):
    """The configuration fields a connector asks for (GetConfigData), one widget per field type."""

    prefix = "cfg"

    def __init__(
        self,
        *args: Any,
        fields: list[p.FieldInfo],
        list_items: dict[str, list[p.ListItem]],
        stored_secrets: set[str] = frozenset(),  # type: ignore[assignment]
        locked: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.info = fields
        self.labels: list[p.FieldInfo] = []
        self.stored_secrets = stored_secrets
        for info in fields:
            if info.type == p.FieldType.LABEL:
                self.labels.append(info)
                continue
            field = self._field(info, list_items.get(info.list_name or "", []))
            field.label = display.pick(info.labels, info.label)
            field.help_text = display.pick(info.descriptions, info.description)
            field.disabled = locked or info.access == p.FieldAccess.READ_ONLY
            self.fields[info.key] = field

    def _field(self, info: p.FieldInfo, items: list[p.ListItem]) -> forms.Field:
        required = info.access == p.FieldAccess.MANDATORY and info.type != p.FieldType.CHECKBOX
        initial = info.default
        kind = info.type
        if kind == p.FieldType.CHECKBOX:
            return forms.BooleanField(required=info.access == p.FieldAccess.MANDATORY, initial=bool(initial))
        if kind == p.FieldType.PASSWORD:
            stored = info.key in self.stored_secrets
            widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            if stored:
                widget.attrs["placeholder"] = SECRET_PLACEHOLDER
            return forms.CharField(
                required=required and not stored, widget=widget, max_length=info.max_length or None, strip=False
            )
        if kind == p.FieldType.INTEGER:
            return LocalWholeNumberField(required=required, initial=initial)
        if kind == p.FieldType.DOUBLE:
            return LocalNumberField(required=required, initial=initial)
        if kind == p.FieldType.DECIMAL:
            return forms.DecimalField(
                required=required,
                initial=None if initial is None else p.parse_decimal(initial),
                decimal_places=info.decimal_places,
                max_digits=38,
                localize=True,
            )
        if kind == p.FieldType.LIST:
            choices = [(item.key, display.pick(item.labels, item.text)) for item in items]
            return forms.ChoiceField(required=required, initial=initial, choices=[("", "—"), *choices])
        if kind == p.FieldType.DATE:
            return forms.DateField(
                required=required, initial=initial, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
            )
        if kind == p.FieldType.DATETIME:
            return forms.DateTimeField(
                required=required,
                initial=initial,
                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            )
        return forms.CharField(required=required, initial=initial, max_length=info.max_length or None)

    def wire_values(self, stored: dict[str, p.Value] | None = None) -> dict[str, p.Value]:
        """The cleaned values as protocol values; an empty password keeps the stored secret."""
        stored = stored or {}
        values: dict[str, p.Value] = {}
        for info in self.info:
            if info.key not in self.fields:
                continue
            value = self.cleaned_data.get(info.key)
            if info.type == p.FieldType.PASSWORD and not value and info.key in stored:
                value = stored[info.key]
            values[info.key] = to_wire(value)
        return values

    @staticmethod
    def initial_from(fields: list[p.FieldInfo], config: dict[str, p.Value]) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for info in fields:
            value: Any = config.get(info.key, info.default)
            if info.type == p.FieldType.PASSWORD or value is None:
                continue
            if info.type == p.FieldType.DATE:
                value = date.fromisoformat(str(value))
            elif info.type == p.FieldType.DATETIME:
                value = timezone.localtime(datetime.fromisoformat(str(value)))
            initial[info.key] = value
        return initial


def to_wire(value: Any) -> p.Value:
    if value in ("", None):
        return None
    if isinstance(value, datetime):
        return (value if timezone.is_aware(value) else timezone.make_aware(value)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return p.decimal_value(value)
    return cast(p.Value, value)


class ValuesField(forms.Field):
    """Every non-empty value sent under one name (a multiple select), unchecked: what uses them checks them."""

    widget = forms.SelectMultiple

    def to_python(self, value: Any) -> list[str]:
        return [str(item) for item in value or [] if item]


# The Quote/Sync settings tab


class AutomaticSyncForm(forms.ModelForm):
    """Automatic sync on or off, and how often: the limits are the model's, checked here once."""

    ACTION = "automatic"  # the value of the form's hidden "action" field, which tells it from a priority move

    class Meta:
        model = SyncSettings
        fields = ["automatic_sync", "interval_minutes"]
        error_messages = {
            "interval_minutes": {
                code: _("The interval must be a whole number of minutes from 1 to 1440.")
                for code in ("required", "invalid", "min_value", "max_value")
            }
        }

    @classmethod
    def is_submitted(cls, data: QueryDict) -> bool:
        return data.get("action") == cls.ACTION


class ConnectionAutomaticSyncForm(forms.ModelForm):
    """One connection's automatic sync: on or paused, and its interval (blank: the one of Sync settings)."""

    class Meta:
        model = ErpConnection
        fields = ["automatic_sync", "automatic_interval_minutes"]
        labels = {"automatic_sync": _("Automatic sync of this connection")}
        error_messages = {
            "automatic_interval_minutes": {
                code: _("The interval must be a whole number of minutes from 1 to 1440, or blank.")
                for code in ("invalid", "min_value", "max_value")
            }
        }


class PriorityMoveForm(forms.Form):
    """One step up or down the sync priority for a connection ("connection:<id>") or the CRM ("crm")."""

    entry = forms.CharField(required=False)
    move = forms.CharField(required=False)

    @property
    def up(self) -> bool:
        return self.cleaned_data.get("move") == "up"


# A connection's page


class BulkRunForm(forms.Form):
    """Sync all (the default), Resync from CRM with its one option, a reconciliation, or a sync of the records it
    found drifted."""

    KINDS = (RunKind.RESYNC, RunKind.RECONCILE, RunKind.SYNC_DRIFTED)

    kind = forms.CharField(required=False)
    keep_non_blank = forms.BooleanField(required=False)

    def clean_kind(self) -> str:
        kind = self.cleaned_data.get("kind")
        return next((known for known in self.KINDS if known == kind), RunKind.SYNC_ALL)


class UndoScopeForm(forms.Form):
    """What of a run to undo: all of it, one record (its link), or one field of one record."""

    link = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        error_messages={code: _("No such record in this run.") for code in ("invalid", "min_value", "max_value")},
    )
    field = forms.CharField(required=False, max_length=100)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("field") and not data.get("link"):
            raise forms.ValidationError(_("A field is undone on one record: name the record too."))
        return data


class ActorTypesForm(forms.Form):
    """Which of the connection's actor types sync; the ones not ticked do not."""

    sync = ValuesField(required=False)  # a type the connection does not have is not there to turn on


class ActivationForm(forms.Form):
    """Activate ("1") or deactivate a connection, then go back to the page it was pressed on. Deactivating a
    connection that is active takes ``confirm`` ("1"), sent from the confirmation page."""

    active = forms.CharField(required=False)
    next = forms.CharField(required=False)
    confirm = forms.CharField(required=False)

    def clean_confirm(self) -> bool:
        return self.cleaned_data.get("confirm") == "1"

    def clean_active(self) -> bool:
        return self.cleaned_data.get("active") == "1"


class FailedRecordsForm(forms.Form):
    """Retry or dismiss one failed record (``link``), every record failing with one ``error``, or all of them."""

    action = forms.ChoiceField(choices=[("retry", "retry"), ("dismiss", "dismiss")], required=False)
    link = forms.IntegerField(required=False, min_value=0)
    error = forms.CharField(required=False, strip=False)
    reason = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("action") == "dismiss" and not cleaned.get("reason"):
            raise forms.ValidationError(_("Say why the failure can be dismissed."))
        return cleaned

    def chosen(self, failed: QuerySet[Link]) -> QuerySet[Link]:
        """The failed records the buttons pressed are about."""
        if self.cleaned_data.get("link") is not None:
            return failed.filter(pk=self.cleaned_data["link"])
        if self.cleaned_data.get("error"):
            return failed.filter(last_error=self.cleaned_data["error"])
        return failed


# Field mapping


class FieldMappingForm(forms.Form):
    """One actor type's mapping tab: per ERP field its CRM field, direction and where it shows."""

    sync_enabled = forms.BooleanField(required=False)

    def __init__(self, *args: Any, erp_fields: list[ErpField], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.erp_fields = erp_fields
        for field in erp_fields:
            self.fields[f"crm-{field.key}"] = forms.CharField(required=False)
            self.fields[f"dir-{field.key}"] = forms.CharField(required=False)
            self.fields[f"search-{field.key}"] = forms.BooleanField(required=False)
            self.fields[f"tab-{field.key}"] = forms.BooleanField(required=False)
            self.fields[f"hold-{field.key}"] = forms.BooleanField(required=False)

    def rows(self) -> list[FieldRow]:
        """The submitted rows; the mapping rules are checked when they are saved."""
        return [
            FieldRow(
                key=field.key,
                crm_field=self.cleaned_data[f"crm-{field.key}"],
                direction=self.cleaned_data[f"dir-{field.key}"],
                show_in_search=self.cleaned_data[f"search-{field.key}"],
                show_in_tab=self.cleaned_data[f"tab-{field.key}"],
                hold_conflicts=self.cleaned_data[f"hold-{field.key}"],
            )
            for field in self.erp_fields
        ]


class ResolveConflictForm(forms.Form):
    """Which value wins a held conflict: the CRM's, the ERP's, or one typed (checked by the field's converter)."""

    choice = forms.ChoiceField(
        choices=HeldConflict.Choice.choices,
        error_messages={
            "required": _("Choose the CRM value, the ERP value or an edited value."),
            "invalid_choice": _("Choose the CRM value, the ERP value or an edited value."),
        },
    )
    value = forms.CharField(required=False, strip=False, max_length=4000)


class UndecidedDirectionsForm(forms.Form):
    """One direction for every mapped field of an actor type that has none yet."""

    direction = forms.ChoiceField(
        choices=Direction.choices,
        error_messages={"required": _("Choose a direction."), "invalid_choice": _("Choose a direction.")},
    )


class FieldRankForm(forms.Form):
    """Move one ERP field up or down the order the ERP tab shows fields in."""

    key = forms.CharField(required=False)
    move = forms.CharField(required=False)

    @property
    def up(self) -> bool:
        return self.cleaned_data.get("move") == "up"


class ListMappingForm(forms.Form):
    """Which CRM list item stands for each ERP list item; "Match by name" asks for suggestions instead."""

    match = forms.BooleanField(required=False)

    def __init__(self, *args: Any, erp_items: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.erp_items = erp_items
        for erp_key, _text in erp_items:
            # Anything but a CRM item's id means "not mapped", as the empty choice does.
            self.fields[f"item-{erp_key}"] = forms.CharField(required=False)

    def chosen(self) -> dict[str, int | None]:
        values = {erp_key: self.cleaned_data[f"item-{erp_key}"] for erp_key, _text in self.erp_items}
        return {erp_key: int(raw) if raw.isdigit() else None for erp_key, raw in values.items()}


class DefaultFlagsForm(forms.Form):
    """Per default value: ask the user for it when creating in the ERP, and whether it is mandatory."""

    def __init__(self, *args: Any, erp_fields: list[ErpField], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in erp_fields:
            self.fields[f"ask-{field.key}"] = forms.BooleanField(required=False)
            self.fields[f"mandatory-{field.key}"] = forms.BooleanField(required=False)

    def flags(self, field: ErpField) -> tuple[bool, bool]:
        """(ask the user, mandatory); a field the ERP marks mandatory stays mandatory."""
        mandatory = self.cleaned_data[f"mandatory-{field.key}"] or field.access == p.FieldAccess.MANDATORY
        return self.cleaned_data[f"ask-{field.key}"], mandatory


# Searching the ERP: typed criteria (advanced search, Import from ERP)


class CriteriaForm(forms.Form):
    """The advanced search's criteria: per searchable field an operator and one or two values (a list field:
    the items chosen). Valid when every filled-in criterion is, and at least one is filled in."""

    def __init__(self, *args: Any, rows: list[Criterion], empty_message: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rows = rows
        self.empty_message = empty_message
        self.restrictions: list[p.Restriction] = []
        for row in rows:
            key = row.field.key
            self.fields[f"op-{key}"] = forms.CharField(required=False)
            if row.widget == "list":
                self.fields[f"v-{key}"] = ValuesField(required=False)
            else:
                self.fields[f"v-{key}"] = forms.CharField(required=False)
            self.fields[f"v2-{key}"] = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for row in self.rows:
            key = row.field.key
            row.operator = cleaned.get(f"op-{key}") or row.operator
            value = cleaned.get(f"v-{key}")
            row.chosen = value if isinstance(value, list) else []
            row.value = value if isinstance(value, str) else ""
            row.value2 = cleaned.get(f"v2-{key}") or ""
        self.restrictions = restrictions_from(self.rows)
        if any(row.error for row in self.rows):
            raise forms.ValidationError("")  # each criterion shows its own error
        if not self.restrictions:
            raise forms.ValidationError(self.empty_message)
        return cleaned

    @property
    def error_message(self) -> str:
        """What the form says above the criteria: empty when the criteria say it themselves."""
        return next((str(error) for error in self.non_field_errors() if error), "")


# The ERP tab


class RecordKindForm(forms.Form):
    """Which kind of CRM record an ERP tab action is about; the record's id is in the URL."""

    kind = forms.ChoiceField(choices=[("company", "company"), ("contact", "contact"), ("project", "project")])


class CardRecordForm(RecordKindForm):
    """The record whose ERP tab card polls a run: the card is answered again when the run ends, even if its link
    was removed meanwhile."""

    record = forms.IntegerField(min_value=1)


class ErpSearchForm(forms.Form):
    """The ERP tab's search: by name (``q``), or advanced (``advanced``) in one actor type, run with ``run``."""

    q = forms.CharField(required=False)
    advanced = forms.BooleanField(required=False)
    actor_type = forms.CharField(required=False)
    run = forms.BooleanField(required=False)


class ConnectChoiceForm(forms.Form):
    """An actor picked to link to; with ``confirm``, the side the user chose for each value that differs."""

    CHOICE_PREFIX = "choice-"

    actor_type = forms.CharField(required=False)
    key = forms.CharField(required=False, strip=False)
    confirm = forms.BooleanField(required=False)

    def choices(self) -> dict[str, str]:
        """ERP field key → "crm" or "erp", from the radio buttons named ``choice-<key>``."""
        return {
            name.removeprefix(self.CHOICE_PREFIX): str(self.data.get(name, ""))
            for name in self.data
            if name.startswith(self.CHOICE_PREFIX)
        }


class ActorTypeForm(forms.Form):
    """The actor type Create in ERP makes (the first offered when none is chosen)."""

    actor_type = forms.CharField(required=False)


# Import from ERP


class ImportSearchForm(forms.Form):
    """The import page's choice of connection and actor type, and ``run`` once the criteria are filled in."""

    connection = forms.ModelChoiceField(queryset=ErpConnection.objects.none(), required=False)
    actor_type = forms.CharField(required=False)
    run = forms.BooleanField(required=False)

    def __init__(self, *args: Any, connections: QuerySet[ErpConnection], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["connection"]).queryset = connections


class ImportPreviewForm(forms.Form):
    """Prepare a plan: the actors ticked in the search result (``key``), or every actor of the type."""

    connection = forms.ModelChoiceField(queryset=ErpConnection.objects.none())
    actor_type = forms.CharField(required=False)
    key = ValuesField(required=False)
    scope = forms.CharField(required=False)
    description = forms.CharField(required=False, strip=False)

    def __init__(self, *args: Any, connections: QuerySet[ErpConnection], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["connection"]).queryset = connections

    @property
    def everything(self) -> bool:
        return self.cleaned_data.get("scope") == "all"


class ImportRowForm(forms.Form):
    """One decision on one row of a plan: tick or untick it (``included``), or what Import does (``action``:
    create, skip, "link:<record id>", or empty for undecided). What is not sent stays as it is."""

    action = forms.CharField(required=False)
    included = forms.CharField(required=False)

    def clean_included(self) -> bool | None:
        return self.cleaned_data.get("included") == "on" if "included" in self.data else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        choice = cleaned.get("action") if "action" in self.data else None
        cleaned["target"] = None
        if choice and choice.startswith("link:"):
            raw = choice.removeprefix("link:")
            choice, cleaned["target"] = ImportAction.LINK, int(raw) if raw.isdigit() else None
        cleaned["action"] = choice
        return cleaned


class ImportActionForm(forms.Form):
    """The plan's and the result's buttons: import, retry, prepare again, and bulk decisions on a kind of row."""

    action = forms.CharField(required=False)
    kind = forms.CharField(required=False)


class PlanActionForm(forms.Form):
    """A plan's buttons: approve (and run), discard, or plan again."""

    action = forms.CharField(required=False)
