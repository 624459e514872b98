"""Registered Sync Connectors."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from urllib.parse import urlsplit

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from erpsync_admin import crypto

from . import hosts
from .client import ConnectorClient, Timeouts


class LiveConnectorManager(models.Manager["SyncConnector"]):
    def get_queryset(self) -> models.QuerySet[SyncConnector]:
        return super().get_queryset().filter(deleted_at__isnull=True)


class SyncConnector(models.Model):
    """A Sync Connector: a service at ``url`` that speaks the connector protocol for one kind of ERP."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True, editable=False)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    last_check_ok = models.BooleanField(_("answering"), null=True, editable=False)
    last_check_message = models.TextField(blank=True, editable=False)

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

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def client(self) -> ConnectorClient:
        """This connector's client, shared within the process so that connections stay pooled.

        Its calls are refused, with the reason, while ERPSYNC_CONNECTOR_HOSTS does not allow the URL.
        """
        return _client_for(self)


_clients: dict[tuple[int, str, str, int], ConnectorClient] = {}
_clients_lock = threading.Lock()


def _client_for(connector: SyncConnector) -> ConnectorClient:
    from django.conf import settings

    # Keyed on what the client is built from: an edited URL or secret gets a new client.
    limit = int(settings.ERPSYNC_JOB_TIMEOUT)
    identity = (connector.pk, connector.url, hashlib.sha256(connector.secret_encrypted.encode()).hexdigest(), limit)
    with _clients_lock:
        client = _clients.get(identity)
        if client is None:
            for stale in [key for key in _clients if key[0] == connector.pk]:
                _clients.pop(stale).close()
            # Jobs wait longer than pages do, but never forever: ERPSYNC_JOB_TIMEOUT bounds each whole answer.
            timeouts = Timeouts(connect=min(5.0, limit), read=min(30.0, limit), total=limit)
            client = _clients[identity] = ConnectorClient(
                connector.url, connector.secret, timeouts=timeouts, refusal=hosts.url_problem
            )
        return client
