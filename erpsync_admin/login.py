"""Login throttling (django-axes): the client address failures are counted by, and the page a locked-out user sees.

Settings name these functions (``AXES_CLIENT_IP_CALLABLE``, ``AXES_LOCKOUT_CALLABLE``); docs/operations.md, *Login
throttling*, explains the choices.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from axes.helpers import (  # type: ignore[import-untyped]  # no type hints shipped
    get_client_username,
    get_cool_off,
    get_failure_limit,
)
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str | None:
    """The address of the client: the connecting one, or behind ``ERPSYNC_TRUSTED_PROXIES`` proxies the one the
    outermost of them saw.

    Each proxy appends the address it was connected from to X-Forwarded-For, so the entry that many places from the
    right is the client's; anything left of it is whatever the client chose to send, and is never read.
    """
    proxies = settings.ERPSYNC_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and _is_address(forwarded[-proxies]):
            return forwarded[-proxies]
    address = request.META.get("REMOTE_ADDR")
    return address if isinstance(address, str) and _is_address(address) else None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """429 with a page in the user's language: who is locked, for how long, and the way back to the log-in form."""
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else 0
    context = {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": get_failure_limit(request, credentials),
        "minutes": minutes,
        # The form the user came from (the app's or Django admin's), with its ?next=.
        "back": request.get_full_path(),
    }
    return render(request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
