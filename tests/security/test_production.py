"""Production settings: check --deploy is clean, and the app served by gunicorn sends the security headers.

Settings are read when Django starts, so these tests start processes with a production environment: DEBUG off,
a long random SECRET_KEY, a real Fernet key, one allowed host and a fresh SQLite database of their own.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from ..conftest import ROOT, Process, free_port, venv_bin, wait_for

HOST = "erpsync.example.com"
PASSWORD = "prod-check-" + secrets.token_urlsafe(12)


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ERPSYNC_FERNET_KEYS"}}
    return {
        **inherited,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ERPSYNC_FERNET_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
        **overrides,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_without_a_warning(tmp_path: Path) -> None:
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output and "WARNING" not in output
    # The same check fails when a protection is turned off, so the pass above means something.
    weaker = manage(production_env(tmp_path, SECURE_SSL_REDIRECT="0"), "check", "--deploy", "--fail-level", "WARNING")
    assert weaker.returncode != 0 and "security.W008" in weaker.stdout + weaker.stderr


def cookie(response: httpx.Response, name: str) -> set[str]:
    """The attributes of the cookie ``name`` as set by the response, lower-cased, without values."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]} | {
                part.strip().lower() for part in header.split(";")[1:] if part.strip().lower().startswith("samesite")
            }
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def test_gunicorn_with_production_settings_sends_the_security_headers(
    tmp_path: Path, start_process: Callable[..., Process]
) -> None:
    env = production_env(tmp_path)
    migrated = manage(env, "migrate", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    created = manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        "createsuperuser",
        "--noinput",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    server = start_process(
        [
            venv_bin("gunicorn"),
            "erpsync_admin.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--forwarded-allow-ips",
            "127.0.0.1",
        ],
        env=env,
        name="gunicorn",
    )
    base = f"http://127.0.0.1:{port}"
    https = {"Host": HOST, "X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy sends it

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health/", headers=https, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(lambda: up() or server.popen.poll() is not None, 30, "gunicorn to answer")
    assert server.popen.poll() is None, server.output()

    plain = httpx.get(f"{base}/health/", headers={"Host": HOST})
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://{HOST}/health/"
    health = httpx.get(f"{base}/health/", headers=https)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    for response in (plain, health):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert health.headers["X-Frame-Options"] == "DENY"
    assert health.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in plain.headers  # only over https
    assert health.headers["Cross-Origin-Opener-Policy"] == "same-origin"

    assert "script-src 'self'" in health.headers["Content-Security-Policy"]
    refused = httpx.get(f"{base}/health/", headers={**https, "Host": "evil.example"})
    assert refused.status_code == 400 and 'href="/static/css/standalone.css"' in refused.text
    assert "style-src 'self'" in refused.headers["Content-Security-Policy"]
    missing = httpx.get(f"{base}/no-such-page/", headers=https)
    assert missing.status_code in (404, 500)
    for debug_text in ("URLconf", "Traceback", "DEBUG = True", "settings.py"):
        assert debug_text not in missing.text

    # Log in as the browser does (the CSRF cookie and the form's token, from the site's own origin).
    token = secrets.token_hex(16)  # a CSRF secret of 32 characters, as Django's cookie holds
    form = {"username": "ops", "password": PASSWORD}
    origin = {**https, "Origin": f"https://{HOST}", "Cookie": f"csrftoken={token}"}
    assert httpx.post(f"{base}/login/", data=form, headers=origin).status_code == 403  # no token in the form
    login = httpx.post(f"{base}/login/", data={**form, "csrfmiddlewaretoken": token}, headers=origin)
    assert login.status_code == 302 and login.headers["Location"] == "/companies/"
    assert {"secure", "httponly", "samesite=lax"} <= cookie(login, "sessionid")
    assert {"secure", "samesite=lax"} <= cookie(login, "csrftoken")
    assert login.headers["X-Frame-Options"] == "DENY" and login.headers["X-Content-Type-Options"] == "nosniff"
    assert login.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    other_site = {**origin, "Origin": "https://evil.example"}
    assert (
        httpx.post(f"{base}/login/", data={**form, "csrfmiddlewaretoken": token}, headers=other_site).status_code == 403
    )


def test_hsts_preload_is_the_operators_choice(tmp_path: Path) -> None:
    """Off by default (check --deploy is told so); SECURE_HSTS_PRELOAD=1 turns it on and the check stays clean."""
    env = production_env(tmp_path, SECURE_HSTS_PRELOAD="1")
    code = "from django.conf import settings; print(settings.SECURE_HSTS_PRELOAD, settings.SILENCED_SYSTEM_CHECKS)"
    shown = manage(env, "shell", "-c", code)
    assert shown.stdout.strip().splitlines()[-1] == "True []", shown.stderr
    assert manage(env, "check", "--deploy", "--fail-level", "WARNING").returncode == 0
