"""Forms of the Sync tab: connectors, connections, visibility grants, and the connector-defined configuration."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connectors import hosts
from connectors import protocol as p
from connectors.models import SyncConnector

from .models import ErpConnection

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
        help_text=_("The secret the connector was started with; at least 16 characters."),
    )
    save_unreachable = forms.BooleanField(
        label=_("Save it anyway; I will start the connector later"), required=False, widget=forms.HiddenInput
    )

    class Meta:
        model = SyncConnector
        fields = ["name", "url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["secret"].required = False
            self.fields["secret"].widget.attrs["placeholder"] = SECRET_PLACEHOLDER
            self.fields["secret"].help_text = _("Leave empty to keep the stored secret.")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = SyncConnector.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("A Sync Connector with this name already exists."))
        return name

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].rstrip("/")
        problem = hosts.url_problem(url)  # http(s), no user name or password, a host ERPSYNC_CONNECTOR_HOSTS allows
        if problem:
            raise forms.ValidationError(problem)
        return url

    def offer_save_unreachable(self) -> None:
        self.fields["save_unreachable"].widget = forms.CheckboxInput()


class ConnectionForm(forms.ModelForm):
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


def principal_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    groups = [(f"g:{g.pk}", str(g)) for g in Group.objects.order_by("name")]
    users = [
        (f"u:{u.pk}", f"{u.get_full_name() or u.username} ({u.username})")
        for u in get_user_model().objects.filter(is_active=True).order_by("username")
    ]
    return [(str(_("Groups")), groups), (str(_("Users")), users)]


class GrantForm(forms.Form):
    principal = forms.ChoiceField(label=_("User or group"), required=False)
    can_connect = forms.BooleanField(label=_("May connect/disconnect"), required=False)
    can_create = forms.BooleanField(label=_("May create in ERP"), required=False)

    def __init__(self, *args: Any, choices: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["principal"]).choices = [("", "—"), *(choices or [])]

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
        from .services import Grant

        return [
            Grant(form.principal_object(), form.cleaned_data["can_connect"], form.cleaned_data["can_create"])
            for form in self.forms
            if form.cleaned_data.get("principal") and not form.cleaned_data.get("DELETE")
        ]


GrantFormSet = forms.formset_factory(GrantForm, formset=BaseGrantFormSet, extra=2, can_delete=True, max_num=200)


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
            field.label = info.label
            field.help_text = info.description
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
            return forms.CharField(required=required and not stored, widget=widget, max_length=info.max_length or None,
                                   strip=False)  # fmt: skip
        if kind == p.FieldType.INTEGER:
            return forms.IntegerField(required=required, initial=initial)
        if kind == p.FieldType.DOUBLE:
            return forms.FloatField(required=required, initial=initial)
        if kind == p.FieldType.LIST:
            choices = [(item.key, item.text) for item in items]
            return forms.ChoiceField(required=required, initial=initial, choices=[("", "—"), *choices])
        if kind == p.FieldType.DATE:
            return forms.DateField(required=required, initial=initial,
                                   widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))  # fmt: skip
        if kind == p.FieldType.DATETIME:
            return forms.DateTimeField(required=required, initial=initial,
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))  # fmt: skip
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
    return cast(p.Value, value)
