"""Reconciliation of one connection's links at Demo ERP's default speed: time and the workers' peak memory.

Usage: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/reconcile.py
       [--links 100000] [--processes 2] [--changed 1000]
(without them: PostgreSQL database erpsync_bench_reconcile on 127.0.0.1 and Redis 127.0.0.1:6379/3.)
The links are brought in step by a first Sync all; then ``--changed`` customers change in the ERP and as many
companies in the CRM, and a reconciliation runs in real prefork workers, from queued to ended. The raw floor is the
reads a reconciliation cannot do without: every link's ERP actor (GetActors in parts) and CRM record, one part after
another. Writes bench/results/reconcile.json.
"""

from __future__ import annotations

import argparse
import os
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
    fresh_database,
    peak_rss_mb,
    start_worker,
    summary_row,
    use_environment,
    write_results,
)

use_environment("postgres://127.0.0.1:5432/erpsync_bench_reconcile", "redis://127.0.0.1:6379/3", production=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--changed", type=int, default=1000)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    import redis
    from django.conf import settings

    from connections import jobs
    from connections.choices import RunKind
    from connections.models import Link, SyncRun
    from connections.sync import reconcile
    from connectors import protocol as p
    from connectors.models import SyncConnector
    from crm.models import Company

    fresh_database()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    demo, conn = demo_erp_connection(int(args.links / 0.6) + 100)
    try:
        wanted = activate_customers(conn)
        SyncConnector.objects.filter(pk=conn.connector_id).update(max_parallel_parts=args.processes)
        erp = conn.connector.client().connection(str(conn.guid), conn.config_values)
        keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors]
        keys = keys[: args.links]
        companies = Company.objects.bulk_create(Company(name=f"Bench {n:06d} AB", phone="") for n in range(len(keys)))
        links = Link.objects.bulk_create(
            Link(connection=conn, actor_type="Customer", erp_key=key, company=company)
            for key, company in zip(keys, companies, strict=True)
        )

        def until_ended(run: SyncRun) -> tuple[SyncRun, float]:
            started = time.perf_counter()
            while SyncRun.objects.filter(pk=run.pk, status__in=["queued", "running"]).exists():
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            run.refresh_from_db()
            assert run.status == "succeeded", (run.status, run.error)
            return run, seconds

        worker, _log = start_worker(args.processes, "bench-reconcile", "reconcile")
        try:
            _first, first_seconds = until_ended(jobs.queue_bulk(conn, RunKind.SYNC_ALL))
            print(f"first Sync all: {first_seconds:.1f} s")
            # Some records drift: phones changed in the ERP (through the protocol) and in the CRM.
            step = max(1, len(links) // max(1, args.changed))
            in_erp = links[::step][: args.changed]
            in_crm = links[step // 2 :: step][: args.changed]
            for start in range(0, len(in_erp), p.MAX_KEYS_PER_CALL):
                batch = in_erp[start : start + p.MAX_KEYS_PER_CALL]
                erp.save_actors(
                    [
                        p.Actor(actor_type=p.ActorType.CUSTOMER, key=link.erp_key, values={"PHONE": f"+46 8 {n:06d}"})
                        for n, link in enumerate(batch)
                    ],
                )
            Company.objects.filter(pk__in=[link.company_id for link in in_crm]).update(phone="+46 31 00 00 00")
        finally:
            worker.terminate()
            worker.wait(30)
        # A fresh worker, so that its peak memory is the reconciliation's alone.
        worker, _log = start_worker(args.processes, "bench-reconcile", "reconcile")
        try:
            reconciled, seconds = until_ended(reconcile.queue_reconcile(conn))
            rss = peak_rss_mb(worker.pid)
        finally:
            worker.terminate()
            worker.wait(30)
        found = reconcile.summary(conn)
        print(f"reconciliation: {seconds:.1f} s, {found}")

        # The raw floor: every actor read through the protocol and every CRM record read, part after part.
        started = time.perf_counter()
        size = settings.ERPSYNC_PART_SIZE
        for start in range(0, len(keys), size):
            erp.get_actors(p.ActorType.CUSTOMER, keys[start : start + size], list(wanted))
            list(Company.objects.filter(pk__in=[link.company_id for link in links[start : start + size]]))
        floor = time.perf_counter() - started
    finally:
        demo.terminate()
    results: dict[str, Any] = {
        "links": len(keys),
        "worker_processes": args.processes,
        "changed_each_side": args.changed,
        "first_sync_all_seconds": round(first_seconds, 1),
        "reconcile_seconds": round(seconds, 1),
        "links_per_second": round(len(keys) / seconds),
        "found": found,
        "parts": reconciled.chunks.count(),
        "worker_peak_rss_mb": rss,
        "raw_floor_seconds": round(floor, 1),
    }
    for key, value in results.items():
        print(f"{key:28} {value}")
    table = [
        summary_row(
            f"Reconciliation of {len(keys):,} links ({args.changed:,} changed on each side), "
            f"{args.processes} worker processes",
            "—",
            f"{seconds:.1f} s ({len(keys) / seconds:,.0f} links/s); found {found['drifted']:,} drifted, "
            f"{found['in_step']:,} in step; peak RSS {rss} MB per worker",
            None,
            round(seconds / floor, 1),
        )
    ]
    write_results("reconcile", results, table)


if __name__ == "__main__":
    main()
