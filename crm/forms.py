"""Create and edit forms for CRM records."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db import models
from django.db.models import Q

from .models import Company, Contact, ListItem, Project
from .validators import is_multiline

LINE_BREAK = re.compile(r"\r\n|\r|\n")


class MultilineField(forms.CharField):
    """Text of several lines, edited in a textarea. Browsers send a textarea's line breaks as CRLF; they are kept
    as LF, as the ERP sends them, and count as one character each against the field's length."""

    widget = forms.Textarea

    def __init__(self, *, wide: bool = False, **kwargs: Any) -> None:
        self.wide = wide  # shown across the whole form: free text rather than an address line
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        return LINE_BREAK.sub("\n", text) if isinstance(text, str) else text


def record_formfield(model_field: models.Field[Any, Any], **kwargs: Any) -> forms.Field | None:
    """The form field of a record's model field: a textarea wherever the model says the value may hold lines."""
    if is_multiline(model_field):
        text = isinstance(model_field, models.TextField)
        kwargs.setdefault("form_class", MultilineField)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 5 if text else 2}))
        kwargs.setdefault("wide", text)
    return model_field.formfield(**kwargs)


def as_sent_back(value: str, widget: forms.Widget) -> str:
    """What a browser submits for ``value`` shown in ``widget`` and left alone: a textarea's line breaks as CRLF, a
    one-line input's dropped."""
    if isinstance(widget, forms.Textarea):
        return LINE_BREAK.sub("\r\n", value)
    return value.replace("\r", "").replace("\n", "")


class RecordTextForm(forms.ModelForm):
    """Any form of a CRM record, the Django admin's included: fields of several lines are textareas, and a text field
    the user left alone keeps its value to the byte, though the browser sent it back with other line breaks or the
    field would trim it. Saving a change to the phone must not rewrite the address."""

    class Meta:
        formfield_callback = staticmethod(record_formfield)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name, form_field in self.fields.items():
            initial = self.initial.get(name)
            # E-mail and web addresses are left to their own fields' rules, which tidy them on every save.
            if type(form_field) not in (forms.CharField, MultilineField) or not isinstance(initial, str):
                continue
            if name in cleaned and self[name].data == as_sent_back(initial, form_field.widget):
                cleaned[name] = initial  # what the browser was shown, sent back untouched
        return cleaned


class RecordForm(RecordTextForm):
    """Offers only visible list items, plus the record's current one so that editing never loses it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, form_field in self.fields.items():
            if not isinstance(form_field, forms.ModelChoiceField):
                continue
            model = form_field.queryset.model if form_field.queryset is not None else None
            if model is not None and issubclass(model, ListItem):
                current = getattr(self.instance, f"{name}_id", None)
                form_field.queryset = model._default_manager.filter(Q(hidden=False) | Q(pk=current))


class CompanyForm(RecordForm):
    class Meta(RecordForm.Meta):
        model = Company
        fields = [
            "name",
            "department",
            "number1",
            "number2",
            "category",
            "business",
            "phone",
            "fax",
            "email",
            "url",
            "vat_no",
            "credit_limit",
            "postal_address1",
            "postal_address2",
            "postal_address3",
            "postal_zip",
            "postal_city",
            "postal_county",
            "postal_state",
            "country",
            "street_address1",
            "street_address2",
            "street_address3",
            "street_zip",
            "street_city",
            "street_county",
            "street_state",
        ]


class ContactForm(RecordForm):
    class Meta(RecordForm.Meta):
        model = Contact
        fields = [
            "company",
            "first_name",
            "middle_name",
            "last_name",
            "title",
            "position",
            "number",
            "email",
            "phone_direct",
            "phone_mobile",
            "phone_private",
            "phone_other",
            "url",
            "birth_date",
            "postal_address1",
            "postal_address2",
            "postal_address3",
            "postal_zip",
            "postal_city",
            "postal_county",
            "postal_state",
            "postal_country",
        ]
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}


class ProjectForm(RecordForm):
    class Meta(RecordForm.Meta):
        model = Project
        fields = ["company", "name", "number", "project_type", "end_date", "url", "text"]
        widgets = {"end_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}
