"""ERP connections and the jobs that keep CRM and ERP in step."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from guardian.shortcuts import get_objects_for_user

from connectors import protocol as p
from connectors.models import SyncConnector
from core import crypto
from crm.models import Company, Contact, Project

from . import display, said
from .choices import (
    ACTIVE_RUN_STATUSES,
    BULK_RUN_KINDS,
    MARKED_STATUSES,
    AuditAction,
    Direction,
    ImportAction,
    ImportOutcome,
    LinkStatus,
    LogOutcome,
    MatchKind,
    PlanOutcome,
    RunKind,
    RunStatus,
    Visibility,
)


def heartbeat_stale_after() -> timedelta:
    """A worker that has not reported for this long (three missed heartbeats, at least 90 s) is shown as gone."""
    return timedelta(seconds=max(90, 3 * settings.ERPSYNC_HEARTBEAT_SECONDS))


USE_ERP_SYNC = "connections.use_erp_sync"  # the ERP sync user licence
MANAGE_ERP_SYNC = "connections.manage_erp_sync"  # administers connectors, connections and mappings


class ErpSyncAccess(models.Model):
    """Carries the ERP Sync permissions given to users and groups; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_erp_sync", _("ERP sync user licence: sees the ERP tab")),
            ("manage_erp_sync", _("Administers ERP sync: connectors, connections and mappings")),
        ]

    def __str__(self) -> str:
        return "ERP sync access"


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker on one host ran the scheduled heartbeat job."""

    hostname = models.CharField(_("worker"), max_length=200, unique=True)
    last_seen = models.DateTimeField(_("last seen"))
    jobs_run = models.PositiveBigIntegerField(_("heartbeats"), default=0)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_alive(self) -> bool:
        return timezone.now() - self.last_seen < heartbeat_stale_after()


class ErpConnectionQuerySet(models.QuerySet["ErpConnection"]):
    def visible_to(self, user: Any, *, as_admin: bool = False) -> ErpConnectionQuerySet:
        """The connections ``user`` may see: every list and action that uses a connection starts here.

        An end user (the ERP tab and its actions) needs the ERP sync licence, and sees the connections shared
        with everyone plus those granted to them or their groups. With ``as_admin`` (the Quote/Sync pages), an
        ERP sync administrator sees every connection, granted or not: administering them is the point.
        """
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if as_admin:
            return self.all() if user.has_perm(MANAGE_ERP_SYNC) else self.none()
        if not user.has_perm(USE_ERP_SYNC):
            return self.none()
        granted = get_objects_for_user(
            user,
            "connections.view_erpconnection",
            klass=ErpConnection.objects.filter(visibility=Visibility.SPECIFIED),
            accept_global_perms=False,
        )
        return self.filter(models.Q(visibility=Visibility.EVERYONE) | models.Q(pk__in=granted.values("pk")))


class LiveConnectionManager(models.Manager.from_queryset(ErpConnectionQuerySet)):  # type: ignore[misc]
    """The connections in use: a deleted one (waiting in *Deleted connections* to be restored or purged) is hidden
    from every list, page, job and lookup that starts from ``ErpConnection.objects``."""

    def get_queryset(self) -> ErpConnectionQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class ErpConnection(models.Model):
    """An ERP connection: a Sync Connector plus the configuration for one ERP client.

    Non-secret configuration values are in ``config``; password-type values are encrypted, one token
    per field, in ``secrets``. ``config_fields`` is the connector's GetConfigData as last saved.
    """

    guid = models.UUIDField(_("connection id"), unique=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=100)
    connector = models.ForeignKey(
        SyncConnector, verbose_name=_("Sync Connector"), on_delete=models.PROTECT, related_name="connections"
    )
    description = models.TextField(_("description"), blank=True)
    visibility = models.CharField(
        _("visibility"), max_length=20, choices=Visibility.choices, default=Visibility.EVERYONE
    )
    everyone_can_connect = models.BooleanField(_("may connect/disconnect"), default=True)
    everyone_can_create = models.BooleanField(_("may create in ERP"), default=False)
    config = models.JSONField(default=dict, blank=True)
    # Reconciliation runs every night (at ERPSYNC_RECONCILE_HOUR) while on; "Reconcile now" runs it at any time.
    reconcile_nightly = models.BooleanField(_("reconcile every night"), default=True)
    secrets = models.JSONField(default=dict, blank=True)
    config_fields = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=False)
    priority = models.PositiveIntegerField(_("sync priority"), default=100)
    last_test_at = models.DateTimeField(_("last tested"), null=True, blank=True)
    last_test_ok = models.BooleanField(_("last test passed"), null=True)
    last_test_message = models.TextField(blank=True)
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    # The notify URL (protocol v1.1, change_notifications) the connector was last given with SaveConnection; an
    # automatic run gives it again when it differs from the one the CRM has now ("" for none).
    notify_url_sent = models.CharField(max_length=2000, blank=True, default="", editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Automatic sync of this connection: on unless paused, every ``automatic_interval_minutes`` (blank: the
    # interval of Sync settings); the switch of Sync settings turns it off for every connection. Pausing moves no
    # feed cursor, so a resumed connection catches up from where it stopped.
    automatic_sync = models.BooleanField(_("automatic sync"), default=True)
    automatic_interval_minutes = models.PositiveIntegerField(
        _("interval (minutes)"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    last_automatic_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Deleted (soft): kept with its links and log until restored or purged after ERPSYNC_DELETED_CONNECTION_DAYS.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    objects = LiveConnectionManager()
    all_objects = ErpConnectionQuerySet.as_manager()

    class Meta:
        verbose_name = _("ERP connection")
        verbose_name_plural = _("ERP connections")
        ordering = ["name"]
        permissions = [
            ("connect_erpconnection", _("May connect and disconnect CRM records to ERP actors")),
            ("create_in_erp_erpconnection", _("May create new ERP actors")),
        ]
        # Deleted connections keep their links and log where a relation reaches them.
        base_manager_name = "all_objects"
        # A deleted connection frees its name: a new one may take it (restoring then adds a suffix).
        constraints = [
            models.UniqueConstraint(
                Lower("name"), condition=models.Q(deleted_at__isnull=True), name="connections_erpconnection_live_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("connections:connection-detail", args=[self.pk])

    def config_values(self) -> dict[str, Any]:
        """The whole configuration, secrets decrypted: only for sending to the connector."""
        return {**self.config, **{key: crypto.decrypt(token) for key, token in self.secrets.items()}}


class ErpConnectionUserObjectPermission(UserObjectPermissionBase):
    """A user's right on one connection (django-guardian, with a real foreign key so it goes with it)."""

    content_object = models.ForeignKey(ErpConnection, on_delete=models.CASCADE)


