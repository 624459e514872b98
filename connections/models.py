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

from connectors.models import SyncConnector
from crm.models import Company, Contact, Project
from erpsync_admin import crypto

from .choices import (
    ACTIVE_RUN_STATUSES,
    BULK_RUN_KINDS,
    AuditAction,
    Direction,
    ImportAction,
    ImportOutcome,
    LinkStatus,
    LogOutcome,
    MatchKind,
    RunKind,
    RunStatus,
    Visibility,
)


def heartbeat_stale_after() -> timedelta:
    """A worker that has not reported for this long (three missed heartbeats, at least 90 s) is shown as gone."""
    return timedelta(seconds=max(90, 3 * settings.ERPSYNC_HEARTBEAT_SECONDS))


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
    secrets = models.JSONField(default=dict, blank=True)
    config_fields = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=False)
    priority = models.PositiveIntegerField(_("sync priority"), default=100)
    last_test_at = models.DateTimeField(_("last tested"), null=True, blank=True)
    last_test_ok = models.BooleanField(_("last test passed"), null=True)
    last_test_message = models.TextField(blank=True)
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("ERP connection")
        verbose_name_plural = _("ERP connections")
        ordering = ["name"]
        permissions = [
            ("connect_erpconnection", _("May connect and disconnect CRM records to ERP actors")),
            ("create_in_erp_erpconnection", _("May create new ERP actors")),
        ]
        constraints = [models.UniqueConstraint(Lower("name"), name="connections_erpconnection_name_unique")]

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
    # Where automatic sync resumes: the ERP change feed's cursor, and when CRM changes were last collected.
    feed_cursor = models.CharField(max_length=1000, blank=True)
    crm_changes_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connection", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "actor_type"], name="connections_actor_type_unique")
        ]

    def __str__(self) -> str:
        return f"{self.connection}: {self.actor_type}"


class ErpField(models.Model):
    """An ERP field of one actor type, as the connector describes it, and how it maps to the CRM."""

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="erp_fields")
    actor_type = models.CharField(max_length=20)
    key = models.CharField(max_length=100)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=20)
    list_name = models.CharField(max_length=100, blank=True)
    default = models.JSONField(null=True, blank=True)
    max_length = models.PositiveIntegerField(default=0)
    access = models.CharField(max_length=20)
    searchable = models.BooleanField(default=False)
    missing_in_erp = models.BooleanField(default=False)
    rank = models.PositiveIntegerField(default=0)
    crm_field = models.CharField(max_length=50, blank=True)
    auto_mapped = models.BooleanField(default=False)
    direction = models.CharField(max_length=20, choices=Direction.choices, blank=True)
    show_in_search = models.BooleanField(default=False)
    show_in_tab = models.BooleanField(default=False)

    class Meta:
        ordering = ["connection", "actor_type", "rank", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "actor_type", "key"], name="connections_erp_field_unique")
        ]

    def __str__(self) -> str:
        return f"{self.actor_type}.{self.key}"


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

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.subject} {self.action}"


class ListMapping(models.Model):
    """One ERP list item of a mapped list field, and the CRM list item it stands for (or none)."""

    connection = models.ForeignKey(ErpConnection, on_delete=models.CASCADE, related_name="list_mappings")
    actor_type = models.CharField(max_length=20)
    field_key = models.CharField(max_length=100)
    erp_key = models.CharField(max_length=200)
    erp_text = models.CharField(max_length=200)
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
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection", "pk"]
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
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when the broker could not take the run's task; the sweeper sends it again at its next round.
    send_failed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
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
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.started_at and self.finished_at else None

    @property
    def progress(self) -> int:
        return 100 if self.total == 0 and self.finished_at else int(100 * self.done / self.total) if self.total else 0


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
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["connection", "-at"]), models.Index(fields=["link", "-at"])]

    def __str__(self) -> str:
        return f"{self.erp_key}.{self.field_key}: {self.old!r} → {self.new!r} ({self.outcome})"


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
