"""Fill the database with demo users, groups, Nordic CRM records and the Demo ERP connector; running it
again changes nothing."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Model

from connectors.models import SyncConnector
from crm import demo_data
from crm.models import Business, Category, Company, Contact, Country, Position, Project, ProjectType

DEMO_CONNECTOR = "Demo ERP"
DEMO_PASSWORD = "demo"  # noqa: S105  (demo accounts only; printed by make run)

CRM_VIEW = ["crm.view_company", "crm.view_contact", "crm.view_project"]
CRM_EDIT = [f"crm.{action}_{model}" for action in ("add", "change") for model in ("company", "contact", "project")]
GROUPS: dict[str, list[str]] = {
    "Sales": [*CRM_VIEW, *CRM_EDIT, "connections.use_erp_sync"],
    "Finance": [*CRM_VIEW, "crm.change_company", "connections.use_erp_sync"],
    "Support": [*CRM_VIEW, "crm.change_contact"],
    "ERP administrators": [*CRM_VIEW, *CRM_EDIT, "connections.use_erp_sync", "connections.manage_erp_sync"],
}
# username: (first name, last name, groups, superuser)
USERS: dict[str, tuple[str, str, list[str], bool]] = {
    "admin": ("Ada", "Admin", [], True),
    "erpadmin": ("Lars", "Lindqvist", ["ERP administrators"], False),
    "anna": ("Anna", "Sjöberg", ["Sales"], False),
    "erik": ("Erik", "Hansen", ["Finance"], False),
    "sara": ("Sara", "Korhonen", ["Support"], False),
}


class Command(BaseCommand):
    help = "Create demo users, groups and ~200 companies, ~500 contacts and ~50 projects. Safe to run again."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=2026, help="Random seed; the same seed gives the same data.")
        parser.add_argument(
            "--demo-connector-url",
            default="http://127.0.0.1:8001",
            help="Where the Demo ERP connector listens (make run starts it on the app's port + 1).",
        )

    @transaction.atomic
    def handle(self, *args: Any, seed: int, demo_connector_url: str, **options: Any) -> None:
        self.register_demo_connector(demo_connector_url)
        self.seed_groups_and_users()
        lists = self.seed_lists()
        created = self.seed_records(demo_data.generate(seed), lists)
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data ready: {companies} companies, {contacts} contacts, {projects} projects created "
                "({total_companies}/{total_contacts}/{total_projects} in all).".format(
                    **created,
                    total_companies=Company.objects.count(),
                    total_contacts=Contact.objects.count(),
                    total_projects=Project.objects.count(),
                )
            )
        )

    def register_demo_connector(self, url: str) -> None:
        """Register Demo ERP as a Sync Connector, sharing a development secret kept in var/."""
        secret_file = Path(settings.VAR_DIR) / "demo-connector.secret"
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secrets.token_urlsafe(32))
            secret_file.chmod(0o600)
        secret = secret_file.read_text().strip()
        connector = SyncConnector.objects.filter(name=DEMO_CONNECTOR).first() or SyncConnector(name=DEMO_CONNECTOR)
        if connector.pk is None or connector.url != url or connector.secret != secret:
            connector.url = url
            connector.set_secret(secret)
            connector.save()

    def seed_groups_and_users(self) -> None:
        for group_name, perm_names in GROUPS.items():
            group, _ = Group.objects.get_or_create(name=group_name)
            group.permissions.add(*[_permission(name) for name in perm_names])
        User = get_user_model()
        for username, (first, last, groups, superuser) in USERS.items():
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "is_superuser": superuser,
                    "is_staff": superuser,
                    "email": f"{username}@example.com",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            user.groups.add(*Group.objects.filter(name__in=groups))

    def seed_lists(self) -> dict[str, dict[str, Any]]:
        for code, name in demo_data.COUNTRIES:
            Country.objects.get_or_create(code=code, defaults={"name": name})
        result: dict[str, dict[str, Any]] = {"country": {c.code: c for c in Country.objects.all()}}
        for key, model, names in (
            ("business", Business, demo_data.BUSINESSES),
            ("category", Category, demo_data.CATEGORIES),
            ("position", Position, demo_data.POSITIONS),
            ("project_type", ProjectType, demo_data.PROJECT_TYPES),
        ):
            for rank, name in enumerate(names):
                model.objects.get_or_create(name=name, defaults={"rank": rank})
            result[key] = {item.name: item for item in model.objects.filter(name__in=names)}
        return result

    def seed_records(self, data: demo_data.DemoData, lists: dict[str, dict[str, Any]]) -> dict[str, int]:
        created = {
            "companies": _create_missing(
                Company,
                "number2",
                data.companies,
                lambda c: Company(
                    **c.values,
                    number2=c.number2,
                    country=lists["country"][c.country],
                    category=lists["category"][c.category],
                    business=lists["business"][c.business],
                ),
            ),
        }
        company_ids = dict(
            Company.objects.filter(number2__in=[c.number2 for c in data.companies]).values_list("number2", "pk")
        )
        created["contacts"] = _create_missing(
            Contact,
            "number",
            data.contacts,
            lambda c: Contact(
                **c.values,
                number=c.number,
                company_id=company_ids[c.company_number],
                position=lists["position"][c.position],
                postal_country=lists["country"][c.country],
            ),
        )
        created["projects"] = _create_missing(
            Project,
            "number",
            data.projects,
            lambda p: Project(
                **p.values,
                number=p.number,
                company_id=company_ids[p.company_number],
                project_type=lists["project_type"][p.project_type],
            ),
        )
        return created


def _create_missing(model: type[Model], key: str, items: Sequence[Any], build: Callable[[Any], Model]) -> int:
    """Insert the items whose ``key`` is not in the table yet; return how many were inserted."""
    keys = [getattr(item, key) for item in items]
    existing = set(model._default_manager.filter(**{f"{key}__in": keys}).values_list(key, flat=True))
    new = [build(item) for item in items if getattr(item, key) not in existing]
    model._default_manager.bulk_create(new, batch_size=500)
    return len(new)


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