class ErpConnectionGroupObjectPermission(GroupObjectPermissionBase):
    """A group's right on one connection."""

    content_object = models.ForeignKey(ErpConnection, on_delete=models.CASCADE)


class ErpActorType(models.Model):
    """An actor type a connection's connector supports, and whether it syncs to the CRM."""

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="actor_types")
    actor_type = models.CharField(_("actor type"), max_length=20)
    sync_enabled = models.BooleanField(_("sync"), default=False)
    # The connector's names of the actor type by language (protocol v1.1, capability "labels").
    labels = models.JSONField(default=dict, blank=True)
    # Where automatic sync resumes: the ERP change feed's cursor, and when CRM changes were last collected.
    feed_cursor = models.CharField(max_length=1000, blank=True)
    crm_changes_since = models.DateTimeField(null=True, blank=True)
    # The sync filter (``connections.filters``): only records meeting every condition sync. CRM list field name →
    # the item ids allowed; and restrictions on searchable ERP fields, as advanced search makes them.
    crm_filter = models.JSONField(default=dict, blank=True)
    erp_filter = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["connection", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "actor_type"], name="connections_actor_type_unique")
        ]

    def __str__(self) -> str:
        return f"{self.connection}: {self.actor_type}"

    @property
    def display_name(self) -> str:
        """The actor type's name in the reader's language, for headings and tabs."""
        return display.actor_type_name(self.actor_type, self.labels)

    @property
    def display_word(self) -> str:
        """The actor type's name inside a sentence."""
        return display.actor_type_word(self.actor_type, self.labels)


