"""The whole app under load: end users, Sync now through a real worker, and an admin, for five minutes.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/erpsync_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/14 \
       .venv/bin/python bench/load_test.py [--users 30] [--seconds 300] [--companies 3000] [--linked 300]
(BENCH_LOAD_USERS and BENCH_LOAD_SECONDS set the defaults, for a quick check.) Needs `pip install -e '.[bench]'`.

The database is emptied and seeded: the demo users and records, companies up to --companies, and --linked of
them linked to Customers of a Demo ERP process (NAME and PHONE both ways, EMAIL and COUNTRY ERP → CRM, four
values shown live on the ERP tab; no baselines, so a link's first Sync now writes). Then, on loopback:
gunicorn with 2 workers and production settings (behind X-Forwarded-Proto: https), a Celery worker (the
Procfile's: prefork, concurrency 2) and beat on Redis, and locust (bench/locust_app.py) with the users
arriving five a second; the figures count from when all have arrived (--reset-stats).

Prints, per request name, p50/p95/p99, the request and failure counts, the overall error rate, and how the
Sync now runs ended in the database; writes them with the machine to bench/results/load_test.json (locust's
own CSV and JSON stats go to var/bench/).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (
    demo_erp_connection,
    ensure_database,
    free_port,
    fresh_database,
    summary_row,
    use_environment,
    wait_http,
    write_results,
)

use_environment("postgres://postgres@127.0.0.1:5432/erpsync_bench", "redis://127.0.0.1:6379/14", production=True)
os.environ.setdefault("LOG_LEVEL", "WARNING")
RUN_NAME = "Sync now, queued → finished"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("BENCH_LOAD_USERS", "30")))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_LOAD_SECONDS", "300")))
    parser.add_argument("--companies", type=int, default=3000)
    parser.add_argument("--linked", type=int, default=300)
    parser.add_argument("--sync-now-every", type=float, default=3.0, help="seconds between one user's Sync nows")
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from connections import mapping, services
    from connections.models import ErpConnection, Link, SyncRun, SyncSettings
    from connectors import protocol as p
    from connectors.models import SyncConnector
    from crm.models import Company, Country

    fresh_database()
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()  # no messages left from an earlier run
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115  (users anna, erpadmin … password "demo")
    SyncConnector.objects.all().delete()  # seed_demo's points at make run's Demo ERP
    missing = args.companies - Company.objects.count()
    Company.objects.bulk_create(
        (Company(name=f"Bench {n:05d} AB", number2=f"B{n}", postal_city="Umeå") for n in range(missing)),
        batch_size=2000,
    )

    work = Path(tempfile.mkdtemp(prefix="erpsync-bench-load-"))
    processes: list[subprocess.Popen[bytes]] = []
    demo, conn = demo_erp_connection(int(args.linked / 0.6) + 200)
    processes.append(demo)
    try:
        wanted = {
            "NAME": ("NAME", "both"),
            "PHONE": ("PHONE", "both"),
            "EMAIL": ("EMAIL", "erp_to_crm"),
            "COUNTRY": ("COUNTRY", "erp_to_crm"),
        }
        live = ("BALANCE", "CURRENCY", "PAYMENT_TERMS", "INVOICE_COUNT")
        rows = [
            mapping.FieldRow(f.key, *wanted.get(f.key, ("", "")), f.key == "NAME", f.key in live)
            for f in conn.erp_fields.filter(actor_type="Customer")
        ]
        mapping.save_field_mapping(conn, "Customer", True, rows, None)
        countries = {c.code: c.pk for c in Country.objects.filter(code__in=("SE", "NO", "DK", "FI", "IS"))}
        mapping.save_list_mapping(conn, "Customer", "COUNTRY", [(c, c) for c in countries], dict(countries), None)
        services.set_active(conn, True, None)
        SyncSettings.objects.update_or_create(pk=1, defaults={"crm_priority": 1, "automatic_sync": False})
        ErpConnection.objects.filter(pk=conn.pk).update(priority=0)
        conn.refresh_from_db()
        erp = conn.connector.client().connection(str(conn.guid), conn.config_values)
        keys = [a.key or "" for page in erp.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors]
        companies = list(Company.objects.order_by("pk"))
        step = max(1, len(companies) // args.linked)
        chosen = companies[::step][: min(args.linked, len(keys))]
        links = Link.objects.bulk_create(
            Link(connection=conn, actor_type="Customer", erp_key=key, company=company)
            for key, company in zip(keys, chosen, strict=False)
        )
        linked_ids = {c.pk for c in chosen}
        data = {
            "linked": [[link.company_id, link.pk] for link in links],
            "unlinked": [[c.pk, c.name] for c in companies if c.pk not in linked_ids],
            "connection": conn.pk,
            "connection_name": conn.name,
            "list_pages": (len(companies) + 24) // 25,
        }
        (work / "data.json").write_text(json.dumps(data))
        call_command("collectstatic", interactive=False, verbosity=0)

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        bin_dir = Path(sys.executable).parent
        logs = work / "logs"
        logs.mkdir()
        celery = [str(bin_dir / "celery"), "-A", "erpsync_admin"]
        for name, command in (
            (
                "worker",
                [*celery, "worker", "--concurrency=2", "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
            ),
            ("beat", [*celery, "beat", "--loglevel=WARNING", "--schedule", str(work / "celerybeat-schedule")]),
        ):
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(logs / f"{name}.log", "wb"),  # noqa: SIM115
                )
            )
        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    str(bin_dir / "gunicorn"),
                    "erpsync_admin.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    str(logs / "access.log"),
                    "--access-logformat",
                    "%(s)s %(D)s %(U)s",
                ],
                cwd=ROOT,
                env=env,
                stderr=open(logs / "gunicorn.log", "wb"),  # noqa: SIM115
            )
        )
        host = f"http://127.0.0.1:{port}"
        wait_http(f"{host}/login/")

        out = ROOT / "var" / "bench"
        out.mkdir(parents=True, exist_ok=True)
        stats = out / "load_test"
        sync_now_users = max(1, round(args.users / 10))
        print(
            f"load: {args.users} users ({sync_now_users} pressing Sync now every {args.sync_now_every:g} s, "
            f"1 admin) for {args.seconds} s against {host}: {len(companies)} companies, {len(links)} linked"
        )
        locust_env = {
            **env,
            "ERPSYNC_BENCH_DATA": str(work / "data.json"),
            "ERPSYNC_BENCH_SYNC_NOW_EVERY": str(args.sync_now_every),
            "ERPSYNC_BENCH_SYNC_NOW_USERS": str(sync_now_users),
        }
        groups = {
            "web (gunicorn, 2 workers)": processes[-1].pid,
            "Celery worker": processes[-3].pid,
            "Celery beat": processes[-2].pid,
            "Demo ERP": demo.pid,
            "PostgreSQL (all databases)": postmaster(),
        }
        cpu_before = {name: cpu_seconds(pid) for name, pid in groups.items() if pid}
        busy_before, locust_before = machine_busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        subprocess.run(
            [
                str(bin_dir / "locust"),
                "-f",
                str(ROOT / "bench" / "locust_app.py"),
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                "5",
                "--reset-stats",
                "--run-time",
                f"{args.seconds}s",
                "--stop-timeout",
                "60",
                "--host",
                host,
                "--csv",
                str(stats),
                "--json-file",
                str(stats),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=locust_env,
            check=False,
        )
        # Where the machine's CPU went during the run, in cores (of os.cpu_count()) on average.
        span = time.monotonic() - began
        locust_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {name: round((cpu_seconds(groups[name] or 0) - before) / span, 2) for name, before in cpu_before.items()}
        cpu["locust"] = round(
            (locust_after.ru_utime + locust_after.ru_stime - locust_before.ru_utime - locust_before.ru_stime) / span, 2
        )
        cpu["the whole machine"] = round((machine_busy_seconds() - busy_before) / span, 2)
        cpu["everything else (other work on the machine)"] = round(
            cpu["the whole machine"] - sum(v for k, v in cpu.items() if k != "the whole machine"), 2
        )
        runs = dict.fromkeys(("succeeded", "partially_failed", "failed", "queued", "running"), 0)
        for status in SyncRun.objects.filter(kind="sync_now").values_list("status", flat=True):
            runs[status] = runs.get(status, 0) + 1
        written = Link.objects.filter(connection=conn, last_synced_at__isnull=False).count()
        # The same runs as the worker saw them: from the row written to the run marked finished, no polling.
        took = sorted(
            (finished - created).total_seconds() * 1000
            for created, finished in SyncRun.objects.filter(kind="sync_now", finished_at__isnull=False).values_list(
                "created_at", "finished_at"
            )
            if finished
        )
        in_worker = {
            "runs": len(took),
            "p50_ms": round(took[len(took) // 2]) if took else None,
            "p95_ms": round(took[int(len(took) * 0.95) - 1]) if len(took) >= 20 else None,
        }
        problems = [
            line
            for name in ("worker", "gunicorn")
            for line in (logs / f"{name}.log").read_text(errors="replace").splitlines()
            if "Traceback" in line or "ERROR" in line
        ]
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    requests, total, failures = read_stats(stats)
    result: dict[str, Any] = {
        "what": "the whole app under load: company list, company page + ERP tab, Sync now through a real Celery "
        "worker, the Sync tab; gunicorn 2 workers, PostgreSQL, Redis, one Demo ERP process",
        "users": args.users,
        "sync_now_users": sync_now_users,
        "sync_now_every_s": args.sync_now_every,
        "seconds": args.seconds,
        "companies": len(companies),
        "linked": len(links),
        "requests": requests,
        "total": total,
        "failures_seen": failures,
        "sync_now_runs_in_db": runs,
        "sync_now_queued_to_finished_in_db": in_worker,
        "links_synced_at_least_once": written,
        "cpu_cores_used": cpu,
        "server_log_errors": len(problems),
        "server_side": server_side(logs / "access.log"),
    }
    print(f"{'request':34} {'count':>7} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6}  (ms)")
    for name, row in [*requests.items(), ("all requests", total)]:
        print(
            f"{name:34} {row['requests']:7} {row['failures']:5} {row['p50_ms']:6.0f} {row['p95_ms']:6.0f} "
            f"{row['p99_ms']:6.0f}"
        )
    print(
        f"error rate {total['error_rate']:.4%} ({total['failures']} of {total['requests']}), {total['rps']} requests/s"
    )
    print("Sync now runs in the database: " + ", ".join(f"{k} {v}" for k, v in runs.items()))
    print(
        f"Sync now, queued → finished as the database records it: p50 {in_worker['p50_ms']} ms, "
        f"p95 {in_worker['p95_ms']} ms ({in_worker['runs']} runs)"
    )
    inside = result["server_side"]
    print(
        f"inside gunicorn (a worker took the request → answered): p50 {inside['p50_ms']} ms, "
        f"p95 {inside['p95_ms']} ms, p99 {inside['p99_ms']} ms over {inside['requests']} requests"
    )
    print(f"CPU during the run, in cores of {os.cpu_count()}: " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    for failure in failures[:10]:
        print(f"  failure: {failure['occurrences']}× {failure['name']}: {failure['error']}")
    for line in problems[:10]:
        print(f"  server log: {line}")
    pages = {k: v for k, v in requests.items() if k not in (RUN_NAME, "log in", "log in page")}
    worst = max(pages, key=lambda k: pages[k]["p95_ms"]) if pages else ""
    run = requests.get(RUN_NAME)
    summary = [
        summary_row(
            f"{args.users} users for {f'{args.seconds // 60} min' if args.seconds % 60 == 0 else f'{args.seconds} s'} (company list, company page + ERP tab, "
            "Sync now, Sync tab), gunicorn 2 workers + Celery worker",
            "error rate 0; p95 recorded",
            f"{total['failures']} errors in {total['requests']:,} requests ({total['rps']} req/s); p95 "
            f"{total['p95_ms']:.0f} ms over all ({inside['p95_ms']:.0f} ms of it inside gunicorn), worst: {worst} "
            f"{pages[worst]['p95_ms']:.0f} ms"
            if worst
            else "no requests",
            total["failures"] == 0 and total["requests"] > 0,
        ),
    ]
    if run:
        ended = runs["succeeded"] + runs["partially_failed"] + runs["failed"]
        summary.append(
            summary_row(
                "Sync now under that load, queued → finished (Celery worker on Redis; the page polls every 0.5 s)",
                "—",
                f"p50 {run['p50_ms']:.0f} ms, p95 {run['p95_ms']:.0f} ms as the user sees it (in the database: p50 "
                f"{in_worker['p50_ms']} ms, p95 {in_worker['p95_ms']} ms); {runs['succeeded']} of {ended} runs succeeded",
                runs["failed"] + runs["partially_failed"] == 0,
            )
        )
    write_results("load_test", result, summary)


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (so field 3, the state, is index 0)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _processes() -> dict[int, tuple[str, int]]:
    """Every process on the machine: pid → (command name, parent pid)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                name = (entry / "comm").read_text().strip()
                found[int(entry.name)] = (name, int(_stat(int(entry.name))[1]))
    return found


