"""The sync log's CSV export of 1,000,000 rows, over HTTP from gunicorn, with the web worker's peak memory.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/erpsync_bench .venv/bin/python bench/sync_log_export.py
       [--rows 1000000]
The database is emptied first, then filled in PostgreSQL itself (INSERT ... SELECT generate_series) with one
connection, 1,000 linked companies, 100 runs and --rows log rows in the shapes the engine writes (a field,
which way, old → new, why). gunicorn runs as the Dockerfile runs it (2 sync workers, production settings,
behind X-Forwarded-Proto: https), with the project's gunicorn.conf.py (timeout 300 s); an admin's session downloads the whole
unfiltered log through the
Export CSV URL, and the download is counted as it arrives, never kept. The figure that matters is the peak
resident memory (VmHWM) of the gunicorn worker that served it, against 150 MB. The raw floor is PostgreSQL's
own COPY of the same rows and columns to CSV, read by this process. Linux only (it reads /proc).
Writes bench/results/sync_log_export.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (
    ensure_database,
    free_port,
    fresh_database,
    summary_row,
    use_environment,
    wait_http,
    write_results,
)

use_environment("postgres://postgres@127.0.0.1:5432/erpsync_bench", production=True)
os.environ.setdefault("LOG_LEVEL", "WARNING")
TARGET_RSS_MB = 150
# The Dockerfile's gunicorn; its timeout (300 s) comes from the project's gunicorn.conf.py, read from the folder it
# starts in: with gunicorn's default of 30 s, a sync worker would be killed part way through a million rows.
GUNICORN = ["--workers", "2"]

# Rows like the engine's: four fields both ways, mostly written, some skipped, a few errors.
FILL = """
WITH links AS (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n FROM connections_link WHERE connection_id = %(c)s),
     runs AS (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n FROM connections_syncrun WHERE connection_id = %(c)s)
INSERT INTO connections_synclogentry
    (run_id, link_id, connection_id, actor_type, erp_key, field_key, crm_field, direction, old, new, outcome, reason, at)
SELECT runs.ids[1 + g %% runs.n], links.ids[1 + g %% links.n], %(c)s, 'Customer', (10000 + g %% links.n)::text,
       (ARRAY['NAME', 'PHONE', 'EMAIL', 'COUNTRY'])[1 + g %% 4], (ARRAY['name', 'phone', 'email', 'country'])[1 + g %% 4],
       CASE WHEN g %% 20 = 0 THEN '' WHEN g %% 2 = 0 THEN 'erp_to_crm' ELSE 'crm_to_erp' END,
       to_jsonb('+46 90 ' || (g * 7 %% 1000000)), to_jsonb('+46 90 ' || (g * 7 %% 1000000 + 1)),
       CASE WHEN g %% 100 = 0 THEN 'error' WHEN g %% 20 = 0 THEN 'skipped' ELSE 'written' END,
       CASE WHEN g %% 100 = 0 THEN 'the value does not fit the ERP field (40 characters at most)'
            WHEN g %% 20 = 0 THEN 'both sides agree' WHEN g %% 2 = 0 THEN 'changed in the ERP'
            ELSE 'conflict: the CRM ranks higher' END,
       now() - g * interval '1 second'
