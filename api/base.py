"""What every route of the API shares: the bearer-token authentication with its rate limit, the permission checks
the pages make, and errors as JSON (``{"code", "message"}``, the message in the request's language)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from connections.models import ErpConnection, ErpConnectionQuerySet
from connections.permissions import can_manage_erp_sync, has_erp_licence

from . import tokens
from .models import ApiToken, Scope


class ApiError(Exception):
    """An answer other than success: its status, a stable code for scripts, and a message for people."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class Error(Schema):
    code: str
    message: str


class BearerToken(HttpBearer):
    """``Authorization: Bearer esk_…``; a session is not enough (so no CSRF token is asked for either)."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.find(token.strip())
        if found is None:
            return None
        allowance = tokens.count_request(found)
        if not allowance.allowed:
            raise RateLimited(allowance.retry_after)
        request.user = found.user
        return found


def token_of(request: HttpRequest) -> ApiToken:
    return request.auth  # type: ignore[attr-defined]  # set by BearerToken


def require_licence(request: HttpRequest) -> None:
    """The ERP tab's rule: the ERP sync licence (or the admin right)."""
    user = request.user
    if not (has_erp_licence(user) or can_manage_erp_sync(user)):
        raise ApiError(403, "no_licence", _("You do not have the ERP sync licence."))


def require_admin(request: HttpRequest) -> None:
    """The Quote/Sync pages' rule: ERP sync administrators only."""
    if not can_manage_erp_sync(request.user):
        raise ApiError(403, "not_admin", _("Only ERP sync administrators may do this."))


def require_write(request: HttpRequest) -> None:
    if token_of(request).scope != Scope.WRITE:
        raise ApiError(
            403, "read_only_token", _("This token may only read; create a read-write token to change things.")
        )


def connections_for(request: HttpRequest, *, as_admin: bool = False) -> ErpConnectionQuerySet:
    """The connections the user may see, as the pages decide: an admin's pages list every one."""
    return ErpConnection.objects.visible_to(request.user, as_admin=as_admin and can_manage_erp_sync(request.user))


def not_found() -> ApiError:
    return ApiError(404, "not_found", _("There is no such object, or you may not see it."))


def error_response(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, **extra: Any
) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message, **extra}, status=status)


def install_handlers(api: NinjaAPI) -> None:
    """Every refusal as ``{"code", "message"}``; none of them a 500."""

    def api_error(request: HttpRequest, exc: Any) -> HttpResponse:
        return error_response(api, request, exc.status, exc.code, exc.message, **exc.extra)

    def unauthorized(request: HttpRequest, exc: Any) -> HttpResponse:
        response = error_response(
            api,
            request,
            401,
            "unauthorized",
            _("Send a valid API token: Authorization: Bearer <token>. It may have been revoked or have expired."),
        )
        response["WWW-Authenticate"] = 'Bearer realm="erpsync"'
        return response

    def rate_limited(request: HttpRequest, exc: Any) -> HttpResponse:
        message = _("Too many requests with this token; try again in %(seconds)s seconds.") % {
            "seconds": exc.retry_after
        }
        response = error_response(api, request, 429, "rate_limited", message)
        response["Retry-After"] = str(exc.retry_after)
        return response

    def invalid(request: HttpRequest, exc: Any) -> HttpResponse:
        details = [
            {"location": [str(part) for part in error.get("loc", ())], "problem": str(error.get("msg", ""))}
            for error in exc.errors
        ]
        return error_response(
            api, request, 400, "invalid", _("The request is not valid; see details."), details=details
        )

    def out_of_range(request: HttpRequest, exc: Any) -> HttpResponse:
        if isinstance(exc, DataError) and getattr(exc.__cause__, "sqlstate", None) != "22003":
            raise exc  # another database error is not bad input
        return error_response(api, request, 400, "invalid", _("A number is too large."))

    def missing(request: HttpRequest, exc: Any) -> HttpResponse:
        error = not_found()
        return error_response(api, request, error.status, error.code, error.message)

    def denied(request: HttpRequest, exc: Any) -> HttpResponse:
        return error_response(api, request, 403, "forbidden", _("You may not do this."))

    def http_error(request: HttpRequest, exc: Any) -> HttpResponse:
        codes = {405: "method_not_allowed", 400: "bad_request"}
        return error_response(
            api, request, exc.status_code, codes.get(exc.status_code, "error"), _("The request is not valid.")
        )

    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(AuthenticationError, unauthorized)
    api.add_exception_handler(RateLimited, rate_limited)
    api.add_exception_handler(ValidationError, invalid)
    api.add_exception_handler(Http404, missing)
    api.add_exception_handler(PermissionDenied, denied)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(OverflowError, out_of_range)
    api.add_exception_handler(DataError, out_of_range)
