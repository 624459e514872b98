from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AdminTextareaWidget
from django.db import models
from django.http import HttpRequest

from .forms import RecordTextForm, record_formfield
from .models import Business, Category, Company, Contact, Country, Position, Project, ProjectType
from .validators import is_multiline


class RecordAdmin(admin.ModelAdmin):
    """Edits a record as the CRM's own forms do: lines in textareas, text fields left alone saved as they were."""

    form = RecordTextForm

    def formfield_for_dbfield(self, db_field: models.Field[Any, Any], request: HttpRequest, **kwargs: Any) -> Any:
        if is_multiline(db_field):
            rows = 5 if isinstance(db_field, models.TextField) else 2
            kwargs.setdefault("widget", AdminTextareaWidget(attrs={"rows": rows}))
            return record_formfield(db_field, **kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Country)
class CountryAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "hidden")
    search_fields = ("name", "code")


@admin.register(Business, Category, Position, ProjectType)
class ListItemAdmin(admin.ModelAdmin):
    list_display = ("name", "rank", "hidden")
    list_editable = ("rank", "hidden")
    search_fields = ("name",)


@admin.register(Company)
class CompanyAdmin(RecordAdmin):
    list_display = ("name", "number2", "postal_city", "country", "updated_at")
    search_fields = ("name", "number1", "number2", "vat_no")
    list_select_related = ("country",)


@admin.register(Contact)
class ContactAdmin(RecordAdmin):
    list_display = ("full_name", "company", "email", "updated_at")
    search_fields = ("first_name", "last_name", "email")
    list_select_related = ("company",)
    raw_id_fields = ("company",)


@admin.register(Project)
class ProjectAdmin(RecordAdmin):
    list_display = ("name", "number", "company", "end_date")
    search_fields = ("name", "number")
    list_select_related = ("company",)
    raw_id_fields = ("company",)
