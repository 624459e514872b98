"""Company, Contact and Project pages, as each kind of user sees them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django import forms
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from crm import tabs
from crm.models import Company, Contact, Project

from .factories import CompanyFactory, ContactFactory, ProjectFactory
from .permission_matrix import assert_access

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(admin_user: Any, licensed_user: Any, outsider: Any) -> dict[str, Any]:
    return {"admin": admin_user, "licensed": licensed_user, "outsider": outsider}


PAGE_OK = {"anonymous": 302, "outsider": 403, "licensed": 200, "admin": 200}


@pytest.mark.parametrize(
    ("factory", "prefix"), [(CompanyFactory, "company"), (ContactFactory, "contact"), (ProjectFactory, "project")]
)
def test_every_record_page_obeys_the_permission_matrix(
    client: Any, users: dict[str, Any], factory: Any, prefix: str
) -> None:
    record = factory.create()
    for url in (
        reverse(f"crm:{prefix}-list"),
        reverse(f"crm:{prefix}-detail", args=[record.pk]),
        reverse(f"crm:{prefix}-create"),
        reverse(f"crm:{prefix}-edit", args=[record.pk]),
    ):
        assert_access(client, users, url, PAGE_OK)


def test_a_user_who_may_only_view_gets_no_edit_button_and_no_edit_page(client: Any, django_user_model: Any) -> None:
    from .factories import UserFactory

    viewer = UserFactory.create(username="vera", perms=["crm.view_company"])
    company = CompanyFactory.create()
    client.force_login(viewer)
    page = client.get(company.get_absolute_url())
    assert page.status_code == 200
    assert reverse("crm:company-edit", args=[company.pk]) not in page.content.decode()
    assert client.get(reverse("crm:company-edit", args=[company.pk])).status_code == 403


def test_a_missing_record_is_a_404(as_user: Any, licensed_user: Any) -> None:
    assert as_user(licensed_user).get(reverse("crm:company-detail", args=[999999])).status_code == 404


def test_the_company_list_searches_every_word_across_columns(as_user: Any, licensed_user: Any) -> None:
    CompanyFactory.create(name="Fjällbygg AB", postal_city="Luleå")
    CompanyFactory.create(name="Fjällbygg AB", postal_city="Malmö")
    CompanyFactory.create(name="Havsdata Oy", postal_city="Luleå")
    client = as_user(licensed_user)
    page = client.get(reverse("crm:company-list"), {"q": "fjällbygg luleå"}).content.decode()
    assert page.count("Fjällbygg AB") == 1 and "Havsdata" not in page
    empty = client.get(reverse("crm:company-list"), {"q": "no-such-company"}).content.decode()
    assert "No companies match" in empty


def test_the_list_is_paginated_and_keeps_the_search_on_every_page(as_user: Any, licensed_user: Any) -> None:
    CompanyFactory.create_batch(30, name="Vindenergi AB")
    client = as_user(licensed_user)
    first = client.get(reverse("crm:company-list"), {"q": "vind"}).content.decode()
    assert "1–25 of 30" in first and "q=vind&amp;page=2" in first
    second = client.get(reverse("crm:company-list"), {"q": "vind", "page": 2}).content.decode()
    assert "26–30 of 30" in second


def test_an_htmx_search_returns_only_the_table(as_user: Any, licensed_user: Any) -> None:
    CompanyFactory.create(name="Sjömedia AB")
    response = as_user(licensed_user).get(
        reverse("crm:company-list"), {"q": "sjö"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="record-table"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="record-table">') and "Sjömedia AB" in body
    assert "<html" not in body


def test_creating_a_company_validates_and_saves(as_user: Any, licensed_user: Any) -> None:
    client = as_user(licensed_user)
    bad = client.post(reverse("crm:company-create"), {"name": "", "email": "not-an-email", "url": "nope"})
    assert bad.status_code == 200
    text = bad.content.decode()
    assert "Please correct the fields marked below." in text
    assert "This field is required." in text and "Enter a valid email address." in text
    assert not Company.objects.exists()

    good = client.post(reverse("crm:company-create"), {"name": "Björkdesign AB", "email": "info@bjorkdesign.se"})
    company = Company.objects.get()
    assert good.status_code == 302 and good["Location"] == company.get_absolute_url()
    assert company.name == "Björkdesign AB"
    assert "Saved Björkdesign AB." in client.get(good["Location"]).content.decode()


def test_editing_a_contact_changes_it_and_moves_updated_at(as_user: Any, licensed_user: Any) -> None:
    contact = ContactFactory.create(first_name="Nils")
    before = contact.updated_at
    client = as_user(licensed_user)
    form = {"company": contact.company_id, "first_name": "Nils", "last_name": "Dahl", "birth_date": "1980-02-30"}
    bad = client.post(reverse("crm:contact-edit", args=[contact.pk]), form)
    assert "Enter a valid date." in bad.content.decode()
    form["birth_date"] = "1980-02-28"
    assert client.post(reverse("crm:contact-edit", args=[contact.pk]), form).status_code == 302
    contact.refresh_from_db()
    assert (contact.last_name, str(contact.birth_date)) == ("Dahl", "1980-02-28")
    assert contact.updated_at > before


def as_a_browser_sends_it(bound: Any) -> str:
    """A form field's value as a browser submits it untouched: a textarea's line breaks as CRLF, an input's gone."""
    value = "" if bound.value() is None else str(bound.value())
    if isinstance(bound.field.widget, forms.Textarea):
        return re.sub(r"\r\n|\r|\n", "\r\n", value)
    return re.sub(r"[\r\n]", "", value)


