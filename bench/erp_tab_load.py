"""The ERP tab under load: 3 active connections, 20 concurrent users, gunicorn with 2 workers, PostgreSQL.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/erpsync_bench .venv/bin/python bench/erp_tab_load.py
       [--users 20] [--seconds 60] [--companies 300]
Needs `pip install -e '.[bench]'` (locust). The database is emptied first. Three Demo ERP processes run on
loopback, one per connection; every company page shows all three sections with live values. Users arrive
five a second and log in; the figures count from when all have arrived (locust --reset-stats). Prints p50,
p95, p99, requests per second and failures, and writes bench/results/erp_tab_load.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import ensure_database, free_port, summary_row, use_environment, wait_http, write_results

use_environment("postgres://postgres@127.0.0.1:5432/erpsync_bench", production=True)
TARGET_P95_MS = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--companies", type=int, default=300)
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command

    from connections import mapping, services
    from connections.models import ErpConnection, Link, SyncSettings
    from connectors import protocol as p
    from connectors.models import SyncConnector
    from crm.models import Company

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115  (users anna … with password "demo")
    Link.objects.all().delete()
    ErpConnection.objects.all().delete()
    SyncConnector.objects.all().delete()

    work = Path(tempfile.mkdtemp(prefix="erpsync-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        companies = list(Company.objects.order_by("pk")[: args.companies])
        for n in range(3):
            secret = secrets.token_urlsafe(24)
            (work / f"secret{n}").write_text(secret)
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "connectors.demo",
                        "--port",
                        str(port),
                        "--secret-file",
                        str(work / f"secret{n}"),
                        "--data",
                        str(work / f"demo{n}.sqlite3"),
                        "--seed-actors",
                        str(args.companies + 50),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/v1/health")
            connector = SyncConnector(name=f"Demo ERP {n + 1}", url=url)
            connector.set_secret(secret)
            connector.save()
            with services.interactive_client(url, secret) as client:
                fields = client.get_config_data().data.fields
            config: dict[str, p.Value] = {"client_name": f"bench {n}", "api_key": "demo-api-key", "company_number": 1}
            conn = services.save_connection(
                ErpConnection(name=f"Demo ERP {n + 1}", connector=connector),
                fields=fields,
                values=config,
                grants=[],
                user=None,
            )
            # Two fields synced, four shown live (two of them list values, shown as their text).
            live = ("BALANCE", "CURRENCY", "PAYMENT_TERMS", "INVOICE_COUNT")
            rows = [
                mapping.FieldRow(
                    f.key,
                    *({"NAME": ("NAME", "both"), "PHONE": ("PHONE", "both")}.get(f.key, ("", ""))),
                    f.key == "NAME",
                    f.key in live,
                )
                for f in conn.erp_fields.filter(actor_type="Customer")
            ]
            mapping.save_field_mapping(conn, "Customer", True, rows, None)
            services.set_active(conn, True, None)
            ErpConnection.objects.filter(pk=conn.pk).update(priority=n + 1)
            erp = conn.connector.client().connection(str(conn.guid), conn.config_values)
            keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors]
            Link.objects.bulk_create(
                Link(
                    connection=conn,
                    actor_type="Customer",
                    erp_key=key,
                    company=company,
                    baseline={"NAME": company.name},
                )
                for key, company in zip(keys, companies, strict=False)
            )
        SyncSettings.objects.update_or_create(pk=1, defaults={"crm_priority": 0})
        call_command("collectstatic", interactive=False, verbosity=0)

        port = free_port()
        env = {**os.environ, "DEBUG": "0", "LOG_LEVEL": "WARNING"}
        processes.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "erpsync_admin.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        host = f"http://127.0.0.1:{port}"
        wait_http(f"{host}/login/")
        stats = work / "locust"
        print(
            f"load: {args.users} users for {args.seconds} s against {host} (3 connections, {len(companies)} companies)"
        )
        subprocess.run(
            [
                str(Path(sys.executable).parent / "locust"),
                "-f",
                str(ROOT / "bench" / "locust_erp_tab.py"),
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                "5",
                "--reset-stats",
                "--run-time",
                f"{args.seconds}s",
                "--host",
                host,
                "--csv",
                str(stats),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**env, "ERPSYNC_BENCH_COMPANIES": ",".join(str(c.pk) for c in companies)},
            check=False,
        )
        with open(f"{stats}_stats.csv") as handle:
            row = next(r for r in csv.DictReader(handle) if r["Name"] == "ERP tab, 3 connections")
        result = {
            "what": "ERP tab page, 3 active connections (live values from 3 Demo ERP processes), gunicorn 2 workers, "
            "PostgreSQL",
            "users": args.users,
            "seconds": args.seconds,
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1),
            "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]),
            "max_ms": round(float(row["Max Response Time"]), 1),
            "target_p95_ms": TARGET_P95_MS,
            "cpus": os.cpu_count(),
        }
        met = result["failures"] == 0 and result["p95_ms"] <= TARGET_P95_MS
        print(
            f"ERP tab, 3 connections: p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, "
            f"p99 {result['p99_ms']:.0f} ms, {result['rps']} requests/s, {result['requests']} requests, "
            f"{result['failures']} failures — target p95 ≤ {TARGET_P95_MS} ms, no errors: {'met' if met else 'NOT met'}"
        )
        table = [
            summary_row(
                f"ERP tab with 3 active connections (3 Demo ERP processes), {args.users} users for {args.seconds} s, "
                "gunicorn 2 workers",
                f"p95 ≤ {TARGET_P95_MS} ms, no errors",
                f"p95 {result['p95_ms']:.0f} ms (p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms), "
                f"{result['failures']} errors in {result['requests']:,} pages",
                met,
            )
        ]
        write_results("erp_tab_load", result, table)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
