"""The permission matrix: every view is requested by anonymous, outsider, licensed user and admin."""

from __future__ import annotations

from typing import Any

from django.test import Client

ROLES = ("anonymous", "outsider", "licensed", "admin")


def assert_access(client: Client, users: dict[str, Any], url: str, expected: dict[str, int]) -> None:
    """``expected`` maps each role to the status it must get; anonymous users must be sent to log in."""
    assert set(expected) == set(ROLES), f"give an expectation for every role: {ROLES}"
    failures = []
    for role in ROLES:
        client.logout()
        if role != "anonymous":
            client.force_login(users[role])
        response = client.get(url)
        if response.status_code != expected[role]:
            failures.append(f"{role}: got {response.status_code}, expected {expected[role]}")
        elif role == "anonymous" and expected[role] == 302:
            assert response["Location"].startswith("/login/?next="), response["Location"]
    client.logout()
    assert not failures, f"{url}: " + "; ".join(failures)
