"""System checks shown by runserver, migrate and ``manage.py check``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security)
def check_development_secrets(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if getattr(settings, "ERPSYNC_FERNET_KEYS_FROM_DEV_FILE", False):
        return [
            Warning(
                "Connector secrets are encrypted with a development key generated under var/.",
                hint="Set ERPSYNC_FERNET_KEYS to your own key(s) before storing real passwords.",
                id="erpsync.W001",
            )
        ]
    return []
