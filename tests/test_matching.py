"""The matching rules of Import from ERP, one table row per rule, plus normalisation and the verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from connections import matching
from connections.choices import ImportAction, MatchKind
from crm.models import Company, Contact, Project


@pytest.mark.parametrize(
    ("function", "raw", "expected"),
    [
        (matching.plain, "  Åkerö   Bygg & Måleri ", "akero bygg and maleri"),
        (matching.plain, "Søndergård Æble", "sondergard aeble"),
        (matching.company_name, "Granbygg AB", "granbygg"),
        (matching.company_name, "GRANBYGG, Aktiebolag", "granbygg"),
        (matching.company_name, "Nordsjø A/S", "nordsjo"),
        (matching.company_name, "AB", "ab"),  # a name that is only a form keeps it
        (matching.code, "se 556000-1111 01", "SE556000111101"),
        (matching.email, " Info@Granbygg.SE ", "info@granbygg.se"),
        (matching.email, "not an address", ""),
        (matching.domain, "anna@granbygg.se", "granbygg.se"),
        (matching.domain, "https://www.granbygg.se/kontakt", "granbygg.se"),
        (matching.domain, "anna.ek@gmail.com", ""),  # free mail says nothing about the organisation
        (matching.digits, "+46 (0)70-123 45 67", "701234567"),
        (matching.digits, "070 123 45 67", "701234567"),
        (matching.digits, "123", ""),
    ],
)
def test_normalisation(function: Any, raw: str, expected: str) -> None:
    assert function(raw) == expected


def index_of(model: Any, *, mapped: tuple[str, ...], linked: dict[int, str] | None = None) -> matching.Index:
    rules = matching.usable_rules(model, mapped)
    return matching.Index(model, rules, model._default_manager.all(), linked or {})


COMPANY_COLUMNS = ("name", "vat_no", "number2", "email", "url", "postal_city")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("crm", "erp", "score", "reason"),
    [
        ({"vat_no": "SE556000111101"}, {"vat_no": "se 556000-1111 01"}, 100, "same VAT number"),
        ({"number2": "10023"}, {"number2": "10 023"}, 90, "same number"),
        ({"email": "info@granbygg.se"}, {"email": "INFO@granbygg.se"}, 90, "same e-mail address"),  # and domain
        (
            {"name": "Granbygg AB", "postal_city": "Umeå"},
            {"name": "Granbygg", "postal_city": "UMEÅ"},
            80,
            "same name and city",
        ),  # also the same name: two rules agree, a little more certain
        ({"url": "https://granbygg.se"}, {"email": "order@granbygg.se"}, 45, "same domain"),
        (
            {"name": "Granbygg AB", "postal_city": "Umeå"},
            {"name": "Granbygg Aktiebolag", "postal_city": "Luleå"},
            40,
            "same name",
        ),
    ],
)
def test_company_rules(crm: dict[str, Any], erp: dict[str, Any], score: int, reason: str) -> None:
    record = Company.objects.create(**{"name": "Something else", **crm})
    Company.objects.create(name="Unrelated Oy", vat_no="FI1", email="x@unrelated.fi", postal_city="Umeå")
    [candidate] = index_of(Company, mapped=COMPANY_COLUMNS).candidates(erp)
    assert (candidate.id, candidate.score) == (record.pk, score)
    assert reason in candidate.reasons


@pytest.mark.django_db
def test_rules_follow_the_field_mapping() -> None:
    Company.objects.create(name="Granbygg AB", vat_no="SE1")
    only_names = index_of(Company, mapped=("name",))
    assert [rule.name for rule in only_names.rules] == ["name"]
    assert only_names.candidates({"vat_no": "SE1"}) == []  # VAT is not mapped: not compared
    assert {rule.name for rule in matching.usable_rules(Company, ("name", "street_city", "url"))} == {
        "name_city",
        "domain",
        "name",
    }


@pytest.mark.django_db
def test_contact_and_project_rules() -> None:
    company = Company.objects.create(name="Granbygg AB")
    other = Company.objects.create(name="Fjällbygg AB")
    anna = Contact.objects.create(
        company=company, first_name="Anna", last_name="Ek", email="anna@granbygg.se", phone_mobile="070-123 45 67"
    )
    contacts = index_of(Contact, mapped=("first_name", "last_name", "email", "phone_mobile"))
    assert contacts.candidates({"email": "ANNA@granbygg.se"})[0].score == 95
    assert contacts.candidates({"first_name": "anna", "last_name": "EK", "company_id": company.pk})[0].reasons == [
        "same name at the same company"
    ]
    assert contacts.candidates({"first_name": "Anna", "last_name": "Ek", "company_id": other.pk}) == []
    assert contacts.candidates({"phone_mobile": "+46 70 123 45 67"})[0].id == anna.pk
    project = Project.objects.create(company=company, name="ERP rollout", number="P-100")
    projects = index_of(Project, mapped=("name", "number"))
    assert projects.candidates({"number": "p100"})[0].id == project.pk
    assert projects.candidates({"name": "ERP Rollout", "company_id": company.pk})[0].score == 75
    assert projects.candidates({"name": "ERP rollout", "company_id": other.pk}) == []  # a common name alone is no match
    assert contacts.names[anna.pk] == "Anna Ek (Granbygg AB)"


@pytest.mark.django_db
def test_a_key_many_records_share_is_offered_only_when_it_identifies() -> None:
    for number in range(matching.COMMON_KEY + 1):
        Company.objects.create(name="Bygg AB", postal_city=f"Stad {number}", email="info@bygg.se", vat_no="SE1")
    index = index_of(Company, mapped=("name", "postal_city", "email", "vat_no"))
    assert index.candidates({"name": "Bygg", "postal_city": "Umeå", "email": "info@bygg.se"}) == []
    assert len(index.candidates({"vat_no": "SE1"}, limit=50)) == matching.COMMON_KEY + 1


def candidate(pk: int, score: int, linked_to: str = "", identified: bool = False) -> matching.Candidate:
    return matching.Candidate(pk, f"Record {pk}", score, ["same VAT number"], linked_to, identified)


@pytest.mark.parametrize(
    ("candidates", "kind", "action", "target", "reason"),
    [
        ([], MatchKind.NEW, ImportAction.CREATE, None, ""),
        ([candidate(1, 100), candidate(2, 40)], MatchKind.MATCH, ImportAction.LINK, 1, "Record 1: same VAT number"),
        ([candidate(1, 100), candidate(2, 90)], MatchKind.AMBIGUOUS, "", None, "2 CRM records look the same"),
        ([candidate(1, 100, "Customer 7")], MatchKind.AMBIGUOUS, "", None, "already linked to Customer 7"),
        ([candidate(1, 45)], MatchKind.AMBIGUOUS, "", None, "Possibly Record 1"),
        # One record found by an identifier decides, however many share weaker keys …
        (
            [candidate(1, 100, identified=True), candidate(2, 90), candidate(3, 90)],
            MatchKind.MATCH,
            ImportAction.LINK,
            1,
            "Record 1",
        ),
        # … but two found by identifiers need a person.
        (
            [candidate(1, 100, identified=True), candidate(2, 90, identified=True)],
            MatchKind.AMBIGUOUS,
            "",
            None,
            "2 CRM records look the same",
        ),
    ],
)
def test_verdicts(
    candidates: list[matching.Candidate], kind: str, action: str, target: int | None, reason: str
) -> None:
    found = matching.verdict(candidates)
    assert (found.kind, found.action, found.target) == (kind, action, target)
    assert reason in found.reason
