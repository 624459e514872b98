"""Finding the CRM record that is probably the same as an ERP actor, before an import creates anything.

Each rule turns a record's values into a normalised key (a VAT number without spaces, a name without its
company form, an e-mail domain …); an ERP actor and a CRM record that share a key match by that rule, with
the rule's score. The rules read CRM columns, so an ERP actor is compared through the field mapping: a rule
whose columns no mapped field fills is not used. See docs/import.md for the table of rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Company, Contact, Project

from .choices import ImportAction, MatchKind

# A candidate at or above this score is "probably the same"; below it, only possibly.
MATCH_AT = 75
# A key of a rule that does not identify, shared by more records than this ("AB Bygg", info@ of a group, a
# group's domain), tells nothing about which record is meant: it is not offered.
COMMON_KEY = 20

# Company forms, as whole words after punctuation is removed: "Granbygg AB" and "Granbygg" are one name.
# fmt: off
COMPANY_FORMS = frozenset({
    "ab", "aktiebolag", "hb", "kb", "oy", "oyj", "as", "asa", "aps", "hf", "ehf", "sa", "sarl", "sas", "bv", "nv",
    "gmbh", "ag", "kg", "ug", "ltd", "limited", "llc", "llp", "inc", "incorporated", "corp", "corporation", "co",
    "company", "plc", "srl", "spa", "sl", "pty",
})
# Addresses at these domains say nothing about which organisation someone belongs to.
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "hotmail.com", "hotmail.se", "outlook.com", "live.com", "live.se", "msn.com",
    "yahoo.com", "yahoo.se", "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de",
    "web.de", "telia.com",
})
# fmt: on
NOT_WORD, NOT_CODE, NOT_DIGIT = re.compile(r"[^\w]+"), re.compile(r"[^0-9A-Z]"), re.compile(r"\D")
A_S, SCHEME = re.compile(r"\ba\s*/\s*s\b", re.IGNORECASE), re.compile(r"^[a-z]+://")


def plain(text: Any) -> str:
    """Case- and accent-free text with single spaces: "  Åkerö  Bygg " → "akero bygg"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text).casefold().replace("ø", "o").replace("æ", "ae"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(NOT_WORD.sub(" ", stripped.replace("&", " and ")).split())


def company_name(text: Any) -> str:
    """A company name without its form or punctuation: "Granbygg AB", "GRANBYGG, A/S" → "granbygg"."""
    text = A_S.sub("as", str(text or ""))
    words = [word for word in plain(text).split() if word not in COMPANY_FORMS]
    return " ".join(words) or plain(text)


def code(text: Any) -> str:
    """Letters and digits only, upper case: VAT and customer numbers as people type them differently."""
    return NOT_CODE.sub("", str(text or "").upper())


def email(text: Any) -> str:
    value = str(text or "").strip().lower()
    return value if "@" in value else ""


def domain(text: Any) -> str:
    """The organisation's domain from an e-mail address or a web address; "" for free mail services."""
    value = str(text or "").strip().lower()
    value = value.rsplit("@", 1)[1] if "@" in value else SCHEME.sub("", value).split("/", 1)[0].split(":", 1)[0]
    value = value.removeprefix("www.")
    return "" if not value or "." not in value or value in FREE_MAIL else value


def digits(text: Any, last: int = 9) -> str:
    """The last digits of a phone number, so that +46 70 … and 070 … compare equal."""
    found = NOT_DIGIT.sub("", str(text or ""))
    return found[-last:] if len(found) >= 7 else ""


def person_name(values: dict[str, Any]) -> str:
    return plain(" ".join(str(values.get(key) or "") for key in ("first_name", "middle_name", "last_name")))


def _both(*parts: str) -> str:
    return "|".join(parts) if all(parts) else ""


@dataclass(frozen=True)
class Rule:
    """One way two records can be the same.

    ``needs``: the CRM columns the key is made from, as groups of alternatives; the rule is usable when the
    field mapping fills at least one column of every group. ``identifies``: the key is an identifier (a VAT
    number, a customer number): one record found by it is the record, whatever else shares weaker keys.
    """

    name: str
    score: int
    reason: Any  # lazy text
    needs: tuple[tuple[str, ...], ...]
    key: Callable[[dict[str, Any]], str]
    identifies: bool = False


RULES: dict[type[models.Model], list[Rule]] = {
    Company: [
        Rule(
            "vat",
            100,
            gettext_lazy("same VAT number"),
            (("vat_no",),),
            lambda v: code(v.get("vat_no")),
            identifies=True,
        ),
        Rule(
            "number",
            90,
            gettext_lazy("same number"),
            (("number2",),),
            lambda v: code(v.get("number2")),
            identifies=True,
        ),
        Rule("email", 85, gettext_lazy("same e-mail address"), (("email",),), lambda v: email(v.get("email"))),
        Rule(
            "name_city",
            75,
            gettext_lazy("same name and city"),
            (("name",), ("postal_city", "street_city")),
            lambda v: _both(company_name(v.get("name")), plain(v.get("postal_city") or v.get("street_city"))),
        ),
        Rule(
            "domain",
            45,
            gettext_lazy("same domain"),
            (("email", "url"),),
            lambda v: domain(v.get("email")) or domain(v.get("url")),
        ),
        Rule("name", 40, gettext_lazy("same name"), (("name",),), lambda v: company_name(v.get("name"))),
    ],
    Contact: [
        Rule(
            "email",
            95,
            gettext_lazy("same e-mail address"),
            (("email",),),
            lambda v: email(v.get("email")),
            identifies=True,
        ),
        Rule(
            "name_company",
            80,
            gettext_lazy("same name at the same company"),
            (("first_name",), ("company_id",)),
            lambda v: _both(person_name(v), str(v.get("company_id") or "")),
        ),
        Rule(
            "mobile",
            70,
            gettext_lazy("same mobile number"),
            (("phone_mobile",),),
            lambda v: digits(v.get("phone_mobile")),
        ),
    ],
    Project: [
        Rule(
            "number", 90, gettext_lazy("same number"), (("number",),), lambda v: code(v.get("number")), identifies=True
        ),
        Rule(
            "name_company",
            75,
            gettext_lazy("same name for the same company"),
            (("name",), ("company_id",)),
            lambda v: _both(plain(v.get("name")), str(v.get("company_id") or "")),
        ),
    ],
}

# What each kind of record is read with to build the index, and how it is named in the preview.
COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    Company: ("name", "department", "vat_no", "number2", "email", "url", "postal_city", "street_city"),
    Contact: ("first_name", "middle_name", "last_name", "email", "phone_mobile", "company_id", "company__name"),
    Project: ("name", "number", "company_id", "company__name"),
}


