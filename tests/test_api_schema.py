"""Schema-driven fuzzing of /api/v1/: schemathesis makes requests from the OpenAPI document the app serves, with an
admin's read-write token against a world with a connection, a link, a run and an import, and checks that no answer
is a server error and that every answer is one the document declares, in the shape it declares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as examples
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import tokens
from api.models import Scope
from connections import importing, jobs, services
from connections.models import Link

from .conftest import Connector
from .sync_helpers import company, customers_for_import, new_customer

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The world's objects stand in for every id in a path, so that the requests reach the services, not only a 404.
PATH_IDS = {
    "connection_id": "connection",
    "link_id": "link",
    "run_id": "run",
    "import_id": "erp_import",
    "row_id": "row",
}


@pytest.fixture
def keep_the_test_database_open() -> Iterator[None]:
    """Django's WSGI handler closes the database connection after each request, which would close the test's own
    (its transaction is the test's world); Django's test client does this too."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def world(demo_erp: Connector, admin_user: Any, db: Any, keep_the_test_database_open: None) -> dict[str, Any]:
    connection = customers_for_import(demo_erp)
    record = company(name="Fuzzbygg AB")
    actor = new_customer(demo_erp, connection, NAME="Fuzzbygg AB")
    link = Link.objects.create(connection=connection, actor_type="Customer", erp_key=actor.key or "", company=record)
    run, _ = services.start_sync_now(link, admin_user)
    jobs.run_sync.apply(kwargs={"run_id": run.pk})
    erp_import = importing.start_preview(connection, "Customer", keys=[actor.key or ""], send=False)
    assert erp_import.preview_run is not None
    jobs.run_sync.apply(kwargs={"run_id": erp_import.preview_run.pk})
    ids = {
        "connection": connection.pk,
        "link": link.pk,
        "run": run.pk,
        "erp_import": erp_import.pk,
        "row": erp_import.rows.first().pk,  # type: ignore[union-attr]
    }
    return {"ids": ids, "token": tokens.issue(admin_user, "fuzz", Scope.WRITE)[1]}


@pytest.mark.django_db(transaction=False)
@schema.parametrize()
@examples(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_answers_every_request_as_its_document_says(case: Any, world: dict[str, Any], settings: Any) -> None:
    settings.ERPSYNC_API_RATE_PER_MINUTE = 100_000
    for name in case.path_parameters or {}:
        if name in PATH_IDS:
            case.path_parameters[name] = world["ids"][PATH_IDS[name]]
    case.call_and_validate(headers={"Authorization": f"Bearer {world['token']}"}, checks=CHECKS)
