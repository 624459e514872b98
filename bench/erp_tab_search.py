"""The ERP tab's search over 4 actor types against a Demo ERP that takes 1 s to answer each call.

Usage: .venv/bin/python bench/erp_tab_search.py [--latency-ms 1000] [--rounds 5]
Uses its own database (var/bench-erp-tab-search.sqlite3 unless DATABASE_URL is set). A Demo ERP process with
2,000 actors answers every protocol call after --latency-ms; the search (linking.search, as the ERP tab's
connect search calls it, with an empty search text: the first 25 actors of each type) runs over Customer,
Supplier, Person and Project, once one type after another as it used to, and once with the types at once. The raw
floor is one SearchActors call through the client alone: what a search cannot beat. Prints the medians and writes
bench/results/erp_tab_search.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import demo_erp_connection, fresh_database, summary_row, use_environment, write_results

use_environment(f"sqlite:///{ROOT / 'var' / 'bench-erp-tab-search.sqlite3'}")
TYPES = ["Customer", "Supplier", "Person", "Project"]
TARGET_S = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=1000, help="how long Demo ERP waits before each answer")
    parser.add_argument("--rounds", type=int, default=5, help="searches of each kind; the medians are reported")
    args = parser.parse_args()

    import django

    django.setup()
    from connections import linking, services
    from connectors import protocol as p
    from crm.models import Company

    fresh_database()
    demo, connection = demo_erp_connection(2000, latency_ms=str(args.latency_ms))
    try:
        record = Company.objects.create(name="Kvarnbygg AB")
        floor, before, after, rows = [], [], [], 0
        with services.interactive_client(connection.connector.url, connection.connector.secret) as client:
            conn = client.connection(str(connection.guid), connection.config_values)
            for _ in range(args.rounds):
                started = time.perf_counter()
                conn.search(p.ActorType.CUSTOMER, "", ["NUMBER2", "NAME", "NUMBER1"], limit=linking.SEARCH_LIMIT)
                floor.append(time.perf_counter() - started)

                started = time.perf_counter()
                one_by_one = [linking.search(connection, record, [t], "en") for t in TYPES]
                before.append(time.perf_counter() - started)

                started = time.perf_counter()
                result = linking.search(connection, record, TYPES, "en")
                after.append(time.perf_counter() - started)

                problems = [r.problem for r in [*one_by_one, result] if r.problem is not None]
                if problems:
                    raise SystemExit(f"the search failed: {problems[0]}")
                if result.rows != [row for r in one_by_one for row in r.rows]:
                    raise SystemExit("the search at once found other rows than one type after another")
                rows = len(result.rows)
    finally:
        demo.terminate()
        demo.wait(timeout=20)

    medians = {
        name: statistics.median(times) for name, times in (("floor", floor), ("before", before), ("after", after))
    }
    met = medians["after"] <= TARGET_S
    latency = f"{args.latency_ms / 1000:g} s"
    print(f"Demo ERP at {latency} a call, {len(TYPES)} actor types, {rows} rows, median of {args.rounds}:")
    print(f"  one SearchActors call alone (raw floor)  {medians['floor']:6.2f} s")
    print(f"  one type after another (before)          {medians['before']:6.2f} s")
    print(f"  all types at once (after)                {medians['after']:6.2f} s")
    print(
        f"  {medians['before'] / medians['after']:.1f}× faster; target ≤ {TARGET_S:g} s: {'met' if met else 'NOT met'}"
    )
    result_document = {
        "what": f"ERP tab search over {len(TYPES)} actor types ({', '.join(TYPES)}), Demo ERP at {latency} a call",
        "latency_ms": args.latency_ms,
        "actor_types": TYPES,
        "rows": rows,
        "rounds": args.rounds,
        "floor_s": round(medians["floor"], 3),
        "before_s": round(medians["before"], 3),
        "after_s": round(medians["after"], 3),
        "after_all_s": [round(t, 3) for t in after],
        "target_s": TARGET_S,
    }
    table = [
        summary_row(
            f"ERP tab search over {len(TYPES)} actor types, Demo ERP at {latency} a call",
            f"≤ {TARGET_S:g} s",
            f"{medians['after']:.2f} s (one type after another: {medians['before']:.2f} s)",
            met,
            floor_ratio=round(medians["after"] / medians["floor"], 2),
        )
    ]
    write_results("erp_tab_search", result_document, table)


if __name__ == "__main__":
    main()