def label(model: type[models.Model], values: dict[str, Any]) -> str:
    if model is Company:
        return " – ".join(part for part in (values.get("name"), values.get("department")) if part)
    name = (
        values.get("name")
        if model is Project
        else " ".join(str(values.get(k)) for k in ("first_name", "middle_name", "last_name") if values.get(k))
    )
    return f"{name} ({values['company__name']})" if values.get("company__name") else str(name or "")


def usable_rules(model: type[models.Model], mapped_columns: Iterable[str]) -> list[Rule]:
    """The rules an ERP actor can be compared by: those whose columns the field mapping fills."""
    have = set(mapped_columns) | {"company_id"}
    return [rule for rule in RULES[model] if all(have.intersection(group) for group in rule.needs)]


@dataclass
class Candidate:
    id: int
    name: str
    score: int
    reasons: list[str]
    linked_to: str = ""  # the ERP actor this record is already linked to on the connection, if any
    identified: bool = False  # found by an identifying rule

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "score": self.score,
            "reasons": self.reasons,
            "linked_to": self.linked_to,
            "identified": self.identified,
        }


@dataclass
class Verdict:
    kind: str
    action: str
    target: int | None
    score: int
    reason: str
    candidates: list[Candidate] = field(default_factory=list)


class Index:
    """The CRM's records of one kind, by every usable rule's key; built once per import (one pass over the table).

    ``linked``: record id → the ERP actor ("Customer 10023") it is linked to on the connection.
    """

    def __init__(
        self, model: type[models.Model], rules: list[Rule], records: models.QuerySet[Any], linked: dict[int, str]
    ) -> None:
        self.model = model
        self.rules = rules
        self.linked = linked
        self.names: dict[int, str] = {}
        self.reasons = {rule.name: str(rule.reason) for rule in rules}  # in the language active now
        self.keys: dict[str, dict[str, int | tuple[int, ...]]] = {rule.name: {} for rule in rules}
        columns = COLUMNS[model]
        for row in records.values_list("pk", *columns).iterator(chunk_size=5000):
            self.add(row[0], dict(zip(columns, row[1:], strict=True)))

    def add(self, pk: int, values: dict[str, Any]) -> None:
        self.names[pk] = label(self.model, values)
        for rule in self.rules:
            key = rule.key(values)
            if not key:
                continue
            table = self.keys[rule.name]
            found = table.get(key)
            # Most keys belong to one record: an int costs far less memory than a list.
            table[key] = pk if found is None else (*found, pk) if isinstance(found, tuple) else (found, pk)

    def keys_of(self, values: dict[str, Any]) -> dict[str, str]:
        """Each usable rule's key for ``values`` (rule name → key; empty keys left out)."""
        found = {}
        for rule in self.rules:
            key = rule.key(values)
            if key:
                found[rule.name] = key
        return found

    def candidates(self, values: dict[str, Any], limit: int = 5, keys: dict[str, str] | None = None) -> list[Candidate]:
        """Records sharing a key with ``values``, best first. Several rules agreeing add a little to the score."""
        keys = self.keys_of(values) if keys is None else keys
        hits: dict[int, list[Rule]] = {}
        for rule in self.rules:
            found = self.keys[rule.name].get(keys[rule.name]) if rule.name in keys else None
            if isinstance(found, tuple) and len(found) > COMMON_KEY and not rule.identifies:
                continue
            for pk in (found,) if isinstance(found, int) else found or ():
                hits.setdefault(pk, []).append(rule)
        found_candidates = []
        for pk, rules in hits.items():
            best = max(rule.score for rule in rules)
            score = min(100, best + 5 * (len(rules) - 1))
            found_candidates.append(
                Candidate(
                    pk,
                    self.names.get(pk, str(pk)),
                    score,
                    [self.reasons[rule.name] for rule in rules],
                    self.linked.get(pk, ""),
                    any(rule.identifies for rule in rules),
                )
            )
        found_candidates.sort(key=lambda c: (-c.score, c.id))
        return found_candidates[:limit]


