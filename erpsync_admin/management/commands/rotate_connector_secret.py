"""Rotate a Sync Connector's shared secret without an outage (protocol v1.1, capability key_ids).

    manage.py rotate_connector_secret "Demo ERP" add --key-id 2026-05 [--secret-file FILE]
    (give the connector the same secret and key id as its second secret, restart it)
    manage.py rotate_connector_secret "Demo ERP" activate
    (remove the old secret from the connector)

``status`` shows where a rotation is; ``cancel`` forgets a next secret that was never activated.
docs/operations.md, "Rotating keys", is the whole procedure.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from connections import services
from connections.audit import audit
from connections.choices import AuditAction
from connectors import protocol as p
from connectors.client import ConnectorError
from connectors.models import SyncConnector

MIN_SECRET_LENGTH = 16


class Command(BaseCommand):
    help = (
        "Rotate a Sync Connector's shared secret with no outage: 'add' keeps a next secret under a new key id, "
        "'activate' signs with it once the connector accepts it, 'cancel' forgets it, 'status' shows where it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("connector", help="the Sync Connector's name (any case) or id")
        parser.add_argument("action", choices=["status", "add", "activate", "cancel"])
        parser.add_argument("--key-id", help="add: the new secret's key id, e.g. 2026-05 (letters, digits, . _ -)")
        parser.add_argument(
            "--secret-file",
            type=Path,
            help="add: a file holding the new secret (at least 16 characters); without it one is generated "
            "and printed once",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connector = self._connector(options["connector"])
        action = options["action"]
        if action == "status":
            self._status(connector)
        elif action == "add":
            self._add(connector, options.get("key_id") or "", options.get("secret_file"))
        elif action == "activate":
            self._activate(connector)
        else:
            self._cancel(connector)

    @staticmethod
    def _connector(given: str) -> SyncConnector:
        query = Q(name__iexact=given) | (Q(pk=int(given)) if given.isdigit() else Q())
        found = list(SyncConnector.objects.filter(query))
        if len(found) != 1:
            names = ", ".join(sorted(SyncConnector.objects.values_list("name", flat=True))) or "none"
            raise CommandError(f"No Sync Connector {given!r}. The Sync Connectors are: {names}.")
        return found[0]

    def _status(self, connector: SyncConnector) -> None:
        current = connector.key_id or "(none: requests name no key id)"
        self.stdout.write(f"{connector.name}: signs with key id {current}")
        if connector.next_secret_encrypted:
            self.stdout.write(
                f"Next secret kept under key id {connector.next_key_id}: give it to the connector, then run 'activate'."
            )
        else:
            self.stdout.write("No rotation under way.")
        supported = "names" if connector.supports(p.Capability.KEY_IDS) else "does not name"
        self.stdout.write(f"The connector {supported} the capability key_ids (as of its last check).")

    def _add(self, connector: SyncConnector, key_id: str, secret_file: Path | None) -> None:
        if not key_id:
            raise CommandError("Give the new secret's key id with --key-id, e.g. --key-id 2026-05.")
        if not re.match(p.KEY_ID_PATTERN, key_id):
            raise CommandError(f"{key_id!r} is not a key id: use 1 to 64 letters, digits, '.', '_' or '-'.")
        if key_id == connector.key_id:
            raise CommandError(f"The current secret already has key id {key_id!r}: choose another one.")
        if connector.next_secret_encrypted:
            raise CommandError(
                f"A next secret is already kept under key id {connector.next_key_id!r}: 'activate' or 'cancel' it "
                "first."
            )
        check = services.inspect_connector(connector.url, connector.secret, key_id=connector.key_id)
        if check.health is not None and not check.health.supports(p.Capability.KEY_IDS):
            raise CommandError(
                f"{connector.name} does not name the capability key_ids in its health answer, so it cannot hold two "
                "secrets at once. Change the secret on the connector and on the Sync tab together instead."
            )
        generated = secret_file is None
        if secret_file is not None:
            try:
                secret = secret_file.read_text().strip()
            except OSError as error:
                raise CommandError(f"Cannot read {secret_file}: {error.strerror}. Nothing was changed.") from None
            if len(secret) < MIN_SECRET_LENGTH:
                raise CommandError(f"The new secret needs at least {MIN_SECRET_LENGTH} characters.")
        else:
            secret = secrets.token_urlsafe(32)
        with transaction.atomic():
            locked = SyncConnector.objects.select_for_update().get(pk=connector.pk)
            locked.stage_next_secret(secret, key_id)
            locked.save(update_fields=["next_secret_encrypted", "next_key_id", "updated_at"])
            audit(
                None,
                AuditAction.CHANGED,
                locked,
                _("next shared secret added (key id %(key_id)s)") % {"key_id": key_id},
            )
        if generated:
            self.stdout.write(f"New secret (shown once): {secret}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Kept the next secret under key id {key_id}; the CRM still signs with the current one. Give the "
                f"connector this secret as its second secret with key id {key_id} (--next-secret-file and "
                f"--next-key-id), restart it, then run: manage.py rotate_connector_secret {connector.pk} activate"
            )
        )

    def _activate(self, connector: SyncConnector) -> None:
        if not connector.next_secret_encrypted:
            raise CommandError("No next secret is kept: run 'add' first.")
        # The connector must accept the next key before the CRM signs with it: else every call would be refused.
        try:
            with services.interactive_client(connector.url, connector.next_secret, key_id=connector.next_key_id) as c:
                c.get_config_data()
        except ConnectorError as error:
            problem = services.explain(error)
            raise CommandError(
                f"{connector.name} did not accept the next secret (key id {connector.next_key_id}): {problem.message} "
                "Nothing was changed; the CRM still signs with the current secret."
            ) from None
        with transaction.atomic():
            locked = SyncConnector.objects.select_for_update().get(pk=connector.pk)
            key_id = locked.next_key_id
            locked.promote_next_secret()
            locked.save(
                update_fields=["secret_encrypted", "key_id", "next_secret_encrypted", "next_key_id", "updated_at"]
            )
            audit(
                None,
                AuditAction.CHANGED,
                locked,
                _("shared secret rotated (now key id %(key_id)s)") % {"key_id": key_id},
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"The CRM now signs with key id {key_id}. Processes pick the new secret up with their next call. "
                "Remove the old secret from the connector (keep only the new one, with its key id) and restart it."
            )
        )

    def _cancel(self, connector: SyncConnector) -> None:
        if not connector.next_secret_encrypted:
            self.stdout.write("No next secret is kept; nothing to cancel.")
            return
        key_id = connector.next_key_id
        with transaction.atomic():
            locked = SyncConnector.objects.select_for_update().get(pk=connector.pk)
            locked.next_secret_encrypted, locked.next_key_id = "", ""
            locked.save(update_fields=["next_secret_encrypted", "next_key_id", "updated_at"])
            audit(
                None,
                AuditAction.CHANGED,
                locked,
                _("next shared secret dropped (key id %(key_id)s)") % {"key_id": key_id},
            )
        self.stdout.write(self.style.SUCCESS(f"Forgot the next secret (key id {key_id}); nothing else changed."))
