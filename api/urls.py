from django.contrib.auth.decorators import login_required
from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("account/api-tokens/", views.TokensView.as_view(), name="list"),
    path("account/api-tokens/<int:pk>/revoke/", views.RevokeView.as_view(), name="revoke"),
    path("api/v1/docs/", login_required(views.api_docs), name="api-docs"),
]
