"""The conformance kit's v1.1 checks of labels and suggested_directions (under --strict): each passes for a
connector that gives them right, and fails for one that gives them wrong; Demo ERP passes strict."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from connectors import protocol as p
from connectors.conformance import run_conformance
from connectors.sdk import ConnectorApp, Context

from ..conftest import DEMO_CONFIG, RunningConnector
from .servers import serving
from .tiny_connector import FIELDS, AddressBook

SECRET = "tiny-connector-secret-42"
LABELS = "v1.1 labels: every label map has non-empty texts under language codes"
DIRECTIONS = "v1.1 suggested_directions: valid directions, and none to the ERP for a read-only field"


class Labelled(AddressBook):
    """Address Book with Swedish labels and suggested directions, right or (``broken``) wrong."""

    capabilities = frozenset({p.Capability.LABELS.value, p.Capability.SUGGESTED_DIRECTIONS.value})

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken

    def get_supported_actor_types(self, request: p.GetSupportedActorTypesRequest, context: Context) -> p.ActorTypesData:
        names = {"english": "Customer", "sv": ""} if self.broken else {"en": "Customer", "sv": "Kund"}
        return p.ActorTypesData(actor_types=[p.ActorType.CUSTOMER], labels={p.ActorType.CUSTOMER: names})

    def get_supported_actor_type_fields(
        self, request: p.GetSupportedActorTypeFieldsRequest, context: Context
    ) -> p.FieldsData:
        super().get_supported_actor_type_fields(request, context)
        fields = []
        for info in FIELDS:
            read_only = info.access == p.FieldAccess.READ_ONLY
            suggested = p.SuggestedDirection.ERP_TO_CRM if read_only else p.SuggestedDirection.BOTH
            if self.broken and read_only:
                suggested = p.SuggestedDirection.CRM_TO_ERP
            fields.append(
                info.model_copy(update={"labels": {"sv": f"{info.label} (sv)"}, "suggested_direction": suggested})
            )
        return p.FieldsData(fields=fields)


def rewriting(app: ConnectorApp, old: bytes, new: bytes) -> Callable[..., Iterable[bytes]]:
    """``app`` with ``old`` replaced by ``new`` in its answers: what no SDK connector could send."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = b"".join(
            app(
                environ,
                lambda status, headers: start_response(status, [h for h in headers if h[0] != "Content-Length"]),
            )
        )
        return [body.replace(old, new)]

    return wrapped


def failed(report: Any) -> dict[str, str]:
    return {check.name: check.detail for check in report.failed}


def test_right_labels_and_suggestions_pass_strict() -> None:
    with serving(ConnectorApp(Labelled(), SECRET)) as url:
        report = run_conformance(url, SECRET, {"owner": "Tests"}, strict=True)
    assert report.ok, failed(report)
    assert {LABELS, DIRECTIONS} <= {check.name for check in report.checks}


def test_wrong_labels_and_a_read_only_field_suggesting_crm_to_erp_fail() -> None:
    with serving(ConnectorApp(Labelled(broken=True), SECRET)) as url:
        report = run_conformance(url, SECRET, {"owner": "Tests"}, strict=True)
    problems = failed(report)
    assert set(problems) == {LABELS, DIRECTIONS}, problems
    assert "'english' is not a language code" in problems[LABELS] and "the 'sv' text is empty" in problems[LABELS]
    assert "Customer field NUMBER is read-only but suggests crm_to_erp" in problems[DIRECTIONS]


def test_a_direction_the_protocol_does_not_know_fails() -> None:
    app = rewriting(
        ConnectorApp(Labelled(), SECRET), b'"suggested_direction":"both"', b'"suggested_direction":"sideways"'
    )
    with serving(app) as url:
        report = run_conformance(url, SECRET, {"owner": "Tests"}, strict=True)
    assert "'sideways' is not one of" in failed(report)[DIRECTIONS]


def test_the_checks_run_only_for_the_capabilities_named() -> None:
    with serving(ConnectorApp(AddressBook(), SECRET)) as url:
        report = run_conformance(url, SECRET, {"owner": "Tests"}, strict=True)
    assert report.ok and not {LABELS, DIRECTIONS} & {check.name for check in report.checks}


def test_demo_erp_passes_strict(demo_connector: RunningConnector) -> None:
    report = run_conformance(demo_connector.url, demo_connector.secret, DEMO_CONFIG, writable=False, strict=True)
    assert report.ok, failed(report)
    assert {LABELS, DIRECTIONS} <= {check.name for check in report.checks if check.passed}