class ErpField(models.Model):
    """An ERP field of one actor type, as the connector describes it, and how it maps to the CRM."""

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="erp_fields")
    actor_type = models.CharField(max_length=20)
    key = models.CharField(max_length=100)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The connector's label and description by language (protocol v1.1, capability "labels"); ``label`` and
    # ``description`` are shown for a language they do not have.
    labels = models.JSONField(default=dict, blank=True)
    descriptions = models.JSONField(default=dict, blank=True)
    type = models.CharField(max_length=20)
    list_name = models.CharField(max_length=100, blank=True)
    default = models.JSONField(null=True, blank=True)
    max_length = models.PositiveIntegerField(default=0)
    # Decimal fields (protocol v1.1): the most digits after the point, or None for any.
    decimal_places = models.PositiveSmallIntegerField(null=True, blank=True)
    access = models.CharField(max_length=20)
    searchable = models.BooleanField(default=False)
    missing_in_erp = models.BooleanField(default=False)
    rank = models.PositiveIntegerField(default=0)
    crm_field = models.CharField(max_length=50, blank=True)
    auto_mapped = models.BooleanField(default=False)
    direction = models.CharField(max_length=20, choices=Direction.choices, blank=True)
    # The direction the connector suggests (protocol v1.1, capability "suggested_directions"), or blank.
    suggested_direction = models.CharField(max_length=20, choices=Direction.choices, blank=True)
    show_in_search = models.BooleanField(default=False)
    show_in_tab = models.BooleanField(default=False)
    # A conflict on this (both-ways) field is kept for someone to decide, not decided by sync priority.
    hold_conflicts = models.BooleanField(default=False)

    class Meta:
        ordering = ["connection", "actor_type", "rank", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "actor_type", "key"], name="connections_erp_field_unique")
        ]

    def __str__(self) -> str:
        return f"{self.actor_type}.{self.key}"

    @property
    def display_label(self) -> str:
        """The field's label in the reader's language (the connector's), else the one it gave."""
        return display.pick(self.labels, self.label)

    @property
    def display_description(self) -> str:
        return display.pick(self.descriptions, self.description)

    @property
    def type_name(self) -> str:
        return display.field_type_name(self.type)

    @property
    def access_name(self) -> str:
        return display.access_name(self.access)

    def format(self, value: Any, texts: dict[str, str] | None = None) -> str:
        """A value of this field as people read it (``connections.display.format_value``)."""
        return display.format_value(value, self.type, texts, places=self.decimal_places)

    def field_info(self, access: p.FieldAccess = p.FieldAccess.NORMAL) -> p.FieldInfo:
        """The field as the protocol describes it, for a form that asks for its value."""
        return p.FieldInfo(
            key=self.key,
            label=self.display_label,
            description=self.display_description,
            type=p.FieldType(self.type),
            list_name=self.list_name or None,
            max_length=self.max_length,
            access=access,
            decimal_places=self.decimal_places,
        )