def test_lines_are_edited_in_textareas_and_a_save_keeps_the_fields_left_alone(as_user: Any, licensed_user: Any) -> None:
    company = CompanyFactory.create(
        name="Ågrenska Bygg ",  # a space at the end, which the form would trim
        street_address1="c/o Berg\nLgh 1831",
        postal_address1="Box 12\r\n903 25 Umeå",  # CRLF, as some ERPs send it
        phone="+46 8 1",
    )
    url = reverse("crm:company-edit", args=[company.pk])
    client = as_user(licensed_user)
    response = client.get(url)
    page = response.content.decode()
    for name in ("postal_address1", "postal_address2", "postal_address3", "street_address1", "street_address3"):
        assert f'<textarea name="{name}"' in page
    assert '<input type="text" name="name"' in page and '<input type="text" name="postal_city"' in page
    assert "\nc/o Berg\nLgh 1831</textarea>" in page
    data = {bound.name: as_a_browser_sends_it(bound) for bound in response.context["form"]}
    before = dict(Company.objects.filter(pk=company.pk).values().get())

    assert client.post(url, {**data, "phone": "+46 8 2"}).status_code == 302
    after = dict(Company.objects.filter(pk=company.pk).values().get())
    assert after["phone"] == "+46 8 2"
    unchanged = {key for key in before if key not in ("phone", "updated_at")}
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}

    # A line typed into a textarea is stored with LF, counted as one character against the field's length.
    lines = "\r\n".join(["x" * 49, "y" * 50])  # 100 characters with LF, 101 as sent
    assert client.post(url, {**data, "street_address2": lines}).status_code == 302
    assert Company.objects.get(pk=company.pk).street_address2 == "x" * 49 + "\n" + "y" * 50


def test_the_admin_edits_lines_in_textareas_and_keeps_what_was_left_alone(client: Any, django_user_model: Any) -> None:
    company = CompanyFactory.create(name="Ågrenska Bygg ", street_address1="c/o Berg\nLgh 1831")
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "secret-pass-123"))
    url = reverse("admin:crm_company_change", args=[company.pk])
    response = client.get(url)
    assert '<textarea name="street_address1"' in response.content.decode()
    form = response.context["adminform"].form
    data = {bound.name: as_a_browser_sends_it(bound) for bound in form}
    assert client.post(url, {**data, "phone": "+46 8 2"}).status_code == 302
    company.refresh_from_db()
    assert (company.name, company.street_address1, company.phone) == ("Ågrenska Bygg ", "c/o Berg\nLgh 1831", "+46 8 2")


