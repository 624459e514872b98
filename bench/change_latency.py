"""How long a change takes to reach the other side, with change notifications and sync on save (no polling).

Usage: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/change_latency.py
       [--edits 200] [--links 200] [--every-ms 400] [--burst 1000]
(without them: PostgreSQL database erpsync_bench_latency on 127.0.0.1 and Redis 127.0.0.1:6379/12.)

The stack is the one users run: the CRM's web server (the notify endpoint), a prefork worker of two processes and a
Demo ERP process that notifies; no beat, so nothing is polled. ERP → CRM: a phone changed in the ERP through the
protocol, until the CRM record holds it. CRM → ERP: a phone saved on a linked company, until the ERP holds it. The
edits are made one every --every-ms, each timed on its own. Then a burst of --burst ERP changes at once, and how
many automatic runs it started. Writes bench/results/change_latency.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (
    activate_customers,
    demo_erp_connection,
    ensure_database,
    free_port,
    fresh_database,
    start_worker,
    summary_row,
    use_environment,
    wait_http,
    write_results,
)

use_environment("postgres://127.0.0.1:5432/erpsync_bench_latency", "redis://127.0.0.1:6379/12")
PORT = free_port()
os.environ["ERPSYNC_PUBLIC_URL"] = f"http://127.0.0.1:{PORT}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--links", type=int, default=200)
    parser.add_argument("--every-ms", type=int, default=400)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    import redis
    from django.conf import settings

    from connections import jobs, services
    from connections.models import ErpConnection, Link, SyncRun, SyncSettings
    from connectors import protocol as p
    from crm.models import Company

    fresh_database()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    demo, conn = demo_erp_connection(int(max(args.links, args.burst) / 0.6) + 100)
    processes: list[subprocess.Popen[bytes]] = []
    logs = ROOT / "var"
    logs.mkdir(exist_ok=True)
    try:
        activate_customers(conn)
        services.recheck_connector(conn.connector)  # its health answer names change_notifications
        conn.refresh_from_db()
        erp = conn.connector.client().connection(str(conn.guid), conn.config_values)
        keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors]
        linked_keys = keys[: args.links]
        companies = Company.objects.bulk_create(Company(name=f"Bench {n:04d} AB", phone="") for n in range(args.links))
        Link.objects.bulk_create(
            Link(connection=conn, actor_type="Customer", erp_key=key, company=company)
            for key, company in zip(linked_keys, companies, strict=True)
        )
        env = {**os.environ}
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{PORT}"],
            cwd=ROOT,
            env=env,
            stdout=(logs / "bench-latency-web.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        processes.append(web)
        wait_http(f"http://127.0.0.1:{PORT}/health/", seconds=60)
        worker, worker_log = start_worker(2, "bench-latency-worker", "latency")
        processes.append(worker)

        # Every link in step with a baseline; then the connector is given the CRM's notify URL.
        run = jobs.queue_bulk(conn, "sync_all")
        while SyncRun.objects.filter(pk=run.pk, status__in=["queued", "running"]).exists():
            time.sleep(0.1)
        erp.save()
        ErpConnection.objects.filter(pk=conn.pk).update(notify_url_sent=erp.notify_url)
        assert erp.notify_url, "no notify URL: the connector does not name change_notifications"
        settings_row = SyncSettings.load()
        settings_row.automatic_sync = True
        settings_row.save()

        def timed(make: Any, arrived: Any, edits: int) -> list[float]:
            """Make ``edits`` changes, one every --every-ms, and time each until ``arrived`` sees it."""
            pending: dict[int, tuple[float, str]] = {}
            seconds: list[float] = []
            made = 0
            next_at = time.monotonic()
            give_up = None
            while made < edits or pending:
                now = time.monotonic()
                if made < edits and now >= next_at:
                    value = f"+46 8 {made:03d} {int(now * 1000) % 100000:05d}"
                    pending[made] = (time.monotonic(), value)
                    make(made % args.links, value)
                    made += 1
                    next_at += args.every_ms / 1000
                    give_up = time.monotonic() + 60
                for number in arrived({n: v for n, (_t, v) in pending.items()}):
                    seconds.append(time.monotonic() - pending.pop(number)[0])
                if give_up and time.monotonic() > give_up:
                    raise SystemExit(f"{len(pending)} changes never arrived; see {worker_log}")
                time.sleep(0.02)
            return seconds

        def erp_edit(index: int, value: str) -> None:
            [result] = erp.save_actors(
                [p.Actor(actor_type=p.ActorType.CUSTOMER, key=linked_keys[index], values={"PHONE": value})]
            )
            assert result.ok, result.error

        def in_crm(pending: dict[int, str]) -> list[int]:
            if not pending:
                return []
            phones = dict(
                Company.objects.filter(pk__in=[companies[n % args.links].pk for n in pending]).values_list(
                    "pk", "phone"
                )
            )
            return [n for n, value in pending.items() if phones.get(companies[n % args.links].pk) == value]

        def crm_edit(index: int, value: str) -> None:
            company = Company.objects.get(pk=companies[index].pk)
            company.phone = value
            company.save()  # as the edit form saves it: sync on save

        def in_erp(pending: dict[int, str]) -> list[int]:
            if not pending:
                return []
            wanted_keys = sorted({linked_keys[n % args.links] for n in pending})
            phones = {
                a.key: a.values.get("PHONE")
                for a in erp.get_actors(p.ActorType.CUSTOMER, wanted_keys, ["PHONE"]).actors
            }
            return [n for n, value in pending.items() if phones.get(linked_keys[n % args.links]) == value]

        to_crm = timed(erp_edit, in_crm, args.edits)
        time.sleep(3)  # the echoes of the last ERP edits settle
        to_erp = timed(crm_edit, in_erp, args.edits)

        # A burst of ERP changes at once: how many automatic runs does it start?
        time.sleep(5)
        before = SyncRun.objects.filter(kind="automatic").count()
        started = time.monotonic()
        burst_keys = keys[: args.burst]
        for start in range(0, len(burst_keys), p.MAX_ACTORS_PER_SAVE):
            erp.save_actors(
                [
                    p.Actor(actor_type=p.ActorType.CUSTOMER, key=key, values={"PHONE": f"+47 {n:06d}"})
                    for n, key in enumerate(burst_keys[start : start + p.MAX_ACTORS_PER_SAVE], start=start)
                ]
            )
        while time.monotonic() - started < 20:
            time.sleep(0.5)
        idle = SyncRun.objects.filter(kind="automatic", status__in=["queued", "running"])
        while idle.exists() and time.monotonic() - started < 120:
            time.sleep(0.5)
        burst_runs = SyncRun.objects.filter(kind="automatic").count() - before
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        demo.terminate()
    results: dict[str, Any] = {
        "edits_each_way": args.edits,
        "links": args.links,
        "every_ms": args.every_ms,
        "change_sync_delay_s": settings.ERPSYNC_CHANGE_SYNC_DELAY,
        "erp_to_crm_p50_s": round(statistics.median(to_crm), 2),
        "erp_to_crm_p95_s": round(percentile(to_crm, 0.95), 2),
        "erp_to_crm_max_s": round(max(to_crm), 2),
        "crm_to_erp_p50_s": round(statistics.median(to_erp), 2),
        "crm_to_erp_p95_s": round(percentile(to_erp, 0.95), 2),
        "crm_to_erp_max_s": round(max(to_erp), 2),
        "burst_changes": args.burst,
        "burst_automatic_runs": burst_runs,
    }
    for key, value in results.items():
        print(f"{key:28} {value}")
    worst = max(results["erp_to_crm_p95_s"], results["crm_to_erp_p95_s"])
    table = [
        summary_row(
            f"Change latency, {args.edits} edits each way (notifications and sync on save, no polling)",
            "p95 ≤ 5 s",
            f"ERP → CRM p50 {results['erp_to_crm_p50_s']} s, p95 {results['erp_to_crm_p95_s']} s; "
            f"CRM → ERP p50 {results['crm_to_erp_p50_s']} s, p95 {results['crm_to_erp_p95_s']} s",
            worst <= 5,
        ),
        summary_row(
            f"Automatic runs started by a burst of {args.burst:,} ERP changes",
            "a few",
            f"{burst_runs}",
            burst_runs <= 5,
        ),
    ]
    write_results("change_latency", results, table)


if __name__ == "__main__":
    main()
