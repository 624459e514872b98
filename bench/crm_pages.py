"""How fast the company pages answer with many records.

Usage: .venv/bin/python bench/crm_pages.py [--companies 20000] [--requests 50]
Uses its own database (var/bench.sqlite3 unless DATABASE_URL is set), prints p50/p95 per page and
writes them to bench/results/crm_pages.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import summary_row, use_environment, write_results

use_environment(f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from crm.models import Company, Contact

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    missing = args.companies - Company.objects.count()
    if missing > 0:
        start = Company.objects.count()
        Company.objects.bulk_create(
            (
                Company(name=f"Benchmark {start + i:06d} AB", number2=f"B{start + i}", postal_city="Umeå")
                for i in range(missing)
            ),
            batch_size=2000,
        )
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username="anna"))
    company = Company.objects.filter(contacts__isnull=False).first()
    assert company is not None
    pages = {
        "company list, first page": "/companies/",
        "company list, last page": f"/companies/?page={(Company.objects.count() + 24) // 25}",
        "company search (two words)": "/companies/?q=nord+ab",
        "company page": company.get_absolute_url(),
        "contact list": "/contacts/",
    }
    results = {}
    for label, url in pages.items():
        timings = []
        for _ in range(args.requests):
            began = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        timings.sort()
        results[label] = {
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
        }
        print(f"{label:32} p50 {results[label]['p50_ms']:7.1f} ms   p95 {results[label]['p95_ms']:7.1f} ms")
    from django.db import connection

    summary = {
        "database": connection.vendor,
        "companies": Company.objects.count(),
        "contacts": Contact.objects.count(),
        "requests_per_page": args.requests,
        "pages": results,
    }
    slowest = max(results, key=lambda label: results[label]["p95_ms"])
    table = [
        summary_row(
            f"CRM pages with {summary['companies']:,} companies, one user (company list, first and last page, "
            "two-word search, company page, contact list)",
            "—",
            f"p95 ≤ {results[slowest]['p95_ms']:.0f} ms on every page (slowest: {slowest}, p50 {results[slowest]['p50_ms']:.0f} ms)",
            None,
        )
    ]
    write_results("crm_pages", summary, table)


if __name__ == "__main__":
    main()
