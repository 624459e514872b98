"""The mail and link settings alerts use come from the environment; a bad value stops start-up, naming it."""

from __future__ import annotations

import pytest

from erpsync_admin.env import ConfigError, Env

from ..test_settings import run_check


def test_the_site_address_is_an_http_address_with_a_host() -> None:
    assert (
        Env({"ERPSYNC_SITE_URL": "https://crm.example.com/"}).http_url("ERPSYNC_SITE_URL") == "https://crm.example.com"
    )
    assert Env({}).http_url("ERPSYNC_SITE_URL") == ""
    for wrong in ("crm.example.com", "ftp://crm.example.com", "https://", "https://crm.example.com/?next=/"):
        with pytest.raises(ConfigError, match=r"use an http or https address such as https://crm\.example\.com"):
            Env({"ERPSYNC_SITE_URL": wrong}).http_url("ERPSYNC_SITE_URL")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "turn on EMAIL_USE_TLS (STARTTLS, usually port 587) or"),
        ({"EMAIL_PORT": "0"}, "EMAIL_PORT='0' is not valid: expected a whole number from 1 to 65535"),
        ({"DEFAULT_FROM_EMAIL": "erpsync"}, "DEFAULT_FROM_EMAIL='erpsync' is not valid: use an e-mail address"),
    ],
)
def test_a_bad_mail_setting_stops_start_up_naming_it(overrides: dict[str, str], expected: str) -> None:
    result = run_check(DEBUG="1", **overrides)
    assert result.returncode != 0
    assert expected in result.stderr and "Traceback" not in result.stderr
