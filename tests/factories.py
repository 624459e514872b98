"""factory-boy factories for CRM records and users."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Permission, User

from crm.models import Company, Contact, Country, Project


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "secret-pass-123")

    @factory.post_generation
    def perms(self: User, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        for dotted in extracted or []:
            app_label, codename = dotted.split(".", 1)
            self.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        self.save()


class CountryFactory(factory.django.DjangoModelFactory[Country]):
    class Meta:
        model = Country
        django_get_or_create = ("code",)

    code = "SE"
    name = "Sweden"


class CompanyFactory(factory.django.DjangoModelFactory[Company]):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Fjordtech {n} AB")
    number2 = factory.Sequence(lambda n: f"{50000 + n}")
    postal_city = "Umeå"
    country = factory.SubFactory(CountryFactory)


class ContactFactory(factory.django.DjangoModelFactory[Contact]):
    class Meta:
        model = Contact

    company = factory.SubFactory(CompanyFactory)
    first_name = factory.Sequence(lambda n: f"Ingrid{n}")
    last_name = "Lund"
    email = factory.Sequence(lambda n: f"ingrid{n}@fjordtech.se")


class ProjectFactory(factory.django.DjangoModelFactory[Project]):
    class Meta:
        model = Project

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"ERP rollout {n}")
    number = factory.Sequence(lambda n: f"PR{n:04d}")
