from django.contrib import admin

from .models import Business, Category, Company, Contact, Country, Position, Project, ProjectType


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
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "number2", "postal_city", "country", "updated_at")
    search_fields = ("name", "number1", "number2", "vat_no")
    list_select_related = ("country",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("full_name", "company", "email", "updated_at")
    search_fields = ("first_name", "last_name", "email")
    list_select_related = ("company",)
    raw_id_fields = ("company",)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "number", "company", "end_date")
    search_fields = ("name", "number")
    list_select_related = ("company",)
    raw_id_fields = ("company",)
