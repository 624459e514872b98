"""The sync engine at 10,000 links against a Demo ERP process.

Usage: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/sync_engine.py
(without them: a SQLite file under var/ and Redis on 127.0.0.1:6379/13 for the Sync now figure).
Prints each figure beside the raw floor (the same connector reads and bulk updates, no engine logic) and
writes bench/results/sync_engine.json.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (
    demo_erp_connection,
    ensure_database,
    fresh_database,
    map_nordic_countries,
    summary_row,
    use_environment,
    write_results,
)

use_environment(f"sqlite:///{ROOT / 'var' / 'bench-sync.sqlite3'}", "redis://127.0.0.1:6379/13")
LINKS = 10_000


def main() -> None:
    if os.environ["DATABASE_URL"].startswith("postgres"):
        ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.db import connection as db
    from django.utils import timezone

    from connections import jobs, mapping, services
    from connections.models import ErpConnection, Link, SyncRun, SyncSettings
    from connectors import protocol as p
    from crm.models import Company

    fresh_database()
    demo, conn = demo_erp_connection(int(LINKS / 0.6) + 100)
    worker = None
    try:
        wanted = {
            "NAME": ("NAME", "both"),
            "PHONE": ("PHONE", "both"),
            "EMAIL": ("EMAIL", "erp_to_crm"),
            "COUNTRY": ("COUNTRY", "erp_to_crm"),
        }
        rows = [
            mapping.FieldRow(f.key, *wanted.get(f.key, ("", "")), False, False)
            for f in conn.erp_fields.filter(actor_type="Customer")
        ]
        mapping.save_field_mapping(conn, "Customer", True, rows, None)
        map_nordic_countries(conn)
        services.set_active(conn, True, None)
        SyncSettings.objects.update_or_create(pk=1, defaults={"crm_priority": 1})
        ErpConnection.objects.filter(pk=conn.pk).update(priority=0)
        conn.refresh_from_db()
        erp = conn.connector.client().connection(str(conn.guid), conn.config_values)

        keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors][:LINKS]
        companies = Company.objects.bulk_create(Company(name=f"Bench {n:05d} AB", phone="") for n in range(LINKS))
        Link.objects.bulk_create(
            Link(connection=conn, actor_type="Customer", erp_key=key, company=company)
            for key, company in zip(keys, companies, strict=True)
        )

        def run(kind: str) -> tuple[float, SyncRun]:
            started = time.perf_counter()
            sync_run = SyncRun.objects.create(connection=conn, kind=kind)
            jobs.run_sync.apply(kwargs={"run_id": sync_run.pk})
            sync_run.refresh_from_db()
            assert sync_run.status == "succeeded", (sync_run.status, sync_run.error)
            return time.perf_counter() - started, sync_run

        first, first_run = run("sync_all")  # every link is new: a full sync
        run("automatic")  # catch the cursor up to now
        changed_erp = keys[:100]
        saved = erp.save_actors(
            [
                p.Actor(actor_type=p.ActorType.CUSTOMER, key=k, values={"PHONE": f"+46 {n}"})
                for n, k in enumerate(changed_erp)
            ]
        )
        assert all(result.ok for result in saved)
        Company.objects.filter(pk__in=[c.pk for c in companies[5000:5100]]).update(
            phone="+46 CRM", updated_at=timezone.now()
        )
        automatic, automatic_run = run("automatic")
        resync, _resync_run = run("resync")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # The raw floor: the same connector reads and CRM bulk updates, no engine logic.
        started = time.perf_counter()
        actors = erp.get_actors(p.ActorType.CUSTOMER, keys, ["NAME", "PHONE", "EMAIL", "COUNTRY"]).actors
        by_key = {a.key: a for a in actors}
        for company, key in zip(companies, keys, strict=True):
            company.phone = str(by_key[key].values.get("PHONE") or "")
        Company.objects.bulk_update(companies, ["phone"], batch_size=1000)
        raw_full = time.perf_counter() - started

        # Sync now through a real worker, warm.
        env = {**os.environ}
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "erpsync_admin",
                "worker",
                "--pool=threads",
                "--concurrency=4",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        link = Link.objects.filter(connection=conn).first()
        assert link is not None
        timings = []
        for attempt in range(25):
            started = time.perf_counter()
            sync_run, _created = services.start_sync_now(link, None)
            while SyncRun.objects.filter(pk=sync_run.pk, status__in=["queued", "running"]).exists():
                time.sleep(0.005)
                if time.perf_counter() - started > 30:
                    raise SystemExit("Sync now did not finish: is a broker reachable at CELERY_BROKER_URL?")
            if attempt >= 5:  # the first ones warm the worker up
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        demo.terminate()
        if worker is not None:
            worker.terminate()
    results: dict[str, Any] = {
        "database": db.vendor,
        "links": LINKS,
        "full_sync_all_seconds": round(first, 2),
        "full_sync_changed": first_run.changed,
        "automatic_100_erp_100_crm_seconds": round(automatic, 2),
        "automatic_changed": automatic_run.changed,
        "automatic_target_seconds": 5,
        "resync_seconds": round(resync, 2),
        "resync_target_seconds": 30,
        "raw_floor_full_seconds": round(raw_full, 2),
        "resync_ratio_to_floor": round(resync / raw_full, 1),
        "engine_process_peak_rss_mb": round(rss_mb),
        "rss_target_mb": 300,
        "sync_now_p50_ms": round(statistics.median(timings)),
        "sync_now_p95_ms": round(sorted(timings)[int(len(timings) * 0.95) - 1]),
        "sync_now_target_p50_ms": 250,
    }
    for key, value in results.items():
        print(f"{key:40} {value}")
    r = results
    table = [
        summary_row(
            f"{LINKS:,} links: automatic sync of 100 ERP + 100 CRM changes",
            "≤ 5 s",
            f"{automatic:.2f} s",
            automatic <= 5,
        ),
        summary_row(
            f"resync from CRM of all {LINKS:,} links",
            "≤ 30 s",
            f"{resync:.1f} s",
            resync <= 30,
            r["resync_ratio_to_floor"],
        ),
        summary_row(
            f"first Sync all of {LINKS:,} new links (every record written)", "≤ 15 s", f"{first:.1f} s", first <= 15
        ),
        summary_row(
            "peak memory of the process running it",
            "≤ 300 MB",
            f"{r['engine_process_peak_rss_mb']} MB",
            r["engine_process_peak_rss_mb"] <= 300,
        ),
        summary_row(
            "Sync now, queued → finished, warm worker, one at a time",
            "p50 ≤ 250 ms",
            f"p50 {r['sync_now_p50_ms']} ms, p95 {r['sync_now_p95_ms']} ms",
            r["sync_now_p50_ms"] <= 250,
        ),
    ]
    write_results("sync_engine", results, table)


if __name__ == "__main__":
    main()
