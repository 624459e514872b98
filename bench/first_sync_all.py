"""The first Sync all of one connection with a very large number of new links, on real prefork workers with the
default time limits: every record is written (no link has a baseline yet), part after part.

Usage: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/first_sync_all.py
       [--links 1000000] [--processes 2]
(without them: PostgreSQL database erpsync_bench_first on 127.0.0.1 and Redis 127.0.0.1:6379/11.)
Records the time from queued to ended, the parts, and the peak resident memory of each worker process; writes
bench/results/first_sync_all.json.
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
    children,
    demo_erp_connection,
    ensure_database,
    fresh_database,
    start_worker,
    summary_row,
    use_environment,
    write_results,
)

# DEBUG off, as in production: with DEBUG on, Django keeps the text of each connection's last 9,000 queries, which
# at a thousand rows a statement is most of a worker's memory.
use_environment("postgres://127.0.0.1:5432/erpsync_bench_first", "redis://127.0.0.1:6379/11", production=True)


def peak_rss_each_mb(pid: int) -> list[int]:
    """The peak resident size of each of the worker's pool processes, in MB."""
    peaks = []
    for child in children(pid):
        try:
            lines = Path(f"/proc/{child}/status").read_text().splitlines()
        except OSError:
            continue
        peaks += [int(line.split()[1]) // 1024 for line in lines if line.startswith("VmHWM:")]
    return sorted(peaks, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    import redis
    from django.conf import settings

    from connections import jobs
    from connections.choices import RunKind
    from connections.models import Link, SyncRun
    from connectors import protocol as p
    from connectors.models import SyncConnector
    from crm.models import Company

    fresh_database()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    started = time.perf_counter()
    demo, conn = demo_erp_connection(int(args.links / 0.6) + 100)
    try:
        activate_customers(conn)
        SyncConnector.objects.filter(pk=conn.connector_id).update(max_parallel_parts=args.processes)
        erp = conn.connector.client().connection(str(conn.guid), conn.config_values)
        keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors]
        keys = keys[: args.links]
        for start in range(0, len(keys), 50_000):
            batch = keys[start : start + 50_000]
            companies = Company.objects.bulk_create(
                (Company(name=f"Bench {start + n:07d} AB", phone="") for n in range(len(batch))), batch_size=5000
            )
            Link.objects.bulk_create(
                (
                    Link(connection=conn, actor_type="Customer", erp_key=key, company=company)
                    for key, company in zip(batch, companies, strict=True)
                ),
                batch_size=5000,
            )
        print(f"{len(keys):,} links ready after {time.perf_counter() - started:.0f} s")

        worker, log = start_worker(args.processes, "bench-first-sync-all", "first")
        try:
            run = jobs.queue_bulk(conn, RunKind.SYNC_ALL)
            began = time.perf_counter()
            peaks: list[int] = []
            while SyncRun.objects.filter(pk=run.pk, status__in=["queued", "running"]).exists():
                time.sleep(2)
                peaks = peak_rss_each_mb(worker.pid) or peaks
                run.refresh_from_db()
                print(f"\r{run.done:,} of {run.total:,} after {time.perf_counter() - began:.0f} s", end="", flush=True)
            seconds = time.perf_counter() - began
            print()
        finally:
            worker.terminate()
            worker.wait(60)
        run.refresh_from_db()
        assert run.status == "succeeded", (run.status, run.error, f"see {log}")
        written = Link.objects.filter(connection=conn, last_synced_at__isnull=False).count()
        processes_used = len(set(run.chunks.exclude(worker="").values_list("worker", flat=True)))
    finally:
        demo.terminate()
    results: dict[str, Any] = {
        "links": len(keys),
        "worker_processes": args.processes,
        "seconds": round(seconds, 1),
        "links_per_second": round(len(keys) / seconds),
        "links_synced": written,
        "fields_changed": run.changed,
        "parts": run.chunks.count(),
        "processes_that_ran_parts": processes_used,
        "part_size": settings.ERPSYNC_PART_SIZE,
        "soft_time_limit_seconds": settings.CELERY_TASK_SOFT_TIME_LIMIT,
        "worker_peak_rss_mb": peaks,
    }
    for key, value in results.items():
        print(f"{key:28} {value}")
    table = [
        summary_row(
            f"first Sync all of {len(keys):,} links, default time limits, {args.processes} worker processes",
            "completes; time and peak RSS per worker recorded",
            f"{seconds:,.0f} s ({len(keys) / seconds:,.0f} links/s), every link synced once ({written:,}); "
            f"{run.chunks.count():,} parts; peak RSS per worker process " + ", ".join(f"{mb} MB" for mb in peaks),
            written == len(keys),
        )
    ]
    write_results("first_sync_all", results, table)


if __name__ == "__main__":
    main()
