from typing import Any

from django.urls import URLPattern, path

from . import views

app_name = "crm"


def record_urls(prefix: str, name: str, list_view: Any, detail: Any, create: Any, update: Any) -> list[URLPattern]:
    return [
        path(f"{prefix}/", list_view.as_view(), name=f"{name}-list"),
        path(f"{prefix}/new/", create.as_view(), name=f"{name}-create"),
        path(f"{prefix}/<int:pk>/", detail.as_view(), name=f"{name}-detail"),
        path(f"{prefix}/<int:pk>/tabs/<slug:tab>/", detail.as_view(), name=f"{name}-tab"),
        path(f"{prefix}/<int:pk>/edit/", update.as_view(), name=f"{name}-edit"),
    ]


urlpatterns = [
    *record_urls(
        "companies", "company", views.CompanyList, views.CompanyDetail, views.CompanyCreate, views.CompanyUpdate
    ),
    *record_urls(
        "contacts", "contact", views.ContactList, views.ContactDetail, views.ContactCreate, views.ContactUpdate
    ),
    *record_urls(
        "projects", "project", views.ProjectList, views.ProjectDetail, views.ProjectCreate, views.ProjectUpdate
    ),
]
