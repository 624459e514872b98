"""*Define new ERP connection* as the help pages have it: a dialog over the Sync tab, whose OK goes back to the
list with the new connection in it, whose errors stay in the dialog; a page of its own without JavaScript. The
users and groups a connection is shared with are picked from active people, never the anonymous user."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from guardian.utils import get_anonymous_user

from connections.models import ErpConnection
from connectors.models import SyncConnector

from .factories import UserFactory
from .test_sync_tab import connector, erp_admin, form_data, passed_test_token  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_dialog_opens_over_the_sync_tab_in_swedish(client: Any, erp_admin: Any, connector: SyncConnector) -> None:  # noqa: F811
    client.force_login(erp_admin)
    tab = client.get(reverse("connections:sync"), HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    add = reverse("connections:connection-add")
    assert f'href="{add}" hx-get="{add}" hx-target="#dialog-host"' in tab and 'id="dialog-host"' in tab
    dialog = client.get(add, HTTP_ACCEPT_LANGUAGE="sv", **HTMX).content.decode()
    assert dialog.lstrip().startswith("<dialog") and "data-modal" in dialog
    assert ">Ange ny ERP-koppling</h2>" in dialog and "<html" not in dialog
    assert "data-close-dialog" in dialog and "Avbryt" in dialog  # Cancel closes the dialog
    page = client.get(add, HTTP_ACCEPT_LANGUAGE="sv").content.decode()  # without JavaScript: a page
    assert "<title>Ange ny ERP-koppling · erpsync</title>" in page and "<dialog" not in page
    english = client.get(add, **HTMX).content.decode()
    assert ">Define new ERP connection</h2>" in english


def test_errors_stay_in_the_dialog_and_ok_goes_back_to_the_list_showing_the_new_connection(
    client: Any,
    erp_admin: Any,  # noqa: F811
    connector: SyncConnector,  # noqa: F811
) -> None:
    client.force_login(erp_admin)
    add = reverse("connections:connection-add")
    wrong = client.post(add, form_data(connector, name=""), **HTMX)
    form = wrong.content.decode()
    assert form.lstrip().startswith('<form method="post" id="connection-form"') and "<dialog" not in form
    assert "This field is required." in form and not ErpConnection.objects.exists()
    data = form_data(connector)
    data["test_token"] = passed_test_token(client, data)
    saved = client.post(add, data, **HTMX)
    assert saved["HX-Redirect"] == reverse("connections:sync")
    listed = client.get(reverse("connections:sync")).content.decode()
    assert "Saved the ERP connection Demo ERP – Sweden." in listed
    connection = ErpConnection.objects.get()
    assert f'<a href="{connection.get_absolute_url()}">Demo ERP – Sweden</a>' in listed
    # Without JavaScript: the same, as a page.
    data = form_data(connector, name="Demo ERP – Norway")
    data["test_token"] = passed_test_token(client, data)
    plain = client.post(add, data)
    assert plain.status_code == 302 and plain["Location"] == reverse("connections:sync")
    # Editing a connection still ends on its page.
    edit = client.post(reverse("connections:connection-edit", args=[connection.pk]), form_data(connector))
    assert edit["Location"] == connection.get_absolute_url()


def test_the_picker_offers_people_and_groups_never_the_anonymous_user_and_keeps_each_grants_rights(
    client: Any,
    erp_admin: Any,  # noqa: F811
    connector: SyncConnector,  # noqa: F811
) -> None:
    anonymous = get_anonymous_user()
    sales = Group.objects.create(name="Säljare")
    anna = UserFactory.create(username="anna", first_name="Anna", last_name="Lind")
    UserFactory.create(username="gone", is_active=False)
    client.force_login(erp_admin)
    add = reverse("connections:connection-add")
    dialog = client.get(add, HTTP_ACCEPT_LANGUAGE="sv", **HTMX).content.decode()
    assert "AnonymousUser" not in dialog and "gone" not in dialog
    assert f'data-value="g:{sales.pk}" data-label="Säljare"' in dialog and ">Grupp<" in dialog
    assert f'data-value="u:{anna.pk}" data-label="Anna Lind (anna)"' in dialog and ">Användare<" in dialog
    assert "Sök användare eller grupp" in dialog and "Välj användare och grupper…" in dialog
    assert dialog.count('class="grant-row no-js"') == 1  # one plain drop-down row for browsers without JavaScript

    # The anonymous user cannot be granted by hand either: the form refuses it and nothing is saved.
    data = form_data(connector, visibility="specified")
    data.update({"grant-TOTAL_FORMS": "1", "grant-0-principal": f"u:{anonymous.pk}", "grant-0-can_connect": "on"})
    data["test_token"] = passed_test_token(client, data)
    refused = client.post(add, data, **HTMX).content.decode()
    assert "Select a valid choice." in refused and not ErpConnection.objects.exists()

    data.update({"grant-TOTAL_FORMS": "2", "grant-0-principal": f"g:{sales.pk}", "grant-1-principal": f"u:{anna.pk}"})
    data["grant-1-can_create"] = "on"
    assert client.post(add, data, **HTMX)["HX-Redirect"] == reverse("connections:sync")
    connection = ErpConnection.objects.get()
    edit = client.get(reverse("connections:connection-edit", args=[connection.pk])).content.decode()
    # Each chosen one is a row: its name, its two rights, and Remove.
    assert "<span data-grant-label>Säljare</span>" in edit and "<span data-grant-label>Anna Lind (anna)</span>" in edit
    assert edit.count("data-grant-remove") == 3  # two rows and the template for the next
    assert get_user_model().objects.filter(username=anonymous.username).exists()
