"""Settings come from the environment; a bad value stops start-up with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from erpsync_admin.env import ConfigError, Env

from .conftest import ROOT


def env(**values: str) -> Env:
    return Env(values)


def test_booleans_accept_the_usual_words() -> None:
    for word in ("1", "true", "YES", "on"):
        assert env(DEBUG=word).flag("DEBUG", False) is True
    for word in ("0", "false", "No", "off", ""):
        assert env(DEBUG=word).flag("DEBUG", True) is False
    assert env().flag("DEBUG", True) is True


def test_a_bad_boolean_names_the_variable_and_the_allowed_words() -> None:
    with pytest.raises(ConfigError, match=r"DEBUG='maybe' is not valid: use one of 1/true/yes/on or 0/false/no/off"):
        env(DEBUG="maybe").flag("DEBUG", False)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ten", "expected a whole number from 10 to 99"),
        ("5", "from 10 to 99"),
        ("100", "from 10 to 99"),
        ("1.5", "whole"),
    ],
)
def test_integers_are_checked_against_their_bounds(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        env(LIMIT=raw).integer("LIMIT", 20, minimum=10, maximum=99)
    assert env(LIMIT="42").integer("LIMIT", 20, minimum=10, maximum=99) == 42


def test_lists_are_comma_separated_and_trimmed() -> None:
    assert env(ALLOWED_HOSTS=" crm.example.com, ,localhost ").items("ALLOWED_HOSTS", []) == [
        "crm.example.com",
        "localhost",
    ]
    assert env().items("ALLOWED_HOSTS", ["x"]) == ["x"]


def test_choices_list_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match="LANGUAGE_CODE='de' is not valid: use one of en, sv"):
        env(LANGUAGE_CODE="de").choice("LANGUAGE_CODE", "en", ["en", "sv"])


def test_database_urls_for_postgres_and_sqlite_are_parsed() -> None:
    pg = env(DATABASE_URL="postgres://erp:pw@db.internal:5433/erpsync").database("DATABASE_URL", "")
    assert (pg["ENGINE"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        5433,
        "erpsync",
    )
    lite = env().database("DATABASE_URL", "sqlite:////srv/erpsync/db.sqlite3")
    assert lite["NAME"] == "/srv/erpsync/db.sqlite3"


@pytest.mark.parametrize("raw", ["mysql://root@localhost/erp", "not a url", "sqlite://:memory:", "sqlite://"])
def test_unsupported_database_urls_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL="):
        env(DATABASE_URL=raw).database("DATABASE_URL", "")


def test_broker_urls_must_be_redis_or_the_embedded_broker() -> None:
    assert env(B="redis://127.0.0.1:6379/0").broker("B", "") == "redis://127.0.0.1:6379/0"
    assert env().broker("B", "sqla+sqlite:///var/b.sqlite3") == "sqla+sqlite:///var/b.sqlite3"
    with pytest.raises(ConfigError, match="use redis://host:6379/0 or the embedded sqla"):
        env(B="amqp://guest@localhost//").broker("B", "")


def test_fernet_keys_are_validated_without_printing_them() -> None:
    good = Fernet.generate_key().decode()
    assert env(K=f"{good}, {good}").fernet_keys("K", []) == [good, good]
    with pytest.raises(ConfigError) as error:
        env(K="short-secret-value").fernet_keys("K", [])
    assert "short-secret-value" not in str(error.value)
    assert "32 url-safe base64-encoded bytes" in str(error.value)


def run_check(**overrides: str) -> subprocess.CompletedProcess[str]:
    """Start the app the way an operator does, with the given environment."""
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ERPSYNC_FERNET_KEYS"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **overrides},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_start_up_is_refused_without_a_secret_key() -> None:
    result = run_check(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "DEBUG is off" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_start_up_is_refused_without_fernet_keys() -> None:
    result = run_check(DEBUG="0", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "ERPSYNC_FERNET_KEYS" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DEBUG", "perhaps", "DEBUG='perhaps' is not valid"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y' is not valid"),
        ("CELERY_BROKER_URL", "amqp://x", "CELERY_BROKER_URL='amqp://x' is not valid"),
        ("TIME_ZONE", "Mars/Olympus", "use an IANA time zone name"),
        ("CELERY_TASK_TIME_LIMIT", "soon", "CELERY_TASK_TIME_LIMIT='soon' is not valid"),
        ("ERPSYNC_FERNET_KEYS", "nope", "ERPSYNC_FERNET_KEYS='(hidden)' is not valid"),
        ("ERPSYNC_CONNECTOR_TIMEOUT", "0", "expected a whole number from 1 to 120"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_message_naming_the_variable(name: str, value: str, expected: str) -> None:
    result = run_check(**{"DEBUG": "1", name: value})
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_soft_time_limit_above_the_hard_limit_is_refused() -> None:
    result = run_check(DEBUG="1", CELERY_TASK_TIME_LIMIT="60", CELERY_TASK_SOFT_TIME_LIMIT="120")
    assert result.returncode != 0
    assert "must be lower than CELERY_TASK_TIME_LIMIT (60)" in result.stderr


def test_good_production_settings_start() -> None:
    result = run_check(
        DEBUG="0",
        SECRET_KEY="k" * 60,
        ERPSYNC_FERNET_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="crm.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "erpsync.W001" not in result.stderr + result.stdout
