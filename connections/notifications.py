"""Syncing within seconds of a change (protocol v1.1, capability ``change_notifications``).

A Sync Connector that names the capability is given a notify URL with SaveConnection and calls it, signed with its
shared secret, when actors change in the ERP: ``receive`` checks the call and queues an automatic run of each
connection named (``jobs.queue_soon``: debounced, one run at a time, one more after a run that was going on). A
linked CRM record saved by anyone but a sync (the edit form, the Django admin) queues a Sync now of its links the
same way (``record_saved``). Both act only while automatic sync is on: with it off, nothing syncs unless someone
asks. Polling (the automatic sync's interval) goes on as the safety net.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from pydantic import ValidationError

from connectors import protocol as p
from connectors.models import SyncConnector

from . import jobs
from .choices import MARKED_STATUSES
from .models import ErpConnection, Link, NotificationNonce

log = logging.getLogger(__name__)

# The window a connector's notifications are counted in (ERPSYNC_NOTIFY_RATE_LIMIT is per this many seconds).
RATE_WINDOW_SECONDS = 60
NONCE_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, as every nonce the SDK and the CRM make


def explained(text: str | Promise) -> dict[str, str]:
    """A message in both languages, for an answer read by a connector's log rather than one person."""
    texts = {}
    for language in ("en", "sv"):
        with translation.override(language):
            texts[language] = str(text)
    return texts


@dataclass
class Refused(Exception):
    """A notification refused: the HTTP status, the protocol's error code, why (for people and for logs)."""

    status: int
    code: p.ErrorCode
    message: str | Promise
    technical: str = ""
    retry_after: float | None = None

    def envelope(self) -> p.Envelope:
        return p.Envelope(
            ok=False,
            state=p.State.ERROR,
            error_code=self.code,
            user_explanation=explained(self.message),
            technical_explanation=self.technical,
            retry_after=self.retry_after,
        )


def unauthorized(message: str | Promise, technical: str) -> Refused:
    return Refused(401, p.ErrorCode.UNAUTHORIZED, message, technical)


def check_signed(headers: dict[str, str]) -> None:
    """Refuse at once a call that carries no signature: no session or cookie stands in for one."""
    if not all(headers.get(name) for name in (p.HEADER_TIMESTAMP, p.HEADER_NONCE, p.HEADER_SIGNATURE)):
        raise unauthorized(_("The notification is not signed."), "signature headers missing")


def check_size(length_header: str) -> int:
    """The body's length from its Content-Length, refused when missing or over the limit."""
    if not length_header.isdigit():
        raise Refused(
            400, p.ErrorCode.INVALID_REQUEST, _("The notification needs a Content-Length."), "no Content-Length"
        )
    length = int(length_header)
    if length > p.MAX_NOTIFICATION_BYTES:
        raise Refused(
            413,
            p.ErrorCode.PAYLOAD_TOO_LARGE,
            _("The notification is too large."),
            f"{length} bytes; the limit is {p.MAX_NOTIFICATION_BYTES}",
        )
    return length


def verify(connector: SyncConnector, paths: list[str], headers: dict[str, str], body: bytes) -> str:
    """Check the signature as a connector checks the CRM's (docs/connector-protocol.md, Authentication): the
    timestamp within the tolerance, the HMAC over the method, the path, the timestamp, the nonce and the body's
    hash, with the connector's secret (or, while it is rotated, the next one; a key id names which). Answers the
    nonce; it is not yet recorded (``accept_nonce``)."""
    timestamp = headers.get(p.HEADER_TIMESTAMP, "")
    nonce = headers.get(p.HEADER_NONCE, "")
    given = headers.get(p.HEADER_SIGNATURE, "")
    if not (timestamp and nonce and given):
        raise unauthorized(_("The notification is not signed."), "signature headers missing")
    if not timestamp.isdigit() or abs(timezone.now().timestamp() - int(timestamp)) > p.SIGNATURE_TOLERANCE_SECONDS:
        raise unauthorized(
            _("The notification is too old or its clock is wrong."),
            f"timestamp {timestamp[:20]!r} is more than {p.SIGNATURE_TOLERANCE_SECONDS} s from the CRM's clock",
        )
    if not NONCE_PATTERN.match(nonce):
        raise unauthorized(_("The notification's nonce is not valid."), "nonce: 1 to 128 printable characters")
    secrets: dict[str, str] = {connector.key_id: connector.secret}
    if connector.next_secret_encrypted:
        secrets[connector.next_key_id] = connector.next_secret
    key_id = headers.get(p.HEADER_KEY_ID, "")
    if key_id:
        if key_id not in secrets:
            raise unauthorized(
                _("The notification was signed with a key the CRM does not hold for this connector."),
                f"unknown key id {key_id[:64]!r}",
            )
        candidates = [secrets[key_id]]
    else:
        candidates = list(secrets.values())
    matched = False
    for secret in candidates:
        for path in paths:
            expected = p.signature(secret, "POST", path, timestamp, nonce, body)
            matched = hmac.compare_digest(expected, given) or matched
    if not matched:
        raise unauthorized(_("The notification's signature is wrong: check the shared secret."), "bad signature")
    return nonce


