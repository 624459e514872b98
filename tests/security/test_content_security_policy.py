"""A Content-Security-Policy on every page: scripts and styles from the app only, no inline code of any kind.

tests/test_csp_browser.py walks the main flows in Chromium under it; here every URL is asked for the header, and
every template is read for what the policy would block.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from ..conftest import ROOT
from .conftest import World
from .url_table import TABLE, url_for

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
TEMPLATES = sorted(
    path
    for folder in (ROOT / "templates", *ROOT.glob("*/templates"))
    for path in folder.rglob("*.html")
    if ".venv" not in path.parts
)
# What a strict policy blocks in a template: inline scripts, handlers, style attributes and blocks, javascript: URLs.
INLINE = {
    "an inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "an event handler attribute": re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE),
    "a style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE),
    "a style block": re.compile(r"<style[\s>]", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def directives(header: str) -> dict[str, str]:
    return {name: value.strip() for name, _space, value in (d.strip().partition(" ") for d in header.split(";"))}


@pytest.mark.django_db
def test_every_url_answers_with_the_policy(client: Client, users: dict[str, Any], world: World) -> None:
    pks = world.pks()
    client.force_login(users["admin"])
    missing = []
    for name in TABLE:
        if "_auth_user_id" not in client.session:
            client.force_login(users["admin"])
        response = client.get(url_for(name, pks))
        header = response.headers.get("Content-Security-Policy", "")
        if not POLICY.items() <= directives(header).items():
            missing.append(f"{name}: {header or 'no Content-Security-Policy'}")
    # Pages Django answers on its own: a 404, and the 400 of input refused at the door.
    for url in ("/no-such-page/", "/companies/?q=%00"):
        header = client.get(url).headers.get("Content-Security-Policy", "")
        if not POLICY.items() <= directives(header).items():
            missing.append(f"{url}: {header or 'no Content-Security-Policy'}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_inline_code_the_policy_would_block(template: Path) -> None:
    text = template.read_text()
    found = [what for what, pattern in INLINE.items() if pattern.search(text)]
    assert not found, f"{template.relative_to(ROOT)} has {', '.join(found)}: move it to a file under static/"
