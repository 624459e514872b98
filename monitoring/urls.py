"""Included at the root without a namespace: "health" is the name docker-compose's checks and the tests know."""

from django.urls import path

from . import views

urlpatterns = [
    path("health/", views.live, name="health"),
    path("health/ready/", views.ready, name="health-ready"),
    path("metrics", views.prometheus, name="metrics"),
]
