"""Create and edit forms for CRM records."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q

from .models import Company, Contact, ListItem, Project


class RecordForm(forms.ModelForm):
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
    class Meta:
        model = Company
        fields = [
            "name", "department", "number1", "number2", "category", "business",
            "phone", "fax", "email", "url", "vat_no",
            "postal_address1", "postal_address2", "postal_address3", "postal_zip", "postal_city",
            "postal_county", "postal_state", "country",
            "street_address1", "street_address2", "street_address3", "street_zip", "street_city",
            "street_county", "street_state",
        ]  # fmt: skip


class ContactForm(RecordForm):
    class Meta:
        model = Contact
        fields = [
            "company", "first_name", "middle_name", "last_name", "title", "position", "number",
            "email", "phone_direct", "phone_mobile", "phone_private", "phone_other", "url", "birth_date",
            "postal_address1", "postal_address2", "postal_address3", "postal_zip", "postal_city",
            "postal_county", "postal_state", "postal_country",
        ]  # fmt: skip
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}


class ProjectForm(RecordForm):
    class Meta:
        model = Project
        fields = ["company", "name", "number", "project_type", "end_date", "url", "text"]
        widgets = {
            "end_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "text": forms.Textarea(attrs={"rows": 5}),
        }
