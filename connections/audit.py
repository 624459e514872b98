"""The audit trail: who changed which connector, connection or sync setting, and what."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from connectors.models import SyncConnector

from . import said
from .choices import AuditAction
from .models import AuditEntry, ErpConnection


def audit(user: Any, action: AuditAction, subject: Any, detail: str | said.Message = "") -> None:
    """Record who did what. ``detail`` names what changed, never values of secrets: a message (``said``) is kept
    so that each admin reads it in their own language, a text as it is."""
    message = detail if isinstance(detail, dict) else None
    text = (said.render(message) if message is not None else str(detail))[:2000]
    AuditEntry.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        connector=subject if isinstance(subject, SyncConnector) else None,
        connection=subject if isinstance(subject, ErpConnection) else None,
        subject=str(subject)[:200] if subject is not None else _("Sync settings"),
        action=action,
        detail=text,
        detail_said=said.kept(text, message),
    )