FROM generate_series(1, %(rows)s) AS g, links, runs
"""
# The same rows and columns as the export, written to CSV by PostgreSQL alone: no Django, no Python per row.
RAW = """
COPY (SELECT e.at, e.run_id, r.kind, coalesce(co.name, p.name, ct.first_name || ' ' || ct.last_name), e.actor_type,
             e.erp_key, e.field_key, e.crm_field, e.direction, e.outcome, e.old #>> '{{}}', e.new #>> '{{}}', e.reason
      FROM connections_synclogentry e JOIN connections_syncrun r ON r.id = e.run_id
      LEFT JOIN connections_link l ON l.id = e.link_id LEFT JOIN crm_company co ON co.id = l.company_id
      LEFT JOIN crm_contact ct ON ct.id = l.contact_id LEFT JOIN crm_project p ON p.id = l.project_id
      WHERE e.connection_id = {connection} ORDER BY e.at DESC, e.id DESC) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def memory_mb(pid: int, field: str) -> float:
    """VmRSS (resident now) or VmHWM (the peak resident size since the process started) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/{pid}/status has no {field}: this benchmark needs Linux")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    import httpx
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection as db
    from django.test import Client
    from django.urls import reverse

    from connections.models import ErpConnection, Link, SyncRun
    from connectors.models import SyncConnector
    from crm.models import Company

    if db.vendor != "postgresql":
        raise SystemExit("This benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
    fresh_database()
    connector = SyncConnector(name="Demo ERP", url="http://127.0.0.1:9")
    connector.set_secret("not-used")  # no connector is called: the export reads the database only
    connector.save()
    connection = ErpConnection.objects.create(name="Demo ERP – Sweden", connector=connector, is_active=True)
    companies = Company.objects.bulk_create(Company(name=f"Bench {n:04d} AB", postal_city="Umeå") for n in range(1000))
    Link.objects.bulk_create(
        Link(connection=connection, actor_type="Customer", erp_key=str(10000 + n), company=c)
        for n, c in enumerate(companies)
    )
    SyncRun.objects.bulk_create(
        SyncRun(connection=connection, kind="automatic", status="succeeded") for _ in range(100)
    )
    started = time.perf_counter()
    with db.cursor() as cursor:
        cursor.execute(FILL, {"c": connection.pk, "rows": args.rows})
        cursor.execute("ANALYZE connections_synclogentry")
    fill_seconds = time.perf_counter() - started
    print(f"filled {args.rows:,} sync log rows in {fill_seconds:.1f} s")

    # The raw floor: PostgreSQL's COPY of the same rows to CSV, read here.
    started = time.perf_counter()
    raw_bytes = 0
    db.ensure_connection()
    with db.connection.cursor() as cursor, cursor.copy(RAW.format(connection=connection.pk)) as copy:
        for block in copy:
            raw_bytes += len(block)
    raw_seconds = time.perf_counter() - started
    print(f"raw floor (COPY ... TO STDOUT, CSV): {raw_bytes / 1e6:.0f} MB in {raw_seconds:.1f} s")

    admin = User.objects.create_superuser("bench-admin", "bench@example.com", "not-used-for-login")
    client = Client()
    client.force_login(admin)  # a session row in the database, as logging in makes
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    call_command("collectstatic", interactive=False, verbosity=0)  # production settings serve a manifest
    db.close()

    logs = Path(tempfile.mkdtemp(prefix="erpsync-bench-export-"))
    port = free_port()
    bin_dir = Path(sys.executable).parent
    gunicorn = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "erpsync_admin.wsgi:application", "--bind", f"127.0.0.1:{port}", *GUNICORN],
        cwd=ROOT,
        # As behind docker-compose's TLS proxy: its X-Forwarded-Proto is believed only with ERPSYNC_TRUSTED_PROXIES.
        env={**os.environ, "PYTHONPATH": str(ROOT), "ERPSYNC_TRUSTED_PROXIES": "1"},
        stdout=subprocess.DEVNULL,
        stderr=open(logs / "gunicorn.log", "wb"),  # noqa: SIM115
    )
    host = f"http://127.0.0.1:{port}"
    headers = {"X-Forwarded-Proto": "https", "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
    try:
        wait_http(f"{host}/health/")
        page = host + reverse("connections:sync-log", args=[connection.pk])
        export = host + reverse("connections:sync-log-export", args=[connection.pk])
        with httpx.Client(headers=headers, timeout=600) as http:
            for _ in range(4):  # both workers warm: each has served the sync log page
                answer = http.get(page)
                assert answer.status_code == 200, (answer.status_code, answer.text[:300])
            workers = children(gunicorn.pid)
            before = {pid: memory_mb(pid, "VmRSS") for pid in workers}
            started = time.perf_counter()
            first_byte = None
            size = lines = 0
            with http.stream("GET", export) as response:
                assert response.status_code == 200, response.status_code
                disposition = response.headers["content-disposition"]
                for block in response.iter_raw():
                    if first_byte is None:
                        first_byte = time.perf_counter() - started
                    size += len(block)
                    lines += block.count(b"\n")
            seconds = time.perf_counter() - started
        peaks = {pid: memory_mb(pid, "VmHWM") for pid in workers}
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
    rows = lines - 1  # the header
    served_by = max(peaks, key=lambda pid: peaks[pid] - before[pid])
    peak, idle = peaks[served_by], before[served_by]
    errors = [
        line
        for line in (logs / "gunicorn.log").read_text(errors="replace").splitlines()
        if "Traceback" in line or "ERROR" in line or "CRITICAL" in line
    ]
    results: dict[str, Any] = {
        "what": "CSV export of the whole sync log of one connection through gunicorn, PostgreSQL",
        "gunicorn": " ".join(GUNICORN),
        "rows": rows,
        "rows_in_database": args.rows,
        "bytes": size,
        "seconds": round(seconds, 1),
        "first_byte_seconds": round(first_byte or 0, 2),
        "rows_per_second": round(rows / seconds),
        "megabytes_per_second": round(size / 1e6 / seconds, 1),
        "worker_rss_before_mb": round(idle),
        "worker_peak_rss_mb": round(peak),
        "target_peak_rss_mb": TARGET_RSS_MB,
        "raw_floor_seconds": round(raw_seconds, 1),
        "raw_floor_bytes": raw_bytes,
        "ratio_to_floor": round(seconds / raw_seconds, 1),
        "fill_seconds": round(fill_seconds, 1),
        "content_disposition": disposition,
        "server_log_errors": errors[:10],
    }
    for key, value in results.items():
        print(f"{key:28} {value}")
    if rows != args.rows:
        raise SystemExit(f"the export had {rows:,} rows, not {args.rows:,}: see {logs / 'gunicorn.log'}")
    table = [
        summary_row(
            f"CSV export of {rows:,} sync log rows over HTTP, gunicorn worker's peak memory (RSS)",
            f"≤ {TARGET_RSS_MB} MB",
            f"{peak:.0f} MB (idle {idle:.0f} MB)",
            peak <= TARGET_RSS_MB,
        ),
        summary_row(
            f"CSV export of {rows:,} sync log rows: time to the last byte",
            "—",
            f"{seconds:.1f} s, {rows / seconds:,.0f} rows/s, {size / 1e6:.0f} MB "
            f"(first byte after {first_byte or 0:.2f} s)",
            None,
            results["ratio_to_floor"],
        ),
    ]
    write_results("sync_log_export", results, table)
    if peak > TARGET_RSS_MB:
        raise SystemExit(f"the worker's peak memory, {peak:.0f} MB, is over the target of {TARGET_RSS_MB} MB")


if __name__ == "__main__":
    main()
