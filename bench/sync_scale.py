"""One connection's Sync all spread over worker processes: the same run with 1 worker process and with 4,
against a Demo ERP that waits before every call, as a real ERP does.

Usage: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/sync_scale.py
       [--links 20000] [--latency-ms 200] [--part-size 1000]
(without them: PostgreSQL database erpsync_bench_scale on 127.0.0.1 and Redis 127.0.0.1:6379/13.)
Each Sync all runs in real prefork workers, from queued to ended; the raw floor is the connector's reads alone,
one part after another. Writes bench/results/sync_scale.json.
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

use_environment("postgres://127.0.0.1:5432/erpsync_bench_scale", "redis://127.0.0.1:6379/13", production=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=20_000)
    parser.add_argument("--latency-ms", default="200")
    parser.add_argument("--part-size", type=int, default=1000)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    os.environ["ERPSYNC_PART_SIZE"] = str(args.part_size)

    import django

    django.setup()
    import redis
    from django.conf import settings

    from connections import jobs
    from connections.models import Link, SyncChunk, SyncRun
    from connectors import protocol as p
    from connectors.models import SyncConnector
    from crm.models import Company

    fresh_database()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    demo, conn = demo_erp_connection(int(args.links / 0.6) + 100, latency_ms=args.latency_ms)
    figures: dict[str, float] = {}
    peaks: dict[str, int] = {}
    try:
        wanted = activate_customers(conn)
        SyncConnector.objects.filter(pk=conn.connector_id).update(max_parallel_parts=4)
        erp = conn.connector.client().connection(str(conn.guid), conn.config_values)
        keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors]
        keys = keys[: args.links]
        companies = Company.objects.bulk_create(Company(name=f"Bench {n:06d} AB", phone="") for n in range(len(keys)))
        Link.objects.bulk_create(
            Link(connection=conn, actor_type="Customer", erp_key=key, company=company)
            for key, company in zip(keys, companies, strict=True)
        )

        def sync_all(processes: int, label: str) -> float:
            worker, _log = start_worker(processes, f"bench-scale-{label}", label)
            try:
                started = time.perf_counter()
                run = jobs.queue_bulk(conn, "sync_all")
                while SyncRun.objects.filter(pk=run.pk, status__in=["queued", "running"]).exists():
                    time.sleep(0.05)
                seconds = time.perf_counter() - started
                run.refresh_from_db()
                assert run.status == "succeeded" and run.done == len(keys), (run.status, run.done, run.error)
                workers = set(SyncChunk.objects.filter(run=run).values_list("worker", flat=True))
                print(f"{label}: {seconds:.1f} s, {len(workers)} processes worked on its parts")
                peaks[label] = peak_rss_mb(worker.pid)
                return seconds
            finally:
                worker.terminate()
                worker.wait(30)

        # A first Sync all makes every link's baseline; the figures are Sync all of links already in step, the
        # run a Sync all is most of the time.
        sync_all(4, "first")
        figures["one"] = sync_all(1, "one")
        figures["four"] = sync_all(4, "four")

        # The raw floor: the connector's reads of every part, one after another (what one process waits for).
        started = time.perf_counter()
        for start in range(0, len(keys), args.part_size):
            erp.get_actors(p.ActorType.CUSTOMER, keys[start : start + args.part_size], list(wanted))
        figures["floor"] = time.perf_counter() - started
    finally:
        demo.terminate()
    speedup = figures["one"] / figures["four"]
    results: dict[str, Any] = {
        "links": len(keys),
        "latency_ms": args.latency_ms,
        "part_size": args.part_size,
        "one_process_seconds": round(figures["one"], 1),
        "four_processes_seconds": round(figures["four"], 1),
        "speedup": round(speedup, 2),
        "speedup_target": 3,
        "raw_floor_reads_seconds": round(figures["floor"], 1),
        "worker_peak_rss_mb": peaks,
    }
    for key, value in results.items():
        print(f"{key:32} {value}")
    table = [
        summary_row(
            f"Sync all of {len(keys):,} links, Demo ERP at {args.latency_ms} ms a call: 4 worker processes against 1",
            "≥ 3× faster",
            f"{figures['four']:.1f} s against {figures['one']:.1f} s: {speedup:.1f}×",
            speedup >= 3,
            round(figures["four"] / figures["floor"], 1),
        )
    ]
    write_results("sync_scale", results, table)


if __name__ == "__main__":
    main()