class AuditEntry(models.Model):
    """Who did what to a connector or connection, and when. Names are kept so entries outlive deletions."""

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    connector = models.ForeignKey(SyncConnector, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    connection = models.ForeignKey(
        ErpConnection, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    subject = models.CharField(_("subject"), max_length=200)
    action = models.CharField(_("action"), max_length=20, choices=AuditAction.choices)
    detail = models.TextField(_("detail"), blank=True)
    detail_said = models.JSONField(null=True, blank=True)  # ``detail`` for each reader's language (connections.said)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.subject} {self.action}"

    @property
    def detail_shown(self) -> str:
        """What changed, in the reader's language where it was kept so (older entries: as written)."""
        return said.shown(self.detail, self.detail_said)


class ListMapping(models.Model):
    """One ERP list item of a mapped list field, and the CRM list item it stands for (or none)."""

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="list_mappings")
    actor_type = models.CharField(max_length=20)
    field_key = models.CharField(max_length=100)
    erp_key = models.CharField(max_length=200)
    erp_text = models.CharField(max_length=200)
    # The item's text by language (protocol v1.1, capability "labels"); ``erp_text`` for the others.
    erp_labels = models.JSONField(default=dict, blank=True)
    crm_item_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["connection", "actor_type", "field_key", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "actor_type", "field_key", "erp_key"], name="connections_list_mapping_erp_unique"
            ),
            # One-to-one: a CRM item stands for at most one ERP item of a field.
            models.UniqueConstraint(
                fields=["connection", "actor_type", "field_key", "crm_item_id"],
                condition=models.Q(crm_item_id__isnull=False),
                name="connections_list_mapping_crm_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_type}.{self.field_key}: {self.erp_key} → {self.crm_item_id}"


class FieldDefault(models.Model):
    """What an ERP field gets when a new ERP actor is created from the CRM and no mapped CRM value fills it."""

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="field_defaults")
    actor_type = models.CharField(max_length=20)
    field_key = models.CharField(max_length=100)
    value = models.JSONField(null=True, blank=True)
    ask_user = models.BooleanField(_("ask the user"), default=False)
    mandatory = models.BooleanField(_("mandatory"), default=False)

    class Meta:
        ordering = ["connection", "actor_type", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "actor_type", "field_key"], name="connections_field_default_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.actor_type}.{self.field_key} = {self.value!r}"


