"""Smaller faults of the first hour: a refused activation says each reason once, however many fields share it,
with a link to where it is put right; the pages below a connection start their breadcrumbs where the Sync tab's
do (Settings and maintenance, Quote/Sync, Sync, the connection, and on)."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from connections import services
from connections.models import ErpConnection

from .conftest import Connector
from .factories import UserFactory
from .sync_helpers import active_connection
from .test_mapping import connection  # noqa: F401  (a connection whose auto-mapped fields have no direction)

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("language", ["sv", "en"])
def test_a_refused_activation_says_each_reason_once(
    client: Any,
    connection: ErpConnection,  # noqa: F811
    language: str,
) -> None:
    connection.actor_types.filter(actor_type="Customer").update(sync_enabled=True)
    undecided = [f for f in connection.erp_fields.filter(actor_type="Customer") if f.crm_field and not f.direction]
    assert len(undecided) >= 3  # the case: several fields, one reason
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = language
    page = client.post(
        reverse("connections:connection-active", args=[connection.pk]), {"active": "1"}, follow=True
    ).content.decode()
    text = text_of(page)
    with translation.override(language):
        refused = _("%(name)s was not activated: put right what is listed under “Before it can be activated”.")
        assert text.count(refused % {"name": connection}) == 1
        problems = services.activation_problems(connection)
        # One problem for the undecided fields of the actor type, naming each of them once.
        grouped = [
            cast(services.ActivationProblem, problem)
            for problem in problems
            if all(f.display_label in problem for f in undecided)
        ]
        assert len(grouped) == 1
        assert services.names_in_sentence([f.display_label for f in undecided]) in grouped[0]
        assert grouped[0].endswith(
            " ".join(_("%(type)s fields %(label)s are mapped but have no direction.").split()[-5:])
        )
        assert text.count(text_of(grouped[0]).strip()) == 1
        assert len(problems) == len(set(problems))
        assert grouped[0].url == reverse("connections:mapping", args=[connection.pk, "Customer"])
        assert f'href="{grouped[0].url}">{_("Open the field mapping")}</a>' in page
    assert not ErpConnection.objects.get(pk=connection.pk).is_active


def crumbs(html: str) -> list[str]:
    nav = re.search(r'<nav class="breadcrumbs"[^>]*>(.*?)</nav>', html, re.S)
    assert nav
    return [part.strip() for part in text_of(nav[1]).split("›")]


@pytest.mark.parametrize("language", ["sv", "en"])
def test_breadcrumbs_below_a_connection_start_at_the_sync_tabs_root(
    client: Any, demo_erp: Connector, language: str
) -> None:
    linked = active_connection(demo_erp)
    client.force_login(UserFactory.create(username="lars", perms=["connections.manage_erp_sync"]))
    client.cookies["django_language"] = language
    with translation.override(language):
        root = [_("Settings and maintenance"), _("Quote/Sync"), _("Sync")]
        sync_tab = crumbs(client.get(reverse("connections:sync")).content.decode())
        assert sync_tab == root[:2]  # the tab's own page: the tab bar says Sync
        pages = {
            reverse("connections:connection-detail", args=[linked.pk]): [str(linked)],
            reverse("connections:mapping", args=[linked.pk, "Customer"]): [str(linked), _("Field mapping")],
            reverse("connections:mapping-list", args=[linked.pk, "Customer", "COUNTRY"]): [
                str(linked),
                _("Field mapping"),
                "Land" if language == "sv" else "Country",
            ],
            reverse("connections:sync-log", args=[linked.pk]): [str(linked), _("Sync log")],
            reverse("connections:failed-records", args=[linked.pk]): [str(linked), _("Failed records")],
        }
        for url, trail in pages.items():
            html = client.get(url).content.decode()
            assert crumbs(html) == root + trail, url
            assert f'<a href="{reverse("connections:sync")}">{_("Sync")}</a>' in html