def verdict(candidates: list[Candidate]) -> Verdict:
    """Classify one ERP actor by its candidates: new, a clear match, or a decision for a person to make."""
    if not candidates:
        return Verdict(MatchKind.NEW, ImportAction.CREATE, None, 0, "", candidates)
    identified = [c for c in candidates if c.identified]
    # One record found by an identifier decides; otherwise one record that is probably the same does.
    strong = identified or [c for c in candidates if c.score >= MATCH_AT]
    free = [c for c in strong if not c.linked_to]
    best = strong[0] if strong else candidates[0]
    if len(strong) == 1 and free:
        chosen = free[0]
        return Verdict(
            MatchKind.MATCH,
            ImportAction.LINK,
            chosen.id,
            chosen.score,
            _("%(name)s: %(reasons)s") % {"name": chosen.name, "reasons": ", ".join(chosen.reasons)},
            candidates,
        )
    if len(strong) > 1:
        reason = _("%(count)s CRM records look the same: %(names)s") % {
            "count": len(strong),
            "names": "; ".join(f"{c.name} ({', '.join(c.reasons)})" for c in strong),
        }
    elif strong:
        reason = _("%(name)s looks the same (%(reasons)s) but is already linked to %(actor)s") % {
            "name": best.name,
            "reasons": ", ".join(best.reasons),
            "actor": best.linked_to,
        }
    else:
        reason = _("Possibly %(name)s (%(reasons)s)") % {"name": best.name, "reasons": ", ".join(best.reasons)}
    return Verdict(MatchKind.AMBIGUOUS, "", None, best.score, reason, candidates)