class SyncSettings(models.Model):
    """Installation-wide sync settings: one row. The CRM's place in the sync priority is kept here."""

    crm_priority = models.PositiveIntegerField(_("CRM's sync priority"), default=0)
    automatic_sync = models.BooleanField(_("automatic sync"), default=False)
    interval_minutes = models.PositiveIntegerField(
        _("interval (minutes)"), default=15, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    last_automatic_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sync settings")
        verbose_name_plural = _("sync settings")

    def __str__(self) -> str:
        return "Sync settings"

    @classmethod
    def load(cls) -> SyncSettings:
        settings_row, _created = cls.objects.get_or_create(pk=1)
        return settings_row


class Link(models.Model):
    """One CRM record joined to one ERP actor within one connection, with the values both last agreed on.

    ``baseline`` holds every mapped field's value (ERP field key → protocol value) as it was right after
    the last successful sync of this link; the sync rule compares both sides with it.
    """

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="links")
    actor_type = models.CharField(_("actor type"), max_length=20)
    erp_key = models.CharField(_("ERP key"), max_length=200)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, null=True, blank=True, related_name="erp_links")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="erp_links")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="erp_links")
    erp_last_modified = models.DateTimeField(null=True, blank=True)
    baseline = models.JSONField(default=dict, blank=True)
    last_synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=LinkStatus.choices, default=LinkStatus.OK)
    last_error = models.TextField(blank=True)
    # The same failure as a message for each reader's language (connections.said): {"text": last_error, "said": …}.
    last_error_said = models.JSONField(null=True, blank=True)
    # The surviving actor's key, when the change feed said this one was merged into it.
    merged_into = models.CharField(max_length=200, blank=True)
    # How many syncs since met the same failure again: it is logged once, when it first happens.
    repeats = models.PositiveIntegerField(default=0)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.TextField(blank=True)
    # The condition of the sync filter the record did not meet when it was last looked at (None: it syncs); the ERP
    # tab puts it into words (``connections.filters.outside_reason``).
    outside_filter = models.JSONField(null=True, blank=True)
    # What reconciliation, or a sync since, found of the link's mapped fields (DriftState; "": never looked at).
    drift = models.CharField(max_length=20, blank=True, default="")
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection", "pk"]
        indexes = [models.Index(fields=["connection", "drift"], name="connections_link_drift")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(company__isnull=False, contact__isnull=True, project__isnull=True)
                    | models.Q(company__isnull=True, contact__isnull=False, project__isnull=True)
                    | models.Q(company__isnull=True, contact__isnull=True, project__isnull=False)
                ),
                name="connections_link_one_crm_record",
            ),
            # One CRM object per ERP actor, and one link per CRM object, per connection.
            models.UniqueConstraint(fields=["connection", "actor_type", "erp_key"], name="connections_link_erp_unique"),
            models.UniqueConstraint(
                fields=["connection", "company"],
                condition=models.Q(company__isnull=False),
                name="connections_link_company_unique",
            ),
            models.UniqueConstraint(
                fields=["connection", "contact"],
                condition=models.Q(contact__isnull=False),
                name="connections_link_contact_unique",
            ),
            models.UniqueConstraint(
                fields=["connection", "project"],
                condition=models.Q(project__isnull=False),
                name="connections_link_project_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.crm_record} ↔ {self.actor_type} {self.erp_key}"

    @staticmethod
    def attribute_for(record_or_model: Any) -> str:
        """The link column that holds this kind of CRM record: "company", "contact" or "project"."""
        model = record_or_model if isinstance(record_or_model, type) else type(record_or_model)
        if issubclass(model, Contact):
            return "contact"
        return "project" if issubclass(model, Project) else "company"

    @property
    def error_shown(self) -> str:
        """``last_error`` in the reader's language where the worker kept it so (older links: as it was written)."""
        return said.shown(self.last_error, self.last_error_said)

    @property
    def is_marked(self) -> bool:
        """The change feed said the ERP actor was deleted, merged or archived: the link is not synced."""
        return self.status in MARKED_STATUSES

    @property
    def crm_record(self) -> Company | Contact | Project:
        record = self.company or self.contact or self.project
        assert record is not None
        return record


class SyncRun(models.Model):
    """One sync job: written before its Celery task is sent, and the only place pages read its progress.

    At most one run per link, and one bulk run per connection, is queued or running at a time: partial
    unique indexes decide, not the code that queues.
    """

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="runs")
    link = models.ForeignKey(Link, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    kind = models.CharField(_("kind"), max_length=20, choices=RunKind.choices)
    status = models.CharField(_("status"), max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    keep_non_blank = models.BooleanField(_("do not overwrite with blank values"), default=False)
    error = models.TextField(blank=True)
    error_said = models.JSONField(null=True, blank=True)  # ``error`` for each reader's language (connections.said)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the broker could not take the run's task; the sweeper sends it again at its next round.
    send_failed_at = models.DateTimeField(null=True, blank=True)
    # Changes came while the run was running (a connector's notification, a linked record saved): when it ends,
    # one more run of its kind is queued for them (``connections.jobs.queue_soon``).
    again = models.BooleanField(default=False)
    # Back in the queue to wait, not after a failure (Sync now waits for a bulk run to pass its record); ``error``
    # says for what. Cleared when an attempt starts.
    waiting = models.BooleanField(default=False)
    # While running: until when the run is its worker's. The worker renews it as it works; once it has run out,
    # the worker is taken to be gone and the run is taken back (``connections.jobs``).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Where a bulk run goes on from after its worker stopped, committed with each batch (its kind's performer
    # decides the shape; the engine keeps the last link of each actor type it synced).
    checkpoint = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # An undo (kind "undo"): the run whose writes it puts back, and its scope: the whole run, one record (``undo_link``)
    # or one field of one record (and ``undo_field``). ``undo_scope`` spells the scope out ("", "link:12",
    # "link:12:PHONE") for the constraint that lets each scope of a run be undone once (``connections.sync.undo``).
    undoes = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="undos")
    undo_link = models.ForeignKey(Link, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    undo_field = models.CharField(max_length=100, blank=True)
    undo_scope = models.CharField(max_length=200, blank=True)
    # A plan (kind "plan"): the kind of bulk work it plans, Sync all or Resync from CRM (with ``keep_non_blank``).
    planned_kind = models.CharField(max_length=20, choices=RunKind.choices, blank=True)
    # A Sync all or Resync that runs an approved plan: exactly the plan's links and fields (one run per plan).
    plan = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="execution",
        limit_choices_to={"kind": "plan"},
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="connections_run_sweep")]
        constraints = [
            models.UniqueConstraint(
                fields=["link"],
                condition=models.Q(status__in=ACTIVE_RUN_STATUSES, link__isnull=False),
                name="connections_one_active_run_per_link",
            ),
            models.UniqueConstraint(
                fields=["connection"],
                condition=models.Q(status__in=ACTIVE_RUN_STATUSES, kind__in=BULK_RUN_KINDS),
                name="connections_one_active_bulk_run_per_connection",
            ),
            # A failed undo frees its scope, to be tried again; what it did put back is found put back.
            models.UniqueConstraint(
                fields=["undoes", "undo_scope"],
                condition=models.Q(undoes__isnull=False) & ~models.Q(status=RunStatus.FAILED),
                name="connections_undo_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def error_shown(self) -> str:
        """``error`` in the reader's language where the worker kept it so (older runs: as the worker wrote it)."""
        return said.shown(self.error, self.error_said)

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.started_at and self.finished_at else None

    @property
    def progress(self) -> int:
        return 100 if self.total == 0 and self.finished_at else int(100 * self.done / self.total) if self.total else 0

    @property
    def waiting_for(self) -> str:
        """Why a waiting run waits, in the reader's language (``error`` holds it in the worker's)."""
        bulk = SyncRun.objects.filter(
            connection_id=self.connection_id, kind__in=BULK_RUN_KINDS, status__in=ACTIVE_RUN_STATUSES
        ).first()
        if bulk is None:
            return str(_("Waiting for a worker…"))
        return str(_("Waiting for %(run)s, which has still to reach this record.") % {"run": bulk.get_kind_display()})


class SyncChunk(models.Model):
    """One part of a bulk run: a set of links of one actor type that any worker may take and sync on its own.

    A part has the run's lifecycle in small (queued, running under a lease, ended) and its own checkpoint, so a
    part whose worker stopped is taken back and goes on from its last committed batch; the run adds up its
    parts' counts and ends when its last part ends (``connections.sync.parts``)."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    # Parts of a later stage start once every part of the earlier ones has ended (an import's persons and projects
    # after the companies they belong to); a sync's parts are all of stage 0.
    stage = models.PositiveSmallIntegerField(default=0)
    actor_type = models.CharField(max_length=20)
    # The part's links (an import's parts: its plan rows), in the order of their ids; first and last bound them
    # for a quick overlap test.
    link_ids = models.JSONField(default=list)
    first_link_id = models.BigIntegerField()
    last_link_id = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The id of the last link whose batch is committed; the part goes on after it.
    position = models.BigIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    error_said = models.JSONField(null=True, blank=True)  # ``error`` for each reader's language (connections.said)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its task was last sent: a run sends as many parts as its connector takes at once, and each part
    # that ends sends the next.
    sent_at = models.DateTimeField(null=True, blank=True)
    send_failed_at = models.DateTimeField(null=True, blank=True)
    # The worker that last took the part (its hostname and process id), shown to ops.
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["run", "number"]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="connections_chunk_sweep")]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="connections_chunk_number_unique")]

    def __str__(self) -> str:
        return f"part {self.number} of run {self.run_id} ({self.status})"


class PlanRow(models.Model):
    """One field of one record that a plan (a run of kind "plan") found would change: which side, old → new, why.

    Fields that would not change are not kept. Once the plan is approved, its run says what became of each row:
    written, failed, or changed since the plan (then ``now_*`` hold what the rule decided at that moment, and
    nothing was written)."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="plan_rows")
    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="+")
    actor_type = models.CharField(max_length=20)
    erp_key = models.CharField(max_length=200)
    record_name = models.CharField(max_length=300, blank=True)  # the CRM record, as the plan found it
    field_key = models.CharField(max_length=100)
    crm_field = models.CharField(max_length=50, blank=True)
    direction = models.CharField(max_length=20, choices=Direction.choices)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    reason_said = models.JSONField(null=True, blank=True)  # ``reason`` for each reader's language (connections.said)
    outcome = models.CharField(max_length=20, choices=PlanOutcome.choices, blank=True, default="")
    # What the rule decided when the approved run came to the field, where that differs from the plan
    # (blank direction: nothing to change any more).
    now_direction = models.CharField(max_length=20, choices=Direction.choices, blank=True)
    now_old = models.JSONField(null=True, blank=True)
    now_new = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "link", "pk"]
        indexes = [models.Index(fields=["run", "direction"]), models.Index(fields=["run", "outcome"])]

    def __str__(self) -> str:
        return f"{self.erp_key}.{self.field_key}: {self.old!r} → {self.new!r} ({self.direction})"

    @property
    def reason_shown(self) -> str:
        return said.shown(self.reason, self.reason_said)


