"""Re-encrypt every stored secret with the newest key, so that older keys can be retired."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connections.models import ErpConnection
from connectors.models import SyncConnector
from erpsync_admin import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt connector secrets and password-type configuration values with the first key of "
        "ERPSYNC_FERNET_KEYS. Put a new key first, run this, then remove the old keys."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        try:
            for connector in SyncConnector.all_objects.select_for_update():
                connector.secret_encrypted = crypto.rotate(connector.secret_encrypted)
                connector.save(update_fields=["secret_encrypted"])
                count += 1
            for connection in ErpConnection.objects.select_for_update():
                connection.secrets = {key: crypto.rotate(token) for key, token in connection.secrets.items()}
                connection.save(update_fields=["secrets"])
                count += len(connection.secrets)
        except crypto.SecretUnreadable as error:
            raise CommandError(f"{error} Nothing was changed.") from None
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secrets with the newest key."))
