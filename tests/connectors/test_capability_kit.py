"""The conformance kit's checks of the v1.1 data capabilities (idempotent_create, decimal, tombstones,
config_list_values): a small SDK connector that offers them passes ``strict``, and each check fails against a
variant broken on purpose. The Demo ERP names its capabilities and passes ``strict`` too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors import protocol as p
from connectors.conformance import run_conformance
from connectors.sdk import ConnectorApp, Context, CreatedKeys

from ..conftest import DEMO_CONFIG, RunningConnector
from .servers import serving
from .tiny_connector import AddressBook

SECRET = "tiny-connector-secret-42"
CONFIG: dict[str, p.Value] = {"owner": "Tests"}


TURNOVER = p.FieldInfo(key="TURNOVER", label="Turnover", type=p.FieldType.DECIMAL, decimal_places=2)


class DataBook(AddressBook):
    """The address book with the v1.1 data capabilities; ``broken`` names what a variant gets wrong on purpose."""

    capabilities = frozenset(
        {p.Capability.IDEMPOTENT_CREATE.value, p.Capability.DECIMAL.value, p.Capability.TOMBSTONES.value}
    )

    def __init__(self, **broken: bool) -> None:
        super().__init__()
        self.broken = broken
        self.created = CreatedKeys()
        for number, actor in enumerate(list(self.actors.values())):
            self.actors[actor.key or ""] = actor.model_copy(
                update={"values": {**actor.values, "TURNOVER": f"{number * 1000}.50"}}
            )
        # A customer merged into A1 before the kit came: the feed reports it.
        self.tombstones = [
            p.Tombstone(
                actor_type=p.ActorType.CUSTOMER,
                key="A0",
                last_modified=datetime(2025, 1, 1, 0, 0, 1, 500000, tzinfo=UTC),
                kind=p.TombstoneKind.MERGED,
                merged_into=None if broken.get("merged_into_nothing") else "A1",
            )
        ]

    def get_actors_by_timestamp(self, request: p.GetActorsByTimestampRequest, context: Context) -> p.FeedData:
        """The address book's feed, with the tombstones in the same order, all on the first page (the kit reads
        the feed from the start)."""
        page = super().get_actors_by_timestamp(request, context)
        if request.cursor is None and request.updated_on_or_after is None:
            return page.model_copy(update={"tombstones": self.tombstones})
        return page

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        fields = super().get_supported_actor_type_fields(request, context).fields
        return p.FieldsData(fields=[*fields, TURNOVER])

    def _project(self, actor: p.Actor, field_keys: list[str]) -> p.Actor:
        if TURNOVER.key in field_keys:  # a field of this connector's own, which the Address Book does not know
            rest = [k for k in field_keys if k != TURNOVER.key]
            base = super()._project(actor, rest) if rest else actor.model_copy(update={"values": {}})
            actor = base.model_copy(update={"values": {**base.values, TURNOVER.key: actor.values.get(TURNOVER.key)}})
        else:
            actor = super()._project(actor, field_keys)
        turnover = actor.values.get("TURNOVER")
        if self.broken.get("decimal_as_number") and isinstance(turnover, str):
            return actor.model_copy(update={"values": {**actor.values, "TURNOVER": float(turnover)}})
        return actor

    def create_actor(self, request: p.CreateActorRequest, context: Context) -> p.ActorData:
        if self.broken.get("forgets_keys"):
            return super().create_actor(request, context)
        return self.created.create(request, lambda: AddressBook.create_actor(self, request, context))


def kit(book: AddressBook, **options: Any) -> tuple[list[str], dict[str, str]]:
    """The names of the checks run, and the failed ones' details by name."""
    with serving(ConnectorApp(book, SECRET)) as url:
        report = run_conformance(url, SECRET, CONFIG, strict=True, **options)
    return [check.name for check in report.checks], {check.name: check.detail for check in report.failed}


def test_a_connector_with_the_data_capabilities_passes_strict() -> None:
    names, failed = kit(DataBook())
    assert not failed
    assert "idempotent_create: Customer: CreateActor again with the same key makes no second actor" in names
    assert "decimal: Customer: values of decimal fields are strings in the decimal format" in names
    assert "decimal: Customer: a decimal value saved comes back exactly" in names
    assert "tombstones: Customer: tombstones in the feed are well formed and in order" in names


def test_the_kit_catches_a_merge_that_names_no_survivor() -> None:
    _names, failed = kit(DataBook(merged_into_nothing=True))
    assert failed == {
        "tombstones: Customer: tombstones in the feed are well formed and in order": "A0 (merged): merged without merged_into"
    }


def test_the_kit_catches_decimal_values_sent_as_json_numbers() -> None:
    _names, failed = kit(DataBook(decimal_as_number=True))
    assert set(failed) == {
        "decimal: Customer: values of decimal fields are strings in the decimal format",
        "decimal: Customer: a decimal value saved comes back exactly",
    }
    assert (
        "is not a decimal value"
        in failed["decimal: Customer: values of decimal fields are strings in the decimal format"]
    )


def test_the_kit_catches_a_connector_that_names_idempotent_create_and_creates_again() -> None:
    _names, failed = kit(DataBook(forgets_keys=True))
    assert list(failed) == ["idempotent_create: Customer: CreateActor again with the same key makes no second actor"]
    assert "the same idempotency key made A" in next(iter(failed.values()))


def test_the_demo_erp_names_its_capabilities_and_passes_strict(demo_connector: RunningConnector) -> None:
    report = run_conformance(demo_connector.url, demo_connector.secret, DEMO_CONFIG, strict=True)
    assert report.ok, "\n".join(line for line in report.lines() if not line.startswith("PASS"))
    names = [check.name for check in report.checks]
    assert "idempotent_create: Customer: CreateActor again with the same key makes no second actor" in names
    assert "decimal: Project: a decimal value saved comes back exactly" in names
