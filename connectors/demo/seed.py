"""A deterministic set of Demo ERP actors: the same count and seed always give the same store."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.protocol import ActorType

from . import catalogue as cat
from .connector import _insert_tuple
from .store import Row, Store

STEMS = [
    "Nord",
    "Fjäll",
    "Sjö",
    "Björk",
    "Vind",
    "Älv",
    "Skog",
    "Berg",
    "Havs",
    "Strand",
    "Ljus",
    "Ek",
    "Gran",
    "Sol",
    "Is",
    "Lund",
    "Dal",
    "Varg",
    "Ørn",
    "Fjord",
    "Myr",
    "Hav",
    "Sten",
    "Vik",
]
ENDS = [
    "teknik",
    "bygg",
    "data",
    "logistik",
    "konsult",
    "design",
    "energi",
    "trä",
    "mekanik",
    "system",
    "media",
    "transport",
    "el",
    "vård",
    "mat",
    "stål",
    "plast",
    "optik",
]
FORMS = {"SE": "AB", "NO": "AS", "DK": "ApS", "FI": "Oy", "IS": "ehf."}
CITIES = {
    "SE": [("Stockholm", "111 52"), ("Göteborg", "411 06"), ("Malmö", "211 20"), ("Umeå", "903 25")],
    "NO": [("Oslo", "0150"), ("Bergen", "5003"), ("Tromsø", "9008")],
    "DK": [("København K", "1050"), ("Aarhus C", "8000")],
    "FI": [("Helsinki", "00100"), ("Tampere", "33100")],
    "IS": [("Reykjavík", "101")],
}
FIRST = [
    "Anna",
    "Erik",
    "Lars",
    "Karin",
    "Johan",
    "Maria",
    "Per",
    "Ingrid",
    "Nils",
    "Sofia",
    "Mikko",
    "Aino",
    "Sigrid",
    "Magnus",
    "Astrid",
    "Bjørn",
    "Freja",
    "Gunnar",
    "Jón",
    "Guðrún",
]
LAST = [
    "Andersson",
    "Johansson",
    "Nilsson",
    "Olsen",
    "Hansen",
    "Jensen",
    "Nielsen",
    "Korhonen",
    "Virtanen",
    "Lindqvist",
    "Berg",
    "Holm",
    "Dahl",
    "Jónsson",
    "Haugen",
]
# What tells apart companies of the same name in a real register: a part of the country, a business line, an
# owner's name. A name is given once in a store; the same stem again gets the next of these (and, past them all,
# a number), so that a large store reads like a register and not like a few hundred names repeated.
QUALIFIERS = ["Holding", "Väst", "Öst", "Norr", "Syd", "Service", "& Partners", "Group", "Nordic", "Invest"]
# The n-th organisation of a stem and form gets the n-th of these names; past them all, a number.
NAMES = [
    "{stem} {form}",
    *(f"{{stem}} {qualifier} {{form}}" for qualifier in QUALIFIERS),
    *(f"{owner}s {{stem}} {{form}}" for owner in LAST),
    *(f"{owner}s {{stem}} {qualifier} {{form}}" for owner in LAST for qualifier in QUALIFIERS),
]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
# Of every 20 actors: 12 customers, 2 suppliers, 5 persons, 1 project.
PATTERN = [ActorType.CUSTOMER] * 12 + [ActorType.SUPPLIER] * 2 + [ActorType.PERSON] * 5 + [ActorType.PROJECT]


def seed(store: Store, count: int, seed_value: int = 1) -> int:
    """Fill an empty store with ``count`` actors; a store that already has actors is left alone."""
    if count <= 0 or store.count() > 0:
        return 0
    rng = random.Random(seed_value)  # noqa: S311  (repeatable demo data)
    given: dict[str, int] = {}  # how many organisations have had each stem and form so far
    numbers = dict.fromkeys(ActorType, 100000)
    customers: list[str] = []
    suppliers: list[str] = []
    rows = []
    for index in range(count):
        actor_type = PATTERN[index % len(PATTERN)]
        numbers[actor_type] += 1
        key = f"{cat.KEY_PREFIX[actor_type]}{numbers[actor_type]}"
        parent: tuple[str | None, str | None] = (None, None)
        if actor_type == ActorType.CUSTOMER:
            values = _organisation(rng, key, customer=True, given=given)
            customers.append(key)
        elif actor_type == ActorType.SUPPLIER:
            values = _organisation(rng, key, customer=False, given=given)
            suppliers.append(key)
        elif actor_type == ActorType.PERSON:
            values = _person(rng, key)
            owner_type, pool = (
                (ActorType.SUPPLIER, suppliers)
                if rng.random() < 0.15 and suppliers
                else (ActorType.CUSTOMER, customers)
            )
            parent = (owner_type.value, rng.choice(pool))
        else:
            values = _project(rng, key)
            parent = (ActorType.CUSTOMER.value, rng.choice(customers))
        modified = int((EPOCH + timedelta(seconds=index)).timestamp() * 1_000_000)
        rows.append(Row.of(actor_type.value, key, parent[0], parent[1], modified, values))
    with store.write() as db:
        Store.insert(db, (_insert_tuple(row) for row in rows))
        for actor_type, number in numbers.items():
            db.execute(
                "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (f"key:{actor_type.value}", number)
            )
        db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('clock', ?)", (rows[-1].modified_us,))
    return count


def company_name(stem: str, form: str, occurrence: int) -> str:
    """The name of the ``occurrence``-th organisation (from 0) whose name is made of ``stem`` and ``form``."""
    if occurrence < len(NAMES):
        return NAMES[occurrence].format(stem=stem, form=form)
    return f"{stem} {occurrence - len(NAMES) + 2} {form}"


def _organisation(rng: random.Random, key: str, customer: bool, given: dict[str, int]) -> dict[str, Any]:
    country = rng.choices(list(FORMS), [8, 5, 4, 4, 1])[0]
    stem = rng.choice(STEMS) + rng.choice(ENDS)
    base = f"{stem} {FORMS[country]}"
    occurrence = given[base] = given.get(base, -1) + 1
    city, zip_code = rng.choice(CITIES[country])
    domain = stem.lower().translate(str.maketrans("äöåøæ", "aoaoa")) + "." + country.lower()
    values: dict[str, Any] = {
        "NUMBER2": key,
        "NAME": company_name(stem, FORMS[country], occurrence),
        "NUMBER1": stem[:8].upper(),
        "VATNO": f"{country}{rng.randint(10**9, 10**10 - 1)}",
        "PHONE": f"+46 {rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        "EMAIL": f"{'invoice' if customer else 'sales'}@{domain}",
        "URL": f"https://www.{domain}",
        "POSTALAD1": f"Box {rng.randint(1, 9999)}",
        "POSTALZIP": zip_code,
        "POSTALCITY": city,
        "COUNTRY": country,
        "CURRENCY": {"SE": "SEK", "NO": "NOK", "DK": "DKK", "FI": "EUR", "IS": "ISK"}[country],
        "PAYMENT_TERMS": rng.choice(["10", "30", "30", "60"]),
        "BLOCKED": rng.random() < 0.03,
        "BALANCE": f"{rng.uniform(0, 250_000):.2f}",
    }
    if customer:
        values.update(
            CUSTOMER_GROUP=rng.choice(["RET", "WHO", "PUB", "KEY", "INT"]),
            CREDIT_LIMIT=f"{rng.choice([0, 10_000, 50_000, 100_000, 500_000])}.00",
            INVOICE_COUNT=rng.randint(0, 400),
            CUSTOMER_SINCE=(date(2010, 1, 1) + timedelta(days=rng.randint(0, 5000))).isoformat(),
            LAST_INVOICE=(EPOCH - timedelta(minutes=rng.randint(0, 500_000))).isoformat(timespec="microseconds"),
        )
    else:
        values.update(
            SUPPLIER_GROUP=rng.choice(["GOODS", "SERV", "SUBC"]), BANK_ACCOUNT=f"SE{rng.randint(10**21, 10**22 - 1)}"
        )
    return values


def _person(rng: random.Random, key: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "NUMBER": key,
        "FIRSTNAME": first,
        "LASTNAME": last,
        "TITLE": rng.choice(["", "Purchasing manager", "CFO", "Accountant", "CEO"]),
        "EMAIL": f"{first.lower()}.{last.lower()}.{key.lower()}@example.com",
        "PHONE_MOBILE": f"+46 7{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        "BIRTHDATE": (date(1960, 1, 1) + timedelta(days=rng.randint(0, 14000))).isoformat(),
        "INVOICE_RECIPIENT": rng.random() < 0.2,
    }


def _project(rng: random.Random, key: str) -> dict[str, Any]:
    start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 600))
    return {
        "NUMBER": key,
        "NAME": rng.choice(["ERP rollout", "Warehouse upgrade", "Data migration", "Support agreement", "Audit"]),
        "TEXT": "Scope and milestones agreed with the customer.",
        "STATUS": rng.choice(["PLAN", "ACTIVE", "ACTIVE", "HOLD", "DONE"]),
        "STARTDATE": start.isoformat(),
        "ENDDATE": (start + timedelta(days=rng.randint(30, 400))).isoformat(),
        "BUDGET": f"{rng.randint(10, 500) * 1000}.00",
        "HOURS_LOGGED": rng.randint(0, 2000),
    }


def dump(store: Store) -> str:
    """The whole store as text, for comparing two seeds."""
    with store.read() as db:
        return json.dumps(db.execute("SELECT * FROM actors ORDER BY actor_type, key").fetchall())
