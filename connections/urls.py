from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "connections"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="connections:sync"), name="quote-sync"),
    path("sync/", views.SyncTab.as_view(), name="sync"),
    path("workers/", views.WorkersTab.as_view(), name="workers"),
]