def accept_nonce(connector: SyncConnector, nonce: str) -> None:
    """Record the nonce, kept twice the clock tolerance in the database every web process shares; one already
    recorded is a replay. Nonces past their time are deleted on the way."""
    now = timezone.now()
    NotificationNonce.objects.filter(connector=connector, keep_until__lt=now).delete()
    try:
        with transaction.atomic():
            NotificationNonce.objects.create(
                connector=connector,
                nonce=nonce,
                received_at=now,
                keep_until=now + timedelta(seconds=p.NONCE_RETENTION_SECONDS),
            )
    except IntegrityError:
        raise unauthorized(_("The notification was already received."), "replayed nonce") from None


def check_rate(connector: SyncConnector) -> None:
    """At most ERPSYNC_NOTIFY_RATE_LIMIT notifications of a connector in a minute (this one counted)."""
    now = timezone.now()
    window = NotificationNonce.objects.filter(
        connector=connector, received_at__gt=now - timedelta(seconds=RATE_WINDOW_SECONDS)
    )
    limit = settings.ERPSYNC_NOTIFY_RATE_LIMIT
    if window.count() <= limit:
        return
    oldest = window.aggregate(oldest=Min("received_at"))["oldest"] or now
    wait = max(1.0, RATE_WINDOW_SECONDS - (now - oldest).total_seconds())
    raise Refused(
        429,
        p.ErrorCode.RATE_LIMITED,
        _("Too many change notifications; send the next one later."),
        f"more than {limit} notifications in {RATE_WINDOW_SECONDS} s",
        retry_after=round(wait, 1),
    )


def parse(body: bytes) -> p.ChangeNotification:
    try:
        return p.ChangeNotification.model_validate_json(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Refused(
            400, p.ErrorCode.INVALID_REQUEST, _("The notification is not valid."), f"{where}: {first['msg']}"
        ) from e


def receive(connector: SyncConnector, paths: list[str], headers: dict[str, str], body: bytes) -> p.NotificationData:
    """A change notification from ``connector``, checked in order: signature, nonce, rate, body; then each
    connection named is synced soon, or ignored with the reason. Raises Refused, having queued nothing."""
    nonce = verify(connector, paths, headers, body)
    accept_nonce(connector, nonce)
    check_rate(connector)
    return take(connector, parse(body))


def take(connector: SyncConnector, notification: p.ChangeNotification) -> p.NotificationData:
    """Queue an automatic run (debounced, coalesced) for each connection of ``connector`` the notification names,
    unless it is not this connector's, not active or tested, automatic sync is off, or none of the actor types
    named is synced."""
    named: dict[str, set[str] | None] = {}
    for change in notification.changes:
        types = {t.value for t in change.actor_types} if change.actor_types else None
        before = named.get(change.connection_id, set())
        named[change.connection_id] = None if types is None or before is None else before | types
    connections = {str(c.guid): c for c in ErpConnection.objects.filter(connector=connector, guid__in=list(named))}
    automatic = jobs.automatic_sync_on()
    accepted: list[str] = []
    ignored: list[p.IgnoredChange] = []
    for connection_id, types in named.items():
        connection = connections.get(connection_id)
        reason: p.IgnoreReason | None = None
        if connection is None:
            reason = p.IgnoreReason.UNKNOWN_CONNECTION
        elif jobs.sync_refusal(connection):
            reason = p.IgnoreReason.INACTIVE
        elif not automatic or not connection.automatic_sync:
            reason = p.IgnoreReason.AUTOMATIC_SYNC_OFF
        elif not connection.actor_types.filter(sync_enabled=True, **({"actor_type__in": types} if types else {})):
            reason = p.IgnoreReason.NOT_SYNCED
        if reason is not None:
            ignored.append(p.IgnoredChange(connection_id=connection_id, reason=reason))
            continue
        assert connection is not None
        jobs.queue_soon(connection)
        accepted.append(connection_id)
    return p.NotificationData(accepted=accepted, ignored=ignored)


# A linked CRM record saved


def record_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """post_save of a company, contact or project: once the save commits, Sync now of its links, debounced, unless
    the save is a run's own (a sync or an import writing the CRM: no loop), a fixture being loaded, or
    ERPSYNC_SYNC_ON_SAVE is off (then saved records wait for the automatic sync's next round)."""
    if raw or jobs.in_a_run() or instance.pk is None or not settings.ERPSYNC_SYNC_ON_SAVE:
        return
    attribute = Link.attribute_for(instance)
    pk = instance.pk
    transaction.on_commit(lambda: sync_links_of(attribute, pk))


def sync_links_of(attribute: str, pk: int) -> int:
    """Queue Sync now, after ERPSYNC_CHANGE_SYNC_DELAY, for the links of a saved record whose connection syncs;
    saves close together make one run per link. Answers how many links were asked for."""
    if not jobs.automatic_sync_on():
        return 0
    links = Link.objects.filter(**{attribute: pk}).exclude(status__in=MARKED_STATUSES).select_related("connection")
    count = 0
    for link in links:
        if jobs.sync_refusal(link.connection) or not link.connection.automatic_sync:
            continue
        if not link.connection.actor_types.filter(actor_type=link.actor_type, sync_enabled=True).exists():
            continue
        jobs.queue_soon(link.connection, link)
        count += 1
    return count
