"""CRM records: companies, their contacts and projects, and the lists their fields pick from.

Each record class names the field keys of the original CRM (``NAME``, ``NUMBER1``, ``POSTALAD1`` …)
in ``field_keys`` so that field mapping can match ERP field keys to CRM fields by name.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .validators import refuse_control_characters, validate_web_address

# A scheme at the start of a web address ("https:", "javascript:"); one typed without is taken as https.
HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


class WebsiteField(models.URLField):
    """A web address (http or https only); one typed or synced without a scheme is taken as https."""

    default_validators = [validate_web_address]

    def formfield(self, form_class: Any = None, choices_form_class: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("assume_scheme", "https")
        if form_class is not None:
            kwargs["form_class"] = form_class
        if choices_form_class is not None:
            kwargs["choices_form_class"] = choices_form_class
        return super().formfield(**kwargs)

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if isinstance(value, str) and value and not HAS_SCHEME.match(value):
            return f"https://{value}"
        return value


class Record(models.Model):
    """A CRM record (company, contact, project): validating it also refuses control characters in its text.

    Model forms run this through ``full_clean``; the sync and the import run the same checks per value
    (``crm.validators.clean_value``)."""

    class Meta:
        abstract = True

    def clean_fields(self, exclude: Any = None) -> None:
        errors: dict[str, Any] = {}
        try:
            super().clean_fields(exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        for field in self._meta.concrete_fields:
            if field.name in errors or (exclude and field.name in exclude):
                continue
            try:
                refuse_control_characters(field, getattr(self, field.attname))
            except ValidationError as error:
                errors[field.name] = error.error_list
        if errors:
            raise ValidationError(errors)


class ListItem(models.Model):
    """An item of a CRM list (a row of a drop-down); hidden items stay on old records but are not offered."""

    name = models.CharField(_("name"), max_length=100)
    rank = models.PositiveIntegerField(_("rank"), default=0)
    hidden = models.BooleanField(_("hidden"), default=False)

    class Meta:
        abstract = True
        ordering = ["rank", "name"]

    def __str__(self) -> str:
        return self.name


class Country(ListItem):
    """A country, identified by its ISO 3166-1 alpha-2 code."""

    code = models.CharField(_("ISO code"), max_length=2, unique=True)

    class Meta(ListItem.Meta):
        verbose_name = _("country")
        verbose_name_plural = _("countries")
        ordering = ["name"]


class Business(ListItem):
    """A line of business a company is in."""

    class Meta(ListItem.Meta):
        verbose_name = _("business")
        verbose_name_plural = _("businesses")
        constraints = [models.UniqueConstraint(Lower("name"), name="crm_business_name_unique")]


class Category(ListItem):
    """A company category (customer, prospect, supplier …)."""

    class Meta(ListItem.Meta):
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        constraints = [models.UniqueConstraint(Lower("name"), name="crm_category_name_unique")]


class Position(ListItem):
    """A contact's position in their company."""

    class Meta(ListItem.Meta):
        verbose_name = _("position")
        verbose_name_plural = _("positions")
        constraints = [models.UniqueConstraint(Lower("name"), name="crm_position_name_unique")]


class ProjectType(ListItem):
    """A kind of project."""

    class Meta(ListItem.Meta):
        verbose_name = _("project type")
        verbose_name_plural = _("project types")
        constraints = [models.UniqueConstraint(Lower("name"), name="crm_projecttype_name_unique")]


class PostalAddressFields(Record):
    """Postal address fields shared by companies and contacts."""

    postal_address1 = models.CharField(_("postal address line 1"), max_length=100, blank=True)
    postal_address2 = models.CharField(_("postal address line 2"), max_length=100, blank=True)
    postal_address3 = models.CharField(_("postal address line 3"), max_length=100, blank=True)
    postal_zip = models.CharField(_("postal code"), max_length=20, blank=True)
    postal_city = models.CharField(_("city"), max_length=60, blank=True)
    postal_county = models.CharField(_("county"), max_length=60, blank=True)
    postal_state = models.CharField(_("state"), max_length=60, blank=True)

    # Text fields that may hold several lines ("c/o Berg" above "Lgh 1831"): forms edit them in a textarea, as a
    # browser drops the line breaks of a one-line input. A TextField is multi-line without being listed.
    multiline_fields: ClassVar[frozenset[str]] = frozenset({"postal_address1", "postal_address2", "postal_address3"})

    class Meta:
        abstract = True


POSTAL_FIELD_KEYS = {
    "POSTALAD1": "postal_address1",
    "POSTALAD2": "postal_address2",
    "POSTALAD3": "postal_address3",
    "POSTALZIP": "postal_zip",
    "POSTALCITY": "postal_city",
    "POSTALCOUNTY": "postal_county",
    "POSTALSTATE": "postal_state",
}


