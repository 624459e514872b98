"""The sync engine against a real Tryton server through the Tryton connector.

Usage: .venv/bin/python bench/tryton_sync.py [--parties 1000]
Installs trytond into var/tryton/ (once), starts it on a SQLite database in a temporary folder with the
connector in front, links that many Tryton customers to CRM companies, and measures the first Sync all,
an automatic sync after 100 changes on each side (the Tryton ones made to addresses only), with the JSON-RPC
calls Tryton answered during it (counted in trytond's request log), and Sync now.
Prints the figures and writes bench/results/tryton_sync.json.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import database_description, summary_row, use_environment, write_results

use_environment(f"sqlite:///{ROOT / 'var' / 'bench-tryton.sqlite3'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=1000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection as db
    from django.utils import timezone

    from connections import jobs, mapping, services
    from connections.models import ErpConnection, Link, SyncRun, SyncSettings
    from connectors.models import SyncConnector
    from crm.models import Company
    from tests.conftest import start_connector
    from tests.tryton.conftest import ADMIN_PASSWORD, FULL, set_up_erp, start_tryton

    if db.vendor == "sqlite":
        Path(db.settings_dict["NAME"]).unlink(missing_ok=True)
        db.close()
    else:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)

    work = Path(tempfile.mkdtemp(prefix="erpsync-bench-tryton-"))
    url, tryton = start_tryton(work / "tryton", {"erp": FULL})
    (work / "connector").mkdir()
    running = start_connector(
        "connectors.tryton",
        work / "connector",
        secrets.token_urlsafe(24),
        "--data",
        str(work / "connector" / "connections.json"),
    )
    secret, processes = running.secret, [tryton, running.process]
    try:
        from connectors.tryton import rpc

        session = rpc.Session(url, "erp", "admin", ADMIN_PASSWORD)
        set_up_erp(session)
        [customer] = session.call("model.party.category.search", [["name", "=", "Customer"]], 0, 1, None, {})
        started = time.perf_counter()
        ids: list[int] = []
        for start in range(0, args.parties, 500):
            ids += session.call(
                "model.party.party.create",
                [
                    {
                        "name": f"Bench {n:05d} AB",
                        "categories": [["add", [customer]]],
                        "addresses": [["create", [{"street": "Storgatan 1", "postal_code": "903 25", "city": "Umeå"}]]],
                        "contact_mechanisms": [["create", [{"type": "phone", "value": f"+46 90 {n:05d}"}]]],
                    }
                    for n in range(start, min(args.parties, start + 500))
                ],
                {},
            )
        seeding = time.perf_counter() - started

        connector = SyncConnector(name="Tryton", url=running.url)
        connector.set_secret(secret)
        connector.save()
        config: dict[str, Any] = {
            "server_url": url,
            "database": "erp",
            "user": "admin",
            "password": ADMIN_PASSWORD,
            "company": "Tryton Test AB",
            "customer_category": "Customer",
            "supplier_category": "Supplier",
            "partner_category": "",
            "person_relation": "Contact person",
            "language": "en",
        }
        fields = services.probe_connector(connector.url, secret)
        conn = services.save_connection(
            ErpConnection(name="Tryton", connector=connector), fields=fields, values=config, grants=[], user=None
        )
        wanted = {"NAME": "both", "PHONE": "both", "POSTALCITY": "both", "NUMBER2": "erp_to_crm"}
        mapping.save_field_mapping(
            conn,
            "Customer",
            True,
            [
                mapping.FieldRow(f.key, f.crm_field if f.key in wanted else "", wanted.get(f.key, ""), False, False)
                for f in conn.erp_fields.filter(actor_type="Customer")
            ],
            None,
        )
        services.set_active(conn, True, None)
        SyncSettings.objects.update_or_create(pk=1, defaults={"crm_priority": 1, "automatic_sync": True})
        conn.refresh_from_db()
        companies = Company.objects.bulk_create(Company(name=f"Bench {n:05d} AB") for n in range(args.parties))
        Link.objects.bulk_create(
            Link(connection=conn, actor_type="Customer", erp_key=str(i), company=c)
            for i, c in zip(ids, companies, strict=True)
        )

        def run(kind: str) -> tuple[float, SyncRun]:
            sync_run = SyncRun.objects.create(connection=conn, kind=kind)
            begun = time.perf_counter()
            jobs.run_sync.apply(kwargs={"run_id": sync_run.pk})
            sync_run.refresh_from_db()
            assert sync_run.status == "succeeded", (sync_run.status, sync_run.error)
            return time.perf_counter() - begun, sync_run

        first, first_run = run("sync_all")
        # 100 changes in Tryton, to addresses only, and 100 in the CRM.
        addresses = session.call("model.party.address.search", [["party", "in", ids[:100]]], 0, None, None, {})
        session.call("model.party.address.write", addresses, {"city": "Luleå"}, {})
        Company.objects.filter(pk__in=[c.pk for c in companies[-100:]]).update(
            phone="+46 920 0", updated_at=timezone.now()
        )
        SyncSettings.objects.filter(pk=1).update(last_automatic_at=timezone.now() - timedelta(hours=1))
        requests_before = tryton_requests(tryton.log)
        begun = time.perf_counter()
        for run_id in jobs.tick_automatic_sync():
            jobs.run_sync.apply(kwargs={"run_id": run_id})
        automatic = time.perf_counter() - begun
        time.sleep(0.2)  # trytond logs a request once it has answered it
        rpc_calls = tryton_requests(tryton.log) - requests_before
        moved = Company.objects.filter(postal_city="Luleå").count()
        pushed = len(
            session.call("model.party.contact_mechanism.search", [["value", "=", "+46 920 0"]], 0, None, None, {})
        )
        link = Link.objects.filter(connection=conn).first()
        assert link is not None
        latencies = []
        for _ in range(20):
            sync_run = SyncRun.objects.create(connection=conn, link=link, kind="sync_now", total=1)
            begun = time.perf_counter()
            jobs.run_sync.apply(kwargs={"run_id": sync_run.pk})
            latencies.append((time.perf_counter() - begun) * 1000)
        result = {
            "parties": args.parties,
            "tryton_bulk_create_s": round(seeding, 2),
            "first_sync_all_s": round(first, 2),
            "first_sync_changed": first_run.changed,
            "automatic_sync_100_plus_100_s": round(automatic, 2),
            "automatic_sync_tryton_rpc_calls": rpc_calls,
            "arrived_in_crm": moved,
            "arrived_in_tryton": pushed,
            "sync_now_p50_ms": round(statistics.median(latencies), 1),
            "sync_now_p95_ms": round(sorted(latencies)[int(len(latencies) * 0.95) - 1], 1),
            "database": db.vendor,
        }
        print(f"Tryton, {args.parties} customers ({db.vendor}):")
        print(
            f"  first Sync all: {first:.1f} s ({first_run.changed} records written); Tryton's own bulk create of "
            f"them took {seeding:.1f} s"
        )
        print(
            f"  automatic sync after 100 address changes in Tryton + 100 CRM changes: {automatic:.2f} s "
            f"({moved} arrived in the CRM, {pushed} in Tryton; {rpc_calls} JSON-RPC calls to Tryton)"
        )
        print(f"  Sync now, engine side: p50 {result['sync_now_p50_ms']} ms, p95 {result['sync_now_p95_ms']} ms")
        table = [
            summary_row(
                f"first Sync all of {args.parties:,} customers (every record written)",
                "—",
                f"{first:.1f} s (Tryton's own bulk create of them: {seeding:.1f} s)",
                None,
            ),
            summary_row(
                "automatic sync of 100 address changes in Tryton + 100 CRM changes",
                "≤ 4 s",
                f"{automatic:.1f} s ({moved} + {pushed} arrived, {rpc_calls} JSON-RPC calls to Tryton)",
                automatic <= 4,
            ),
            summary_row(
                "Sync now, engine side",
                "—",
                f"p50 {result['sync_now_p50_ms']:.0f} ms, p95 {result['sync_now_p95_ms']:.0f} ms",
                None,
            ),
        ]
        write_results("tryton_sync", result, table, database=f"{database_description()}; Tryton on SQLite")
    finally:
        for process in processes:
            process.stop()


def tryton_requests(log: Path) -> int:
    """How many JSON-RPC calls trytond has answered so far: the lines of its request log."""
    return sum(1 for line in log.read_text(errors="replace").splitlines() if "POST /" in line and "/rpc/" in line)


if __name__ == "__main__":
    main()
