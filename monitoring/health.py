"""Readiness: the checks behind ``/health/ready/``, in the shape of the IETF health-check draft.

The database, the broker and a recent worker heartbeat decide whether the service is ready; each active
connector is reported apart, as "warn" at worst, because a single ERP being down does not make the web
process unfit to serve. See draft-inadarei-api-health-check for the JSON shape.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from celery import current_app as celery_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from kombu import Connection
from sqlalchemy import func, select

from connections.models import WorkerHeartbeat, heartbeat_stale_after
from connections.services import explain
from connectors import hosts
from connectors.client import ConnectorClient, ConnectorError, Timeouts
from connectors.models import SyncConnector
from core.crypto import SecretUnreadable

# Bounds on what a readiness answer may wait for, so that a probe with a few seconds' timeout gets an answer
# even when the broker or a connector hangs: checks run at the same time, each stopped at its bound.
BROKER_TIMEOUT = 2.0
CONNECTOR_TIMEOUT = 2.0
# Threads that outlive their bound are abandoned, not awaited: this much slack covers thread start-up.
SLACK = 0.5


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105  (a status word, not a password)
    WARN = "warn"
    FAIL = "fail"


@dataclass
class Check:
    """One measurement of one component: an entry of the draft's "checks" object, under ``key``."""

    key: str  # "component:measurement", e.g. "database:responseTime"
    status: Status
    component_type: str
    component_id: str = ""
    observed_value: float | None = None
    observed_unit: str = ""
    output: str = ""
    time: datetime = field(default_factory=timezone.now)

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"componentType": self.component_type, "status": self.status.value}
        if self.component_id:
            entry["componentId"] = self.component_id
        if self.observed_value is not None:
            entry["observedValue"] = self.observed_value
            entry["observedUnit"] = self.observed_unit
        if self.output:
            entry["output"] = self.output
        entry["time"] = self.time.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return entry


@dataclass
class Readiness:
    """The outcome of every check; ``status`` is the worst of them."""

    checks: list[Check]

    @property
    def status(self) -> Status:
        statuses = {check.status for check in self.checks}
        if Status.FAIL in statuses:
            return Status.FAIL
        return Status.WARN if Status.WARN in statuses else Status.PASS

    def as_json(self, detail: bool) -> dict[str, Any]:
        """The answer's body: only the status unless ``detail``; never a secret either way."""
        body: dict[str, Any] = {"status": self.status.value}
        if detail:
            grouped: dict[str, list[dict[str, Any]]] = {}
            for check in self.checks:
                grouped.setdefault(check.key, []).append(check.as_json())
            body["checks"] = grouped
        return body


def readiness(*, include_connectors: bool, language: str = "en") -> Readiness:
    """Check the database, the broker and the workers (and the active connectors when asked) at the same time."""
    # Not a `with` block: leaving one waits for every thread, and a hung broker or connector must not hold the answer.
    pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="readiness")
    try:
        broker = pool.submit(_in_language, language, check_broker, BROKER_TIMEOUT)
        checks = [check_database()]
        connectors: dict[str, Future[Check]] = {}
        if checks[0].status == Status.PASS:
            checks.extend(check_workers())
            if include_connectors:
                connectors = {
                    target.name: pool.submit(
                        _in_language, language, partial(check_connector, target), CONNECTOR_TIMEOUT
                    )
                    for target in active_connectors()
                }
        else:
            checks.append(
                Check(
                    "workers:heartbeat",
                    Status.FAIL,
                    "component",
                    output=_("Unknown: the database, where workers report, cannot be read."),
                )
            )
        deadline = time.monotonic() + max(BROKER_TIMEOUT, CONNECTOR_TIMEOUT) + SLACK
        pending: list[Future[Check]] = [broker, *connectors.values()]
        wait(pending, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        # Threads still waiting on a hung broker or connector end at their own timeouts; nobody waits for them.
        pool.shutdown(wait=False, cancel_futures=True)
    if _finished(broker):
        checks.append(broker.result())
    else:
        output = _("The broker did not answer within %(seconds)s s.") % {"seconds": f"{BROKER_TIMEOUT:g}"}
        checks.append(Check("broker:responseTime", Status.FAIL, "component", output=output))
    for name, future in connectors.items():
        if _finished(future):
            checks.append(future.result())
        else:
            output = _("The connector did not answer within %(seconds)s s.") % {"seconds": f"{CONNECTOR_TIMEOUT:g}"}
            checks.append(Check("connectors:reachability", Status.WARN, "component", component_id=name, output=output))
    return Readiness(checks)


def _finished(future: Future[Check]) -> bool:
    return future.done() and not future.cancelled()


def _in_language(language: str, check: Callable[[float], Check], timeout: float) -> Check:
    """Run ``check`` in another thread with the request's language, in which its output is written."""
    with translation.override(language):
        return check(timeout)


def check_database() -> Check:
    """One round trip to the database: the web process can read and write nothing without it."""
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return Check(
            "database:responseTime",
            Status.FAIL,
            "datastore",
            output=_("The database cannot be reached: %(error)s") % {"error": without_secrets(error)},
        )
    return Check(
        "database:responseTime", Status.PASS, "datastore", observed_value=_milliseconds(started), observed_unit="ms"
    )


def check_broker(timeout: float) -> Check:
    """A real connection to CELERY_BROKER_URL, and one read over it: jobs cannot be queued without the broker."""
    started = time.monotonic()
    options: dict[str, Any] = {}
    if settings.CELERY_BROKER_URL.startswith("redis"):
        options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    try:
        # A connection of its own, not the app's pool: a probe must not wait for, or spoil, the producers' connections.
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options) as conn:
            conn.ensure_connection(max_retries=0)  # one try: a probe does not wait for a broker to come back
            waiting = messages_waiting(conn)
    except Exception as error:  # kombu raises whatever its transport's driver raises
        return Check(
            "broker:responseTime",
            Status.FAIL,
            "component",
            output=_("The broker cannot be reached: %(error)s") % {"error": without_secrets(error)},
        )
    return Check(
        "broker:responseTime",
        Status.PASS,
        "component",
        observed_value=_milliseconds(started),
        observed_unit="ms",
        output=ngettext("%(count)s message waiting", "%(count)s messages waiting", waiting) % {"count": waiting},
    )


