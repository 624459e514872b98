"""The automation API end to end: a script holding a real token calls the app over HTTP (live_server), a real Celery
worker on Redis runs what it starts, against the Demo ERP process. A script connects a company to an ERP actor,
presses Sync now, polls the run until it has succeeded and reads the value written in the sync log; and it imports
from the ERP: preview, decisions on rows, import, polled until finished.

The Demo ERP process is shared by the session: actors are made with names of their own and found by their keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api import tokens
from api.models import Scope
from connections.models import Link
from crm.models import Company

from .conftest import RunningConnector, wait_for
from .factories import UserFactory
from .sync_helpers import active_connection, change_in_erp, company, customers_for_import, erp_values, new_customer
from .test_sync_jobs import worker  # noqa: F401  (a real worker on Redis)

pytestmark = pytest.mark.django_db(transaction=True)
ENDED = ("succeeded", "partially_failed", "failed")
# A run queued over the API is taken by a worker that may share the machine with other test processes.
WITHIN_SECONDS = 60


@pytest.fixture
def api(live_server: Any) -> Iterator[httpx.Client]:
    """An administrator's read-write token, sent by a client of the live server's /api/v1/."""
    admin = UserFactory.create(username="ada", is_superuser=True, is_staff=True)
    raw = tokens.issue(admin, "nightly script", Scope.WRITE)[1]
    with httpx.Client(
        base_url=f"{live_server.url}/api/v1", headers={"Authorization": f"Bearer {raw}"}, timeout=30
    ) as client:
        yield client


def ended(api: httpx.Client, run_id: int, worker: Any) -> dict[str, Any]:  # noqa: F811
    """The run as GET /runs/<id>/ answers once it has ended (the worker's output if it never does)."""

    def check() -> dict[str, Any] | None:
        run = api.get(f"/runs/{run_id}/").json()
        return run if run["status"] in ENDED else None

    try:
        return wait_for(check, WITHIN_SECONDS, f"run {run_id} to end", interval=0.3)
    except AssertionError:
        raise AssertionError(worker.output()[-3000:]) from None


def test_a_script_connects_a_company_syncs_it_and_reads_the_sync_log(
    api: httpx.Client,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
) -> None:
    connection = active_connection(demo_connector)
    unique = uuid.uuid4().hex[:8]
    actor = new_customer(demo_connector, connection, NAME=f"Älvsby Trä {unique} AB", PHONE="+46 929 100")
    record = company(name=f"Älvsby Trä {unique} AB", phone="+46 929 100")

    listed = api.get("/connections/")
    assert listed.status_code == 200, listed.text
    [shown] = [c for c in listed.json() if c["id"] == connection.pk]
    assert shown["is_active"] and shown["may_connect"] and shown["actor_types"] == ["Customer"]
    assert shown["activation_problems"] == []

    body = {
        "connection": connection.pk,
        "record_kind": "company",
        "record_id": record.pk,
        "actor_type": "Customer",
        "erp_key": actor.key,
    }
    created = api.post("/links/", json=body)
    assert created.status_code == 201, created.text
    link_id = created.json()["link"]["id"]
    assert created.json()["link"]["record"] == {"kind": "company", "id": record.pk, "name": record.name}
    first = ended(api, created.json()["run"]["id"], worker)
    assert first["status"] == "succeeded" and first["kind"] == "sync_now", first

    change_in_erp(demo_connector, connection, actor.key or "", PHONE=f"+46 929 {unique}")
    started = api.post(f"/links/{link_id}/sync/")
    assert started.status_code == 202 and started.json()["created"] is True, started.text
    run_id = started.json()["run"]["id"]
    assert run_id != first["id"]
    run = ended(api, run_id, worker)
    assert run["status"] == "succeeded" and run["changed"] == 1 and run["progress"] == 100, run

    log = api.get(f"/connections/{connection.pk}/log/", params={"run": run_id, "field": "PHONE"})
    assert log.status_code == 200, log.text
    [entry] = log.json()["results"]
    assert (entry["erp_key"], entry["outcome"], entry["direction"]) == (actor.key, "written", "erp_to_crm"), entry
    assert (entry["old"], entry["new"]) == ("+46 929 100", f"+46 929 {unique}")
    record.refresh_from_db()
    assert record.phone == f"+46 929 {unique}"
    assert api.get(f"/links/{link_id}/").json()["status"] == "ok"


def test_a_script_imports_customers_it_chose_and_decided(
    api: httpx.Client,
    worker: Any,  # noqa: F811
    demo_connector: RunningConnector,
) -> None:
    connection = customers_for_import(demo_connector)
    unique = uuid.uuid4().hex[:8]
    kept = new_customer(demo_connector, connection, NAME=f"Norrsken Bygg {unique} AB", PHONE="+46 920 1")
    left = new_customer(demo_connector, connection, NAME=f"Fjällvind {unique} AB")
    # Two CRM companies of the same name in other cities: a person decides which one the actor is.
    existing = Company.objects.create(name=f"Nordkust {unique} AB", postal_city="Luleå")
    Company.objects.create(name=f"Nordkust {unique}", postal_city="Kiruna")
    linked = new_customer(
        demo_connector, connection, NAME=f"Nordkust {unique} AB", POSTALCITY="Piteå", PHONE="+46 920 3"
    )
    keys = [kept.key, left.key, linked.key]

    started = api.post("/imports/", json={"connection": connection.pk, "actor_type": "Customer", "keys": keys})
    assert started.status_code == 202 and started.json()["phase"] == "preparing", started.text
    import_id = started.json()["id"]
    preview = ended(api, started.json()["preview_run"]["id"], worker)
    assert preview["status"] == "succeeded", preview
    plan = api.get(f"/imports/{import_id}/").json()
    assert plan["phase"] == "ready", plan
    assert {k: v for k, v in plan["summary"]["kinds"].items() if v} == {"new": 2, "ambiguous": 1}, plan

    rows = {row["erp_key"]: row for row in api.get(f"/imports/{import_id}/rows/").json()["results"]}
    assert set(rows) == set(keys) and rows[linked.key]["kind"] == "ambiguous"
    assert {c["id"] for c in rows[linked.key]["candidates"]} >= {existing.pk}
    undecided = api.post(f"/imports/{import_id}/import/", json={})
    assert undecided.status_code == 409 and "1 rows need a decision" in undecided.json()["message"], undecided.text
    excluded = api.post(f"/imports/{import_id}/rows/{rows[left.key]['id']}/", json={"included": False})
    assert excluded.status_code == 200 and excluded.json()["included"] is False, excluded.text
    decided = api.post(
        f"/imports/{import_id}/rows/{rows[linked.key]['id']}/", json={"action": "link", "target": existing.pk}
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["action"], decided.json()["target_id"]) == ("link", existing.pk)

    imported = api.post(f"/imports/{import_id}/import/", json={})
    assert imported.status_code == 202 and imported.json()["phase"] == "importing", imported.text
    run = ended(api, imported.json()["import_run"]["id"], worker)
    assert run["status"] == "succeeded", run
    done = api.get(f"/imports/{import_id}/").json()
    assert done["phase"] == "finished", done
    assert {k: v for k, v in done["summary"]["outcomes"].items() if v} == {"new": 1, "updated": 1, "pending": 1}
    outcomes = {row["erp_key"]: row["outcome"] for row in api.get(f"/imports/{import_id}/rows/").json()["results"]}
    assert outcomes == {kept.key: "new", linked.key: "updated", left.key: "pending"}

    made = Company.objects.get(name=f"Norrsken Bygg {unique} AB")
    assert made.phone == "+46 920 1"
    assert Link.objects.get(connection=connection, erp_key=kept.key).company == made
    assert Link.objects.get(connection=connection, erp_key=linked.key).company == existing
    existing.refresh_from_db()
    assert existing.phone == "+46 920 3"
    assert not Company.objects.filter(name=f"Fjällvind {unique} AB").exists()
    assert erp_values(demo_connector, connection, left.key or "")["NAME"] == f"Fjällvind {unique} AB"
