"""The Demo ERP's seeded register reads like a real one: however many organisations, no two share a name, and
names stay plausible (a number only once every other way of telling them apart is used)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from connectors.demo import seed as demo_seed
from connectors.demo.store import Store


def names(path: Path, actor_type: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [
            json.loads(vals)["NAME"]
            for (vals,) in db.execute("SELECT vals FROM actors WHERE actor_type = ?", (actor_type,))
        ]


def test_a_large_register_has_no_two_organisations_of_the_same_name(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    assert demo_seed.seed(Store(path), 40_000) == 40_000
    customers, suppliers = names(path, "Customer"), names(path, "Supplier")
    assert len(customers) == 24_000 and len(suppliers) == 4_000
    every = customers + suppliers
    assert len(set(every)) == len(every)
    numbered = [name for name in every if any(part.isdigit() for part in name.split())]
    assert numbered == []  # 28,000 organisations are told apart by words alone


def test_the_names_of_one_stem_go_from_plain_through_qualifiers_and_owners_to_numbers() -> None:
    plain = len(demo_seed.NAMES) - 1  # the index of the last name without a number
    made = [demo_seed.company_name("Fjällbygg", "AB", n) for n in range(plain + 3)]
    assert made[:3] == ["Fjällbygg AB", "Fjällbygg Holding AB", "Fjällbygg Väst AB"]
    assert made[len(demo_seed.QUALIFIERS) + 1] == "Anderssons Fjällbygg AB"
    assert made[plain] == "Haugens Fjällbygg Invest AB"  # the last owner with the last qualifier
    assert made[plain + 1 :] == ["Fjällbygg 2 AB", "Fjällbygg 3 AB"]
    assert len(set(made)) == len(made)
