from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import set_language

from api.v1 import api

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("", include("monitoring.urls")),  # /health/, /health/ready/, /metrics
    path("settings/", views.settings_index, name="settings"),
    path("settings/quote-sync/alerts/", include("alerts.urls")),
    path("settings/quote-sync/", include("connections.urls")),
    path("erp/", include("connections.urls_erp")),
    path("connector-api/", include("connections.urls_connector")),  # called by Sync Connectors, signed
    path("api/v1/", api.urls),  # the automation API: bearer tokens, no session (docs/api.md)
    path("", include("api.urls")),  # the user's API tokens page and the API's docs page
    path("", include("crm.urls")),
    path("django-admin/", admin.site.urls),
]
