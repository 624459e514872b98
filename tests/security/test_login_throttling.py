"""Login throttling: wrong passwords lock a user name out from that address, with a page that says for how long.

Both log-in forms are covered, the app's and Django admin's. An administrator unlocks from Django admin or with
`manage.py axes_reset_username`; the lock also ends by itself after the cool-off.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt  # type: ignore[import-untyped]  # no type hints shipped
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"  # the factories' password
APP_LOGIN = "/login/"
ADMIN_LOGIN = "/django-admin/login/"
OFFICE = "203.0.113.7"  # documentation addresses: strings in REMOTE_ADDR, never contacted
ELSEWHERE = "198.51.100.20"


def attempt(client: Client, url: str, username: str, password: str, **headers: Any) -> Any:
    return client.post(url, {"username": username, "password": password}, **headers)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def hammer(client: Client, url: str, username: str, times: int = 40, **headers: Any) -> None:
    for number in range(times):
        attempt(client, url, username, f"wrong-{number}", **headers)


@pytest.mark.parametrize("url", [APP_LOGIN, ADMIN_LOGIN])
def test_forty_wrong_passwords_then_the_right_one_does_not_log_in(admin_user: Any, url: str) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    hammer(client, url, admin_user.username)
    response = attempt(client, url, admin_user.username, PASSWORD)
    assert not logged_in(client)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed log-ins" in page
    assert f"after {settings.AXES_FAILURE_LIMIT} failed attempts in a row" in page
    assert "Try again in 15 minutes" in page
    assert f'href="{url}"' in page  # the way back to the form the user came from


def test_the_lock_starts_at_the_failure_limit_and_not_before(licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    hammer(client, APP_LOGIN, licensed_user.username, times=settings.AXES_FAILURE_LIMIT - 1)
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_the_lockout_page_speaks_swedish(licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE, HTTP_ACCEPT_LANGUAGE="sv")
    hammer(client, APP_LOGIN, licensed_user.username, times=settings.AXES_FAILURE_LIMIT)
    response = attempt(client, APP_LOGIN, licensed_user.username, PASSWORD)
    page = response.content.decode()
    assert response.status_code == 429 and not logged_in(client)
    assert "För många misslyckade inloggningar" in page
    assert "Försök igen om 15 minuter" in page
    assert "Tillbaka till inloggningen" in page


def test_a_wrong_password_shows_the_usual_message_until_the_limit(licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    response = attempt(client, APP_LOGIN, licensed_user.username, "wrong")
    assert response.status_code == 200 and "Please enter a correct username and password" in response.content.decode()


def test_the_lock_is_for_that_user_name_from_that_address_only(licensed_user: Any, outsider: Any) -> None:
    """The administrator cannot be locked out by someone elsewhere, nor a colleague by one person's typos."""
    hammer(Client(REMOTE_ADDR=OFFICE), APP_LOGIN, licensed_user.username)
    elsewhere = Client(REMOTE_ADDR=ELSEWHERE)
    assert attempt(elsewhere, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302
    colleague = Client(REMOTE_ADDR=OFFICE)
    assert attempt(colleague, APP_LOGIN, outsider.username, PASSWORD).status_code == 302


def test_a_successful_log_in_forgets_the_failures_before_it(licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    limit = settings.AXES_FAILURE_LIMIT
    hammer(client, APP_LOGIN, licensed_user.username, times=limit - 1)
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    hammer(client, APP_LOGIN, licensed_user.username, times=limit - 1)
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302


def test_the_cool_off_expires(licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    hammer(client, APP_LOGIN, licensed_user.username, times=settings.AXES_FAILURE_LIMIT)
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 429
    # A minute short of the cool-off the lock holds, and that attempt starts the wait again; past it, it is gone.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME + timedelta(minutes=1))
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 429
    assert timezone.now() - AccessAttempt.objects.get().attempt_time < timedelta(minutes=1)
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_an_admin_unlocks_with_manage_py(licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    hammer(client, APP_LOGIN, licensed_user.username)
    call_command("axes_reset_username", licensed_user.username)
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302
    assert logged_in(client)


def test_an_admin_unlocks_from_django_admin(admin_user: Any, licensed_user: Any) -> None:
    client = Client(REMOTE_ADDR=OFFICE)
    hammer(client, APP_LOGIN, licensed_user.username)
    admin = Client()
    admin.force_login(admin_user)
    changelist = reverse("admin:axes_accessattempt_changelist")
    listed = admin.get(changelist)
    assert listed.status_code == 200 and licensed_user.username in listed.content.decode()
    locked = AccessAttempt.objects.get(username=licensed_user.username)
    done = admin.post(changelist, {"action": "delete_selected", "_selected_action": [locked.pk], "post": "yes"})
    assert done.status_code == 302 and not AccessAttempt.objects.exists()
    assert attempt(client, APP_LOGIN, licensed_user.username, PASSWORD).status_code == 302


def test_a_forwarded_address_is_ignored_without_a_trusted_proxy(licensed_user: Any) -> None:
    """A client cannot escape the count by sending a new X-Forwarded-For with each attempt."""
    client = Client(REMOTE_ADDR=OFFICE)
    for number in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, APP_LOGIN, licensed_user.username, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{number}")
    response = attempt(client, APP_LOGIN, licensed_user.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert response.status_code == 429


@override_settings(ERPSYNC_TRUSTED_PROXIES=1)
def test_behind_a_trusted_proxy_the_address_it_saw_is_counted(licensed_user: Any) -> None:
    """Every request comes from the proxy; the client is the address it appended, not what the client sent."""
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    for number in range(settings.AXES_FAILURE_LIMIT):
        forwarded = f"192.0.2.{number}, {OFFICE}"  # a chosen address, then the one the proxy saw
        attempt(proxy, APP_LOGIN, licensed_user.username, "wrong", HTTP_X_FORWARDED_FOR=forwarded)
    locked = attempt(proxy, APP_LOGIN, licensed_user.username, PASSWORD, HTTP_X_FORWARDED_FOR=OFFICE)
    assert locked.status_code == 429
    other = attempt(proxy, APP_LOGIN, licensed_user.username, PASSWORD, HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert other.status_code == 302
