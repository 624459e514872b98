"""Connector protocol throughput against a Demo ERP process with 100,000 actors.

Usage: .venv/bin/python bench/connector_protocol.py [--actors 100000]
Prints each figure beside the raw cost of the same work without the protocol (reading the same rows
from SQLite and encoding them as JSON) and writes bench/results/connector_protocol.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port, summary_row, write_results
from connectors import protocol as p
from connectors.client import ConnectorClient, ConnectorError
from connectors.demo.store import fold

CONFIG: dict[str, p.Value] = {"client_name": "bench", "api_key": "demo-api-key", "company_number": 1}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_feed(db_path: Path) -> tuple[int, float]:
    """The same rows, read from SQLite in the same pages and encoded as JSON, without HTTP or validation."""
    db = sqlite3.connect(db_path)
    db.create_function("fold", 1, fold, deterministic=True)
    started, total = time.perf_counter(), 0
    for actor_type in p.ActorType:
        last = (-1, "")
        while True:
            rows = db.execute(
                "SELECT actor_type, key, parent_type, parent_key, modified_us, vals FROM actors"
                " WHERE actor_type = ? AND (modified_us, key) > (?, ?) ORDER BY modified_us, key LIMIT 1000",
                (actor_type.value, *last),
            ).fetchall()
            if not rows:
                break
            json.dumps([{"key": r[1], "parent": r[3], "modified": r[4], "values": json.loads(r[5])} for r in rows])
            total += len(rows)
            last = (rows[-1][4], rows[-1][1])
    return total, time.perf_counter() - started


def raw_get(db_path: Path, keys: list[str], rounds: int) -> float:
    db = sqlite3.connect(db_path)
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        marks = ",".join("?" * 500)
        rows = []
        for start in (0, 500):
            rows += db.execute(
                f"SELECT key, modified_us, vals FROM actors WHERE actor_type = 'Customer' AND key IN ({marks})",  # noqa: S608
                keys[start : start + 500],
            ).fetchall()
        json.dumps([{"key": r[0], "modified": r[1], "values": json.loads(r[2])} for r in rows])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="erpsync-bench-"))
    secret = secrets.token_urlsafe(24)
    (work / "secret").write_text(secret)
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.demo",
            "--port",
            str(port),
            "--secret-file",
            str(work / "secret"),
            "--data",
            str(work / "demo.sqlite3"),
            "--seed-actors",
            str(args.actors),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = ConnectorClient(f"http://127.0.0.1:{port}", secret)
    try:
        while True:
            try:
                client.get_config_data()
                break
            except ConnectorError:
                if time.perf_counter() - started > 120:
                    raise
                time.sleep(0.2)
        seed_seconds = time.perf_counter() - started
        conn = client.connection(str(uuid.uuid4()), lambda: CONFIG)
        conn.save()

        feed_started = time.perf_counter()
        fed = 0
        for actor_type in p.ActorType:
            if actor_type == p.ActorType.PARTNER:
                continue
            for page in conn.changes(actor_type, page_size=1000):
                fed += len(page.actors)
        feed_seconds = time.perf_counter() - feed_started
        raw_count, raw_seconds = raw_feed(work / "demo.sqlite3")

        keys = [a.key or "" for page in conn.changes(p.ActorType.CUSTOMER, page_size=1000) for a in page.actors][:1000]
        timings = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            got = conn.get_actors(p.ActorType.CUSTOMER, keys)
            timings.append((time.perf_counter() - began) * 1000)
            assert len(got.actors) == 1000
        timings.sort()
        raw_get_ms = raw_get(work / "demo.sqlite3", keys, args.rounds)
        memory = rss_mb(process.pid)
    finally:
        client.close()
        process.terminate()
        process.wait(10)

    results = {
        "actors": args.actors,
        "seed_and_start_seconds": round(seed_seconds, 1),
        "change_feed": {
            "actors": fed,
            "seconds": round(feed_seconds, 2),
            "actors_per_second": round(fed / feed_seconds),
            "raw_actors_per_second": round(raw_count / raw_seconds),
            "overhead_ratio": round((fed / feed_seconds) and (raw_count / raw_seconds) / (fed / feed_seconds), 2),
            "target_actors_per_second": 20_000,
        },
        "get_actors_1000_keys": {
            "p50_ms": round(timings[len(timings) // 2], 1),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
            "raw_p50_ms": round(raw_get_ms, 1),
            "overhead_ratio": round(timings[len(timings) // 2] / raw_get_ms, 2),
            "target_p50_ms": 150,
        },
        "demo_connector_rss_mb": round(memory, 1),
        "target_rss_mb": 200,
    }
    feed, get = results["change_feed"], results["get_actors_1000_keys"]
    print(f"seeded {args.actors} actors and started in {seed_seconds:.1f} s")
    print(
        f"change feed via the client:   {feed['actors_per_second']:>8} actors/s  (raw SQLite + JSON: "
        f"{feed['raw_actors_per_second']} actors/s, ratio {feed['overhead_ratio']}x; target >= 20000)"
    )
    print(
        f"GetActors, 1,000 keys:        p50 {get['p50_ms']} ms, p95 {get['p95_ms']} ms  (raw: {get['raw_p50_ms']} ms, "
        f"ratio {get['overhead_ratio']}x; target p50 <= 150 ms)"
    )
    print(f"Demo ERP memory (RSS):        {memory:.0f} MB at {args.actors} actors (target <= 200 MB)")
    table = [
        summary_row(
            f"change feed of all {fed:,} actors, pages of 1,000",
            "≥ 20,000 actors/s and ≤ 2.5× the raw floor",
            f"{feed['actors_per_second']:,} actors/s",
            feed["actors_per_second"] >= 20_000 and feed["overhead_ratio"] <= 2.5,
            feed["overhead_ratio"],
        ),
        summary_row(
            "GetActors with 1,000 keys",
            "p50 ≤ 150 ms",
            f"p50 {get['p50_ms']:.0f} ms, p95 {get['p95_ms']:.0f} ms",
            get["p50_ms"] <= 150,
            get["overhead_ratio"],
        ),
        summary_row(f"Demo ERP memory (RSS) at {args.actors:,} actors", "≤ 200 MB", f"{memory:.0f} MB", memory <= 200),
    ]
    write_results("connector_protocol", results, table, database="SQLite (Demo ERP's own)")


if __name__ == "__main__":
    main()
