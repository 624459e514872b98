"""The automation API, group by group, against a real Demo ERP in this process; runs are executed eagerly."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from api import tokens
from api.models import ApiToken, Scope
from connections import jobs
from connections.choices import LinkStatus, RunStatus
from connections.models import ErpConnection, ErpImport, Link, SyncRun

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import (
    active_connection,
    change_in_erp,
    company,
    customers_for_import,
    erp_values,
    new_customer,
)

pytestmark = pytest.mark.django_db
V1 = "/api/v1"


class Api:
    """A client of /api/v1/ holding one token."""

    def __init__(self, token: str | None, language: str = "en") -> None:
        self.client, self.token, self.language = Client(), token, language

    def __call__(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        headers: dict[str, Any] = {"HTTP_ACCEPT_LANGUAGE": self.language}
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        if method == "GET":
            return self.client.get(V1 + path, query, **headers)
        data = json.dumps(body if body is not None else {})
        return self.client.generic(method, V1 + path, data, content_type="application/json", **headers)


def api_for(user: Any, scope: str = Scope.WRITE, **kwargs: Any) -> Api:
    return Api(tokens.issue(user, "test", scope)[1], **kwargs)


@pytest.fixture
def linked(demo_erp: Connector) -> dict[str, Any]:
    connection = active_connection(demo_erp)
    record = company(name="Granbygg AB", phone="+46 90 12")
    actor = new_customer(demo_erp, connection, PHONE="+46 90 12")
    link = Link.objects.create(connection=connection, actor_type="Customer", erp_key=actor.key or "", company=record)
    return {"connection": connection, "company": record, "actor": actor, "link": link}


def run_now(run_id: int) -> SyncRun:
    jobs.run_sync.apply(kwargs={"run_id": run_id})
    return SyncRun.objects.get(pk=run_id)


# Tokens


def test_a_token_is_stored_as_a_digest_and_only_its_prefix_is_kept(admin_user: Any) -> None:
    token, raw = tokens.issue(admin_user, "script", Scope.READ)
    assert raw.startswith("esk_") and len(raw) > 40
    assert raw not in (token.digest, token.prefix) and token.digest == tokens.digest(raw)
    assert raw.startswith(token.prefix) and len(token.prefix) == 12
    assert tokens.find(raw) == token and tokens.find(raw + "x") is None


def test_revoked_expired_and_inactive_users_tokens_are_refused(admin_user: Any, linked: dict[str, Any]) -> None:
    api = api_for(admin_user)
    assert api("GET", "/connections/").status_code == 200
    token = ApiToken.objects.get(user=admin_user)
    assert token.last_used_at is not None
    tokens.revoke(token)
    response = api("GET", "/connections/")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    expired = api_for(admin_user)
    ApiToken.objects.filter(revoked_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expired("GET", "/connections/").status_code == 401
    later = api_for(admin_user)
    admin_user.is_active = False
    admin_user.save()
    assert later("GET", "/connections/").status_code == 401
    assert Api("not-a-token")("GET", "/connections/").status_code == 401
    assert Api(None)("GET", "/connections/").status_code == 401


def test_too_many_requests_are_refused_with_retry_after(admin_user: Any, linked: dict[str, Any], settings: Any) -> None:
    settings.ERPSYNC_API_RATE_PER_MINUTE = 3
    api, other = api_for(admin_user), api_for(admin_user)
    codes = [api("GET", "/connections/").status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    refused = api("GET", "/connections/")
    assert refused.json()["code"] == "rate_limited" and 1 <= int(refused["Retry-After"]) <= 60
    assert other("GET", "/connections/").status_code == 200  # per token
    token = ApiToken.objects.filter(user=admin_user).first()
    assert token is not None
    assert tokens.count_request(token, now=(token.window + 1) * 60 + 1).allowed  # the next minute starts anew


def test_errors_speak_the_requests_language(admin_user: Any, licensed_user: Any, linked: dict[str, Any]) -> None:
    swedish = Api(None, language="sv")
    answer = swedish("GET", "/connections/").json()
    assert answer["code"] == "unauthorized" and "API-token" in answer["message"]
    read = api_for(admin_user, Scope.READ, language="sv")
    answer = read("POST", f"/connections/{linked['connection'].pk}/deactivate/").json()
    assert answer["code"] == "read_only_token" and "läsa" in answer["message"]
    bad = api_for(admin_user, language="sv")("POST", "/links/", {"connection": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid" and "giltig" in bad.json()["message"]
    missing = api_for(licensed_user, language="sv")("GET", "/links/999999/")
    assert missing.status_code == 404 and "Det finns inget" in missing.json()["message"]


# Connections


def test_connections_are_listed_as_the_pages_show_them(
    admin_user: Any, licensed_user: Any, outsider: Any, linked: dict[str, Any]
) -> None:
    connection = linked["connection"]
    hidden = ErpConnection.objects.create(name="Hidden", connector=connection.connector, visibility="specified")
    mine = api_for(licensed_user)("GET", "/connections/").json()
    assert [c["name"] for c in mine] == [connection.name]
    assert mine[0]["may_connect"] is True and mine[0]["activation_problems"] is None
    assert mine[0]["actor_types"] == ["Customer"]
    every = api_for(admin_user)("GET", "/connections/").json()
    assert {c["name"] for c in every} == {connection.name, "Hidden"}
    assert api_for(licensed_user)("GET", f"/connections/{hidden.pk}/").status_code == 404
    assert api_for(outsider)("GET", "/connections/").json()["code"] == "no_licence"


def test_deactivate_and_activate_are_for_admins_with_a_read_write_token(
    admin_user: Any, licensed_user: Any, linked: dict[str, Any]
) -> None:
    pk = linked["connection"].pk
    assert api_for(licensed_user)("POST", f"/connections/{pk}/deactivate/").json()["code"] == "not_admin"
    admin = api_for(admin_user)
    assert admin("POST", f"/connections/{pk}/deactivate/").json()["is_active"] is False
    assert ErpConnection.objects.get(pk=pk).is_active is False
    assert admin("POST", f"/connections/{pk}/activate/").json()["is_active"] is True
    ErpConnection.objects.filter(pk=pk).update(is_active=False, last_test_ok=None)
    refused = admin("POST", f"/connections/{pk}/activate/")
    assert refused.status_code == 409 and refused.json()["code"] == "activation_refused"
    assert "The connection has never been tested." in refused.json()["problems"]
    assert ErpConnection.objects.get(pk=pk).is_active is False


# Links


def test_links_are_found_by_record_and_a_record_is_connected_and_disconnected(
    licensed_user: Any, linked: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    api, connection = api_for(licensed_user), linked["connection"]
    found = api("GET", "/links/", company=linked["company"].pk).json()
    assert found["count"] == 1 and found["results"][0]["erp_key"] == linked["actor"].key
    assert found["results"][0]["record"] == {"kind": "company", "id": linked["company"].pk, "name": "Granbygg AB"}
    assert api("GET", "/links/", company=999999).json()["count"] == 0
    other = company(name="Vindkraft Nord AB")
    actor = new_customer(demo_erp, connection, NAME="Vindkraft Nord AB", PHONE="+47 22 00 00")
    body = {"connection": connection.pk, "record_kind": "company", "record_id": other.pk}
    with django_capture_on_commit_callbacks(execute=False):
        created = api("POST", "/links/", {**body, "actor_type": "Customer", "erp_key": actor.key})
    assert created.status_code == 201, created.content
    answer = created.json()
    assert answer["link"]["record"]["id"] == other.pk and answer["run"]["status"] == "queued"
    assert run_now(answer["run"]["id"]).status == RunStatus.SUCCEEDED
    other.refresh_from_db()
    assert other.phone == "+47 22 00 00"
    again = api("POST", "/links/", {**body, "actor_type": "Customer", "erp_key": actor.key})
    assert again.status_code == 409 and again.json()["code"] == "link_refused"
    link_id = answer["link"]["id"]
    assert api("DELETE", f"/links/{link_id}/").status_code == 204
    assert not Link.objects.filter(pk=link_id).exists()
    assert erp_values(demo_erp, connection, actor.key or "")["NAME"] == "Vindkraft Nord AB"  # nothing gone in the ERP


def test_connecting_takes_the_side_chosen_for_each_differing_value(
    licensed_user: Any, linked: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    connection = linked["connection"]
    other = company(name="Vindkraft Öst AB", phone="+46 8 11 11")
    actor = new_customer(demo_erp, connection, NAME="Vindkraft Öst AB", PHONE="+46 8 22 22")
    body = {"connection": connection.pk, "record_kind": "company", "record_id": other.pk, "actor_type": "Customer"}
    bad = api_for(licensed_user)("POST", "/links/", {**body, "erp_key": actor.key, "choices": {"PHONE": "mine"}})
    assert bad.status_code == 400 and not Link.objects.filter(company=other).exists()
    with django_capture_on_commit_callbacks(execute=False):
        created = api_for(licensed_user)("POST", "/links/", {**body, "erp_key": actor.key, "choices": {"PHONE": "crm"}})
    assert created.status_code == 201, created.content
    run_now(created.json()["run"]["id"])
    assert erp_values(demo_erp, connection, actor.key or "")["PHONE"] == "+46 8 11 11"


def test_connecting_needs_the_connect_right(licensed_user: Any, linked: dict[str, Any], demo_erp: Connector) -> None:
    ErpConnection.objects.filter(pk=linked["connection"].pk).update(everyone_can_connect=False)
    api = api_for(licensed_user)
    other = company(name="Vindkraft Syd AB")
    actor = new_customer(demo_erp, linked["connection"], NAME="Vindkraft Syd AB")
    body = {"connection": linked["connection"].pk, "record_kind": "company", "record_id": other.pk}
    refused = api("POST", "/links/", {**body, "actor_type": "Customer", "erp_key": actor.key})
    assert refused.status_code == 403 and refused.json()["code"] == "may_not_connect"
    assert api("DELETE", f"/links/{linked['link'].pk}/").status_code == 403
    assert Link.objects.filter(pk=linked["link"].pk).exists()


# Runs


def test_sync_now_queues_a_run_whose_status_is_read_until_it_ends(
    licensed_user: Any, linked: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    change_in_erp(demo_erp, linked["connection"], linked["actor"].key or "", PHONE="+46 90 99")
    api = api_for(licensed_user)
    with django_capture_on_commit_callbacks(execute=False):
        started = api("POST", f"/links/{linked['link'].pk}/sync/")
        assert started.status_code == 202 and started.json()["created"] is True
        again = api("POST", f"/links/{linked['link'].pk}/sync/")
    assert again.status_code == 200 and again.json()["run"]["id"] == started.json()["run"]["id"]
    run_id = started.json()["run"]["id"]
    run_now(run_id)
    status = api("GET", f"/runs/{run_id}/").json()
    assert status["status"] == "succeeded" and status["changed"] == 1 and status["kind"] == "sync_now"
    linked["company"].refresh_from_db()
    assert linked["company"].phone == "+46 90 99"


def test_sync_all_and_resync_are_queued_for_admins_and_a_second_bulk_run_is_refused(
    admin_user: Any, linked: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    api, pk = api_for(admin_user), linked["connection"].pk
    with django_capture_on_commit_callbacks(execute=False):
        started = api("POST", f"/connections/{pk}/sync-all/")
        assert started.status_code == 202 and started.json()["run"]["kind"] == "sync_all"
        refused = api("POST", f"/connections/{pk}/resync/", {"keep_non_blank": True})
    assert refused.status_code == 409 and refused.json()["code"] == "refused"
    run_now(started.json()["run"]["id"])
    with django_capture_on_commit_callbacks(execute=False):
        resync = api("POST", f"/connections/{pk}/resync/", {"keep_non_blank": True})
    assert resync.status_code == 202 and SyncRun.objects.get(pk=resync.json()["run"]["id"]).keep_non_blank


def test_a_run_of_a_connection_not_visible_is_not_found(licensed_user: Any, linked: dict[str, Any]) -> None:
    run = SyncRun.objects.create(connection=linked["connection"], link=linked["link"], kind="sync_now")
    assert api_for(licensed_user)("GET", f"/runs/{run.pk}/").status_code == 200
    ErpConnection.objects.filter(pk=linked["connection"].pk).update(visibility="specified")
    assert api_for(licensed_user)("GET", f"/runs/{run.pk}/").status_code == 404


# Sync log and failed records


def test_the_sync_log_is_paged_and_filtered(
    admin_user: Any, linked: dict[str, Any], demo_erp: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    change_in_erp(demo_erp, linked["connection"], linked["actor"].key or "", PHONE="+46 90 55", EMAIL="a@b.example")
    api, pk = api_for(admin_user), linked["connection"].pk
    with django_capture_on_commit_callbacks(execute=False):
        run_id = api("POST", f"/links/{linked['link'].pk}/sync/").json()["run"]["id"]
    run_now(run_id)
    written = api("GET", f"/connections/{pk}/log/", outcome="written", page_size=1).json()
    assert written["count"] >= 2 and len(written["results"]) == 1 and written["results"][0]["run"] == run_id
    phone = api("GET", f"/connections/{pk}/log/", field="PHONE", outcome="written").json()["results"]
    assert [(e["old"], e["new"]) for e in phone] == [("+46 90 12", "+46 90 55")]
    assert api("GET", f"/connections/{pk}/log/", page=0).status_code == 400
    assert api("GET", f"/connections/{pk}/log/", run="x").status_code == 400


def test_failed_records_are_listed_retried_and_dismissed(
    admin_user: Any, linked: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    link = linked["link"]
    Link.objects.filter(pk=link.pk).update(status=LinkStatus.FAILED, last_error="Boom")
    api, pk = api_for(admin_user), linked["connection"].pk
    failed = api("GET", f"/connections/{pk}/failed/").json()
    assert failed["count"] == 1 and failed["results"][0]["last_error"] == "Boom"
    assert api("POST", f"/connections/{pk}/failed/retry/", {}).json()["code"] == "nothing_chosen"
    assert api("POST", f"/connections/{pk}/failed/retry/", {"links": [999999]}).status_code == 404
    with django_capture_on_commit_callbacks(execute=False):
        retried = api("POST", f"/connections/{pk}/failed/retry/", {"links": [link.pk]})
    assert retried.status_code == 202 and retried.json()["count"] == 1
    assert SyncRun.objects.filter(link=link, status=RunStatus.QUEUED).exists()
    assert api("POST", f"/connections/{pk}/failed/dismiss/", {"all": True, "reason": " "}).status_code == 400
    dismissed = api("POST", f"/connections/{pk}/failed/dismiss/", {"all": True, "reason": "Known, fixed in the ERP"})
    assert dismissed.json()["count"] == 1
    assert Link.objects.get(pk=link.pk).dismissed_reason == "Known, fixed in the ERP"
    assert api("GET", f"/connections/{pk}/failed/").json()["count"] == 0


# Import


def test_an_import_is_previewed_decided_and_imported(
    admin_user: Any, licensed_user: Any, empty_demo: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    connection = customers_for_import(empty_demo)
    new_customer(empty_demo, connection, NAME="Norrsken Bygg AB")
    new_customer(empty_demo, connection, NAME="Fjällvind AB")
    api = api_for(admin_user)
    assert (
        api_for(licensed_user)("POST", "/imports/", {"connection": connection.pk, "actor_type": "Customer"}).json()[
            "code"
        ]
        == "not_admin"
    )
    nothing = api("POST", "/imports/", {"connection": connection.pk, "actor_type": "Customer"})
    assert nothing.status_code == 409
    with django_capture_on_commit_callbacks(execute=False):
        started = api("POST", "/imports/", {"connection": connection.pk, "actor_type": "Customer", "everything": True})
    assert started.status_code == 202 and started.json()["phase"] == "preparing"
    import_id = started.json()["id"]
    run_now(started.json()["preview_run"]["id"])
    plan = api("GET", f"/imports/{import_id}/").json()
    assert plan["phase"] == "ready" and plan["summary"]["kinds"]["new"] == 2
    rows = api("GET", f"/imports/{import_id}/rows/", kind="new").json()["results"]
    skipped = next(row for row in rows if row["name"] == "Fjällvind AB")
    decided = api("POST", f"/imports/{import_id}/rows/{skipped['id']}/", {"included": False})
    assert decided.status_code == 200 and decided.json()["included"] is False
    bad = api("POST", f"/imports/{import_id}/rows/{skipped['id']}/", {"action": "link", "target": 999999})
    assert bad.status_code == 409 and bad.json()["code"] == "refused"
    with django_capture_on_commit_callbacks(execute=False):
        imported = api("POST", f"/imports/{import_id}/import/", {})
    assert imported.status_code == 202 and imported.json()["phase"] == "importing"
    run_now(imported.json()["import_run"]["id"])
    done = api("GET", f"/imports/{import_id}/").json()
    assert done["phase"] == "finished" and done["summary"]["outcomes"]["new"] == 1
    assert ErpImport.objects.get(pk=import_id).rows.filter(outcome="new").get().name == "Norrsken Bygg AB"
    assert api("GET", f"/imports/{import_id}/rows/", outcome="new").json()["count"] == 1


def test_numbers_too_large_for_the_database_are_not_found_or_refused(admin_user: Any, linked: dict[str, Any]) -> None:
    api, huge = api_for(admin_user), 10**30
    for path in (f"/links/{huge}/", f"/connections/{huge}/"):
        answer = api("GET", path)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", path
    nul = api("GET", "/links/", record="a\x00b")  # refused at the door, before any view: JSON all the same
    assert nul.status_code == 400 and nul.json()["code"] == "invalid" and "NUL" in nul.json()["message"]
    for query in ({"company": huge}, {"page": huge}, {"page_size": 201}):
        answer = api("GET", "/links/", **query)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid", query
    body = {"connection": huge, "record_kind": "company", "record_id": 1, "actor_type": "Customer", "erp_key": "1"}
    assert api("POST", "/links/", body).json()["code"] == "invalid"
    retry = api("POST", f"/connections/{linked['connection'].pk}/failed/retry/", {"links": [huge]})
    assert retry.json()["code"] == "invalid"


def test_an_outsider_with_a_token_reaches_nothing(linked: dict[str, Any]) -> None:
    nobody = UserFactory.create(username="nils")
    api = api_for(nobody)
    assert api("GET", f"/links/{linked['link'].pk}/").status_code == 403
    assert api("POST", f"/links/{linked['link'].pk}/sync/").status_code == 403
    assert not SyncRun.objects.exists()