class SyncLogQuerySet(models.QuerySet["SyncLogEntry"]):
    def for_record(self, record: Any) -> SyncLogQuerySet:
        """The sync log of one CRM record across its links (the record's ERP tab shows it)."""
        attribute = type(record).__name__.lower()
        return self.filter(**{f"link__{attribute}": record}).select_related("run", "connection")


class SyncLogEntry(models.Model):
    """One field of one record in one run: what was written (or skipped, or failed), which way, and why."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="log")
    link = models.ForeignKey(Link, on_delete=models.SET_NULL, null=True, blank=True, related_name="log")
    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="+")
    actor_type = models.CharField(max_length=20)
    erp_key = models.CharField(max_length=200)
    field_key = models.CharField(max_length=100, blank=True)
    crm_field = models.CharField(max_length=50, blank=True)
    direction = models.CharField(max_length=20, choices=Direction.choices, blank=True)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=LogOutcome.choices)
    reason = models.TextField(blank=True)
    reason_said = models.JSONField(null=True, blank=True)  # ``reason`` for each reader's language (connections.said)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = SyncLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["connection", "-at"]), models.Index(fields=["link", "-at"])]

    def __str__(self) -> str:
        return f"{self.erp_key}.{self.field_key}: {self.old!r} → {self.new!r} ({self.outcome})"

    @property
    def reason_shown(self) -> str:
        """Why, in the reader's language where the worker kept it so (older entries: as the worker wrote it)."""
        return said.shown(self.reason, self.reason_said)