class Company(PostalAddressFields):
    """An organisation the business deals with: a customer, supplier, partner or prospect."""

    name = models.CharField(_("name"), max_length=200)
    number1 = models.CharField(_("code"), max_length=40, blank=True, help_text=_("Short code, e.g. ACME."))
    number2 = models.CharField(_("number"), max_length=40, blank=True, help_text=_("Customer number."))
    department = models.CharField(_("department"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    fax = models.CharField(_("fax"), max_length=40, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    url = WebsiteField(_("website"), blank=True)
    street_address1 = models.CharField(_("street address line 1"), max_length=100, blank=True)
    street_address2 = models.CharField(_("street address line 2"), max_length=100, blank=True)
    street_address3 = models.CharField(_("street address line 3"), max_length=100, blank=True)
    street_zip = models.CharField(_("street postal code"), max_length=20, blank=True)
    street_city = models.CharField(_("street city"), max_length=60, blank=True)
    street_county = models.CharField(_("street county"), max_length=60, blank=True)
    street_state = models.CharField(_("street state"), max_length=60, blank=True)
    country = models.ForeignKey(
        Country, verbose_name=_("country"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    vat_no = models.CharField(_("VAT number"), max_length=40, blank=True)
    credit_limit = models.DecimalField(_("credit limit"), max_digits=15, decimal_places=2, null=True, blank=True)
    business = models.ForeignKey(
        Business, verbose_name=_("business"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    category = models.ForeignKey(
        Category, verbose_name=_("category"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    multiline_fields = PostalAddressFields.multiline_fields | {"street_address1", "street_address2", "street_address3"}
    field_keys: ClassVar[dict[str, str]] = {
        "NAME": "name",
        "NUMBER1": "number1",
        "NUMBER2": "number2",
        "DEPARTMENT": "department",
        "PHONE": "phone",
        "FAX": "fax",
        "EMAIL": "email",
        "URL": "url",
        **POSTAL_FIELD_KEYS,
        "STREETAD1": "street_address1",
        "STREETAD2": "street_address2",
        "STREETAD3": "street_address3",
        "STREETZIP": "street_zip",
        "STREETCITY": "street_city",
        "STREETCOUNTY": "street_county",
        "STREETSTATE": "street_state",
        "COUNTRY": "country",
        "VATNO": "vat_no",
        "CREDIT_LIMIT": "credit_limit",
        "BUSINESS": "business",
        "CATEGORY": "category",
    }

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name", "pk"]
        indexes = [models.Index(Lower("name"), name="crm_company_name_lower")]

    def __str__(self) -> str:
        return f"{self.name} – {self.department}" if self.department else self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:company-detail", args=[self.pk])


class Contact(PostalAddressFields):
    """A person, working at a company."""

    company = models.ForeignKey(Company, verbose_name=_("company"), on_delete=models.PROTECT, related_name="contacts")
    first_name = models.CharField(_("first name"), max_length=60)
    middle_name = models.CharField(_("middle name"), max_length=60, blank=True)
    last_name = models.CharField(_("last name"), max_length=60, blank=True)
    title = models.CharField(_("title"), max_length=60, blank=True)
    number = models.CharField(_("number"), max_length=40, blank=True)
    phone_direct = models.CharField(_("direct phone"), max_length=40, blank=True)
    phone_private = models.CharField(_("private phone"), max_length=40, blank=True)
    phone_mobile = models.CharField(_("mobile phone"), max_length=40, blank=True)
    phone_other = models.CharField(_("other phone"), max_length=40, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    position = models.ForeignKey(
        Position, verbose_name=_("position"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    url = WebsiteField(_("website"), blank=True)
    postal_country = models.ForeignKey(
        Country, verbose_name=_("country"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    field_keys: ClassVar[dict[str, str]] = {
        "FIRSTNAME": "first_name",
        "MIDDLENAME": "middle_name",
        "LASTNAME": "last_name",
        "TITLE": "title",
        "NUMBER": "number",
        "PHONE_DIRECT": "phone_direct",
        "PHONE_PRIVATE": "phone_private",
        "PHONE_MOBILE": "phone_mobile",
        "PHONE_OTHER": "phone_other",
        "EMAIL": "email",
        "POSITION": "position",
        "BIRTHDATE": "birth_date",
        "URL": "url",
        **POSTAL_FIELD_KEYS,
        "POSTALCOUNTRY": "postal_country",
    }

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["last_name", "first_name", "pk"]
        indexes = [models.Index(Lower("last_name"), Lower("first_name"), name="crm_contact_name_lower")]

    def __str__(self) -> str:
        return self.full_name

    def get_absolute_url(self) -> str:
        return reverse("crm:contact-detail", args=[self.pk])

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.middle_name, self.last_name) if part)


class Project(Record):
    """A piece of work done for or with a company."""

    company = models.ForeignKey(Company, verbose_name=_("company"), on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(_("name"), max_length=200)
    text = models.TextField(_("description"), blank=True)
    number = models.CharField(_("number"), max_length=40, blank=True)
    url = WebsiteField(_("website"), blank=True)
    end_date = models.DateField(_("end date"), null=True, blank=True)
    project_type = models.ForeignKey(
        ProjectType, verbose_name=_("type"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    field_keys: ClassVar[dict[str, str]] = {
        "NAME": "name",
        "TEXT": "text",
        "NUMBER": "number",
        "URL": "url",
        "ENDDATE": "end_date",
        "TYPE": "project_type",
    }

    class Meta:
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["name", "pk"]
        indexes = [models.Index(Lower("name"), name="crm_project_name_lower")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:project-detail", args=[self.pk])
