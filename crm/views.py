"""Company, Contact and Project pages: list with search, record page with tabs, create and edit."""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any, ClassVar, cast

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.db.models import EmailField, Field, Model, Q, QuerySet, URLField
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import generic

from . import tabs
from .forms import CompanyForm, ContactForm, ProjectForm
from .models import Company, Contact, Project
from .validators import validate_web_address

StrOrPromise = str | Promise
Sections = list[tuple[StrOrPromise, list[str]]]  # (heading, field names) as shown on pages and forms
# Whole phrases, not "New" + noun: Swedish nouns take different articles (nytt företag, ny kontakt).
NEW_LABELS: dict[str, StrOrPromise] = {
    "company": gettext_lazy("New company"),
    "contact": gettext_lazy("New contact"),
    "project": gettext_lazy("New project"),
}


COMPANY_SECTIONS: Sections = [
    (
        gettext_lazy("Company"),
        ["name", "department", "number1", "number2", "category", "business", "vat_no", "credit_limit"],
    ),
    (gettext_lazy("Contact information"), ["phone", "fax", "email", "url"]),
    (
        gettext_lazy("Postal address"),
        [
            "postal_address1",
            "postal_address2",
            "postal_address3",
            "postal_zip",
            "postal_city",
            "postal_county",
            "postal_state",
            "country",
        ],
    ),
    (
        gettext_lazy("Street address"),
        [
            "street_address1",
            "street_address2",
            "street_address3",
            "street_zip",
            "street_city",
            "street_county",
            "street_state",
        ],
    ),
]


CONTACT_SECTIONS: Sections = [
    (
        gettext_lazy("Contact"),
        ["company", "first_name", "middle_name", "last_name", "title", "position", "number", "birth_date"],
    ),
    (
        gettext_lazy("Contact information"),
        ["email", "phone_direct", "phone_mobile", "phone_private", "phone_other", "url"],
    ),
    (
        gettext_lazy("Postal address"),
        [
            "postal_address1",
            "postal_address2",
            "postal_address3",
            "postal_zip",
            "postal_city",
            "postal_county",
            "postal_state",
            "postal_country",
        ],
    ),
]


PROJECT_SECTIONS: Sections = [
    (gettext_lazy("Project"), ["company", "name", "number", "project_type", "end_date", "url", "text"]),
]


class RecordViewMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """Shared by every record view: the permission it needs and the names its templates use.

    Each concrete view sets ``model`` and ``section`` (the navigator entry, also the URL name prefix).
    """

    model: Any
    request: HttpRequest
    section: ClassVar[str]
    action: ClassVar[str] = "view"

    def get_permission_required(self) -> tuple[str, ...]:
        opts = self.model._meta
        return (f"{opts.app_label}.{self.action}_{opts.model_name}",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        opts = self.model._meta
        user = self.request.user
        context.update(
            section=self.section,
            verbose_name=opts.verbose_name,
            verbose_name_plural=opts.verbose_name_plural,
            list_url_name=f"crm:{self.section}-list",
            new_label=NEW_LABELS[self.section],
            can_add=user.has_perm(f"{opts.app_label}.add_{opts.model_name}"),
            can_change=user.has_perm(f"{opts.app_label}.change_{opts.model_name}"),
        )
        return context


class RecordListView(RecordViewMixin, generic.ListView):
    """A searchable, paginated table of records. Every word of the query must match some column."""

    paginate_by = 25
    search_fields: ClassVar[tuple[str, ...]]
    columns: ClassVar[tuple[tuple[str, StrOrPromise], ...]]  # (attribute path, column heading)
    related: ClassVar[tuple[str, ...]] = ()

    def get_queryset(self) -> QuerySet[Any]:
        queryset = self.model._default_manager.select_related(*self.related)
        for word in self.query.split()[:8]:
            queryset = queryset.filter(
                reduce(operator.or_, (Q(**{f"{name}__icontains": word}) for name in self.search_fields))
            )
        return queryset

    @property
    def query(self) -> str:
        return self.request.GET.get("q", "").strip()[:100]

    def get_template_names(self) -> list[str]:
        if getattr(self.request, "htmx", False) and self.request.headers.get("HX-Target") == "record-table":
            return ["crm/_record_table.html"]
        return ["crm/record_list.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(query=self.query, columns=[heading for _, heading in self.columns])
        context["rows"] = [
            (record, [_resolve(record, path) for path, _heading in self.columns]) for record in context["object_list"]
        ]
        return context


def _resolve(record: Model, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return ""
    return value


class RecordDetailView(RecordViewMixin, generic.DetailView):
    """A record page: the tab bar, with the Details tab or a registered tab's body."""

    sections: ClassVar[Sections]
    related: ClassVar[tuple[str, ...]] = ()
    template_name = "crm/record_detail.html"

    def get_queryset(self) -> QuerySet[Any]:
        return self.model._default_manager.select_related(*self.related)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()
        slug = kwargs.get("tab", "details")
        visible = tabs.visible_tabs(request, self.object)
        context = self.get_context_data(object=self.object, tabs=visible, active_tab=slug)
        if slug != "details":
            tab = next((t for t in visible if t.slug == slug), None)
            if tab is None:
                raise Http404(_("This record has no such tab."))
            body = tab.view(request, self.object)
            if getattr(request, "htmx", False) and request.headers.get("HX-Target") == "tab-body":
                return body
            context["tab_body"] = body.content.decode()
        else:
            context["detail_sections"] = self.detail_sections()
        return self.render_to_response(context)

    def detail_sections(self) -> list[tuple[Any, list[tuple[Any, Any, str]]]]:
        """(title, [(label, value, link)]) for each section with at least one filled field."""
        opts = self.model._meta
        result = []
        for title, names in self.sections:
            rows = []
            for name in names:
                value = getattr(self.object, name)
                if value in ("", None):
                    continue
                model_field = cast(Field, opts.get_field(name))
                if isinstance(model_field, URLField):
                    link = value if is_web_address(value) else ""  # one stored before addresses were checked
                elif isinstance(model_field, EmailField):
                    link = f"mailto:{value}"
                else:
                    link = value.get_absolute_url() if hasattr(value, "get_absolute_url") else ""
                rows.append((model_field.verbose_name, value, link))
            if rows:
                result.append((title, rows))
        return result


class RecordFormMixin(RecordViewMixin):
    form_class: Any
    template_name: Any = "crm/record_form.html"
    sections: ClassVar[Sections]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context["form"]
        context["form_sections"] = [
            (title, [form[name] for name in names if name in form.fields]) for title, names in self.sections
        ]
        return context

    def form_valid(self, form: ModelForm) -> HttpResponse:
        response = super().form_valid(form)  # type: ignore[misc]
        messages.success(self.request, _("Saved %(record)s.") % {"record": form.instance})
        return response


class RecordCreateView(RecordFormMixin, generic.CreateView):
    action = "add"

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        company = self.request.GET.get("company", "")
        if company.isdigit() and "company" in self.form_class._meta.fields:
            initial["company"] = company
        return initial


class RecordUpdateView(RecordFormMixin, generic.UpdateView):
    action = "change"


# Companies

COMPANY_SEARCH = ("name", "department", "number1", "number2", "postal_city", "email", "vat_no")


class CompanyList(RecordListView):
    model = Company
    section = "company"
    search_fields = COMPANY_SEARCH
    related = ("country", "category")
    columns = (
        ("name", gettext_lazy("Name")),
        ("number2", gettext_lazy("Number")),
        ("category", gettext_lazy("Category")),
        ("postal_city", gettext_lazy("City")),
        ("country", gettext_lazy("Country")),
        ("phone", gettext_lazy("Phone")),
    )


class CompanyDetail(RecordDetailView):
    model = Company
    section = "company"
    related = ("country", "business", "category")
    sections = COMPANY_SECTIONS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        company = self.object
        context["contacts"] = company.contacts.select_related("position")[:50]
        context["projects"] = company.projects.all()[:50]
        return context


class CompanyCreate(RecordCreateView):
    sections = COMPANY_SECTIONS
    model = Company
    section = "company"
    form_class = CompanyForm


class CompanyUpdate(RecordUpdateView):
    sections = COMPANY_SECTIONS
    model = Company
    section = "company"
    form_class = CompanyForm


# Contacts


class ContactList(RecordListView):
    model = Contact
    section = "contact"
    search_fields = ("first_name", "last_name", "email", "company__name", "phone_mobile")
    related = ("company", "position")
    columns = (
        ("full_name", gettext_lazy("Name")),
        ("company", gettext_lazy("Company")),
        ("position", gettext_lazy("Position")),
        ("email", gettext_lazy("E-mail")),
        ("phone_mobile", gettext_lazy("Mobile")),
    )


class ContactDetail(RecordDetailView):
    model = Contact
    section = "contact"
    related = ("company", "position", "postal_country")
    sections = CONTACT_SECTIONS


class ContactCreate(RecordCreateView):
    sections = CONTACT_SECTIONS
    model = Contact
    section = "contact"
    form_class = ContactForm


class ContactUpdate(RecordUpdateView):
    sections = CONTACT_SECTIONS
    model = Contact
    section = "contact"
    form_class = ContactForm


# Projects


class ProjectList(RecordListView):
    model = Project
    section = "project"
    search_fields = ("name", "number", "company__name")
    related = ("company", "project_type")
    columns = (
        ("name", gettext_lazy("Name")),
        ("number", gettext_lazy("Number")),
        ("company", gettext_lazy("Company")),
        ("project_type", gettext_lazy("Type")),
        ("end_date", gettext_lazy("End date")),
    )


class ProjectDetail(RecordDetailView):
    model = Project
    section = "project"
    related = ("company", "project_type")
    sections = PROJECT_SECTIONS


class ProjectCreate(RecordCreateView):
    sections = PROJECT_SECTIONS
    model = Project
    section = "project"
    form_class = ProjectForm


class ProjectUpdate(RecordUpdateView):
    sections = PROJECT_SECTIONS
    model = Project
    section = "project"
    form_class = ProjectForm


def is_web_address(value: str) -> bool:
    """Whether ``value`` may be a link: an http or https address (never javascript: or data:)."""
    try:
        validate_web_address(value)
    except ValidationError:
        return False
    return True
