"""Registered Sync Connectors."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from urllib.parse import urlsplit

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from core import crypto

from . import hosts
from .client import ConnectorClient, Timeouts
from .protocol import Capability


class LiveConnectorManager(models.Manager["SyncConnector"]):
    def get_queryset(self) -> models.QuerySet[SyncConnector]:
        return super().get_queryset().filter(deleted_at__isnull=True)


class SyncConnector(models.Model):
    """A Sync Connector: a service at ``url`` that speaks the connector protocol for one kind of ERP."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    secret_encrypted = models.TextField(editable=False)
    # Protocol v1.1, key_ids: the key id the CRM names when it signs with the secret ("" for none), and a second
    # ("next") secret with its key id while the secret is rotated (manage.py rotate_connector_secret).
    key_id = models.CharField(_("key id"), max_length=64, blank=True, default="", editable=False)
    next_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    next_key_id = models.CharField(_("next key id"), max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True, editable=False)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    last_check_ok = models.BooleanField(_("answering"), null=True, editable=False)
    last_check_message = models.TextField(blank=True, editable=False)
    # From the connector's health answer at the last check: the CRM sends v1.1 fields only for what it names.
    protocol_version = models.CharField(_("protocol version"), max_length=20, default="1", editable=False)
    capabilities = models.JSONField(_("capabilities"), default=list, blank=True, editable=False)
    max_parallel_parts = models.PositiveSmallIntegerField(
        _("parts worked on at once"),
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text=_(
            "Bulk work (Sync all, Resync from CRM, automatic sync) is split into parts that workers take on "
            "side by side. At most this many parts of this connector's connections are worked on at once, each "
            "making one call at a time, so the ERP gets at most this many calls at once from bulk work."
        ),
    )

    objects = LiveConnectorManager()
    all_objects = models.Manager()  # noqa: DJ012  (a manager, not a field)

    class Meta:
        verbose_name = _("Sync Connector")
        verbose_name_plural = _("Sync Connectors")
        ordering = ["name"]
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(
                Lower("name"), condition=models.Q(deleted_at__isnull=True), name="connectors_live_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @property
    def unencrypted(self) -> bool:
        """Calls go over plain http to another machine: configuration values (API keys) cross the network as
        they are. Signing proves who sent a call; it does not hide it."""
        parts = urlsplit(self.url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "http" or host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True  # a host name other than localhost

    @property
    def capability_set(self) -> frozenset[str]:
        return frozenset(str(name) for name in self.capabilities or ())

    def supports(self, capability: Capability) -> bool:
        """The connector named ``capability`` (protocol v1.1) in its health answer when it was last checked."""
        return capability.value in self.capability_set

    def set_secret(self, secret: str, key_id: str = "") -> None:
        """Sign with ``secret`` from now on, naming ``key_id`` (or no key id); a rotation under way is dropped."""
        self.secret_encrypted = crypto.encrypt(secret)
        self.key_id = key_id
        self.next_secret_encrypted = ""
        self.next_key_id = ""

    @property
    def next_secret(self) -> str:
        return crypto.decrypt(self.next_secret_encrypted) if self.next_secret_encrypted else ""

    def stage_next_secret(self, secret: str, key_id: str) -> None:
        """Keep ``secret`` as the next one, under ``key_id``; the CRM goes on signing with the current one."""
        self.next_secret_encrypted = crypto.encrypt(secret)
        self.next_key_id = key_id

    def promote_next_secret(self) -> None:
        """Sign with the next secret and its key id from now on; the old secret is forgotten."""
        if not self.next_secret_encrypted:
            raise ValueError("no next secret to sign with")
        self.secret_encrypted, self.key_id = self.next_secret_encrypted, self.next_key_id
        self.next_secret_encrypted, self.next_key_id = "", ""

    @property
    def notify_url(self) -> str:
        """Where this connector sends change notifications (protocol v1.1), as connectors reach the app
        (ERPSYNC_PUBLIC_URL); "" when no such address is set, and connectors are then not asked to notify."""
        from django.conf import settings
        from django.urls import reverse

        base = settings.ERPSYNC_PUBLIC_URL
        if not base or self.pk is None:
            return ""
        return base + reverse("connector-notify", args=[self.pk])

    def client(self) -> ConnectorClient:
        """This connector's client, shared within the process so that connections stay pooled.

        Its calls are refused, with the reason, while ERPSYNC_CONNECTOR_HOSTS does not allow the URL.
        """
        return _client_for(self)


_clients: dict[tuple[int, str, str, str, int, frozenset[str], str], ConnectorClient] = {}
_clients_lock = threading.Lock()


def _client_for(connector: SyncConnector) -> ConnectorClient:
    from django.conf import settings

    # Keyed on what the client is built from: an edited URL or secret gets a new client.
    limit = int(settings.ERPSYNC_JOB_TIMEOUT)
    identity = (
        connector.pk,
        connector.url,
        hashlib.sha256(connector.secret_encrypted.encode()).hexdigest(),
        connector.key_id,
        limit,
        connector.capability_set,
        connector.notify_url,
    )
    with _clients_lock:
        client = _clients.get(identity)
        if client is None:
            for stale in [key for key in _clients if key[0] == connector.pk]:
                _clients.pop(stale).close()
            # Jobs wait longer than pages do, but never forever: ERPSYNC_JOB_TIMEOUT bounds each whole answer.
            timeouts = Timeouts(connect=min(5.0, limit), read=min(30.0, limit), total=limit)
            client = _clients[identity] = ConnectorClient(
                connector.url,
                connector.secret,
                timeouts=timeouts,
                refusal=hosts.url_problem,
                address_refusal=hosts.address_problem,
                capabilities=connector.capability_set,
                key_id=connector.key_id,
                notify_url=identity[-1],
            )
        return client
