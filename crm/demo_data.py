"""A deterministic set of Nordic demo records: the same seed always gives the same records."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

# The tables and word lists below keep their rows as written (`# fmt: skip`): they read as tables, one row a line.

COUNTRIES = [
    ("SE", "Sweden"), ("NO", "Norway"), ("DK", "Denmark"), ("FI", "Finland"), ("IS", "Iceland"),
    ("DE", "Germany"), ("GB", "United Kingdom"), ("NL", "Netherlands"), ("EE", "Estonia"), ("LV", "Latvia"),
    ("LT", "Lithuania"), ("PL", "Poland"), ("FR", "France"), ("US", "United States"),
]  # fmt: skip
BUSINESSES = ["IT", "Manufacturing", "Construction", "Retail", "Logistics", "Energy", "Healthcare", "Consulting",
              "Media", "Food and beverages"]  # fmt: skip
CATEGORIES = ["Customer", "Prospect", "Supplier", "Partner", "Former customer"]
POSITIONS = ["Chief executive", "Chief financial officer", "Purchasing manager", "Sales manager", "Accountant",
             "Project manager", "IT manager", "Office manager"]  # fmt: skip
PROJECT_TYPES = ["Implementation", "Consulting", "Support agreement", "Upgrade", "Training"]

# country: (legal form, phone prefix, [(city, postal code, county)], [streets])
PLACES: dict[str, tuple[str, str, list[tuple[str, str, str]], list[str]]] = {
    "SE": ("AB", "+46", [("Stockholm", "111 52", "Stockholms län"), ("Göteborg", "411 06", "Västra Götaland"),
                         ("Malmö", "211 20", "Skåne"), ("Uppsala", "753 20", "Uppsala län"),
                         ("Umeå", "903 25", "Västerbotten"), ("Luleå", "972 31", "Norrbotten"),
                         ("Västerås", "722 12", "Västmanland"), ("Örebro", "702 10", "Örebro län")],
           ["Storgatan", "Drottninggatan", "Kungsgatan", "Sveavägen", "Vasagatan", "Järnvägsgatan"]),
    "NO": ("AS", "+47", [("Oslo", "0150", "Oslo"), ("Bergen", "5003", "Vestland"), ("Trondheim", "7011", "Trøndelag"),
                         ("Stavanger", "4006", "Rogaland"), ("Tromsø", "9008", "Troms")],
           ["Karl Johans gate", "Storgata", "Kongens gate", "Torggata"]),
    "DK": ("ApS", "+45", [("København K", "1050", "Hovedstaden"), ("Aarhus C", "8000", "Midtjylland"),
                          ("Odense C", "5000", "Syddanmark"), ("Aalborg", "9000", "Nordjylland")],
           ["Vestergade", "Nørregade", "Algade", "Søndergade"]),
    "FI": ("Oy", "+358", [("Helsinki", "00100", "Uusimaa"), ("Espoo", "02100", "Uusimaa"),
                          ("Tampere", "33100", "Pirkanmaa"), ("Turku", "20100", "Varsinais-Suomi"),
                          ("Oulu", "90100", "Pohjois-Pohjanmaa")],
           ["Mannerheimintie", "Aleksanterinkatu", "Hämeenkatu", "Kauppakatu"]),
    "IS": ("ehf.", "+354", [("Reykjavík", "101", "Höfuðborgarsvæðið"), ("Akureyri", "600", "Norðurland eystra")],
           ["Laugavegur", "Hafnarstræti"]),
}  # fmt: skip
COUNTRY_WEIGHTS = {"SE": 8, "NO": 5, "DK": 4, "FI": 4, "IS": 1}
NAME_STARTS = ["Nord", "Fjäll", "Sjö", "Björk", "Vind", "Älv", "Skog", "Berg", "Havs", "Strand", "Ljus", "Ek",
               "Gran", "Sol", "Is", "Lund", "Dal", "Varg", "Ørn", "Fjord"]  # fmt: skip
NAME_ENDS = ["teknik", "bygg", "data", "logistik", "konsult", "design", "energi", "trä", "mekanik", "system",
             "media", "transport", "el", "vård", "mat"]  # fmt: skip
FIRST_NAMES = ["Anna", "Erik", "Lars", "Karin", "Johan", "Maria", "Per", "Ingrid", "Nils", "Sofia", "Mikael",
               "Elin", "Ola", "Kari", "Henrik", "Mette", "Jens", "Sanna", "Mikko", "Aino", "Juha", "Liisa",
               "Sigrid", "Magnus", "Astrid", "Bjørn", "Freja", "Gunnar", "Hanna", "Oskar", "Linnea", "Emil",
               "Sven", "Tove", "Rasmus", "Ida", "Jón", "Guðrún"]  # fmt: skip
LAST_NAMES = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsen", "Hansen",
              "Johansen", "Jensen", "Nielsen", "Pedersen", "Korhonen", "Virtanen", "Mäkinen", "Nieminen",
              "Lindqvist", "Berg", "Lund", "Holm", "Dahl", "Sandberg", "Jónsson", "Haugen", "Bakke",
              "Sjöberg"]  # fmt: skip
PROJECT_WORDS = ["ERP rollout", "Warehouse upgrade", "Website relaunch", "Support agreement", "Data migration",
                 "Staff training", "Cloud move", "Invoice automation", "New office fit-out", "Audit"]  # fmt: skip

_ASCII = str.maketrans({"å": "a", "ä": "a", "ö": "o", "ø": "o", "æ": "ae", "é": "e", "ð": "d", "ó": "o", "ú": "u",
                        "í": "i", "á": "a", "ý": "y", " ": "", ".": "", "-": ""})  # fmt: skip


def _phone(rng: random.Random, prefix: str, area: int) -> str:
    return f"{prefix} {area} {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"


def slug(text: str) -> str:
    return text.lower().translate(_ASCII)


@dataclass
class DemoCompany:
    number2: str
    values: dict[str, object]
    country: str
    category: str
    business: str


@dataclass
class DemoContact:
    number: str
    company_number: str
    values: dict[str, object]
    position: str
    country: str


@dataclass
class DemoProject:
    number: str
    company_number: str
    values: dict[str, object]
    project_type: str


@dataclass
class DemoData:
    companies: list[DemoCompany] = field(default_factory=list)
    contacts: list[DemoContact] = field(default_factory=list)
    projects: list[DemoProject] = field(default_factory=list)


def generate(seed: int = 2026, companies: int = 200, contacts: int = 500, projects: int = 50) -> DemoData:
    rng = random.Random(seed)  # noqa: S311  (repeatable demo data, not secrets)
    data = DemoData()
    stems = rng.sample([start + end for start in NAME_STARTS for end in NAME_ENDS], companies)
    countries = list(COUNTRY_WEIGHTS)
    weights = list(COUNTRY_WEIGHTS.values())
    for index, stem in enumerate(stems, start=1):
        country = rng.choices(countries, weights)[0]
        legal_form, prefix, cities, streets = PLACES[country]
        city, zip_code, county = rng.choice(cities)
        name = f"{stem.capitalize()} {legal_form}"
        domain = f"{slug(stem)}.{country.lower() if country != 'GB' else 'co.uk'}"
        address = f"{rng.choice(streets)} {rng.randint(1, 120)}"
        vat_digits = "".join(str(rng.randint(0, 9)) for _ in range(10))
        vat = {"SE": f"SE{vat_digits}01", "NO": f"NO{vat_digits[:9]}MVA"}.get(country, f"{country}{vat_digits[:8]}")
        data.companies.append(
            DemoCompany(
                number2=f"{10000 + index}",
                country=country,
                category=rng.choices(CATEGORIES, [10, 5, 3, 2, 1])[0],
                business=rng.choice(BUSINESSES),
                values={
                    "name": name,
                    "number1": slug(stem)[:8].upper(),
                    "phone": _phone(rng, prefix, rng.randint(10, 99)),
                    "email": f"info@{domain}",
                    "url": f"https://www.{domain}",
                    "vat_no": vat,
                    "postal_address1": address,
                    "postal_zip": zip_code,
                    "postal_city": city,
                    "postal_county": county,
                    "street_address1": address,
                    "street_zip": zip_code,
                    "street_city": city,
                    "department": rng.choice(["", "", "", "Head office", "Sales", "Purchasing"]),
                },
            )
        )
    for index in range(1, contacts + 1):
        # Every company gets one contact first; the rest are spread at random.
        company = data.companies[index - 1] if index <= companies else rng.choice(data.companies)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        prefix = PLACES[company.country][1]
        domain = str(company.values["email"]).split("@", 1)[1]
        data.contacts.append(
            DemoContact(
                number=f"P{index:05d}",
                company_number=company.number2,
                position=rng.choice(POSITIONS),
                country=company.country,
                values={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{slug(first)}.{slug(last)}{index}@{domain}",
                    "phone_mobile": _phone(rng, prefix, rng.randint(70, 79)),
                    "phone_direct": _phone(rng, prefix, rng.randint(10, 99)),
                    "birth_date": date(1960, 1, 1) + timedelta(days=rng.randint(0, 14000)),
                    "postal_address1": company.values["postal_address1"],
                    "postal_zip": company.values["postal_zip"],
                    "postal_city": company.values["postal_city"],
                },
            )
        )
    for index in range(1, projects + 1):
        company = data.companies[rng.randint(0, companies - 1)]
        data.projects.append(
            DemoProject(
                number=f"PR{index:04d}",
                company_number=company.number2,
                project_type=rng.choice(PROJECT_TYPES),
                values={
                    "name": f"{company.values['name']}: {rng.choice(PROJECT_WORDS)}",
                    "text": "Agreed scope, milestones and contacts are kept on this project.",
                    "end_date": date(2026, 1, 1) + timedelta(days=rng.randint(0, 720)),
                },
            )
        )
    return data