def cpu_seconds(root: int) -> float:
    """CPU time of a process and its descendants, with the children it has already reaped (PostgreSQL's backends,
    say, each live only as long as one web request's connection)."""
    table = _processes()
    tick = os.sysconf("SC_CLK_TCK")
    family, total = {root}, 0.0
    for pid in sorted(table):  # parents start before their children, so have lower pids (bar wrap-around)
        if table[pid][1] in family:
            family.add(pid)
    for pid in family:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(pid)
            total += sum(int(v) for v in fields[11 : 13 if pid != root else 15]) / tick  # utime, stime (cutime, cstime)
    return total


def postmaster() -> int | None:
    """PostgreSQL's main process on this machine, if it runs here."""
    table = _processes()
    return next(
        (
            pid
            for pid, (name, parent) in table.items()
            if name == "postgres" and table.get(parent, ("", 0))[0] != "postgres"
        ),
        None,
    )


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle, over all cores, since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def server_side(access_log: Path) -> dict[str, Any]:
    """How long gunicorn's workers took over the requests, from its access log: from a worker taking the request
    to the answer, so without the wait for a free worker that the client's figures include. Logins (password
    hashing, while the users arrive) are left out."""
    durations = []
    for line in access_log.read_text(errors="replace").splitlines():
        _status, micros, path = line.split(" ", 2)
        if not path.startswith("/login/"):
            durations.append(int(micros) / 1000)
    durations.sort()

    def at(fraction: float) -> float:
        return round(durations[min(len(durations) - 1, int(len(durations) * fraction))], 1) if durations else 0.0

    return {"requests": len(durations), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def percentile(times: dict[int, int], fraction: float) -> float:
    """The response time under which ``fraction`` of the requests fall, the way locust computes it."""
    count = sum(times.values())
    processed = 0
    for value in sorted(times, reverse=True):
        processed += times[value]
        if count - processed <= int(count * fraction):
            return float(value)
    return 0.0


def read_stats(stats: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Per request name, and over all HTTP requests (the run timings are not requests): counts, p50/p95/p99, max
    and requests per second, from locust's JSON stats; and the distinct failures, from its CSV."""
    entries = json.loads(Path(f"{stats}.json").read_text())
    began = min((e["start_time"] for e in entries), default=0.0)
    seconds = max((e["last_request_timestamp"] or began for e in entries), default=began) - began or 1.0

    def figures(count: int, failed: int, times: dict[int, int], longest: float) -> dict[str, Any]:
        return {
            "requests": count,
            "failures": failed,
            "p50_ms": percentile(times, 0.5),
            "p95_ms": percentile(times, 0.95),
            "p99_ms": percentile(times, 0.99),
            "max_ms": round(longest, 1),
            "rps": round(count / seconds, 2),
        }

    requests: dict[str, dict[str, Any]] = {}
    every: dict[int, int] = {}
    count, failed, longest = 0, 0, 0.0
    for entry in sorted(entries, key=lambda e: e["name"]):
        times = {int(k): int(v) for k, v in entry["response_times"].items()}
        requests[entry["name"]] = figures(
            entry["num_requests"], entry["num_failures"], times, entry["max_response_time"] or 0
        )
        if entry["method"] != "RUN":
            for value, n in times.items():
                every[value] = every.get(value, 0) + n
            count, failed = count + entry["num_requests"], failed + entry["num_failures"]
            longest = max(longest, entry["max_response_time"] or 0)
    total = figures(count, failed, every, longest)
    total["error_rate"] = round(failed / total["requests"], 6) if total["requests"] else 1.0
    with open(f"{stats}_failures.csv") as handle:
        failures = [
            {"name": r["Name"], "error": r["Error"], "occurrences": int(r["Occurrences"])}
            for r in csv.DictReader(handle)
        ]
    return requests, total, failures


if __name__ == "__main__":
    main()
