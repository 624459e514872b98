"""Liveness, readiness and metrics: the endpoints ops tools call."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import health, metrics
from .permissions import MetricsAccess, forbidden_text, may_see_health_detail, metrics_access

HEALTH_JSON = "application/health+json"


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    """Liveness, for docker-compose and orchestrators: the web process answers.

    It reads nothing, so that a database outage does not get healthy web processes restarted; readiness
    (``/health/ready/``) checks what serving needs.
    """
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database, the broker and a worker are fine, else 503.

    Admins, allow-listed networks and holders of the metrics token see every check, connectors included;
    anyone else gets the status alone, and the connectors are not called for them.
    """
    detail = may_see_health_detail(
        request.user, request.META.get("REMOTE_ADDR"), request.META.get("HTTP_AUTHORIZATION")
    )
    report = health.readiness(include_connectors=detail, language=get_language() or "en")
    return JsonResponse(
        report.as_json(detail=detail),
        status=503 if report.status == health.Status.FAIL else 200,
        content_type=HEALTH_JSON,
        json_dumps_params={"ensure_ascii": False},
    )


@never_cache
@require_safe
def prometheus(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper holding the token or on an allowed network (404 while neither is set)."""
    access = metrics_access(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_AUTHORIZATION"))
    if access is MetricsAccess.DISABLED:
        raise Http404
    if access is MetricsAccess.FORBIDDEN:
        response = HttpResponseForbidden(forbidden_text() + "\n", content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = "Bearer"
        return response
    body, content_type = metrics.exposition(request.META.get("HTTP_ACCEPT"), include_database=True)
    return HttpResponse(body, content_type=content_type)