class HeldConflict(models.Model):
    """A conflict on one field of one link, held for someone to decide (docs/sync-semantics.md, "Held conflicts").

    Open while ``closed_at`` is None. Resolving it keeps the chosen value (``resolved_value``) and who chose it; the
    next sync of the link writes that value to each side that lacks it, then closes the row."""

    class Choice(models.TextChoices):
        CRM = "crm", _("the CRM value")
        ERP = "erp", _("the ERP value")
        EDITED = "edited", _("an edited value")

    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="held_conflicts")
    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="held_conflicts")
    field_key = models.CharField(max_length=100)
    # Values in the field's canonical form (connections.sync.values), as the engine compares them.
    crm_value = models.JSONField(null=True, blank=True)
    erp_value = models.JSONField(null=True, blank=True)
    base_value = models.JSONField(null=True, blank=True)
    crm_changed_at = models.DateTimeField(null=True, blank=True)  # the CRM record's last change, as far as known
    erp_changed_at = models.DateTimeField(null=True, blank=True)  # the ERP actor's last_modified
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    choice = models.CharField(max_length=10, choices=Choice.choices, blank=True)
    resolved_value = models.JSONField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["first_seen", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["link", "field_key"],
                condition=models.Q(closed_at__isnull=True),
                name="connections_held_conflict_open_unique",
            )
        ]
        indexes = [models.Index(fields=["connection", "closed_at"], name="connections_held_open")]

    def __str__(self) -> str:
        return f"{self.link_id}.{self.field_key}: {self.crm_value!r} / {self.erp_value!r}"

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None


