"""What Sync Connectors call on the CRM (protocol v1.1): not pages, and no session; each call is signed."""

from django.urls import path

from .views import notify

urlpatterns = [
    path("v1/notify/<int:connector_id>", notify.notify, name="connector-notify"),
]