def messages_waiting(conn: Connection) -> int:
    """The messages waiting in the broker, read without writing anything.

    kombu's public ``queue_declare`` would do, but on the embedded broker it creates the queue's row, and two
    processes doing that at once make one fail; so each transport is read its own way.
    """
    channel: Any = conn.default_channel
    if conn.transport.driver_type == "redis":
        # Opening the channel has already sent PING; this reads the default queue's lists (one per priority).
        return int(channel._size(celery_app.conf.task_default_queue))
    # The embedded broker (kombu's SQLAlchemy transport): read its message table, every queue at once. A Core
    # query on the table, not one through kombu's ORM classes, whose mapper set-up SQLAlchemy warns about.
    messages = channel.message_cls.__table__
    session = channel.session
    try:
        return int(session.execute(select(func.count()).select_from(messages).where(messages.c.visible)).scalar_one())
    finally:
        session.close()  # an open read transaction would hold SQLite's lock against the producers


def check_workers() -> list[Check]:
    """A worker heartbeat within three heartbeat intervals, as the Sync tab judges it (WorkerHeartbeat.is_alive)."""
    now = timezone.now()
    workers = list(WorkerHeartbeat.objects.order_by("-last_seen")[:20])
    alive = [worker for worker in workers if worker.is_alive]
    stale_after = int(heartbeat_stale_after().total_seconds())
    if alive:
        return [
            Check(
                "workers:heartbeat",
                Status.PASS,
                "component",
                component_id=worker.hostname,
                observed_value=round((now - worker.last_seen).total_seconds(), 1),
                observed_unit="s",
                time=worker.last_seen,
            )
            for worker in alive
        ]
    if not workers:
        output = _("No worker has ever reported. Start a worker, and beat for its heartbeats.")
    else:
        output = _("No worker has reported for %(age)s s; a worker counts as gone after %(limit)s s.") % {
            "age": int((now - workers[0].last_seen).total_seconds()),
            "limit": stale_after,
        }
    newest = workers[0] if workers else None
    return [
        Check(
            "workers:heartbeat",
            Status.FAIL,
            "component",
            component_id=newest.hostname if newest else "",
            observed_value=round((now - newest.last_seen).total_seconds(), 1) if newest else None,
            observed_unit="s",
            output=output,
        )
    ]


@dataclass(frozen=True)
class ConnectorTarget:
    """A Sync Connector to call, read in the request's thread (the calls run in others)."""

    name: str
    url: str
    secret: str | None  # None when the stored secret cannot be decrypted


def active_connectors() -> list[ConnectorTarget]:
    """The live Sync Connectors that an active connection uses."""
    targets = []
    for connector in SyncConnector.objects.filter(connections__is_active=True).distinct().order_by("name"):
        try:
            secret: str | None = connector.secret
        except SecretUnreadable:
            secret = None
        targets.append(ConnectorTarget(connector.name, connector.url, secret))
    return targets


def check_connector(target: ConnectorTarget, timeout: float) -> Check:
    """GetConfigData, as the Sync tab's Check does: the connector answers and accepts the shared secret, and the
    ERP behind it is not asked anything. A failure is a warning: one ERP down does not make the service unready."""
    if target.secret is None:
        return Check(
            "connectors:reachability",
            Status.WARN,
            "component",
            component_id=target.name,
            output=_(
                "Its shared secret cannot be decrypted with ERPSYNC_FERNET_KEYS; add back the key it was saved with."
            ),
        )
    timeouts = Timeouts(connect=min(1.0, timeout), read=timeout, total=timeout)
    language = translation.get_language() or "en"
    with ConnectorClient(
        target.url,
        target.secret,
        timeouts=timeouts,
        language=language,
        refusal=hosts.url_problem,
        address_refusal=hosts.address_problem,
    ) as client:
        try:
            client.get_config_data()
        except ConnectorError as error:
            return Check(
                "connectors:reachability",
                Status.WARN,
                "component",
                component_id=target.name,
                output=explain(error, language).message,
            )
    return Check("connectors:reachability", Status.PASS, "component", component_id=target.name)


def without_secrets(error: BaseException) -> str:
    """The first line of an error's message, with the database and broker passwords blanked should a driver
    quote its URL or settings."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    passwords = [str(db.get("PASSWORD") or "") for db in settings.DATABASES.values()]
    passwords.append(urlsplit(settings.CELERY_BROKER_URL).password or "")
    for password in passwords:
        if password:
            text = text.replace(password, "********")
    return text


def _milliseconds(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