class ErpImport(models.Model):
    """One Import from ERP: which actors were asked for, the plan made from them, and the runs that did the work.

    Its rows are the plan. The preview run writes them; nothing touches the CRM until the import run, which
    can be started again for the rows that failed.
    """

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="imports")
    actor_type = models.CharField(_("actor type"), max_length=20)
    everything = models.BooleanField(_("every actor of the type"), default=False)
    keys = models.JSONField(default=list, blank=True)  # the selected ERP keys, when not everything
    description = models.CharField(_("search"), max_length=500, blank=True)
    # The language of the admin who started it: the reasons in the plan are written in it.
    language = models.CharField(max_length=10, default="en")
    preview_run = models.ForeignKey(SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    import_run = models.ForeignKey(SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    prepared_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("import from ERP")
        verbose_name_plural = _("imports from ERP")

    def __str__(self) -> str:
        return f"Import #{self.pk}: {self.actor_type} from {self.connection}"

    def get_absolute_url(self) -> str:
        return reverse("connections:import-detail", args=[self.pk])

    @property
    def current_run(self) -> SyncRun | None:
        return self.import_run or self.preview_run

    @property
    def phase(self) -> str:
        """preparing, ready, importing, finished, or failed (the preview could not be made)."""
        if self.import_run is not None:
            return "importing" if self.import_run.status in ACTIVE_RUN_STATUSES else "finished"
        if self.preview_run is None or self.preview_run.status in ACTIVE_RUN_STATUSES:
            return "preparing"
        return "failed" if self.preview_run.status == RunStatus.FAILED else "ready"


class ImportRow(models.Model):
    """One ERP actor in an import's plan: what the CRM already has that looks like it, and what Import will do.

    ``level`` orders the work: companies (level 0) before the persons and projects under them (level 1).
    """

    erp_import = models.ForeignKey(ErpImport, on_delete=models.CASCADE, related_name="rows")
    level = models.PositiveSmallIntegerField(default=0)
    actor_type = models.CharField(_("actor type"), max_length=20)
    erp_key = models.CharField(_("ERP key"), max_length=200)
    name = models.CharField(_("name"), max_length=200, blank=True)
    parent_actor_type = models.CharField(max_length=20, blank=True)
    parent_key = models.CharField(max_length=200, blank=True)
    erp_last_modified = models.DateTimeField(null=True, blank=True)
    values = models.JSONField(default=dict, blank=True)  # mapped ERP field key → value, as read for the preview
    kind = models.CharField(_("found"), max_length=20, choices=MatchKind.choices)
    reason = models.TextField(_("reason"), blank=True)
    score = models.PositiveSmallIntegerField(_("score"), default=0)
    candidates = models.JSONField(default=list, blank=True)  # [{"id", "name", "score", "reasons", "linked_to"}]
    action = models.CharField(_("action"), max_length=20, choices=ImportAction.choices, blank=True)
    target_id = models.PositiveBigIntegerField(null=True, blank=True)  # the CRM record to link to
    included = models.BooleanField(_("import"), default=True)
    outcome = models.CharField(
        _("outcome"), max_length=20, choices=ImportOutcome.choices, default=ImportOutcome.PENDING
    )
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["level", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["erp_import", "actor_type", "erp_key"], name="connections_import_row_actor_unique"
            )
        ]
        indexes = [
            models.Index(fields=["erp_import", "kind"]),
            models.Index(fields=["erp_import", "outcome"]),
        ]

    def __str__(self) -> str:
        return f"{self.actor_type} {self.erp_key}: {self.kind} → {self.action or '?'}"


class NotificationNonce(models.Model):
    """The nonce of a change notification a Sync Connector sent (protocol v1.1): each is accepted once. Kept in the
    database, which every web process shares, for twice the clock tolerance; the rows of the last minute are also
    what a connector's notifications are counted by (ERPSYNC_NOTIFY_RATE_LIMIT)."""

    connector = models.ForeignKey(SyncConnector, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=128)
    received_at = models.DateTimeField(default=timezone.now)
    keep_until = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connector", "nonce"], name="connections_notification_nonce_unique")
        ]
        indexes = [
            models.Index(fields=["connector", "received_at"], name="connections_nonce_received"),
            models.Index(fields=["keep_until"], name="connections_nonce_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.connector_id}: {self.nonce}"
