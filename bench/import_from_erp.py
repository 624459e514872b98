"""Import from ERP at 100,000 Customers, through a real worker, against a Demo ERP process.

Usage: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python bench/import_from_erp.py
(without them: a SQLite file under var/ and Redis on 127.0.0.1:6379/13).

Three figures, each end to end (preview queued → plan written → undecided rows decided → import finished):
1. 100,000 Customers into an empty CRM;
2. the raw floor: a bulk insert of the same 100,000 companies and links, nothing else;
3. the same 100,000 Customers matched against 100,000 existing, unlinked companies (link and update).
The worker runs with the solo pool, so its peak RSS is the work's. Writes bench/results/import_from_erp.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (
    demo_erp_connection,
    fresh_database,
    map_nordic_countries,
    start_worker,
    summary_row,
    use_environment,
    write_results,
)

use_environment(f"sqlite:///{ROOT / 'var' / 'bench-import.sqlite3'}", "redis://127.0.0.1:6379/13", production=True)
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
# Demo ERP seeds 12 customers in every 20 actors: this many actors hold exactly CUSTOMERS customers.
SEED_ACTORS = CUSTOMERS // 12 * 20 + CUSTOMERS % 12
MAPPED = ("NAME", "NUMBER2", "VATNO", "PHONE", "EMAIL", "URL", "POSTALAD1", "POSTALZIP", "POSTALCITY", "COUNTRY")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):  # not allowed here: the peak then covers the whole run
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> None:
    import django

    django.setup()
    from django.db import connection as db
    from django.db import transaction

    from connections import importing, mapping, services
    from connections.bulk import insert_rows
    from connections.choices import ImportAction
    from connections.models import ErpImport, Link, SyncRun, SyncSettings
    from crm.models import Company

    fresh_database()
    print(f"seeding Demo ERP with {SEED_ACTORS} actors ({CUSTOMERS} customers) …")
    demo, conn = demo_erp_connection(SEED_ACTORS)
    worker = None
    try:
        rows = [
            mapping.FieldRow(
                f.key,
                f.key if f.key in MAPPED else "",
                "erp_to_crm" if f.key == "NUMBER2" else "both" if f.key in MAPPED else "",
                f.key == "NAME",
                False,
            )
            for f in conn.erp_fields.filter(actor_type="Customer")
        ]
        mapping.save_field_mapping(conn, "Customer", True, rows, None)
        map_nordic_countries(conn)
        services.set_active(conn, True, None)
        SyncSettings.objects.update_or_create(pk=1, defaults={"automatic_sync": False})
        conn.refresh_from_db()

        worker, _ = start_worker(1, "bench-import-worker", "import", pool="solo")

        def wait(run_id: int | None, what: str) -> SyncRun:
            deadline = time.monotonic() + 1800
            while True:
                run = SyncRun.objects.get(pk=run_id or 0)
                if run.status not in ("queued", "running"):
                    assert run.status in ("succeeded", "partially_failed"), (what, run.status, run.error)
                    return run
                if time.monotonic() > deadline:
                    raise SystemExit(f"{what} did not finish: is a broker reachable at CELERY_BROKER_URL?")
                time.sleep(0.1)

        def import_everything(label: str) -> dict[str, float | int]:
            assert worker is not None
            reset_peak(worker.pid)
            started = time.perf_counter()
            erp_import = importing.start_preview(conn, "Customer", everything=True)
            wait(erp_import.preview_run_id, f"{label}: preview")
            previewed = time.perf_counter()
            erp_import = ErpImport.objects.get(pk=erp_import.pk)
            summary = importing.summary(erp_import)
            importing.decide_all(erp_import, ImportAction.CREATE)  # what an admin does with ERP twins here
            run = wait(importing.start_import(erp_import).pk, f"{label}: import")
            finished = time.perf_counter()
            outcomes = importing.summary(erp_import)["outcomes"]
            figures: dict[str, float | int] = {
                "seconds": round(finished - started, 1),
                "preview_seconds": round(previewed - started, 1),
                "import_seconds": round(finished - previewed, 1),
                "new": outcomes["new"],
                "updated": outcomes["updated"],
                "failed": run.failed,
                "undecided_in_plan": summary["undecided"],
                "worker_peak_rss_mb": round(peak_rss_mb(worker.pid)),
            }
            print(label, figures)
            return figures

        into_empty = import_everything("into an empty CRM")
        assert Company.objects.count() == CUSTOMERS and Link.objects.count() == CUSTOMERS

        # The raw floor: the same companies and links, inserted in bulk with nothing decided or read.
        columns = [f.attname for f in Company._meta.concrete_fields if f.attname != "id"]
        companies = list(Company.objects.values(*columns))
        links = list(Link.objects.values("erp_key", "baseline", "erp_last_modified"))
        Link.objects.all().delete()
        Company.objects.all().delete()
        started = time.perf_counter()
        with transaction.atomic():  # the fastest insert this database has (COPY on PostgreSQL), as the import uses
            for start in range(0, len(companies), 1000):
                created = [Company(**values) for values in companies[start : start + 1000]]
                insert_rows(Company, created)
                insert_rows(
                    Link,
                    [
                        Link(connection=conn, actor_type="Customer", company=company, **link)
                        for company, link in zip(created, links[start : start + 1000], strict=True)
                    ],
                )
        raw_floor = time.perf_counter() - started
        print("raw floor", round(raw_floor, 1))

        # 100,000 actors against 100,000 existing records: the companies stay, their links go.
        Link.objects.all().delete()
        matched = import_everything(f"matched against {CUSTOMERS:,} existing")
        assert Company.objects.count() == CUSTOMERS and Link.objects.count() == CUSTOMERS
    finally:
        demo.terminate()
        if worker is not None:
            worker.terminate()
    results: dict[str, Any] = {
        "database": db.vendor,
        "customers": CUSTOMERS,
        "into_empty_crm": into_empty,
        "target_seconds": 60,
        "target_worker_rss_mb": 400,
        "raw_floor_seconds": round(raw_floor, 1),
        "ratio_to_floor": round(float(into_empty["seconds"]) / raw_floor, 1),
        "matched_against_existing": matched,
    }
    print(json.dumps(results, indent=2))
    peak = max(int(into_empty["worker_peak_rss_mb"]), int(matched["worker_peak_rss_mb"]))
    table = [
        summary_row(
            f"{CUSTOMERS:,} Customers into an empty CRM, end to end",
            "≤ 60 s and ≤ 2.5× the raw floor",
            f"{into_empty['seconds']} s (preview {into_empty['preview_seconds']} s, import "
            f"{into_empty['import_seconds']} s); {into_empty['undecided_in_plan']:,} rows needed a decision",
            float(into_empty["seconds"]) <= 60 and results["ratio_to_floor"] <= 2.5,
            results["ratio_to_floor"],
        ),
        summary_row(
            f"{CUSTOMERS:,} Customers matched against {CUSTOMERS:,} existing companies",
            "—",
            f"{matched['seconds']} s (preview {matched['preview_seconds']} s, import {matched['import_seconds']} s); "
            f"{matched['undecided_in_plan']:,} rows needed a decision",
            None,
        ),
        summary_row("worker peak memory (RSS)", "≤ 400 MB", f"{peak} MB", peak <= 400),
    ]
    write_results("import_from_erp", results, table)


if __name__ == "__main__":
    main()
