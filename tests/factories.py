"""factory-boy factories for users, CRM records, and the sync side's connectors, connections, links and runs.

The sync factories write rows only: nothing is sent to a connector. A connection made here looks like one saved
against the Demo ERP (its configuration, encrypted API key and configuration fields), and ``fields=[...]`` adds the
Demo ERP's fields of those actor types, auto-mapped as saving a connection maps them. Tests that need the
connector to know the connection use tests.sync_helpers.active_connection instead.
"""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Permission, User

from connections.choices import RunKind, RunStatus
from connections.mapping import auto_map
from connections.models import ErpActorType, ErpConnection, ErpField, Link, SyncRun
from connections.services import split_secrets
from connectors import protocol as p
from connectors.demo import catalogue
from connectors.models import SyncConnector
from core import crypto
from crm.models import Company, Contact, Country, Project

# The Demo ERP's configuration, as tests.conftest.DEMO_CONFIG gives it.
DEMO_VALUES: dict[str, p.Value] = {"client_name": "Tests", "api_key": "demo-api-key", "company_number": 1}


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


class SyncConnectorFactory(factory.django.DjangoModelFactory[SyncConnector]):
    """A Sync Connector row; by default at a loopback port where nothing answers (the discard port)."""

    class Meta:
        model = SyncConnector

    class Params:
        secret = "factory-connector-secret"

    name = factory.Sequence(lambda n: f"Demo ERP {n}")
    url = "http://127.0.0.1:9"
    secret_encrypted = factory.LazyAttribute(lambda o: crypto.encrypt(o.secret))


class ErpConnectionFactory(factory.django.DjangoModelFactory[ErpConnection]):
    """An ERP connection saved with the Demo ERP's configuration; active unless ``is_active=False``.

    ``values`` replaces the configuration (password fields are encrypted into ``secrets``, as saving does);
    ``fields=["Customer", ...]`` adds those actor types with the Demo ERP's fields, auto-mapped.
    """

    class Meta:
        model = ErpConnection
        skip_postgeneration_save = True

    class Params:
        values = factory.LazyFunction(lambda: dict(DEMO_VALUES))

    name = factory.Sequence(lambda n: f"Demo ERP – Sweden {n}")
    connector = factory.SubFactory(SyncConnectorFactory)
    is_active = True
    last_test_ok = True
    config = factory.LazyAttribute(lambda o: split_secrets(catalogue.CONFIG_FIELDS, o.values)[0])
    secrets = factory.LazyAttribute(
        lambda o: {
            key: crypto.encrypt(value) for key, value in split_secrets(catalogue.CONFIG_FIELDS, o.values)[1].items()
        }
    )
    config_fields = factory.LazyFunction(lambda: [f.model_dump(mode="json") for f in catalogue.CONFIG_FIELDS])

    @factory.post_generation
    def fields(self: ErpConnection, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        for actor_type in extracted or []:
            ErpActorType.objects.get_or_create(connection=self, actor_type=actor_type)
            searchable = set(catalogue.SEARCHABLE[p.ActorType(actor_type)])
            ErpField.objects.bulk_create(
                ErpField(
                    connection=self,
                    actor_type=actor_type,
                    key=f.key,
                    label=f.label,
                    description=f.description,
                    type=f.type.value,
                    list_name=f.list_name or "",
                    default=f.default,
                    max_length=f.max_length,
                    access=f.access.value,
                    searchable=f.key in searchable,
                    rank=rank,
                    crm_field=auto_map(actor_type, f.key, f.type.value),
                    auto_mapped=bool(auto_map(actor_type, f.key, f.type.value)),
                )
                for rank, f in enumerate(catalogue.FIELDS[p.ActorType(actor_type)])
            )


class LinkFactory(factory.django.DjangoModelFactory[Link]):
    """A company linked to a Customer of a new connection; pass ``contact=`` or ``project=`` (with
    ``company=None``) for the other kinds of record."""

    class Meta:
        model = Link

    connection = factory.SubFactory(ErpConnectionFactory)
    actor_type = "Customer"
    erp_key = factory.Sequence(lambda n: f"{10001 + n}")
    company = factory.SubFactory(CompanyFactory)


class SyncRunFactory(factory.django.DjangoModelFactory[SyncRun]):
    """A queued Sync all of a new connection; give ``link=`` for a Sync now of that link."""

    class Meta:
        model = SyncRun

    connection = factory.LazyAttribute(lambda o: o.link.connection if o.link else ErpConnectionFactory.create())
    link = None
    kind = factory.LazyAttribute(lambda o: RunKind.SYNC_NOW if o.link else RunKind.SYNC_ALL)
    status = RunStatus.QUEUED