def test_new_contact_from_a_company_page_has_the_company_chosen(as_user: Any, licensed_user: Any) -> None:
    company = CompanyFactory.create(name="Älvlogistik AB")
    client = as_user(licensed_user)
    page = client.get(company.get_absolute_url()).content.decode()
    new_contact_url = f"{reverse('crm:contact-create')}?company={company.pk}"
    assert new_contact_url in page
    form = client.get(new_contact_url).content.decode()
    assert f'<option value="{company.pk}" selected>' in form


def test_a_project_needs_a_company(as_user: Any, licensed_user: Any) -> None:
    response = as_user(licensed_user).post(reverse("crm:project-create"), {"name": "Cloud move"})
    assert "This field is required." in response.content.decode()
    assert not Project.objects.exists()


def test_the_company_page_lists_its_contacts_and_projects(as_user: Any, licensed_user: Any) -> None:
    company = CompanyFactory.create()
    contact = ContactFactory.create(company=company, first_name="Astrid", last_name="Holm")
    project = ProjectFactory.create(company=company, name="Invoice automation")
    page = as_user(licensed_user).get(company.get_absolute_url()).content.decode()
    assert contact.get_absolute_url() in page and "Astrid Holm" in page
    assert project.get_absolute_url() in page and "Invoice automation" in page


def _history_tab(request: HttpRequest, record: Any) -> HttpResponse:
    return HttpResponse(f"<p>History of {record}</p>")


@pytest.fixture
def history_tab() -> Any:
    tab = tabs.RecordTab(
        slug="history",
        label="History",
        view=_history_tab,
        is_visible=lambda request, record: request.user.has_perm("crm.change_company"),
    )
    tabs.register_tab(tab, Company, Contact)
    yield tab
    tabs.unregister_tab("history", Company, Contact)


def test_another_app_can_add_a_tab_to_record_pages(history_tab: Any, as_user: Any, licensed_user: Any) -> None:
    company = CompanyFactory.create(name="Granteknik AB")
    client = as_user(licensed_user)
    tab_url = reverse("crm:company-tab", args=[company.pk, "history"])
    assert tab_url in client.get(company.get_absolute_url()).content.decode()
    page = client.get(tab_url).content.decode()
    assert "<p>History of Granteknik AB</p>" in page and 'class="tabbar"' in page
    partial = client.get(tab_url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="tab-body")
    assert partial.content.decode() == "<p>History of Granteknik AB</p>"
    # Projects did not register the tab.
    project = ProjectFactory.create()
    assert client.get(reverse("crm:project-tab", args=[project.pk, "history"])).status_code == 404


def test_a_tab_is_hidden_from_users_it_is_not_for(history_tab: Any, client: Any) -> None:
    from .factories import UserFactory

    viewer = UserFactory.create(username="vera", perms=["crm.view_company"])
    company = CompanyFactory.create()
    client.force_login(viewer)
    tab_url = reverse("crm:company-tab", args=[company.pk, "history"])
    assert tab_url not in client.get(company.get_absolute_url()).content.decode()
    assert client.get(tab_url).status_code == 404


def test_two_tabs_with_one_slug_are_refused(history_tab: Any) -> None:
    with pytest.raises(ValueError, match="already registered"):
        tabs.register_tab(tabs.RecordTab(slug="history", label="Other", view=_history_tab), Company)


@pytest.mark.parametrize("prefix", ["company", "contact", "project"])
def test_every_form_field_is_shown_in_one_of_the_page_sections(as_user: Any, licensed_user: Any, prefix: str) -> None:
    from crm import views

    view = {"company": views.CompanyCreate, "contact": views.ContactCreate, "project": views.ProjectCreate}[prefix]
    shown = [name for _title, names in view.sections for name in names]
    assert sorted(shown) == sorted(view.form_class._meta.fields)
    page = as_user(licensed_user).get(reverse(f"crm:{prefix}-create")).content.decode()
    assert page.count("<fieldset") == len(view.sections)
