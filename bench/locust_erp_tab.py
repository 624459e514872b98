"""Locust users for bench/erp_tab_load.py: each logs in once, then opens ERP tabs of linked companies.

The company ids come from ERPSYNC_BENCH_COMPANIES (comma-separated), the login from ERPSYNC_BENCH_USER.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

COMPANIES = [int(pk) for pk in os.environ.get("ERPSYNC_BENCH_COMPANIES", "").split(",") if pk]


class SalesUser(HttpUser):
    # A person reading record pages: a page every half to one and a half seconds.
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        # The app runs with production settings behind a TLS proxy: the proxy's header says the request came
        # over HTTPS, and the (Secure) cookies are sent by hand, as the browser would over HTTPS.
        self.client.headers["X-Forwarded-Proto"] = "https"
        first = self.client.get("/login/", name="login page")
        token = first.cookies.get("csrftoken", "")
        user = os.environ.get("ERPSYNC_BENCH_USER", "anna")
        answer = self.client.post(
            "/login/",
            data={"username": user, "password": "demo", "csrfmiddlewaretoken": token},
            headers={
                "Referer": str(self.host).replace("http://", "https://") + "/login/",
                "Cookie": f"csrftoken={token}",
            },
            name="log in",
            allow_redirects=False,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"log in failed: {answer.status_code}")
        self.client.cookies.clear()
        self.client.headers["Cookie"] = f"sessionid={answer.cookies.get('sessionid', '')}"

    @task
    def erp_tab(self) -> None:
        pk = random.choice(COMPANIES)  # noqa: S311  (which page to read, not a secret)
        with self.client.get(
            f"/companies/{pk}/tabs/erp/", name="ERP tab, 3 connections", catch_response=True
        ) as answer:
            page = answer.text or ""
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}")
            elif page.count('class="card erp-section"') != 3:
                answer.failure("not three connection sections")
            elif "cannot be reached right now" in page:
                answer.failure("a connector was reported unreachable")
