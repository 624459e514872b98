"""Re-encrypt every stored secret with the newest key, so that older keys can be retired."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from alerts.models import AlertSettings
from connections.models import ErpConnection
from connectors.models import SyncConnector
from core import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt connector secrets, password-type configuration values and the alert webhook with the first key of "
        "ERPSYNC_FERNET_KEYS. Put a new key first, run this, then remove the old keys."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        try:
            for connector in SyncConnector.all_objects.select_for_update():
                connector.secret_encrypted = crypto.rotate(connector.secret_encrypted)
                if connector.next_secret_encrypted:  # a second secret kept while the shared secret is rotated
                    connector.next_secret_encrypted = crypto.rotate(connector.next_secret_encrypted)
                    count += 1
                connector.save(update_fields=["secret_encrypted", "next_secret_encrypted"])
                count += 1
            for connection in ErpConnection.all_objects.select_for_update():
                connection.secrets = {key: crypto.rotate(token) for key, token in connection.secrets.items()}
                connection.save(update_fields=["secrets"])
                count += len(connection.secrets)
            for alert_settings in AlertSettings.objects.select_for_update().exclude(webhook_url_encrypted=""):
                alert_settings.webhook_url_encrypted = crypto.rotate(alert_settings.webhook_url_encrypted)
                alert_settings.save(update_fields=["webhook_url_encrypted"])
                count += 1
        except crypto.SecretUnreadable as error:
            raise CommandError(f"{error} Nothing was changed.") from None
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secrets with the newest key."))
