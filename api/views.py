"""The user's own API tokens page: create (the token is shown once), list and revoke; and the API's docs page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from ninja.openapi.views import openapi_view

from . import tokens
from .forms import NewTokenForm
from .models import ApiToken
from .v1 import api

SHOW_ONCE = "api-new-token"  # the session key under which a new token waits for the next page


class TokensView(LoginRequiredMixin, View):
    def page(self, request: HttpRequest, form: NewTokenForm, new: str = "", status: int = 200) -> HttpResponse:
        context: dict[str, Any] = {
            "form": form,
            "tokens": ApiToken.objects.filter(user_id=int(request.user.pk or 0)),
            "new_token": new,
            "api_base": request.build_absolute_uri("/api/v1/"),
        }
        return render(request, "api/tokens.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, NewTokenForm(), new=request.session.pop(SHOW_ONCE, ""))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = NewTokenForm(request.POST)
        if not form.is_valid():
            return self.page(request, form, status=400)
        token, raw = tokens.issue(
            request.user, form.cleaned_data["name"], form.cleaned_data["scope"], form.expires_at()
        )
        messages.success(request, _("Created the API token %(name)s.") % {"name": token.name})
        # Post/redirect/get, so that a reload creates no second token: the token rides in the session to the very
        # next page, which takes it out. It is shown there once and is never stored anywhere else.
        request.session[SHOW_ONCE] = raw
        return redirect("tokens:list")


class RevokeView(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        token = get_object_or_404(ApiToken, pk=pk, user_id=int(request.user.pk or 0))
        tokens.revoke(token)
        messages.success(request, _("Revoked the API token %(name)s.") % {"name": token.name})
        return redirect("tokens:list")


def api_docs(request: HttpRequest) -> HttpResponse:
    """The interactive documentation of /api/v1/ (Swagger UI, served from our own static files)."""
    return openapi_view(request, api)
