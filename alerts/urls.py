from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.AlertsTab.as_view(), name="settings"),
    path("connections/<int:pk>/", views.ConnectionAlertsView.as_view(), name="connection"),
    path("test/", views.TestAlertView.as_view(), name="test"),
]
