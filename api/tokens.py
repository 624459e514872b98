"""Issuing, revoking and checking API tokens, and the per-token rate limit.

A token is ``esk_`` followed by 40 random URL-safe characters. Only its SHA-256 is stored: a database copy does not
let anyone call the API. The first 12 characters are kept as they are, to tell tokens apart on the user's page."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .models import ApiToken, Scope

PREFIX = "esk_"
SHOWN = 12  # characters kept in clear: "esk_" and 8 more
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token
WINDOW_SECONDS = 60


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(user: Any, name: str, scope: str = Scope.READ, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``: the row, and the token itself, which is never stored and never shown again."""
    raw = PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.objects.create(
        user=user, name=name, scope=scope, expires_at=expires_at, prefix=raw[:SHOWN], digest=digest(raw)
    )
    return token, raw


def revoke(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def find(raw: str) -> ApiToken | None:
    """The usable token ``raw`` stands for, with its user; None for an unknown, revoked or expired token, or the
    token of a user who can no longer log in."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
    if token is None or not token.usable or not token.user.is_active:
        return None
    return token


@dataclass
class Allowance:
    allowed: bool
    retry_after: int  # seconds until the window ends


def rate_per_minute() -> int:
    return int(getattr(settings, "ERPSYNC_API_RATE_PER_MINUTE", 120))


def count_request(token: ApiToken, now: float | None = None) -> Allowance:
    """Count one request of ``token`` in the current minute; refused past the limit. A fixed window on the token's
    row: one UPDATE per request, the same count in every web process. last_used_at is set on the way."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    moment = timezone.now()
    also: dict[str, Any] = {}
    if token.last_used_at is None or moment - token.last_used_at >= LAST_USED_EVERY:
        also["last_used_at"] = moment
    rows = ApiToken.objects.filter(pk=token.pk, window=window)
    if not rows.update(window_count=F("window_count") + 1, **also):
        started = ApiToken.objects.filter(pk=token.pk).exclude(window=window)
        if not started.update(window=window, window_count=1, **also):
            rows.update(window_count=F("window_count") + 1)  # another request opened this window first
    count = ApiToken.objects.filter(pk=token.pk).values_list("window_count", flat=True).first() or 0
    return Allowance(allowed=count <= rate_per_minute(), retry_after=retry_after)
