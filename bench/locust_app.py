"""Locust users for bench/load_test.py: end users reading companies, end users pressing Sync now, an admin.

Every user logs in once (production settings behind a TLS proxy, as in locust_erp_tab.py), then:
- SalesUser (most users, one page every 1 to 3 s): the company list (first page, another page, a search), a
  linked company's page and its ERP tab, or an unlinked company's page, its ERP tab and the ERP search the
  tab makes when it loads.
- SyncNowUser (a tenth of the users, at least one): Sync now on a linked company at a steady pace (one every
  ERPSYNC_BENCH_SYNC_NOW_EVERY seconds each), then the run's status every 0.5 s, as the ERP tab polls, until
  it finished; "Sync now, queued → finished" records that whole time, and fails if the run did not succeed.
- AdminUser (one): the Sync tab (Settings and maintenance → Quote/Sync → Sync) every 2 to 5 s.

A request fails on a status other than the expected one, and on a page that lacks what it must show (or shows
a connector as unreachable). The ids come from the file ERPSYNC_BENCH_DATA names, written by load_test.py.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from locust import HttpUser, between, constant_pacing, task

# What load_test.py seeded: {"linked": [[company id, link id], …], "unlinked": [[company id, name], …],
# "connection": id, "connection_name": name, "list_pages": the company list's page count}.
DATA: dict[str, Any] = (
    json.loads(Path(os.environ["ERPSYNC_BENCH_DATA"]).read_text())
    if os.environ.get("ERPSYNC_BENCH_DATA")
    else {"linked": [], "unlinked": [], "connection": 0, "connection_name": "", "list_pages": 1}
)
SYNC_NOW_EVERY = float(os.environ.get("ERPSYNC_BENCH_SYNC_NOW_EVERY", "3"))
SYNC_NOW_USERS = int(os.environ.get("ERPSYNC_BENCH_SYNC_NOW_USERS", "1"))
SEARCHES = ("nord", "bench 01", "ab", "bygg", "oy")
UNREACHABLE = "cannot be reached right now"


def _pick(items: list[Any]) -> Any:
    return random.choice(items)  # noqa: S311  (which page to read, not a secret)


class LoggedInUser(HttpUser):
    abstract = True
    username = "anna"

    def on_start(self) -> None:
        # The app runs with production settings behind a TLS proxy: the proxy's header says the request came
        # over HTTPS, and the (Secure) cookies are sent by hand, as the browser would over HTTPS.
        self.client.headers["X-Forwarded-Proto"] = "https"
        self.origin = str(self.host).replace("http://", "https://")
        first = self.client.get("/login/", name="log in page")
        token = first.cookies.get("csrftoken", "")
        answer = self.client.post(
            "/login/",
            data={"username": self.username, "password": "demo", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.origin}/login/", "Cookie": f"csrftoken={token}"},
            name="log in",
            allow_redirects=False,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"log in as {self.username} failed: {answer.status_code}")
        # Logging in rotates the CSRF token: the new one signs this user's POSTs.
        self.csrf = answer.cookies.get("csrftoken", token)
        self.client.cookies.clear()
        self.client.headers["Cookie"] = f"sessionid={answer.cookies.get('sessionid', '')}; csrftoken={self.csrf}"

    def page(self, url: str, name: str, must: tuple[str, ...] = (), must_not: tuple[str, ...] = ()) -> str:
        """GET a page; it fails unless it answers 200 with everything in ``must`` and nothing in ``must_not``."""
        with self.client.get(url, name=name, catch_response=True, allow_redirects=False) as answer:
            text = answer.text or ""
            missing = [m for m in must if m not in text]
            present = [m for m in must_not if m in text]
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}")
            elif missing:
                answer.failure(f"page lacks {missing[0]!r}")
            elif present:
                answer.failure(f"page shows {present[0]!r}")
            return text


class SalesUser(LoggedInUser):
    # A person reading record pages: a page every one to three seconds.
    wait_time = between(1, 3)
    weight = 1

    @task(2)
    def company_list(self) -> None:
        self.page("/companies/", "company list", must=('id="record-table"', "<tbody>"))

    @task(1)
    def company_list_other_page(self) -> None:
        page = random.randint(2, max(2, int(DATA["list_pages"])))  # noqa: S311
        self.page(f"/companies/?page={page}", "company list, another page", must=('id="record-table"', "<tbody>"))

    @task(1)
    def company_search(self) -> None:
        query = random.choice(SEARCHES)  # noqa: S311
        self.page(f"/companies/?q={query.replace(' ', '+')}", "company search", must=('id="record-table"',))

    @task(3)
    def linked_company(self) -> None:
        pk, _link = _pick(DATA["linked"])
        self.page(f"/companies/{pk}/", "company page", must=(f"/companies/{pk}/tabs/erp/",))
        self.page(
            f"/companies/{pk}/tabs/erp/",
            "ERP tab, linked company",
            must=('class="card erp-section"', "Linked to Customer", "/sync-now/"),
            must_not=(UNREACHABLE,),
        )

    @task(1)
    def unlinked_company(self) -> None:
        pk, name = _pick(DATA["unlinked"])
        self.page(f"/companies/{pk}/", "company page", must=(f"/companies/{pk}/tabs/erp/",))
        self.page(
            f"/companies/{pk}/tabs/erp/",
            "ERP tab, unlinked company",
            must=('class="card erp-section"', "Not linked to"),
            must_not=(UNREACHABLE,),
        )
        # The tab's search form fires when it loads (hx-trigger="load"): the ERP is searched for the name.
        self.page(
            f"/erp/connect/{DATA['connection']}/{pk}/?kind=company&q={quote_plus(name)}",
            "ERP search as the tab loads",
            must_not=("message-warning",),
        )


class SyncNowUser(LoggedInUser):
    """Presses Sync now on a linked company at a steady pace and follows the run until it finished."""

    wait_time = constant_pacing(SYNC_NOW_EVERY)
    fixed_count = SYNC_NOW_USERS

    @task
    def sync_now(self) -> None:
        _company, link = _pick(DATA["linked"])
        started = time.perf_counter()
        with self.client.post(
            f"/erp/links/{link}/sync-now/",
            headers={"X-CSRFToken": self.csrf, "Referer": f"{self.origin}/companies/"},
            name="Sync now",
            catch_response=True,
            allow_redirects=False,
        ) as answer:
            # 202: a new run; 200: a run for this link was already queued or running, and that one is answered.
            run = self._json(answer) if answer.status_code in (200, 202) else {}
            if answer.status_code not in (200, 202):
                answer.failure(f"HTTP {answer.status_code}: {(answer.text or '')[:200]}")
                return
            if not run.get("run"):
                answer.failure("no run id in the answer")
                return
        status = str(run.get("status", ""))
        while status in ("queued", "running"):
            if time.perf_counter() - started > 60:
                self._finished(started, "still queued or running after 60 s")
                return
            time.sleep(0.5)  # the ERP tab polls every half second
            with self.client.get(
                str(run["url"]), name="Sync now, run status", catch_response=True, allow_redirects=False
            ) as polled:
                if polled.status_code != 200:
                    polled.failure(f"HTTP {polled.status_code}")
                    return
                run = self._json(polled)
                status = str(run.get("status", ""))
        self._finished(started, "" if status == "succeeded" else f"run {run.get('run')} {status}: {run.get('error')}")

    def _json(self, answer: Any) -> dict[str, Any]:
        try:
            return dict(json.loads(answer.text or "{}"))
        except ValueError:
            answer.failure("not JSON")
            return {}

    def _finished(self, started: float, problem: str) -> None:
        self.environment.events.request.fire(
            request_type="RUN",
            name="Sync now, queued → finished",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=RuntimeError(problem) if problem else None,
            context={},
        )


class AdminUser(LoggedInUser):
    """An ERP administrator looking at the Sync tab now and then."""

    username = "erpadmin"
    wait_time = between(2, 5)
    fixed_count = 1

    @task
    def sync_tab(self) -> None:
        self.page(
            "/settings/quote-sync/sync/", "Sync tab (admin)", must=("connections-heading", str(DATA["connection_name"]))
        )
