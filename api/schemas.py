"""The shapes the API answers and accepts (pydantic, through django-ninja); the OpenAPI document is made from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema

RecordKind = Literal["company", "contact", "project"]
# An id the database can hold (64 bits): a larger number names no row, and is refused as bad input.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Page(Schema):
    count: int
    page: int
    page_size: int


class Connection(Schema):
    id: int
    name: str
    description: str
    connector: str
    is_active: bool
    actor_types: list[str] = Field(description="The actor types that sync")
    last_sync_at: datetime | None
    may_connect: bool
    may_create: bool
    activation_problems: list[str] | None = Field(
        None, description="For ERP sync administrators: every reason the connection cannot be activated now"
    )


class Record(Schema):
    kind: RecordKind
    id: int
    name: str


class Run(Schema):
    id: int
    connection: int
    link: int | None
    kind: str
    kind_text: str
    status: str
    status_text: str
    progress: int
    total: int
    done: int
    changed: int
    failed: int
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class Link(Schema):
    id: int
    connection: int
    actor_type: str
    erp_key: str
    record: Record
    status: str
    status_text: str
    last_error: str
    last_synced_at: datetime | None
    dismissed_at: datetime | None


class LinkPage(Page):
    results: list[Link]


class LinkCreate(Schema):
    connection: Id
    record_kind: RecordKind
    record_id: Id
    actor_type: str = Field(min_length=1, max_length=20)
    erp_key: str = Field(min_length=1, max_length=200)
    choices: dict[str, Literal["crm", "erp"]] = Field(
        default_factory=dict,
        max_length=200,
        description="For values that differ, which side wins, by ERP field key; a field not named takes the side "
        "the ERP tab preselects (the field's direction, else a value over a blank, else the higher sync priority)",
    )
    sync: bool = Field(True, description="Sync the new link now")


class LinkCreated(Schema):
    link: Link
    run: Run | None
    message: str


class RunStarted(Schema):
    run: Run
    created: bool = Field(description="False when a run of the same link or connection was already queued")


class BulkRun(Schema):
    keep_non_blank: bool = Field(False, description="Do not overwrite values with blank ones")


class LogEntry(Schema):
    id: int
    at: datetime
    run: int
    link: int | None
    actor_type: str
    erp_key: str
    field_key: str
    crm_field: str
    direction: str
    outcome: str
    old: Any = None
    new: Any = None
    reason: str


class LogPage(Page):
    results: list[LogEntry]


class FailedChoice(Schema):
    links: list[Id] = Field(default_factory=list, max_length=1000, description="Ids of failed links")
    all: bool = Field(False, description="Every failed record of the connection")


class Dismissal(FailedChoice):
    reason: str = Field(min_length=1, max_length=500)


class Counted(Schema):
    count: int
    message: str


class ImportCreate(Schema):
    connection: Id
    actor_type: str = Field(min_length=1, max_length=20)
    keys: list[str] = Field(default_factory=list, max_length=1000)
    everything: bool = False
    description: str = Field("", max_length=500)


class Import(Schema):
    id: int
    connection: int
    actor_type: str
    everything: bool
    phase: Literal["preparing", "ready", "importing", "finished", "failed"]
    summary: dict[str, Any]
    preview_run: Run | None
    import_run: Run | None
    created_at: datetime


class ImportRow(Schema):
    id: int
    level: int
    actor_type: str
    erp_key: str
    name: str
    kind: str
    reason: str
    score: int
    candidates: list[dict[str, Any]]
    action: str
    target_id: int | None
    included: bool
    outcome: str
    error: str


class ImportRowPage(Page):
    results: list[ImportRow]


class Decision(Schema):
    included: bool | None = None
    action: Literal["", "create", "link", "skip"] | None = None
    target: Id | None = Field(None, description="The CRM record to link to, for action link")


class ImportStart(Schema):
    retry: bool = Field(False, description="Import the failed rows again")
